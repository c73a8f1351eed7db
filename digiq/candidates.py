"""Stage ``candidates``: N candidate actions per dataset state from the behaviour policy.

Digi-Q's Best-of-N extraction compares, at every state of the offline data, the dataset action
with N - 1 actions sampled from the behaviour policy; the critic scores all N and the policy
imitates the best. This stage produces that candidate set, as published:

* candidate 0 is the dataset action (its AutoUI string, exactly as stored);
* candidates 1..N-1 are sampled from the behaviour policy at temperature 1.2 (N = 16 by
  default, as in the published scripts);
* a sample that does not parse as an AutoUI action (:func:`android.actions.parse_autoui` gives
  INVALID) is re-drawn, up to 3 times; one still invalid after that is kept as it is (the
  critic and Best-of-N see it; :func:`digiq.bestofn.build_policy_targets` never picks it) and
  MARKED: listed in ``invalid.jsonl`` beside the candidate set (transition id, candidate
  index, reason) and counted in the stage's metrics.

Log-probabilities: ``log pi_behaviour(a | s)`` at temperature 1 of each candidate string
(:meth:`digiq.models.policy.PolicyModel.sample`); for candidate 0 that of the dataset action's
policy target string (:meth:`PolicyModel.target_text`: coordinates rounded as the policy writes
them, so the figure says how likely the behaviour policy is to take that action).

Written with :class:`trajectories.CandidateWriter` into ``DATA/candidates/<name>/`` (Parquet
parts with ``transition_id, episode_id, step, candidate, action, logprob``), batched (``batch_size``
states per generation call), resumable: states already stored (``CandidateWriter.done_ids``)
are skipped, and each batch's random draw is seeded by (seed, batch index) over the full list of
transition ids, so a resumed run draws what an uninterrupted one would have.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from android.actions import parse_autoui
from digiq.device_utils import configure_threads
from digiq.models.policy import PolicyModel
from digiq.policy_train import load_frames, resolve_init, state_inputs
from digiq.workers import run_tasks
from trajectories import CandidateWriter, ReplayBuffer

log = logging.getLogger(__name__)

__all__ = [
    "CandidatesConfig",
    "INVALID_FILE",
    "candidate_set_name",
    "sample_candidates",
    "run_candidates",
]

INVALID_FILE = "invalid.jsonl"


def candidate_set_name(model: PolicyModel, num_candidates: int, temperature: float) -> str:
    """The default name of a candidate set: behaviour model id, N and temperature."""
    return f"bp-{model.model_id[:12]}-n{num_candidates}-t{temperature:g}".replace(".", "p")


@dataclass
class CandidatesConfig:
    """Settings of the candidates stage (see the module docstring).

    ``behaviour_policy``: a policy folder or a run holding one (its ``bc`` stage first).
    ``cache_dir``: where decoded screens are cached (a run's ``cache/``). ``max_states``: stop
    after this many new states (time-boxed runs; the stage resumes later).
    ``workers``: processes sharing the batches, this one included, each with one torch thread
    (:mod:`digiq.workers`; two single-thread processes sampled 1.3x faster than one with two
    threads on 2 cores).
    """

    data_dir: str
    behaviour_policy: str
    name: str | None = None
    num_candidates: int = 16
    temperature: float = 1.2
    max_redraws: int = 3
    batch_size: int = 8
    seed: int = 0
    cache_dir: str | None = None
    max_states: int | None = None
    device: str | None = None
    precision: str = "auto"
    num_threads: int | None = None
    workers: int = 1
    progress: bool = True

    def __post_init__(self) -> None:
        if self.num_candidates < 1:
            raise ValueError(f"num_candidates must be >= 1, got {self.num_candidates}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if self.max_redraws < 0:
            raise ValueError(f"max_redraws must be >= 0, got {self.max_redraws}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")


def _batch_seed(seed: int, index: int, attempt: int) -> int:
    digest = hashlib.sha256(f"{seed}|{index}|{attempt}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def sample_candidates(
    model: PolicyModel,
    frames: np.ndarray,
    input_texts: list[str],
    n: int,
    temperature: float,
    *,
    max_redraws: int = 3,
    seed: int = 0,
) -> tuple[list[list[tuple[str, float]]], list[list[int]], int]:
    """``n`` samples per state, invalid ones re-drawn up to ``max_redraws`` times.

    Returns (candidates per state, indices still invalid per state, number of re-draws).
    ``frames``: ``[B, H, W, 3]`` uint8 screens at the policy's size.
    """
    if n == 0:
        return [[] for _ in input_texts], [[] for _ in input_texts], 0
    batch = model.prepare(model.pixels_from_array(frames), input_texts)
    rows = model.sample(batch, n=n, temperature=temperature, seed=seed)
    redraws = 0
    for attempt in range(1, max_redraws + 1):
        bad = [
            [k for k, (text, _) in enumerate(row) if not parse_autoui(text).is_valid]
            for row in rows
        ]
        states = [i for i, ks in enumerate(bad) if ks]
        if not states:
            break
        need = max(len(bad[i]) for i in states)
        sub = model.prepare(
            model.pixels_from_array(frames[states]), [input_texts[i] for i in states]
        )
        redrawn = model.sample(
            sub, n=need, temperature=temperature, seed=_batch_seed(seed, -1, attempt)
        )
        for j, i in enumerate(states):
            for slot, k in enumerate(bad[i]):
                rows[i][k] = redrawn[j][slot]
                redraws += 1
    still = [
        [k for k, (text, _) in enumerate(row) if not parse_autoui(text).is_valid] for row in rows
    ]
    return rows, still, redraws


@dataclass(frozen=True)
class _Batch:
    """One generation call's states: batch index (seeds the draw), ids, screens, inputs."""

    index: int
    ids: tuple[int, ...]
    frames: np.ndarray
    texts: tuple[str, ...]
    actions: tuple[str, ...]  # the dataset action (candidate 0) of each state, as stored


@dataclass
class _BatchResult:
    sampled: list[list[tuple[str, float]]]
    still: list[list[int]]
    redraws: int
    zero_logps: list[float]
    seconds: float


class _Sampler:
    """Samples one batch's candidates (in the stage's process or in a worker)."""

    def __init__(self, model: PolicyModel, config: CandidatesConfig) -> None:
        self.model = model
        self.config = config

    def __call__(self, batch: _Batch) -> _BatchResult:
        model, config = self.model, self.config
        tick = time.perf_counter()
        with torch.no_grad():
            sampled, still, redraws = sample_candidates(
                model,
                batch.frames,
                list(batch.texts),
                config.num_candidates - 1,
                config.temperature,
                max_redraws=config.max_redraws,
                seed=_batch_seed(config.seed, batch.index, 0),
            )
            inputs = model.prepare(model.pixels_from_array(batch.frames), list(batch.texts))
            targets = [model.target_text(action) for action in batch.actions]
            zero_logps = model.sequence_logprobs(inputs, targets)
        return _BatchResult(
            sampled, still, redraws, [float(x) for x in zero_logps], time.perf_counter() - tick
        )


def _worker_sampler(config: CandidatesConfig, source: str, model_id: str) -> _Sampler:
    """A worker's sampler: the same behaviour policy, loaded from its folder."""
    model = PolicyModel.load(source, device=config.device, precision=config.precision)
    if model.model_id != model_id:
        raise RuntimeError(
            f"candidates worker loaded policy {model.model_id}, the stage uses {model_id}: "
            f"{source} changed while the stage ran"
        )
    model.eval()
    return _Sampler(model, config)


def run_candidates(config: CandidatesConfig, *, model: PolicyModel | None = None) -> dict[str, Any]:
    """Sample the missing candidate sets; returns counts, timings and the set's name.

    ``model`` overrides loading the behaviour policy (then no worker process is started: a
    worker could not load the same model)."""
    started = time.perf_counter()
    configure_threads(config.num_threads)
    buffer = ReplayBuffer.open(config.data_dir)
    workers = config.workers
    source: Path | None = None
    if model is None:
        source = resolve_init(config.behaviour_policy)
        model = PolicyModel.load(source, device=config.device, precision=config.precision)
    elif workers > 1:
        log.info("candidates: model given by the caller, so no worker processes")
        workers = 1
    model.eval()
    name = config.name or candidate_set_name(model, config.num_candidates, config.temperature)
    writer = CandidateWriter(
        buffer,
        name,
        num_candidates=config.num_candidates,
        model=model.model_id,
        temperature=config.temperature,
        rows_per_part=max(64, 8 * config.batch_size),
        extra={
            "behaviour_policy": str(config.behaviour_policy),
            "max_redraws": config.max_redraws,
            "seed": config.seed,
            "candidate0": "dataset action",
            "logprob": "log pi_behaviour(a|s) at temperature 1 (candidate 0: of its policy "
            "target string)",
        },
    )
    all_ids = [int(t) for t in buffer.transition_ids.tolist()]
    done = writer.done_ids()
    todo_ids = [t for t in all_ids if t not in done]
    if config.max_states is not None:
        todo_ids = todo_ids[: max(0, config.max_states)]
    todo_set = set(todo_ids)
    stats = {"states": 0, "redraws": 0, "invalid_kept": 0, "skipped_done": len(done)}
    if not todo_ids:
        writer.close()
        return {"name": name, **stats, "complete": True, "seconds": 0.0}
    inputs = state_inputs(buffer, model)
    frames = load_frames(
        buffer,
        [inputs[t][0] for t in todo_ids],
        model.config.image_width,
        model.config.image_height,
        cache_dir=config.cache_dir,
        progress=config.progress,
    )
    invalid_path = writer.root / INVALID_FILE
    batches = []
    for index, lo in enumerate(range(0, len(all_ids), config.batch_size)):
        ids = [t for t in all_ids[lo : lo + config.batch_size] if t in todo_set]
        if ids:
            batches.append(
                _Batch(
                    index,
                    tuple(ids),
                    frames.get([inputs[t][0] for t in ids]),
                    tuple(inputs[t][2] for t in ids),
                    tuple(buffer.transition(t).action_text for t in ids),
                )
            )
    bar = tqdm(total=len(todo_ids), desc="candidates", disable=not config.progress)
    sample_seconds = 0.0

    def write(batch: _Batch, result: _BatchResult) -> None:
        nonlocal sample_seconds
        sample_seconds += result.seconds
        marks = []
        for j, (tid, action) in enumerate(zip(batch.ids, batch.actions, strict=True)):
            actions = [action] + [text for text, _ in result.sampled[j]]
            logps = [result.zero_logps[j]] + [lp for _, lp in result.sampled[j]]
            writer.add(tid, actions, logps)
            for k in result.still[j]:
                reason = parse_autoui(result.sampled[j][k][0]).invalid_reason
                marks.append({"transition_id": tid, "candidate": k + 1, "reason": reason})
        if marks:
            with open(invalid_path, "a", encoding="utf-8") as fh:
                for mark in marks:
                    fh.write(json.dumps(mark) + "\n")
        stats["states"] += len(batch.ids)
        stats["redraws"] += result.redraws
        stats["invalid_kept"] += len(marks)
        bar.update(len(batch.ids))

    try:
        run_tasks(
            batches,
            _Sampler(model, config),
            write,
            workers=workers,
            factory=_worker_sampler,
            factory_args=(dataclasses.replace(config, progress=False), str(source), model.model_id),
            what="candidate batch",
        )
    finally:
        bar.close()
        writer.close()
    complete = not (set(all_ids) - writer.done_ids())
    result = {
        "name": name,
        **stats,
        "num_candidates": config.num_candidates,
        "temperature": config.temperature,
        "behaviour_model_id": model.model_id,
        "complete": complete,
        "workers": workers,
        # summed over processes: with workers, states per second of one process's sampling
        "states_per_s": stats["states"] / sample_seconds if sample_seconds else None,
        "seconds": time.perf_counter() - started,
        "path": str(Path(writer.root)),
    }
    log.info("candidates: %s", result)
    return result
