"""Models of the Digi-Q learner: presets, the VLM wrapper, text and image encoders, tokenizer.

Public API (see each module's docstring for the why):

* :mod:`digiq.models.presets`: :func:`get_preset`, :func:`list_presets`, :class:`ModelPreset`
  and its sections, :class:`MissingCheckpointError`.
* :mod:`digiq.models.vlm`: :class:`VLM` (``from_preset``, ``load``, ``build_tiny``, ``save``,
  ``prepare``, ``answer_features``, ``yes_no_logits``, ``image_features``), and
  :func:`build_tiny_llava` / :func:`build_tiny_qwen2_vl`.
* :mod:`digiq.models.text_encoder`: :class:`TextEncoder` (MiniLM offline or a local HF encoder).
* :mod:`digiq.models.image_encoder`: :func:`build_image_encoder` and the encoders.
* :mod:`digiq.models.tokenizer`: :func:`train_tokenizer`.
* :mod:`digiq.models.policy`: :class:`PolicyModel` (the AutoUI-style T5 policy),
  :class:`PolicyConfig`, :func:`policy_corpus`, :func:`build_policy_tokenizer`.

Names are imported lazily: ``from digiq.models import get_preset`` does not import torch or
transformers (a CLI listing presets stays fast); the model classes load them on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "digiq.models.presets": [
        "CriticSpec",
        "ImageFeatureSpec",
        "MissingCheckpointError",
        "ModelPreset",
        "PolicySpec",
        "TextEncoderSpec",
        "TinyT5Config",
        "TinyVLMConfig",
        "TrainingDefaults",
        "VLMSpec",
        "get_preset",
        "list_presets",
    ],
    "digiq.models.text_encoder": ["TextEncoder"],
    "digiq.models.tokenizer": ["train_tokenizer"],
    "digiq.models.vlm": ["VLM", "VLMBatch", "build_tiny_llava", "build_tiny_qwen2_vl"],
    "digiq.models.image_encoder": ["ImageEncoder", "SmallCNN", "build_image_encoder"],
    "digiq.models.policy": [
        "PolicyBatch",
        "PolicyConfig",
        "PolicyModel",
        "build_policy_tokenizer",
        "policy_corpus",
    ],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'digiq.models' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
