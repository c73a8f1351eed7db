"""The Digi-Q critic: twin Q and twin V heads trained by TD on cached features.

What is learned (as in the published Digi-Q code, DigiRL-agent/digiq):

* ``Q_i(s, a)``, i = 1, 2: MLPs over ``[state features, candidate action features,
  VLM answer-token feature of (s, a)]``; ``V_i(s)``: MLPs over the state features only.
  State features = goal text embedding + previous action embedding(s) + image features of the
  previous and current frame; action features = the candidate's text embedding + a one-hot of
  its AitW action type.
* Losses (MSE, summed over the twins), with target networks ``Qbar``/``Vbar``::

      Q_i(s, a) <- r + gamma (1 - done) Vbar_i(s')          (:func:`td_targets`)
      V_i(s)    <- Qbar_i(s, a_dataset)                     (:func:`v_targets`)

  or (``target="td-expected"``, not in the published code) the same Q target with
  ``V_i(s) <- mean_k Qbar_i(s, a_k)`` over the state's N candidates (:func:`expected_v_targets`):
  an N-sample estimate of the behaviour policy's value instead of a one-sample one, so that on
  a small dataset V does not memorise the dataset action's Q (which zeroes the advantage of
  exactly the actions that made episodes succeed); or, for the "MC return" ablation, every head
  regresses to the Monte-Carlo return (:func:`mc_targets`). The targets are Polyak-averaged
  copies (:func:`polyak_update`, ``target <- (1 - tau) target + tau online``), updated once per
  pass over the data like the published code (``polyak_every="epoch"``) or every N steps.

Why the critic trains on cached feature tensors and never on images: the VLM forward pass is
by far the expensive part, and Digi-Q freezes the VLM after representation fine-tuning, so the
heads can be trained for hundreds of steps per second from a memory-mapped feature store. The
trainer is independent of how the features were produced: it takes a :class:`CriticData`
(numpy arrays or :class:`~trajectories.FeatureStore` objects keyed by transition id), so tests
feed synthetic features and the pipeline feeds the stores of ``digiq.features``.

Published head sizes (DigiRL-agent/digiq ``VLMDoubleCritic``, RoBERTa-base 768-d text, BLIP-2
1408-d pooled image features of two frames, LLaVA-7B 4096-d answer-token feature):

* Q input 10752 = 5 x 768 (previous action type, previous action text, goal, action type,
  action text) + 2 x 1408 + 4096; layers 10752 -> 10752 -> 3840 -> 3840 -> 3840 -> 1
  (about 186M parameters per head).
* V input 5120 = 3 x 768 + 2 x 1408; layers 5120 -> 2304 -> 2304 -> 2304 -> 1 (22M per head).

:meth:`CriticConfig.paper` reproduces these widths (``q_hidden=(10752, 3840, 3840, 3840)``,
``v_hidden=(2304, 2304, 2304)``) and the published optimisation (Adam lr 1e-5, gradient-norm
clip 0.01, batch 128 = 32 x 4 accumulation, 800 steps, gamma 0.95, tau 0.1 per epoch).
:meth:`CriticConfig.tiny` is for CPU runs and tests: hidden 128 x 2 (Q) and 64 x 2 (V), and
two documented deviations: lr 1e-3 (at 1e-5, 800 steps of Adam move small heads by at most
0.008 per weight, too little to fit anything) and standardised inputs (features from different
encoders differ in scale by orders of magnitude; the statistics are fitted on the training
data once and stored with the weights, so scoring applies the same transform).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from android.actions import ActionType, parse_autoui
from digiq.bestofn import CriticScores
from digiq.checkpoint import (
    CheckpointError,
    ScalarLog,
    checkpoint_dir,
    load_checkpoint,
    open_scalar_log,
    read_checkpoint_info,
    save_checkpoint,
)

log = logging.getLogger(__name__)

__all__ = [
    "ACTION_TYPE_IDS",
    "NUM_ACTION_TYPES",
    "STATE_FEATURES",
    "ACTION_TEXT_FEATURES",
    "VLM_FEATURES",
    "PRESETS",
    "CriticConfig",
    "ArrayFeatures",
    "CriticData",
    "TwinQ",
    "TwinV",
    "Critic",
    "CriticTrainer",
    "action_type_one_hot",
    "td_targets",
    "v_targets",
    "expected_v_targets",
    "mc_targets",
    "polyak_update",
    "score_data",
    "load_critic",
    "return_bounds",
]

#: AitW action ids in one-hot order (INVALID first).
ACTION_TYPE_IDS: tuple[int, ...] = tuple(int(t) for t in ActionType)
NUM_ACTION_TYPES = len(ACTION_TYPE_IDS)
#: Default feature-store names written by the feature stages (``digiq.features``).
STATE_FEATURES = "state"
ACTION_TEXT_FEATURES = "action_text"
VLM_FEATURES = "vlm"

PRESETS = ("tiny", "paper")
_TARGETS = ("td", "td-expected", "mc")
_LOOKUP = np.full(256, -1, np.int64)
for _pos, _id in enumerate(ACTION_TYPE_IDS):
    _LOOKUP[_id % 256] = _pos


# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------


@dataclass
class CriticConfig:
    """Dimensions, head sizes and optimisation of the critic (see the module docstring).

    ``state_dim``: V input (and the state part of the Q input); ``action_dim``: candidate
    action text-embedding dim; ``action_type_dim``: one-hot width (``NUM_ACTION_TYPES``, or 0
    when the type is part of the text embedding as in the paper); ``vlm_dim``: VLM answer-token
    feature (0 = the ablation without it). ``batch_size`` is the optimiser batch, split into
    ``batch_size / micro_batch_size`` accumulation steps. ``polyak_every``: "epoch" (one pass
    over the training transitions) or a number of optimiser steps. ``eval_every`` /
    ``checkpoint_every`` / ``log_every`` in optimiser steps (0: only at the end).
    ``num_threads``: torch CPU threads while training/scoring (0: leave torch's setting); the
    tiny preset uses 1 because a 32 x 128 matmul is dominated by thread synchronisation (on a
    busy 2-core box, measured 12 us on one thread against 650 us on two).
    ``value_range``: ``(low, high)`` that every discounted return of the data lies in
    (:func:`return_bounds`); scores (:meth:`Critic.score`, hence Best-of-N advantages) are
    clipped to it. ``None``: raw scores, as in the published code. Training is unaffected.
    """

    state_dim: int
    action_dim: int
    vlm_dim: int = 0
    action_type_dim: int = NUM_ACTION_TYPES
    q_hidden: tuple[int, ...] = (128, 128)
    v_hidden: tuple[int, ...] = (64, 64)
    dropout: float = 0.0
    gamma: float = 0.95
    tau: float = 0.1
    lr: float = 1e-5
    grad_clip: float = 0.01
    batch_size: int = 128
    micro_batch_size: int = 32
    steps: int = 800
    target: str = "td"
    polyak_every: str | int = "epoch"
    normalize_inputs: bool = False
    seed: int = 0
    log_every: int = 10
    eval_every: int = 0
    checkpoint_every: int = 0
    num_threads: int = 0
    preset: str = "custom"
    value_range: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        self.q_hidden = tuple(int(h) for h in self.q_hidden)
        self.v_hidden = tuple(int(h) for h in self.v_hidden)
        if self.value_range is not None:
            if len(self.value_range) != 2:
                raise ValueError(
                    f"CriticConfig.value_range must be (low, high), got {self.value_range!r}"
                )
            low, high = (float(x) for x in self.value_range)
            if not (math.isfinite(low) and math.isfinite(high) and low <= high):
                raise ValueError(
                    f"CriticConfig.value_range must be finite with low <= high, "
                    f"got {self.value_range!r}"
                )
            self.value_range = (low, high)
        for name in ("state_dim", "action_dim"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"CriticConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.vlm_dim < 0 or self.action_type_dim < 0:
            raise ValueError(
                f"CriticConfig.vlm_dim / action_type_dim must be >= 0, got "
                f"{self.vlm_dim} / {self.action_type_dim}"
            )
        if self.action_type_dim not in (0, NUM_ACTION_TYPES):
            raise ValueError(
                f"CriticConfig.action_type_dim must be 0 or {NUM_ACTION_TYPES}, "
                f"got {self.action_type_dim}"
            )
        if any(h < 1 for h in self.q_hidden + self.v_hidden):
            raise ValueError(f"hidden sizes must be >= 1: q {self.q_hidden}, v {self.v_hidden}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"CriticConfig.dropout must be in [0, 1), got {self.dropout}")
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"CriticConfig.gamma must be in [0, 1], got {self.gamma}")
        if not 0.0 < self.tau <= 1.0:
            raise ValueError(f"CriticConfig.tau must be in (0, 1], got {self.tau}")
        if self.lr <= 0 or self.grad_clip <= 0:
            raise ValueError(
                f"CriticConfig.lr and grad_clip must be > 0 ({self.lr}, {self.grad_clip})"
            )
        if self.micro_batch_size < 1 or self.batch_size % self.micro_batch_size:
            raise ValueError(
                f"CriticConfig.batch_size ({self.batch_size}) must be a multiple of "
                f"micro_batch_size ({self.micro_batch_size})"
            )
        if self.num_threads < 0:
            raise ValueError(f"CriticConfig.num_threads must be >= 0, got {self.num_threads}")
        if self.steps < 0:
            raise ValueError(f"CriticConfig.steps must be >= 0, got {self.steps}")
        if self.target not in _TARGETS:
            raise ValueError(f"CriticConfig.target must be one of {_TARGETS}, got {self.target!r}")
        if self.polyak_every != "epoch" and (
            isinstance(self.polyak_every, bool)
            or not isinstance(self.polyak_every, int)
            or self.polyak_every < 1
        ):
            raise ValueError(
                f"CriticConfig.polyak_every must be 'epoch' or a step count >= 1, "
                f"got {self.polyak_every!r}"
            )

    @property
    def accumulation(self) -> int:
        return self.batch_size // self.micro_batch_size

    @property
    def q_input_dim(self) -> int:
        return self.state_dim + self.action_dim + self.action_type_dim + self.vlm_dim

    @property
    def v_input_dim(self) -> int:
        return self.state_dim

    def replace(self, **changes: Any) -> CriticConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["q_hidden"], data["v_hidden"] = list(self.q_hidden), list(self.v_hidden)
        if self.value_range is not None:
            data["value_range"] = list(self.value_range)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CriticConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown CriticConfig fields {unknown}")
        return cls(**dict(data))

    @classmethod
    def tiny(
        cls,
        state_dim: int,
        action_dim: int,
        vlm_dim: int = 0,
        action_type_dim: int = NUM_ACTION_TYPES,
        **overrides: Any,
    ) -> CriticConfig:
        """CPU preset: small heads, lr 1e-3, standardised inputs (deviations: module doc)."""
        base: dict[str, Any] = dict(
            q_hidden=(128, 128),
            v_hidden=(64, 64),
            lr=1e-3,
            normalize_inputs=True,
            num_threads=1,
            preset="tiny",
        )
        base.update(overrides)
        return cls(state_dim, action_dim, vlm_dim, action_type_dim, **base)

    @classmethod
    def paper(
        cls,
        state_dim: int = 3 * 768 + 2 * 1408,
        action_dim: int = 2 * 768,
        vlm_dim: int = 4096,
        action_type_dim: int = 0,
        **overrides: Any,
    ) -> CriticConfig:
        """The published heads and optimisation (input dims default to the published ones)."""
        base: dict[str, Any] = dict(
            q_hidden=(10752, 3840, 3840, 3840),
            v_hidden=(2304, 2304, 2304),
            lr=1e-5,
            normalize_inputs=False,
            preset="paper",
        )
        base.update(overrides)
        return cls(state_dim, action_dim, vlm_dim, action_type_dim, **base)

    @classmethod
    def from_model_preset(
        cls,
        preset: Any,
        *,
        state_dim: int,
        action_dim: int,
        vlm_dim: int,
        action_type_dim: int = NUM_ACTION_TYPES,
        **overrides: Any,
    ) -> CriticConfig:
        """A config from a :mod:`digiq.models.presets` ``ModelPreset`` (its critic section and
        critic training defaults; ``hidden_dims`` sizes both the Q and the V heads)."""
        spec, training = preset.critic, preset.training
        tiny = getattr(preset, "name", "") == "tiny"
        base: dict[str, Any] = dict(
            q_hidden=tuple(spec.hidden_dims),
            v_hidden=tuple(spec.hidden_dims),
            dropout=float(getattr(spec, "dropout", 0.0)),
            gamma=training.gamma,
            tau=training.tau,
            lr=training.critic_lr,
            grad_clip=training.grad_clip,
            batch_size=training.critic_batch_size * training.critic_grad_accum,
            micro_batch_size=training.critic_batch_size,
            steps=training.critic_steps,
            normalize_inputs=tiny,
            num_threads=1 if tiny else 0,
            preset=f"model:{getattr(preset, 'name', '?')}",
        )
        base.update(overrides)
        return cls(state_dim, action_dim, vlm_dim, action_type_dim, **base)

    @classmethod
    def from_preset(cls, name: str, **kwargs: Any) -> CriticConfig:
        if name == "tiny":
            return cls.tiny(**kwargs)
        if name == "paper":
            return cls.paper(**kwargs)
        raise ValueError(f"unknown critic preset {name!r}; choose one of {PRESETS}")


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


class ArrayFeatures:
    """A numpy array keyed by transition id, read like a :class:`~trajectories.FeatureStore`.

    ``array`` is ``(T, D)`` (one candidate) or ``(T, C, D)``; ``get(ids, cands)`` has the
    feature store's semantics (int: one candidate for all; array: one per id; None: all).
    """

    def __init__(self, array: np.ndarray) -> None:
        array = np.asarray(array)
        if array.ndim == 2:
            array = array[:, None, :]
        if array.ndim != 3:
            raise ValueError(f"feature array must be (T, D) or (T, C, D), got {array.shape}")
        self.array = array

    @property
    def num_transitions(self) -> int:
        return int(self.array.shape[0])

    @property
    def num_candidates(self) -> int:
        return int(self.array.shape[1])

    @property
    def dim(self) -> int:
        return int(self.array.shape[2])

    def get(self, transition_ids: Any, candidate_indices: Any = 0) -> np.ndarray:
        ids = np.asarray(transition_ids, np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= self.num_transitions):
            raise KeyError(f"transition ids outside [0, {self.num_transitions})")
        if candidate_indices is None:
            return self.array[ids]
        cands = np.asarray(candidate_indices, np.int64)
        if cands.ndim == 0:
            return self.array[ids, int(cands)]
        return self.array[ids, cands]


def _as_source(value: Any, name: str) -> Any:
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        return ArrayFeatures(value)
    if hasattr(value, "get") and hasattr(value, "meta"):
        return _StoreFeatures(value)
    if hasattr(value, "get") and hasattr(value, "num_transitions"):
        return value
    raise TypeError(
        f"CriticData.{name} must be a numpy array or a FeatureStore, got {type(value).__name__}"
    )


class _StoreFeatures:
    """Adapter giving a :class:`~trajectories.FeatureStore` the ArrayFeatures properties."""

    def __init__(self, store: Any) -> None:
        self.store = store

    @property
    def num_transitions(self) -> int:
        return int(self.store.meta.num_transitions)

    @property
    def num_candidates(self) -> int:
        return int(self.store.meta.num_candidates)

    @property
    def dim(self) -> int:
        return int(self.store.meta.dim)

    def get(self, transition_ids: Any, candidate_indices: Any = 0) -> np.ndarray:
        return self.store.get(transition_ids, candidate_indices)


@dataclass
class CriticData:
    """Transitions and their features, as the critic trainer needs them.

    Per-transition arrays (length N, aligned): ``transition_ids``, ``next_transition_ids``
    (-1 when s' has no transition: the final observation, or missing after a device error),
    ``rewards``, ``dones``, ``mc_returns``, ``episode_keys`` (strings; the validation split
    hashes them like :meth:`trajectories.ReplayBuffer.split`), optional ``episode_success``.
    Feature sources, keyed by TRANSITION ID (numpy arrays or FeatureStores): ``state``
    ``(T, D_state)``, ``action_text`` ``(T, C, D_action)``, optional ``vlm`` ``(T, C, D_vlm)``
    and ``action_types`` ``(T, C)`` / ``(T,)`` int AitW ids. Candidate 0 is the dataset action.
    """

    transition_ids: np.ndarray
    next_transition_ids: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray
    mc_returns: np.ndarray
    episode_keys: np.ndarray
    state: Any
    action_text: Any
    vlm: Any = None
    action_types: np.ndarray | None = None
    episode_success: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.transition_ids = np.asarray(self.transition_ids, np.int64)
        n = len(self.transition_ids)
        self.next_transition_ids = np.asarray(self.next_transition_ids, np.int64)
        self.rewards = np.asarray(self.rewards, np.float64)
        self.dones = np.asarray(self.dones, bool)
        self.mc_returns = np.asarray(self.mc_returns, np.float64)
        self.episode_keys = np.asarray([str(k) for k in self.episode_keys], dtype=object)
        if self.episode_success is not None:
            self.episode_success = np.asarray(self.episode_success, bool)
        for name in (
            "next_transition_ids",
            "rewards",
            "dones",
            "mc_returns",
            "episode_keys",
            "episode_success",
        ):
            value = getattr(self, name)
            if value is not None and value.shape != (n,):
                raise ValueError(
                    f"CriticData.{name} has shape {value.shape}, expected ({n},) like "
                    "transition_ids"
                )
        self.state = _as_source(self.state, "state")
        self.action_text = _as_source(self.action_text, "action_text")
        self.vlm = _as_source(self.vlm, "vlm")
        if self.state is None or self.action_text is None:
            raise ValueError("CriticData needs state and action_text features")
        if self.action_types is not None:
            types = np.asarray(self.action_types, np.int64)
            if types.ndim == 1:
                types = types[:, None]
            if types.ndim != 2:
                raise ValueError(
                    f"CriticData.action_types must be (T,) or (T, C), got {types.shape}"
                )
            bad = set(np.unique(types).tolist()) - set(ACTION_TYPE_IDS)
            if bad:
                raise ValueError(f"CriticData.action_types holds unknown AitW ids {sorted(bad)}")
            self.action_types = types
        if n and self.transition_ids.min() < 0:
            raise ValueError("CriticData.transition_ids must be >= 0")
        for src, name in (
            (self.state, "state"),
            (self.action_text, "action_text"),
            (self.vlm, "vlm"),
        ):
            if src is not None and n and self.transition_ids.max() >= src.num_transitions:
                raise ValueError(
                    f"CriticData.{name} covers {src.num_transitions} transitions but transition "
                    f"id {int(self.transition_ids.max())} is used"
                )
        if (
            self.action_types is not None
            and n
            and self.transition_ids.max() >= len(self.action_types)
        ):
            raise ValueError(
                f"CriticData.action_types covers {len(self.action_types)} transitions but "
                f"transition id {int(self.transition_ids.max())} is used"
            )

    def __len__(self) -> int:
        return len(self.transition_ids)

    @property
    def state_dim(self) -> int:
        return int(self.state.dim)

    @property
    def action_dim(self) -> int:
        return int(self.action_text.dim)

    @property
    def vlm_dim(self) -> int:
        return 0 if self.vlm is None else int(self.vlm.dim)

    @property
    def action_type_dim(self) -> int:
        return 0 if self.action_types is None else NUM_ACTION_TYPES

    @property
    def num_candidates(self) -> int:
        """Candidates with every feature the Q input needs."""
        counts = [self.action_text.num_candidates]
        if self.vlm is not None:
            counts.append(self.vlm.num_candidates)
        if self.action_types is not None:
            counts.append(self.action_types.shape[1])
        return int(min(counts))

    @property
    def next_available(self) -> np.ndarray:
        """Whether s' has state features (a transition id covered by the state source)."""
        nxt = self.next_transition_ids
        return (nxt >= 0) & (nxt < self.state.num_transitions)

    def subset(self, mask_or_index: np.ndarray) -> CriticData:
        """The rows selected by a boolean mask or an index array (feature sources shared)."""
        sel = np.asarray(mask_or_index)
        return dataclasses.replace(
            self,
            transition_ids=self.transition_ids[sel],
            next_transition_ids=self.next_transition_ids[sel],
            rewards=self.rewards[sel],
            dones=self.dones[sel],
            mc_returns=self.mc_returns[sel],
            episode_keys=self.episode_keys[sel],
            episode_success=None if self.episode_success is None else self.episode_success[sel],
            notes=list(self.notes),
        )

    def split(
        self, val_fraction: float = 0.1, seed: int | str = 0
    ) -> tuple[CriticData, CriticData]:
        """(train, validation) by a hash of the episode key (same rule as ReplayBuffer.split)."""
        from trajectories.buffer import episode_in_validation

        if not 0.0 <= val_fraction <= 1.0:
            raise ValueError(f"val_fraction must be in [0, 1], got {val_fraction}")
        keys = {k: episode_in_validation(k, val_fraction, seed) for k in set(self.episode_keys)}
        val = np.array([keys[k] for k in self.episode_keys], bool)
        return self.subset(~val), self.subset(val)

    def episode_lengths(self) -> np.ndarray:
        """Rows per episode key (the episodes' lengths when every step is in the data)."""
        return np.unique(self.episode_keys.astype(str), return_counts=True)[1]

    def candidate_action_types(self, ids: np.ndarray, cands: Any) -> np.ndarray | None:
        if self.action_types is None:
            return None
        if cands is None:
            return self.action_types[ids, : self.num_candidates]
        return self.action_types[ids, cands]

    @classmethod
    def from_buffer(
        cls,
        buffer: Any,
        *,
        state: str = STATE_FEATURES,
        action_text: str = ACTION_TEXT_FEATURES,
        vlm: str | None = VLM_FEATURES,
        prefix: str = "",
        candidates: Any = None,
        gamma: float | None = None,
        allow_stale: bool = False,
    ) -> CriticData:
        """Transitions of a :class:`~trajectories.ReplayBuffer` view with its feature stores.

        ``state`` / ``action_text`` / ``vlm``: feature-store names under ``buffer.root``
        (defaults: the names ``digiq.features`` writes, after ``prefix``; ``vlm=None``: without
        the VLM feature). ``candidates``: a :class:`~trajectories.CandidateTable` (or its
        name) whose action strings give the action types of candidates 1..N-1; by default the
        candidate set recorded in the action-text store's meta (``extra["candidates"]``);
        without one only candidate 0 is scored. ``gamma``: recompute the Monte-Carlo returns
        for this discount. Incomplete stores (chunks not written yet) raise ValueError.
        """
        from trajectories import CandidateTable, FeatureStore

        root = Path(buffer.root)
        stores = {
            "state": FeatureStore.open(root, prefix + state, allow_stale=allow_stale),
            "action_text": FeatureStore.open(root, prefix + action_text, allow_stale=allow_stale),
            "vlm": None
            if vlm is None
            else FeatureStore.open(root, prefix + vlm, allow_stale=allow_stale),
        }
        for store in stores.values():
            if store is not None and store.missing_chunks():
                raise ValueError(
                    f"feature store {store.root} is incomplete ({len(store.missing_chunks())} of "
                    f"{store.meta.num_chunks} chunks missing): finish the features stage first"
                )
        if candidates is None:
            candidates = stores["action_text"].meta.extra.get("candidates")
        covered = min(s.meta.num_transitions for s in stores.values() if s is not None)
        num_cands = min(
            s.meta.num_candidates for k, s in stores.items() if s is not None and k != "state"
        )
        all_ids = np.asarray(buffer.transition_ids, np.int64)
        keep = all_ids < covered
        notes: list[str] = []
        if not keep.all():
            notes.append(f"{int((~keep).sum())} transitions are not covered by the feature stores")
        ids = all_ids[keep]
        batch = buffer.batch(ids)
        mc = batch.mc_returns if gamma is None else buffer.mc_returns(gamma)[keep]
        success_of = {ep.episode_id: bool(ep.success) for ep in buffer.episodes()}
        episode_ids = batch.episode_ids
        types = np.full((covered, num_cands), int(ActionType.INVALID), np.int64)
        types[ids, 0] = batch.action_types
        if num_cands > 1:
            if candidates is None:
                notes.append("no candidate table: action types of candidates 1.. are unknown")
                types = types[:, :1]
            else:
                table = (
                    CandidateTable.open(root, candidates)
                    if isinstance(candidates, str)
                    else candidates
                )
                for tid in table.transition_ids.tolist():
                    if tid < covered:
                        actions = table.actions([tid])[0][1:num_cands]
                        types[tid, 1 : 1 + len(actions)] = [
                            int(parse_autoui(a).action_type) for a in actions
                        ]
        return cls(
            transition_ids=ids,
            next_transition_ids=batch.next_transition_ids,
            rewards=batch.rewards,
            dones=batch.dones,
            mc_returns=mc,
            episode_keys=np.asarray(episode_ids, dtype=object),
            state=stores["state"],
            action_text=stores["action_text"],
            vlm=stores["vlm"],
            action_types=types,
            episode_success=np.array([success_of[e] for e in episode_ids], bool),
            notes=notes,
        )


# ---------------------------------------------------------------------------------------------
# Modules
# ---------------------------------------------------------------------------------------------


def _mlp(in_dim: int, hidden: Sequence[int], dropout: float = 0.0) -> nn.Sequential:
    layers: list[nn.Module] = []
    prev = in_dim
    for width in hidden:
        layers += [nn.Linear(prev, width), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        prev = width
    layers.append(nn.Linear(prev, 1))
    return nn.Sequential(*layers)


#: Input dimensions whose training standard deviation is below this are treated as constant:
#: centred but not scaled (like scikit-learn's StandardScaler). Scaling them by their tiny std
#: (formerly clamped at 1e-6) turned any unseen value - an action type absent from the training
#: split, a layout part that happened to be constant - into an input of order 1e6, and the
#: critic's Q for that candidate into an arbitrary huge number that Best-of-N could pick
#: (measured: 16 of 2184 Q inputs, and a validation loss of 1385 instead of 0.05 in one run).
CONSTANT_STD = 1e-3


class InputNorm(nn.Module):
    """Fixed standardisation ``(x - mean) / std`` (identity until :meth:`fit` is called)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def fit(self, x: torch.Tensor) -> None:
        with torch.no_grad():
            self.mean.copy_(x.mean(dim=0))
            if len(x) > 1:
                std = x.std(dim=0)
                self.std.copy_(torch.where(std < CONSTANT_STD, torch.ones_like(std), std))
            else:
                self.std.copy_(torch.ones_like(self.std))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def action_type_one_hot(action_types: Any) -> torch.Tensor:
    """One-hot ``(..., NUM_ACTION_TYPES)`` of AitW action ids (order: :data:`ACTION_TYPE_IDS`)."""
    ids = np.asarray(action_types, np.int64)
    pos = _LOOKUP[ids % 256]
    if (pos < 0).any() or ((ids < -128) | (ids > 127)).any():
        bad = sorted(set(ids[(pos < 0) | (ids < -128) | (ids > 127)].tolist()))
        raise ValueError(f"unknown AitW action type ids {bad}; known {ACTION_TYPE_IDS}")
    return torch.nn.functional.one_hot(torch.from_numpy(pos), NUM_ACTION_TYPES).float()


class TwinQ(nn.Module):
    """Twin Q heads over ``[state, action (text + type one-hot), vlm]``.

    ``forward(state (B, Ds), action (B, Da) or (B, C, Da), vlm (B, Dv) or (B, C, Dv))``
    returns ``(q1, q2)`` shaped ``(B,)`` or ``(B, C)`` (the state is shared by the candidates).
    """

    def __init__(
        self,
        state_dim: int,
        action_dim: int,
        vlm_dim: int,
        hidden: Sequence[int],
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.state_dim, self.action_dim, self.vlm_dim = state_dim, action_dim, vlm_dim
        in_dim = state_dim + action_dim + vlm_dim
        self.norm = InputNorm(in_dim)
        self.q1 = _mlp(in_dim, hidden, dropout)
        self.q2 = _mlp(in_dim, hidden, dropout)

    def raw_inputs(
        self, state: torch.Tensor, action: torch.Tensor, vlm: torch.Tensor | None
    ) -> torch.Tensor:
        """The concatenated Q input before standardisation."""
        if action.dim() == 3:
            state = state.unsqueeze(1).expand(-1, action.shape[1], -1)
        parts = [state, action]
        if self.vlm_dim:
            if vlm is None:
                raise ValueError(f"this critic needs a {self.vlm_dim}-d VLM feature")
            parts.append(vlm)
        x = torch.cat(parts, dim=-1)
        if x.shape[-1] != self.norm.mean.shape[0]:
            raise ValueError(
                f"Q input has {x.shape[-1]} features, the heads expect {self.norm.mean.shape[0]} "
                f"(state {self.state_dim} + action {self.action_dim} + vlm {self.vlm_dim})"
            )
        return x

    def inputs(
        self, state: torch.Tensor, action: torch.Tensor, vlm: torch.Tensor | None
    ) -> torch.Tensor:
        return self.norm(self.raw_inputs(state, action, vlm))

    def forward(
        self, state: torch.Tensor, action: torch.Tensor, vlm: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.inputs(state, action, vlm)
        return self.q1(x).squeeze(-1), self.q2(x).squeeze(-1)


class TwinV(nn.Module):
    """Twin V heads over the state features only: ``forward(state (B, Ds)) -> (v1, v2)``."""

    def __init__(self, state_dim: int, hidden: Sequence[int], dropout: float = 0.0) -> None:
        super().__init__()
        self.state_dim = state_dim
        self.norm = InputNorm(state_dim)
        self.v1 = _mlp(state_dim, hidden, dropout)
        self.v2 = _mlp(state_dim, hidden, dropout)

    def forward(self, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if state.shape[-1] != self.state_dim:
            raise ValueError(f"V input has {state.shape[-1]} features, expected {self.state_dim}")
        x = self.norm(state)
        return self.v1(x).squeeze(-1), self.v2(x).squeeze(-1)


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """Use ``n`` torch CPU threads inside the block (0: unchanged), then restore."""
    if n <= 0 or n == torch.get_num_threads():
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _tensor(x: Any) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.float()
    return torch.from_numpy(np.asarray(x, np.float32))


class Critic(nn.Module):
    """Twin Q + twin V heads for one :class:`CriticConfig`."""

    def __init__(self, config: CriticConfig) -> None:
        super().__init__()
        self.config = config
        self.q = TwinQ(
            config.state_dim,
            config.action_dim + config.action_type_dim,
            config.vlm_dim,
            config.q_hidden,
            config.dropout,
        )
        self.v = TwinV(config.state_dim, config.v_hidden, config.dropout)

    def action_inputs(self, text: Any, action_types: Any = None) -> torch.Tensor:
        """Candidate action features: text embedding (+ the type one-hot when configured)."""
        text_t = _tensor(text)
        if not self.config.action_type_dim:
            return text_t
        if action_types is None:
            raise ValueError("this critic was configured with action types; pass action_types")
        one_hot = action_type_one_hot(action_types)
        if one_hot.shape[:-1] != text_t.shape[:-1]:
            raise ValueError(
                f"action_types shape {tuple(one_hot.shape[:-1])} does not match the action "
                f"features {tuple(text_t.shape[:-1])}"
            )
        return torch.cat([text_t, one_hot], dim=-1)

    def forward(
        self, state: torch.Tensor, action: torch.Tensor, vlm: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        q1, q2 = self.q(state, action, vlm)
        v1, v2 = self.v(state)
        return q1, q2, v1, v2

    @torch.no_grad()
    def score(
        self,
        state_feats: Any,
        cand_action_feats: Any,
        cand_vlm_feats: Any = None,
        cand_action_types: Any = None,
        *,
        clip: bool = True,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(q1, q2, v1, v2)`` as numpy: Q ``(B, C)`` per candidate, V ``(B,)`` per state.

        ``state_feats`` ``(B, Ds)``; ``cand_action_feats`` ``(B, C, Da)`` text embeddings;
        ``cand_vlm_feats`` ``(B, C, Dv)``; ``cand_action_types`` ``(B, C)`` AitW ids (when the
        critic uses the type one-hot). V never sees the candidate features. With
        ``config.value_range`` every value is clipped to it (see :func:`return_bounds`) unless
        ``clip`` is False (validation metrics, which judge the heads' own ranking).
        """
        was_training = self.training
        self.eval()
        try:
            with _torch_threads(self.config.num_threads):
                return self._score(
                    state_feats, cand_action_feats, cand_vlm_feats, cand_action_types, clip
                )
        finally:
            self.train(was_training)

    def _score(
        self,
        state_feats: Any,
        cand_action_feats: Any,
        cand_vlm_feats: Any,
        cand_action_types: Any,
        clip: bool,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        device = next(self.parameters()).device
        state = _tensor(state_feats).to(device)
        action = self.action_inputs(cand_action_feats, cand_action_types).to(device)
        vlm = None if cand_vlm_feats is None else _tensor(cand_vlm_feats).to(device)
        if action.dim() != 3:
            raise ValueError(f"cand_action_feats must be (B, C, D), got {tuple(action.shape)}")
        q1, q2, v1, v2 = self(state, action, vlm)
        if clip and self.config.value_range is not None:
            low, high = self.config.value_range
            q1, q2, v1, v2 = (t.clamp(low, high) for t in (q1, q2, v1, v2))
        return tuple(t.double().cpu().numpy() for t in (q1, q2, v1, v2))  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------
# Targets and target networks (pure functions)
# ---------------------------------------------------------------------------------------------


def td_targets(
    rewards: torch.Tensor | Any,
    dones: torch.Tensor | Any,
    v_next_target: torch.Tensor | Any,
    gamma: float = 0.95,
) -> torch.Tensor:
    """``r + gamma * (1 - done) * Vbar(s')``, elementwise (broadcasting, e.g. over twins).

    For terminal transitions the bootstrap is masked with ``where`` rather than multiplied by
    0, so a placeholder ``v_next_target`` (NaN, garbage: there is no s') cannot leak in.
    """
    r = torch.as_tensor(rewards, dtype=torch.float32)
    v = torch.as_tensor(v_next_target, dtype=torch.float32)
    done = torch.as_tensor(dones).bool()
    bootstrap = torch.where(done, torch.zeros_like(v), v)
    return (r + gamma * bootstrap).detach()


def v_targets(q_target_on_dataset_action: torch.Tensor | Any) -> torch.Tensor:
    """``Qbar_i(s, a_dataset)``: the V heads regress to the target Q of the dataset action."""
    return torch.as_tensor(q_target_on_dataset_action, dtype=torch.float32).detach()


def expected_v_targets(q_target_on_candidates: torch.Tensor | Any) -> torch.Tensor:
    """``mean_k Qbar_i(s, a_k)`` over the state's N candidates (``(B, N)`` -> ``(B,)``).

    The candidates are N samples of the behaviour policy at the state (candidate 0 is the
    dataset action), so their mean target Q estimates ``V^beta(s) = E_{a ~ beta} Q(s, a)``
    from N samples instead of one. With the published one-sample target, V(s) is fitted to
    Qbar(s, a_dataset) itself wherever a state occurs once in the data (a small dataset), so
    the advantage of the dataset action is ~0 exactly where it mattered: the step that made an
    episode succeed gets no Best-of-N weight (README, "V memorises the dataset action").
    """
    q = torch.as_tensor(q_target_on_candidates, dtype=torch.float32)
    if q.dim() != 2:
        raise ValueError(f"expected (batch, candidates) target Q values, got {tuple(q.shape)}")
    return q.mean(dim=-1).detach()


def mc_targets(mc_returns: torch.Tensor | Any) -> torch.Tensor:
    """The Monte-Carlo returns as regression targets (the "MC return" ablation)."""
    t = torch.as_tensor(mc_returns, dtype=torch.float32).detach()
    if not torch.isfinite(t).all():
        raise ValueError("mc_targets: Monte-Carlo returns contain NaN/inf (steps without a return)")
    return t


@torch.no_grad()
def polyak_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """``target <- (1 - tau) * target + tau * source`` for parameters; buffers are copied."""
    if not 0.0 <= tau <= 1.0:
        raise ValueError(f"tau must be in [0, 1], got {tau}")
    t_params = dict(target.named_parameters())
    s_params = dict(source.named_parameters())
    if t_params.keys() != s_params.keys():
        raise ValueError("polyak_update: target and source have different parameters")
    for name, t in t_params.items():
        t.mul_(1.0 - tau).add_(s_params[name].detach(), alpha=tau)
    s_buffers = dict(source.named_buffers())
    for name, b in target.named_buffers():
        b.copy_(s_buffers[name])


# ---------------------------------------------------------------------------------------------
# Metrics helpers
# ---------------------------------------------------------------------------------------------


def _stats(prefix: str, x: torch.Tensor) -> dict[str, float]:
    x = x.detach().float()
    return {
        f"{prefix}/mean": float(x.mean()),
        f"{prefix}/std": float(x.std()) if x.numel() > 1 else 0.0,
        f"{prefix}/min": float(x.min()),
        f"{prefix}/max": float(x.max()),
    }


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 2 or np.std(a) == 0 or np.std(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def _auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(score of a positive > score of a negative), ties counted half (Mann-Whitney U)."""
    if not len(positive) or not len(negative):
        return float("nan")
    scores = np.concatenate([positive, negative])
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2.0)[inverse]  # 1-based, ties averaged
    n_pos, n_neg = len(positive), len(negative)
    u = ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


# ---------------------------------------------------------------------------------------------
# Trainer
# ---------------------------------------------------------------------------------------------


class CriticTrainer:
    """Trains a :class:`Critic` on a :class:`CriticData` (see the module docstring).

    Rows that cannot be trained on are excluded and reported in :attr:`excluded`: for TD,
    non-terminal transitions whose s' has no state features (an episode cut by a device error,
    or data appended after the features were computed); for MC, rows without a finite return.
    Each optimiser step uses ``batch_size`` rows (shuffled passes over the training data) in
    ``accumulation`` micro-batches, clips the gradient norm, and Polyak-updates the targets on
    schedule. Metrics go to ``callback(step, metrics)`` and to ``run_dir/logs`` (JSONL, and
    TensorBoard when available); checkpoints to ``run_dir/checkpoints/step-N``.
    """

    def __init__(
        self,
        config: CriticConfig,
        train: CriticData,
        val: CriticData | None = None,
        *,
        run_dir: Path | str | None = None,
        callback: Callable[[int, dict[str, float]], None] | None = None,
        tensorboard: bool = True,
        device: str | torch.device = "cpu",
    ) -> None:
        self.config = config
        self.device = torch.device(device)
        self.run_dir = None if run_dir is None else Path(run_dir)
        self.callback = callback
        self.notes: list[str] = []
        self._check_dims(train, "train")
        if val is not None:
            self._check_dims(val, "val")
        self.train_data, self.excluded = self._usable(train)
        if not len(self.train_data):
            raise ValueError(
                f"no trainable transitions in the training data ({len(train)} rows, "
                f"excluded: {self.excluded})"
            )
        self.val_data = None if val is None else self._usable(val)[0]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.critic = Critic(config)
        if config.normalize_inputs:
            self._fit_normalization()
        self.critic.to(self.device)
        self.target = copy.deepcopy(self.critic)
        self.target.requires_grad_(False)
        self.target.eval()  # targets never use dropout
        # foreach: one fused update over all parameter tensors (the per-tensor loop is a third
        # of a tiny-preset step on CPU).
        self.optimizer = torch.optim.Adam(self.critic.parameters(), lr=config.lr, foreach=True)
        self.step = 0
        self._rng = np.random.default_rng(config.seed)
        self._perm = self._rng.permutation(len(self.train_data))
        self._cursor = 0
        self.steps_per_epoch = max(1, math.ceil(len(self.train_data) / config.batch_size))
        self.history: list[dict[str, float]] = []
        self._scalars: ScalarLog = open_scalar_log(
            None if self.run_dir is None else self.run_dir / "logs", tensorboard=tensorboard
        )
        if sum(self.excluded.values()):
            log.info("critic: excluded %s from training", self.excluded)
        if config.target == "td-expected" and self.train_data.num_candidates < 2:
            log.warning(
                "critic: target td-expected needs N >= 2 candidates; the data has %d, so V "
                "regresses to the dataset action's target Q (the published td)",
                self.train_data.num_candidates,
            )
            self._note("td-expected without candidates: V <- Qbar(s, a_dataset)")

    # -- setup -------------------------------------------------------------------------------
    def _check_dims(self, data: CriticData, name: str) -> None:
        c = self.config
        pairs = [
            ("state_dim", c.state_dim, data.state_dim),
            ("action_dim", c.action_dim, data.action_dim),
            ("vlm_dim", c.vlm_dim, data.vlm_dim),
            ("action_type_dim", c.action_type_dim, data.action_type_dim),
        ]
        wrong = [f"{k} config {a} != data {b}" for k, a, b in pairs if a != b]
        if wrong:
            raise ValueError(f"{name} data does not fit the critic config: " + "; ".join(wrong))

    def _usable(self, data: CriticData) -> tuple[CriticData, dict[str, int]]:
        if self.config.target in ("td", "td-expected"):
            ok_next = data.dones | data.next_available
            ok = ok_next & np.isfinite(data.rewards)
            excluded = {
                "missing_next_state": int((~ok_next).sum()),
                "bad_reward": int((ok_next & ~np.isfinite(data.rewards)).sum()),
            }
        else:
            ok = np.isfinite(data.mc_returns)
            excluded = {"missing_mc_return": int((~ok).sum())}
        return (data if ok.all() else data.subset(ok)), excluded

    def _fit_normalization(self, max_rows: int = 4096) -> None:
        data = self.train_data
        rng = np.random.default_rng(self.config.seed + 1)
        rows = rng.choice(len(data), size=min(max_rows, len(data)), replace=False)
        ids = data.transition_ids[np.sort(rows)]
        cands = rng.integers(0, data.num_candidates, size=len(ids))
        state, action, vlm = self._features(data, ids, cands)
        self.critic.v.norm.fit(state)
        self.critic.q.norm.fit(self.critic.q.raw_inputs(state, action, vlm))

    def _features(
        self, data: CriticData, ids: np.ndarray, cands: Any
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(state, action inputs, vlm) for transitions ``ids``; ``cands`` int/array/None(all)."""
        state = _tensor(data.state.get(ids, 0))
        n = data.num_candidates
        if cands is None:
            text = data.action_text.get(ids, None)[:, :n]
            vlm = None if data.vlm is None else data.vlm.get(ids, None)[:, :n]
        else:
            text = data.action_text.get(ids, cands)
            vlm = None if data.vlm is None else data.vlm.get(ids, cands)
        types = data.candidate_action_types(ids, cands)
        action = self.critic.action_inputs(text, types)
        return (
            state.to(self.device),
            action.to(self.device),
            None if vlm is None else _tensor(vlm).to(self.device),
        )

    # -- training ----------------------------------------------------------------------------
    def _next_rows(self) -> np.ndarray:
        need = self.config.batch_size
        parts = []
        while need:
            if self._cursor >= len(self._perm):
                self._perm = self._rng.permutation(len(self.train_data))
                self._cursor = 0
            take = self._perm[self._cursor : self._cursor + need]
            self._cursor += len(take)
            need -= len(take)
            parts.append(take)
        return np.concatenate(parts)

    def _targets(
        self,
        data: CriticData,
        rows: np.ndarray,
        state: torch.Tensor,
        action: torch.Tensor,
        vlm: Any,
        candidates: tuple[torch.Tensor, Any] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(yq1, yq2, yv1, yv2) for the rows (dataset actions), from the target networks.

        ``candidates``: (action inputs, vlm) of all N candidates of the rows, ``(B, N, ...)``;
        given for ``td-expected``, whose V target is their mean target Q.
        """
        c = self.config
        with torch.no_grad():
            if c.target == "mc":
                y = mc_targets(data.mc_returns[rows]).to(self.device)
                return y, y, y, y
            dones = torch.from_numpy(data.dones[rows]).to(self.device)
            v_next1 = torch.zeros(len(rows), device=self.device)
            v_next2 = torch.zeros(len(rows), device=self.device)
            live = ~data.dones[rows]
            if live.any():
                next_ids = data.next_transition_ids[rows][live]
                next_state = _tensor(data.state.get(next_ids, 0)).to(self.device)
                nv1, nv2 = self.target.v(next_state)
                idx = torch.from_numpy(np.flatnonzero(live)).to(self.device)
                v_next1[idx], v_next2[idx] = nv1, nv2
            r = torch.from_numpy(data.rewards[rows]).float().to(self.device)
            if candidates is not None:
                cq1, cq2 = self.target.q(state, *candidates)
                yv1, yv2 = expected_v_targets(cq1), expected_v_targets(cq2)
            else:
                tq1, tq2 = self.target.q(state, action, vlm)
                yv1, yv2 = v_targets(tq1), v_targets(tq2)
            return (
                td_targets(r, dones, v_next1, c.gamma),
                td_targets(r, dones, v_next2, c.gamma),
                yv1,
                yv2,
            )

    def _losses(
        self, data: CriticData, rows: np.ndarray
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        ids = data.transition_ids[rows]
        candidates = None
        if self.config.target == "td-expected" and data.num_candidates > 1:
            # One read of every candidate's features; candidate 0 is the dataset action.
            state, all_actions, all_vlm = self._features(data, ids, None)
            candidates = (all_actions, all_vlm)
            action, vlm = all_actions[:, 0], None if all_vlm is None else all_vlm[:, 0]
        else:
            state, action, vlm = self._features(data, ids, 0)
        yq1, yq2, yv1, yv2 = self._targets(data, rows, state, action, vlm, candidates)
        q1, q2, v1, v2 = self.critic(state, action, vlm)
        mse = nn.functional.mse_loss
        q_loss = mse(q1, yq1) + mse(q2, yq2)
        v_loss = mse(v1, yv1) + mse(v2, yv2)
        parts = {
            "q": torch.stack([q1, q2]).detach(),
            "v": torch.stack([v1, v2]).detach(),
            "target_q": torch.stack([yq1, yq2]),
            "target_v": torch.stack([yv1, yv2]),
            "q_loss": q_loss.detach(),
            "v_loss": v_loss.detach(),
        }
        return q_loss + v_loss, parts

    def train_step(self) -> dict[str, float]:
        """One optimiser step (``accumulation`` micro-batches); returns its metrics."""
        with _torch_threads(self.config.num_threads):
            return self._train_step()

    def _train_step(self) -> dict[str, float]:
        c = self.config
        self.critic.train()
        rows = self._next_rows()
        self.optimizer.zero_grad(set_to_none=True)
        collected: dict[str, list[torch.Tensor]] = {}
        for k in range(c.accumulation):
            micro = rows[k * c.micro_batch_size : (k + 1) * c.micro_batch_size]
            loss, parts = self._losses(self.train_data, micro)
            (loss / c.accumulation).backward()
            for key, value in parts.items():
                collected.setdefault(key, []).append(value)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.critic.parameters(), c.grad_clip)
        self.optimizer.step()
        self.step += 1
        if c.polyak_every == "epoch":
            due = self.step % self.steps_per_epoch == 0
        else:
            due = self.step % int(c.polyak_every) == 0
        if due:
            polyak_update(self.target, self.critic, c.tau)
        q = torch.cat(collected["q"], dim=1)
        v = torch.cat(collected["v"], dim=1)
        tq = torch.cat(collected["target_q"], dim=1)
        tv = torch.cat(collected["target_v"], dim=1)
        metrics = {
            "loss": float(
                torch.stack(collected["q_loss"]).mean() + torch.stack(collected["v_loss"]).mean()
            ),
            "q_loss": float(torch.stack(collected["q_loss"]).mean()),
            "v_loss": float(torch.stack(collected["v_loss"]).mean()),
            "td_error/abs_mean": float((tq - q).abs().mean()),
            "v_error/abs_mean": float((tv - v).abs().mean()),
            "grad_norm": float(grad_norm),
            "polyak": float(due),
            "epoch": self.step / self.steps_per_epoch,
            **_stats("q", q),
            **_stats("v", v),
            **_stats("target_q", tq),
            **_stats("target_v", tv),
        }
        return metrics

    def _emit(self, metrics: dict[str, float], prefix: str = "critic/") -> None:
        self.history.append({"step": float(self.step), **metrics})
        self._scalars.log(self.step, metrics, prefix=prefix)
        if self.callback is not None:
            self.callback(self.step, dict(metrics))

    def train(self, until: int | None = None) -> dict[str, float]:
        """Train until ``self.step == until`` (default ``config.steps``); final metrics.

        Logs every ``log_every`` steps, validates every ``eval_every`` steps and at the end
        (when validation data was given), checkpoints every ``checkpoint_every`` steps and at
        the end (when there is a ``run_dir``). Resumed trainers continue from their step.
        """
        with _torch_threads(self.config.num_threads):
            return self._train(until)

    def _train(self, until: int | None) -> dict[str, float]:
        c = self.config
        until = c.steps if until is None else int(until)
        metrics: dict[str, float] = {}
        while self.step < until:
            metrics = self._train_step()
            if c.log_every and self.step % c.log_every == 0:
                self._emit(metrics)
            if c.eval_every and self.step % c.eval_every == 0 and self.val_data is not None:
                self._emit(self.evaluate(), prefix="critic/")
            if c.checkpoint_every and self.step % c.checkpoint_every == 0 and self.run_dir:
                self.save()
        final = dict(metrics)
        if self.val_data is not None:
            val = self.evaluate()
            self._emit(val)
            final.update(val)
        if self.run_dir is not None:
            self.save()
        self._scalars.flush()
        return final

    # -- scoring and evaluation --------------------------------------------------------------
    def score(
        self,
        state_feats: Any,
        cand_action_feats: Any,
        cand_vlm_feats: Any = None,
        cand_action_types: Any = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(q1 (B, C), q2 (B, C), v1 (B,), v2 (B,))`` of the online critic (numpy)."""
        return self.critic.score(state_feats, cand_action_feats, cand_vlm_feats, cand_action_types)

    def score_data(
        self, data: CriticData, *, all_candidates: bool = True, chunk: int = 512
    ) -> CriticScores:
        """:class:`~digiq.bestofn.CriticScores` of every row of ``data`` (all its candidates)."""
        return score_data(self.critic, data, all_candidates=all_candidates, chunk=chunk)

    @torch.no_grad()
    def evaluate(self, data: CriticData | None = None, *, chunk: int = 1024) -> dict[str, float]:
        """Validation metrics (keys ``val/...``) on ``data`` (default: the validation split).

        * ``val/loss``: the training objective on the data (current targets);
        * ``val/corr_v_mc``, ``val/corr_q_mc``: Pearson correlation of max(V1, V2)(s) and
          max(Q1, Q2)(s, a_data) with the Monte-Carlo return;
        * ``val/argmax_dataset_rate``: among steps whose dataset action earned a reward
          (r > 0), how often argmax over candidates of max(Q1, Q2) is the dataset action
          (needs candidate features; skipped with a note when only candidate 0 has them);
        * ``val/auc_success``: P(Q of an action from a successful episode > Q of one from a
          failed episode) (needs ``episode_success`` with both outcomes).
        """
        # Rows the objective cannot be computed on (no s') are left out, as in training.
        data = self.val_data if data is None else self._usable(data)[0]
        if data is None or not len(data):
            return {}
        with _torch_threads(self.config.num_threads):
            return self._evaluate(data, chunk)

    def _evaluate(self, data: CriticData, chunk: int) -> dict[str, float]:
        self.critic.eval()
        q_all, v_all, losses = [], [], []
        for lo in range(0, len(data), chunk):
            rows = np.arange(lo, min(lo + chunk, len(data)))
            loss, parts = self._losses(data, rows)
            losses.append(float(loss) * len(rows))
            q_all.append(parts["q"].max(dim=0).values.cpu().numpy())
            v_all.append(parts["v"].max(dim=0).values.cpu().numpy())
        self.critic.train()
        q = np.concatenate(q_all)
        v = np.concatenate(v_all)
        out = {
            "val/loss": sum(losses) / len(data),
            "val/corr_v_mc": _pearson(v, data.mc_returns),
            "val/corr_q_mc": _pearson(q, data.mc_returns),
        }
        if data.num_candidates > 1:
            good = np.flatnonzero(data.rewards > 0)
            if len(good):
                # Raw scores: clipped ones tie at the bound, and argmax breaks ties towards
                # candidate 0, the dataset action, which would inflate this rate.
                scores = score_data(self.critic, data.subset(good), chunk=chunk, clip=False)
                best = np.argmax(np.maximum(scores.q1, scores.q2), axis=1)
                out["val/argmax_dataset_rate"] = float(np.mean(best == 0))
            else:
                self._note("argmax_dataset_rate skipped: no validation step with reward > 0")
        else:
            self._note("argmax_dataset_rate skipped: only candidate 0 has features")
        if data.episode_success is not None:
            auc = _auc(q[data.episode_success], q[~data.episode_success])
            if math.isnan(auc):
                self._note("auc_success skipped: validation episodes all succeeded or all failed")
            else:
                out["val/auc_success"] = auc
        else:
            self._note("auc_success skipped: no episode outcomes in the data")
        return out

    def _note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)
            log.info("critic: %s", text)

    # -- checkpoints ---------------------------------------------------------------------------
    def save(self, path: Path | str | None = None) -> Path:
        """Checkpoint weights, targets, optimizer, step and data order (resumable exactly)."""
        if path is None:
            if self.run_dir is None:
                raise ValueError("CriticTrainer.save needs a path (the trainer has no run_dir)")
            path = checkpoint_dir(self.run_dir, self.step)
        return save_checkpoint(
            path,
            modules={"critic": self.critic, "target": self.target},
            optimizers={"adam": self.optimizer},
            step=self.step,
            config=self.config.to_dict(),
            extra={
                "kind": "digiq-critic",
                "cursor": int(self._cursor),
                "rng": self._rng.bit_generator.state,
                "train_rows": len(self.train_data),
                "excluded": self.excluded,
            },
            arrays={"perm": self._perm.astype(np.int64)},
        )

    def load_state(self, path: Path | str) -> None:
        """Restore a checkpoint written by :meth:`save` into this trainer."""
        info = load_checkpoint(
            path,
            modules={"critic": self.critic, "target": self.target},
            optimizers={"adam": self.optimizer},
        )
        if info.extra.get("kind") != "digiq-critic":
            raise CheckpointError(f"{path} is not a critic checkpoint")
        self.step = info.step
        perm = info.arrays.get("perm")
        if perm is not None and info.extra.get("train_rows") == len(self.train_data):
            self._perm = perm.astype(np.int64)
            self._cursor = int(info.extra["cursor"])
            self._rng.bit_generator.state = info.extra["rng"]
        else:
            self._note("resumed on different training data: data order restarts")

    @classmethod
    def resume(
        cls,
        path: Path | str,
        train: CriticData,
        val: CriticData | None = None,
        **kwargs: Any,
    ) -> CriticTrainer:
        """A trainer rebuilt from a checkpoint's config, continuing from its step."""
        info = read_checkpoint_info(path)
        config = CriticConfig.from_dict(info.config)
        trainer = cls(config, train, val, **kwargs)
        trainer.load_state(path)
        return trainer

    def close(self) -> None:
        self._scalars.close()


@torch.no_grad()
def score_data(
    critic: Critic,
    data: CriticData,
    *,
    all_candidates: bool = True,
    chunk: int = 512,
    clip: bool = True,
) -> CriticScores:
    """Score every row of ``data`` with ``critic`` (all candidates, or candidate 0 only).

    ``clip``: clip to the critic's ``value_range`` (see :meth:`Critic.score`)."""
    n = data.num_candidates if all_candidates else 1
    q1s, q2s, v1s, v2s = [], [], [], []
    for lo in range(0, len(data), chunk):
        ids = data.transition_ids[lo : lo + chunk]
        state = data.state.get(ids, 0)
        if data.num_candidates and all_candidates:
            text = data.action_text.get(ids, None)[:, :n]
            vlm = None if data.vlm is None else data.vlm.get(ids, None)[:, :n]
            types = data.candidate_action_types(ids, None)
        else:
            text = data.action_text.get(ids, 0)[:, None]
            vlm = None if data.vlm is None else data.vlm.get(ids, 0)[:, None]
            types = data.candidate_action_types(ids, 0)
            types = None if types is None else types[:, None]
        q1, q2, v1, v2 = critic.score(state, text, vlm, types, clip=clip)
        q1s.append(q1)
        q2s.append(q2)
        v1s.append(v1)
        v2s.append(v2)
    if not q1s:
        empty = np.zeros((0, n))
        return CriticScores(data.transition_ids, empty, empty, np.zeros(0), np.zeros(0))
    return CriticScores(
        data.transition_ids,
        np.concatenate(q1s),
        np.concatenate(q2s),
        np.concatenate(v1s),
        np.concatenate(v2s),
    )


def return_bounds(rewards: Any, gamma: float, episode_lengths: Any = None) -> tuple[float, float]:
    """``(low, high)``: an interval every discounted return of such data lies in.

    With per-step rewards in ``[r_min, r_max]`` a return lies in ``[min(0, r_min) * H,
    max(0, r_max) * H]``, ``H = 1 / (1 - gamma)`` (or the longest episode when ``gamma`` is 1).
    A critic's score outside that interval is an error by construction, and not a harmless
    one: with 0/1 rewards a tiny critic on 100 episodes scored V < 0 for 77% of the states
    (median -0.048 in the quickstart's qs17 run), so any action whose Q it got right (about 0,
    e.g. STATUS_TASK_COMPLETE on a page where the task is not done) had a Best-of-N advantage
    of up to +0.1 there, enough to become a target: 9 such targets taught the policy to end
    20 of 60 test episodes early. Clipping to this interval removed every such target in three
    runs. (Why clipping and not a bounded output layer: it changes nothing in the published
    training, only what the scores may claim.)
    """
    r = np.asarray(rewards, np.float64)
    r = r[np.isfinite(r)]
    if not len(r):
        raise ValueError("return_bounds: no finite reward in the data")
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"return_bounds: gamma must be in [0, 1], got {gamma}")
    if gamma < 1.0:
        horizon = 1.0 / (1.0 - gamma)
    else:
        lengths = np.asarray([] if episode_lengths is None else episode_lengths, np.float64)
        if not len(lengths):
            raise ValueError("return_bounds: gamma 1 needs the episode lengths")
        horizon = float(lengths.max())
    return min(0.0, float(r.min())) * horizon, max(0.0, float(r.max())) * horizon


def load_critic(path: Path | str, device: str | torch.device = "cpu") -> Critic:
    """The online critic of a checkpoint, for scoring (raises CheckpointError when missing)."""
    info = read_checkpoint_info(path)
    if info.extra.get("kind") != "digiq-critic":
        raise CheckpointError(f"{path} is not a critic checkpoint")
    critic = Critic(CriticConfig.from_dict(info.config))
    load_checkpoint(path, modules={"critic": critic}, map_location=device)
    critic.to(device)
    critic.eval()
    return critic
