"""Stage ``features``: run the frozen (fine-tuned) VLM and encoders once, cache the critic's inputs.

The critic and Best-of-N extraction train on cached features only (the VLM never runs in their
loops), so this stage computes, for every transition of a dataset, everything the Q and V
heads read, into three :class:`trajectories.FeatureStore` s beside the data
(``DIR/features/<prefix><name>/``, float16, keyed by transition id and candidate index):

========================  =====================  ===============================================
store (name)              shape                  content
========================  =====================  ===============================================
``vlm``                   ``[N, C, D_vlm]``      answer-token hidden state of the VLM for
                                                 (state, candidate c) with the candidate's
                                                 yes/no prompt, cursor drawn for taps
                                                 (:mod:`digiq.repr`); D_vlm = hidden size
                                                 (128 tiny, 4096 LLaVA-1.5-7B); meta ``layer``
``state``                 ``[N, 1, D_state]``    per-state inputs, concatenated:
                                                 goal text emb (384) | previous action text emb
                                                 (384) | image features of the previous frame
                                                 (D_img) | of the current frame (D_img)
                                                 [| screen text emb (384), with
                                                 ``critic.ui_tree_text``];
                                                 ``meta.extra["layout"]`` gives the
                                                 ``[start, stop)`` of each part
``action_text``           ``[N, C, D_action]``   text embedding of candidate c's AutoUI string
                                                 (384) [| of the action grounded on the UI
                                                 tree (384), with ``critic.ui_tree_text``];
                                                 ``meta.extra["layout"]`` as for ``state``
========================  =====================  ===============================================

The bracketed UI-tree parts (:mod:`digiq.ui_grounding`: the screen's labelled elements, the
element a tap lands on, the field a TYPE writes into) are the preset's choice: on for ``tiny``,
whose VLM is trained from scratch and cannot read the screen, off for the 7B presets.

N = transitions of the dataset (transition ids), C = candidates per state: candidate 0 is
always the dataset action; with a candidate set (``candidates=<name>``, a
:class:`trajectories.CandidateTable`) C is its size, else C = 1. Use :func:`state_layout` to
slice the state vector and :func:`open_feature_stores` to open all three.

Conventions: at step 0 there is no previous frame or action: those parts are zeros (not the
embedding of an empty string). Text embeddings come from :class:`digiq.models.TextEncoder`
(MiniLM by default), image features from :mod:`digiq.models.image_encoder` (the VLM's vision
tower by default) on the frame without a cursor. Transition ids that the replay buffer cannot
read (a damaged shard it skipped) get zeros; the learner never samples them.

Records and safety: each store's ``meta.json`` records the producing model (``model`` = the
VLM's ``model_id``, new for every saved checkpoint, or the encoders' names), the layer, the
candidate set and the data fingerprint. Re-running with other weights or candidates is refused
by ``FeatureStore.create`` (ValueError naming the differing fields) and data that changed under
a store raises :class:`trajectories.StaleFeaturesError`; ``recompute=True`` deletes and
recomputes. Writing is chunked and resumable: only ``FeatureStore.missing_chunks`` are
computed, so a stopped run continues where it stopped.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from android.actions import Action, parse_autoui
from digiq.device_utils import configure_threads
from digiq.models.image_encoder import ImageEncoder, build_image_encoder
from digiq.models.presets import get_preset
from digiq.models.text_encoder import TextEncoder
from digiq.models.vlm import VLM
from digiq.repr import PROMPT_VERSION, action_image, action_prompt, work_size
from digiq.ui_grounding import (
    GOAL_MATCH_DIM,
    GROUNDING_VERSION,
    describe_action,
    describe_screen,
    goal_match,
)
from digiq.work_frames import WorkFrames, work_frames_path
from trajectories import CandidateTable, FeatureStore, ReplayBuffer
from trajectories.images import image_size as encoded_image_size

log = logging.getLogger(__name__)

__all__ = [
    "VLM_STORE",
    "STATE_STORE",
    "ACTION_TEXT_STORE",
    "FeaturesConfig",
    "CriticFeatures",
    "run_features",
    "store_names",
    "state_layout",
    "open_feature_stores",
]

VLM_STORE = "vlm"
STATE_STORE = "state"
ACTION_TEXT_STORE = "action_text"


def store_names(prefix: str = "") -> dict[str, str]:
    """Store names for ``prefix``: keys ``vlm``, ``state``, ``action_text``."""
    return {k: f"{prefix}{k}" for k in (VLM_STORE, STATE_STORE, ACTION_TEXT_STORE)}


def state_layout(store: FeatureStore) -> dict[str, slice]:
    """Slices of the ``state`` vector: ``goal``, ``prev_action``, ``prev_image``, ``image``."""
    layout = store.meta.extra.get("layout")
    if not layout:
        raise ValueError(f"feature store {store.meta.name!r} has no state layout in its meta")
    return {name: slice(int(a), int(b)) for name, (a, b) in layout.items()}


@dataclass
class CriticFeatures:
    """The three stores of one features run (see the module docstring)."""

    vlm: FeatureStore
    state: FeatureStore
    action_text: FeatureStore

    @property
    def num_candidates(self) -> int:
        return self.vlm.meta.num_candidates

    def layout(self) -> dict[str, slice]:
        return state_layout(self.state)


def open_feature_stores(data_dir: str | Path, prefix: str = "") -> CriticFeatures:
    """Open (read-only) the stores written by :func:`run_features` with ``prefix``."""
    names = store_names(prefix)
    stores = {k: FeatureStore.open(data_dir, n) for k, n in names.items()}
    return CriticFeatures(stores[VLM_STORE], stores[STATE_STORE], stores[ACTION_TEXT_STORE])


@dataclass
class FeaturesConfig:
    """Settings of the features stage.

    ``checkpoint``: the fine-tuned VLM folder (the repr stage's ``final/``); None uses the
    preset's VLM as is (a warning: untrained features). ``candidates``: a candidate-set name
    under ``DIR/candidates`` (must exist) or None for the dataset action only.
    ``max_chunks``: stop after computing this many chunks (time-boxed runs; resume later).
    ``cache_dir``: a run's ``cache/``; the work-size frames the repr stage kept there
    (:mod:`digiq.work_frames`) are used instead of decoding the screenshots again.
    """

    data_dir: str
    checkpoint: str | None = None
    preset: str = "tiny"
    preset_overrides: dict[str, Any] = field(default_factory=dict)
    candidates: str | None = None
    prefix: str = ""
    layer: int | None = None
    chunk_size: int = 256
    batch_size: int | None = None
    recompute: bool = False
    max_chunks: int | None = None
    cache_dir: str | None = None
    progress: bool = True
    device: str | None = None
    precision: str = "auto"


class _Frames:
    """Decoded frames at the size each consumer wants, by internal step row (the work-size
    frames kept by the repr stage when there are, else decoded)."""

    def __init__(self, buffer: ReplayBuffer, kept: WorkFrames | None = None) -> None:
        self.buffer = buffer
        self.kept = kept
        self._sizes: dict[int, tuple[int, int]] = {}

    def size(self, row: int) -> tuple[int, int]:
        if row not in self._sizes:
            data = self.buffer.screenshot_bytes(row)
            self._sizes[row] = encoded_image_size(data, f"screenshot of step row {row}")
        return self._sizes[row]

    def get(self, row: int, image_size: int) -> np.ndarray:
        width, height = self.size(row)
        size = work_size(width, height, image_size)
        frame = self.kept.get(row, size) if self.kept is not None else None
        return frame if frame is not None else self.buffer.image(row, size)


def _candidate_texts(
    table: CandidateTable | None, ids: np.ndarray, transitions: list[Any]
) -> list[list[str]]:
    if table is None:
        return [[t.action_text] for t in transitions]
    try:
        texts = table.actions(ids.tolist())
    except KeyError as exc:
        raise ValueError(
            f"candidate set {table.root.name!r} does not cover every transition ({exc}); "
            "finish the candidates stage first"
        ) from None
    return texts


def _unique_vlm_inputs(
    rows: Sequence[int], cand_texts: list[list[str]], frames: _Frames, image_size: int
) -> tuple[list[np.ndarray], list[str], np.ndarray]:
    """The VLM's (image, prompt) inputs of a chunk, each distinct (state, action) once.

    The N candidates of a state are samples of the behaviour policy and often repeat (35% of
    the pairs were duplicates on the quickstart's 300-episode data): a repeated action of the
    same state has the same cursor image and prompt, hence the same features, so it is run
    once. Returns the inputs and, for every (state, candidate) in row-major order, the index
    of its input."""
    images: list[np.ndarray] = []
    prompts: list[str] = []
    pair_of: list[int] = []
    for row, texts in zip(rows, cand_texts, strict=True):
        frame = frames.get(int(row), image_size)
        seen: dict[str, int] = {}
        for text in texts:
            if text not in seen:
                action: Action = parse_autoui(text)
                seen[text] = len(images)
                images.append(action_image(frame, action))
                prompts.append(action_prompt(action))
            pair_of.append(seen[text])
    return images, prompts, np.asarray(pair_of, np.int64)


def run_features(
    config: FeaturesConfig,
    *,
    vlm: VLM | None = None,
    text_encoder: TextEncoder | None = None,
    image_encoder: ImageEncoder | None = None,
) -> dict[str, Any]:
    """Compute the missing chunks of the three stores; returns shapes, counts and timings.

    ``vlm`` / ``text_encoder`` / ``image_encoder`` override what the config would load (tests
    and callers that already hold the models).
    """
    started = time.perf_counter()
    configure_threads()
    if config.chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {config.chunk_size}")
    sections = ["text_encoder", "image_features"]
    if vlm is None and not config.checkpoint:
        sections.append("vlm")
    preset = get_preset(config.preset, require=sections, **config.preset_overrides)
    batch_size = config.batch_size or preset.training.feature_batch_size
    data_dir = Path(config.data_dir)
    buffer = ReplayBuffer.open(data_dir)
    table = CandidateTable.open(data_dir, config.candidates) if config.candidates else None
    num_candidates = table.num_candidates if table is not None else 1

    if vlm is None:
        if config.checkpoint:
            vlm = VLM.load(
                config.checkpoint,
                device=config.device,
                precision=config.precision,
                layer=config.layer,
            )
        else:
            log.warning(
                "features stage without a fine-tuned checkpoint: using preset %r's VLM as is",
                preset.name,
            )
            vlm = VLM.from_preset(preset, device=config.device, precision=config.precision)
    layer = vlm.layer if config.layer is None else config.layer
    text_encoder = text_encoder or TextEncoder.from_spec(preset.text_encoder)
    image_encoder = image_encoder or build_image_encoder(
        preset.image_features, vlm=vlm, precision=vlm.precision
    )
    image_side = (
        vlm.image_size
        if preset.image_features.kind == "vlm-vision-tower"
        else preset.image_features.image_size
    )

    names = store_names(config.prefix)
    if config.recompute:
        for name in names.values():
            path = FeatureStore.path(data_dir, name)
            if path.exists():
                log.info("recompute: deleting %s", path)
                shutil.rmtree(path)
    text_dim, img_dim = text_encoder.dim, image_encoder.dim
    ui_tree = preset.critic.ui_tree_text
    layout = {
        "goal": [0, text_dim],
        "prev_action": [text_dim, 2 * text_dim],
        "prev_image": [2 * text_dim, 2 * text_dim + img_dim],
        "image": [2 * text_dim + img_dim, 2 * text_dim + 2 * img_dim],
    }
    if ui_tree:
        layout["screen_text"] = [2 * text_dim + 2 * img_dim, 3 * text_dim + 2 * img_dim]
    state_dim = max(stop for _, stop in layout.values())
    action_layout = {"action": [0, text_dim]}
    if ui_tree:
        action_layout["grounded"] = [text_dim, 2 * text_dim]
        action_layout["goal_match"] = [2 * text_dim, 2 * text_dim + GOAL_MATCH_DIM]
    action_dim = max(stop for _, stop in action_layout.values())
    grounding = f"|{GROUNDING_VERSION}" if ui_tree else ""
    common = {"chunk_size": config.chunk_size}
    stores = {
        VLM_STORE: FeatureStore.create(
            data_dir,
            names[VLM_STORE],
            model=vlm.model_id,
            layer=layer,
            dim=vlm.hidden_size,
            num_candidates=num_candidates,
            extra={
                "family": vlm.family,
                "preset": vlm.preset,
                "checkpoint": config.checkpoint,
                "candidates": config.candidates,
                "prompt_version": PROMPT_VERSION,
                "position": "last prompt token (predicts the Yes/No answer)",
            },
            **common,
        ),
        STATE_STORE: FeatureStore.create(
            data_dir,
            names[STATE_STORE],
            model=f"{text_encoder.name}|{image_encoder.name}{grounding}",
            layer="pooled",
            dim=state_dim,
            num_candidates=1,
            extra={
                "layout": layout,
                "text_encoder": text_encoder.name,
                "image_encoder": image_encoder.name,
            },
            **common,
        ),
        ACTION_TEXT_STORE: FeatureStore.create(
            data_dir,
            names[ACTION_TEXT_STORE],
            model=f"{text_encoder.name}{grounding}",
            layer="pooled",
            dim=action_dim,
            num_candidates=num_candidates,
            extra={
                "text_encoder": text_encoder.name,
                "candidates": config.candidates,
                "layout": action_layout,
            },
            **common,
        ),
    }
    missing = {k: set(s.missing_chunks()) for k, s in stores.items()}
    todo = sorted(set().union(*missing.values()))
    if config.max_chunks is not None:
        todo = todo[: max(0, config.max_chunks)]
    present = set(buffer.transition_ids.tolist())
    kept = (
        WorkFrames.open(
            work_frames_path(config.cache_dir, vlm.image_size), buffer.manifest.fingerprint()
        )
        if config.cache_dir
        else None
    )
    frames = _Frames(buffer, kept)
    written = {k: 0 for k in stores}
    pairs = 0  # (state, candidate) pairs given VLM features
    vlm_inputs = 0  # of which distinct, i.e. run through the VLM
    vlm_seconds = 0.0
    for chunk in tqdm(todo, desc="features", disable=not config.progress):
        start, stop = stores[VLM_STORE].chunk_range(chunk)
        all_ids = np.arange(start, stop)
        keep = np.array([i in present for i in all_ids.tolist()], bool)
        if not keep.all():
            log.warning(
                "chunk %d: %d transition ids are not readable; zeros stored",
                chunk,
                int((~keep).sum()),
            )
        ids = all_ids[keep]
        batch = buffer.batch(ids)
        transitions = list(batch)
        rows = batch.rows
        cand_texts = _candidate_texts(table, ids, transitions)
        for t, texts in zip(transitions, cand_texts, strict=True):
            if texts[0] != t.action_text:
                raise ValueError(
                    f"transition {t.transition_id}: candidate 0 {texts[0]!r} is not the dataset "
                    f"action {t.action_text!r}"
                )

        if chunk in missing[VLM_STORE]:
            tick = time.perf_counter()
            out = np.zeros((stop - start, num_candidates, vlm.hidden_size), np.float32)
            images, prompts, pair_of = _unique_vlm_inputs(rows, cand_texts, frames, vlm.image_size)
            if images:
                feats = vlm.answer_features(images, prompts, layer=layer, batch_size=batch_size)
                out[keep] = feats.numpy()[pair_of].reshape(len(ids), num_candidates, -1)
            stores[VLM_STORE].write_chunk(chunk, out)
            written[VLM_STORE] += 1
            pairs += len(pair_of)
            vlm_inputs += len(images)
            vlm_seconds += time.perf_counter() - tick

        trees = (
            [buffer.read_step(int(r)).ui_elements for r in rows]
            if ui_tree and (chunk in missing[STATE_STORE] or chunk in missing[ACTION_TEXT_STORE])
            else []
        )

        if chunk in missing[STATE_STORE]:
            out = np.zeros((stop - start, 1, state_dim), np.float32)
            if len(ids):
                goals = text_encoder.encode([t.task for t in transitions])
                prev_texts, prev_frames, prev_pos = [], [], []
                for k, (t, row) in enumerate(zip(transitions, rows, strict=True)):
                    if t.step > 0:
                        prev = buffer.transition(t.transition_id - 1)
                        if prev.episode_id == t.episode_id and prev.step == t.step - 1:
                            prev_texts.append(prev.action_text)
                            prev_frames.append(frames.get(int(row) - 1, image_side))
                            prev_pos.append(k)
                current = image_encoder.encode([frames.get(int(r), image_side) for r in rows])
                state = np.zeros((len(ids), state_dim), np.float32)
                state[:, slice(*layout["goal"])] = goals
                state[:, slice(*layout["image"])] = current
                if prev_pos:
                    state[prev_pos, slice(*layout["prev_action"])] = text_encoder.encode(prev_texts)
                    state[prev_pos, slice(*layout["prev_image"])] = image_encoder.encode(
                        prev_frames
                    )
                if ui_tree:
                    state[:, slice(*layout["screen_text"])] = text_encoder.encode(
                        [describe_screen(tree) for tree in trees]
                    )
                out[keep, 0] = state
            stores[STATE_STORE].write_chunk(chunk, out)
            written[STATE_STORE] += 1

        if chunk in missing[ACTION_TEXT_STORE]:
            out = np.zeros((stop - start, num_candidates, action_dim), np.float32)
            if len(ids):
                flat = [text for texts in cand_texts for text in texts]
                shape = (len(ids), num_candidates, text_dim)
                out[keep, :, slice(*action_layout["action"])] = text_encoder.encode(flat).reshape(
                    shape
                )
                if ui_tree:
                    # (action, its screen's tree, screen size, goal) per candidate, parsed once
                    grounding = [
                        (parse_autoui(text), tree, frames.size(int(row)), t.task)
                        for row, tree, t, texts in zip(
                            rows, trees, transitions, cand_texts, strict=True
                        )
                        for text in texts
                    ]
                    grounded = [describe_action(a, tree, size) for a, tree, size, _ in grounding]
                    out[keep, :, slice(*action_layout["grounded"])] = text_encoder.encode(
                        grounded
                    ).reshape(shape)
                    out[keep, :, slice(*action_layout["goal_match"])] = np.array(
                        [goal_match(*g) for g in grounding], np.float32
                    ).reshape(len(ids), num_candidates, GOAL_MATCH_DIM)
            stores[ACTION_TEXT_STORE].write_chunk(chunk, out)
            written[ACTION_TEXT_STORE] += 1

    seconds = time.perf_counter() - started
    result = {
        "stores": {
            k: {
                "name": s.meta.name,
                "shape": [s.meta.num_transitions, s.meta.num_candidates, s.meta.dim],
                "model": s.meta.model,
                "layer": s.meta.layer,
                "complete": s.complete,
            }
            for k, s in stores.items()
        },
        "layout": layout,
        "action_layout": action_layout,
        "chunks_written": written,
        "vlm_pairs": pairs,
        "vlm_inputs": vlm_inputs,
        "vlm_pairs_per_s": pairs / vlm_seconds if vlm_seconds else None,
        "kept_frames": {"hits": kept.hits, "misses": kept.misses} if kept is not None else None,
        "seconds": seconds,
        "precision": vlm.precision.name,
        "threads": torch.get_num_threads(),
    }
    log.info("features: %s", result)
    return result
