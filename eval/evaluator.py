"""The evaluator: run an agent on tasks x seeds over a pool of devices, rate, record, summarise.

:func:`evaluate` is what ``digiq-eval`` calls. Episodes (every task with every seed) run in
parallel worker threads; each episode acquires a device from an :class:`android.pool.DevicePool`,
drives an :class:`android.env.AndroidEnv` whose reward comes from the autorater
(:func:`eval.autoraters.base.as_reward_fn`: reward 1 and the end of the episode on the first
``success`` verdict), and releases the device.

Output folder (``out_dir``)::

    run.json                    settings of the (latest) invocation
    results.jsonl               one EpisodeResult per finished episode (appended + fsynced)
    summary.json                eval.results.Summary of the planned episodes
    report.html                 eval.report (links the screenshots below)
    episodes/<episode_id>/
        steps.jsonl             one row per observation (see below)
        step-00.png ...         the observation screenshots, downscaled (``screenshot_scale``)

A ``steps.jsonl`` row is one observation ``k`` (0 = after reset): ``image``, ``image_size`` /
``screen_size`` (saved / device pixels), ``activity``, ``ui_elements`` (UIElement dicts),
``ground_truth`` (``dumpsys digiq-sim`` JSON on simulated devices, else null), ``verdict`` (the
autorater's rating of THIS screen; null for row 0, which is never rated), then the action the
agent took from it (``action`` structured, ``action_autoui``, ``action_raw`` for invalid output,
``invalid_action``) with the ``reward`` that action earned, ``done`` and the env ``timings``.
The last row has no action. Everything an offline re-rater needs (``digiq autorater
agreement``) is on the row it rates.

Why the robustness rules: a dead device says nothing about the agent. A device failure (the env
reports ``info["error"]``, or a :class:`~android.errors.DeviceError` escapes a reset) releases
the device as unhealthy, so the pool checks and recovers or replaces it, and the episode is run
again from the start on whatever device the pool hands out next (``max_retries`` times). An
episode that still fails is an ERROR: counted and reported, never a failure or a success. An
agent that raises is an ``agent_error`` (no retry: another device would not help). Results are
appended and fsynced one episode at a time, so a killed run loses at most the episodes in
flight, and ``resume=True`` skips the episodes already in ``results.jsonl``.

Hooks for callers that keep more than the evaluation does (the trajectory collector,
:mod:`trajectories.collector`: collection is evaluation that keeps everything):

* ``plans=``: run exactly these :class:`EpisodePlan` records instead of every task with every
  seed (the collector plans N episodes itself);
* ``skip_ids=``: the episode ids the caller already has; they are skipped INSTEAD of the ones
  ``results.jsonl`` lists (the caller's store is the truth: an episode that reached
  ``results.jsonl`` but not the caller's store before a crash must run again);
* ``on_episode(plan, result, observations, step_infos)``: called by the worker thread with
  every SUCCESS or FAILURE episode (never an ERROR) and BEFORE it is recorded in
  ``results.jsonl``, so a crash between the two can only lose an episode, never record it
  twice. ``observations`` are the episode's full-resolution observations (0 = after reset);
  ``step_infos[k]`` is what the env reported with observation ``k`` (the reset info for 0,
  else the step info plus ``agent_action``, the :class:`Action` the agent chose from
  observation ``k - 1``, ``agent_s``, ``reward``, ``terminated``, ``truncated``). A callback
  that raises turns the episode into an ``internal_error`` (logged, recorded as an ERROR);
* ``save_artifacts=False``: no ``episodes/<id>/`` folder (no PNGs, no ``steps.jsonl``, no
  ground-truth reads), for callers that store the observations themselves.

Memory: with ``on_episode`` a worker holds one episode's observations at a time (at most
``max_steps + 1`` frames).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import queue
import shutil
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from android.actions import Action, ActionType, parse_autoui, to_autoui
from android.device import AndroidDevice
from android.env import AndroidEnv
from android.errors import DeviceError
from android.observation import Observation, UIElement
from android.pool import (
    DeviceLease,
    DevicePool,
    DeviceRecoveryError,
    PoolError,
    PoolExhaustedError,
)

from .agents.base import Agent, AgentStep
from .autoraters.base import Autorater, as_reward_fn
from .results import (
    EpisodeResult,
    Summary,
    append_result,
    episode_id_for,
    failure_cause,
    latest_results,
    read_results,
    repair_results,
    summarize,
    write_summary,
)
from .tasks import Task

__all__ = [
    "AgentFactory",
    "AutoraterFactory",
    "EpisodeCallback",
    "EpisodePlan",
    "agent_config",
    "evaluate",
    "plan_episodes",
    "default_max_steps",
    "action_dict",
    "element_dict",
    "element_from_dict",
    "read_ground_truth",
    "save_screenshot",
    "scaled_size",
    "WEBSHOP_MAX_STEPS",
    "GENERAL_MAX_STEPS",
]

log = logging.getLogger(__name__)

AgentFactory = Callable[[], Agent]
AutoraterFactory = Callable[[AndroidDevice], Autorater]

# DigiRL's budgets (one final forced terminal step included).
WEBSHOP_MAX_STEPS = 20
GENERAL_MAX_STEPS = 10
_WEBSHOP_KINDS = frozenset({"go_to_site", "site_search", "select_first_result"})
_GROUND_TRUTH_SERVICE = ["dumpsys", "digiq-sim"]


def default_max_steps(task: Task) -> int:
    """20 steps for Web Shopping tasks (by task set or goal kind), 10 for everything else."""
    if task.task_set == "webshop" or task.goal.kind in _WEBSHOP_KINDS:
        return WEBSHOP_MAX_STEPS
    return GENERAL_MAX_STEPS


@dataclass(frozen=True)
class EpisodePlan:
    """One episode to run: a task, a seed and the stable id derived from them and the agent."""

    task: Task
    seed: int
    episode_id: str
    max_steps: int


# on_episode(plan, result, observations, step_infos): see the module docstring.
EpisodeCallback = Callable[
    [EpisodePlan, EpisodeResult, list[Observation], list[dict[str, Any]]], None
]


def plan_episodes(
    tasks: Sequence[Task],
    seeds: Sequence[int],
    agent_config: Mapping[str, Any],
    max_steps: int | None = None,
) -> list[EpisodePlan]:
    """Every (task, seed) pair, seed-major (all tasks of seed 0 first, so a partial run covers
    whole seeds). Raises ValueError for an empty list or duplicate task ids."""
    if not tasks:
        raise ValueError("no tasks to evaluate")
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seeds must be ints, got {seed!r}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds contain duplicates: {list(seeds)}")
    if max_steps is not None and (
        isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1
    ):
        raise ValueError(f"max_steps must be a positive int or None, got {max_steps!r}")
    seen: set[str] = set()
    for task in tasks:
        if not isinstance(task, Task):
            raise ValueError(f"tasks must be eval.tasks.Task records, got {task!r}")
        if task.task_id in seen:
            raise ValueError(f"task id {task.task_id} appears twice in the task list")
        seen.add(task.task_id)
    return [
        EpisodePlan(
            task=task,
            seed=seed,
            episode_id=episode_id_for(task.task_id, seed, agent_config),
            max_steps=max_steps or default_max_steps(task),
        )
        for seed in seeds
        for task in tasks
    ]


# ----------------------------------------------------------------------------- record helpers


def action_dict(action: Action) -> dict[str, Any]:
    """A JSON-ready structured action (AitW names, normalized ``(y, x)`` points)."""
    return {
        "action_type": action.action_type.name,
        "touch_yx": list(action.touch_yx) if action.touch_yx is not None else None,
        "lift_yx": list(action.lift_yx) if action.lift_yx is not None else None,
        "typed_text": action.typed_text,
        **({"invalid_reason": action.invalid_reason} if not action.is_valid else {}),
    }


_ELEMENT_DEFAULTS = {f.name: f.default for f in dataclasses.fields(UIElement)}


def element_dict(element: UIElement) -> dict[str, Any]:
    """A compact JSON-ready element: fields at their default value are left out (a 20-step
    episode keeps ~1000 elements; the defaults would be most of the bytes)."""
    out: dict[str, Any] = {}
    for name, default in _ELEMENT_DEFAULTS.items():
        value = getattr(element, name)
        if name in ("bounds", "index_path"):
            out[name] = list(value)
        elif value != default:
            out[name] = value
    return out


def element_from_dict(data: Mapping[str, Any]) -> UIElement:
    """Inverse of :func:`element_dict` (unknown keys ignored)."""
    names = {f.name for f in dataclasses.fields(UIElement)}
    kwargs = {k: v for k, v in data.items() if k in names}
    if "bounds" in kwargs:
        kwargs["bounds"] = tuple(int(v) for v in kwargs["bounds"])
    if "index_path" in kwargs:
        kwargs["index_path"] = tuple(int(v) for v in kwargs["index_path"])
    return UIElement(**kwargs)


def scaled_size(size: tuple[int, int], scale: float) -> tuple[int, int]:
    """``(width, height)`` of a ``size`` image saved at ``scale``."""
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def save_screenshot(screenshot: np.ndarray, path: Path, scale: float) -> tuple[int, int]:
    """Save ``screenshot`` as PNG scaled by ``scale``; returns the saved ``(width, height)``.

    Area-averaged downscaling (OpenCV ``INTER_AREA``: no aliasing, ~2 ms for a 1080x2280
    frame) and zlib level 1 (~3x faster than the default for ~10% more bytes): this runs once
    per step, next to an env step that itself takes tens of milliseconds.
    """
    height, width = screenshot.shape[:2]
    size = scaled_size((width, height), scale)
    if size != (width, height):
        import cv2  # imported lazily, like the device layer does

        screenshot = cv2.resize(screenshot, size, interpolation=cv2.INTER_AREA)
    tmp = path.with_name(f".{path.name}.tmp")
    Image.fromarray(screenshot).save(tmp, format="PNG", compress_level=1)
    tmp.replace(path)
    return size


def read_ground_truth(device: AndroidDevice, timeout: float = 5.0) -> dict[str, Any] | None:
    """The simulator's ground truth (``dumpsys digiq-sim``) or None where the device does not
    answer it (a real device prints "Can't find service"). Device failures propagate."""
    result = device.shell(_GROUND_TRUTH_SERVICE, timeout=timeout, check=False)
    text = result.text.strip() if result.exit_code == 0 else ""
    if not text.startswith("{"):
        return None
    try:
        truth = json.loads(text)
    except ValueError:
        return None
    return truth if isinstance(truth, dict) else None


def _verdict_summary(verdict: Mapping[str, Any] | None) -> dict[str, Any]:
    if not verdict:
        return {}
    return {k: verdict.get(k) for k in ("status", "reason", "source", "cached")}


def _finite(value: float) -> float:
    return value if math.isfinite(value) else 0.0


# ----------------------------------------------------------------------------- the run


class _DeviceFailure(Exception):
    """The device failed during an episode (the attempt is retried elsewhere)."""

    def __init__(self, error_type: str, message: str, device: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.device = device


class _EpisodeError(Exception):
    """The episode cannot be completed for a reason a retry would not fix."""

    def __init__(self, kind: str, exc: BaseException) -> None:
        super().__init__(str(exc))
        self.kind = kind
        self.error_type = type(exc).__name__
        self.message = str(exc) or type(exc).__name__


class _Interrupted(Exception):
    """The run is stopping (Ctrl-C): abandon the in-flight episode without recording it."""


@dataclass
class _Capture:
    """What ``on_episode`` gets besides the result: one attempt's observations and infos."""

    observations: list[Observation] = field(default_factory=list)
    infos: list[dict[str, Any]] = field(default_factory=list)


# Keys of the env's info that a capture leaves out: the task is in the plan, and
# ``last_observation`` only appears with a device failure (such attempts are not captured).
_UNCAPTURED_INFO = frozenset({"task", "last_observation"})


def _captured_info(info: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    out = {k: v for k, v in info.items() if k not in _UNCAPTURED_INFO}
    if isinstance(out.get("timings"), dict):
        out["timings"] = dict(out["timings"])
    out.update(extra)
    return out


@dataclass
class _Progress:
    done: int = 0
    successes: int = 0
    failures: int = 0
    errors: int = 0
    steps: int = 0
    retries: int = 0


@dataclass
class _Run:
    plans: list[EpisodePlan]
    pool: DevicePool
    agent_factory: AgentFactory
    autorater_factory: AutoraterFactory
    out_dir: Path
    screenshot_scale: float
    ground_truth: bool
    max_retries: int
    env_kwargs: dict[str, Any]
    acquire_timeout: float | None
    stop: threading.Event
    on_episode: EpisodeCallback | None = None
    save_artifacts: bool = True
    progress_bar: Any = None
    progress: _Progress = field(default_factory=_Progress)
    lock: threading.Lock = field(default_factory=threading.Lock)
    no_truth: set[str] = field(default_factory=set)  # devices that do not answer digiq-sim
    # Screenshots are encoded off the worker threads (PNG encoding releases the GIL), so
    # saving step N overlaps with executing step N+1 instead of adding to it.
    writer: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=2, thread_name_prefix="eval-png")
    )
    started: float = field(default_factory=time.perf_counter)

    @property
    def results_path(self) -> Path:
        return self.out_dir / "results.jsonl"

    # ------------------------------------------------------------------ bookkeeping
    def record(self, result: EpisodeResult) -> None:
        with self.lock:
            append_result(self.results_path, result)
            p = self.progress
            p.done += 1
            p.steps += result.steps
            p.retries += max(0, len(result.attempts) - 1)
            if result.outcome == "success":
                p.successes += 1
            elif result.outcome == "failure":
                p.failures += 1
            else:
                p.errors += 1
            if self.progress_bar is not None:
                rated = p.successes + p.failures
                elapsed = max(1e-9, time.perf_counter() - self.started)
                self.progress_bar.set_postfix_str(
                    f"success {p.successes}/{rated}"
                    + (f" ({100 * p.successes / rated:.0f}%)" if rated else "")
                    + f", errors {p.errors}, {p.steps / elapsed:.1f} steps/s",
                    refresh=False,
                )
                self.progress_bar.update(1)

    # ------------------------------------------------------------------ workers
    def worker(self, jobs: queue.Queue[EpisodePlan], agent: Agent | None) -> None:
        if agent is None:
            try:
                agent = self.agent_factory()
            except Exception:
                # Worker 0 runs the agent made (successfully) before the workers started, so
                # the run goes on with fewer workers instead of erroring this one's episodes.
                log.exception(
                    "agent factory failed in %s; it stops", threading.current_thread().name
                )
                return
        while not self.stop.is_set():
            try:
                plan = jobs.get_nowait()
            except queue.Empty:
                return
            capture: _Capture | None = None
            try:
                result, capture = self.run_with_retries(plan, agent)
            except _Interrupted:
                return
            except _EpisodeError as exc:
                result = self.error_result(plan, exc.kind, exc.error_type, exc.message, [], "")
            except Exception as exc:  # a bug here must not end the run or score anything
                log.exception("episode %s: internal error", plan.episode_id)
                result = self.error_result(
                    plan, "internal_error", type(exc).__name__, str(exc), [], ""
                )
            if capture is not None and not result.is_error:
                result = self.hand_over(plan, result, capture)
            self.record(result)

    def hand_over(
        self, plan: EpisodePlan, result: EpisodeResult, capture: _Capture
    ) -> EpisodeResult:
        """Give a finished episode to ``on_episode`` (before it is recorded: see the module
        docstring); a callback that raises makes the episode an ``internal_error``."""
        assert self.on_episode is not None
        try:
            self.on_episode(plan, result, capture.observations, capture.infos)
        except Exception as exc:
            log.exception("episode %s: the on_episode callback failed", plan.episode_id)
            partial = {
                "agent": result.agent,
                "autorater": result.autorater,
                "actions": result.actions,
                "rewards": result.rewards,
                "verdicts": result.verdicts,
                "invalid_actions": result.invalid_actions,
                "timings": result.timings,
                "started_at": result.started_at,
                "artifacts": result.artifacts,
            }
            return self.error_result(
                plan,
                "internal_error",
                type(exc).__name__,
                f"on_episode callback failed: {exc}",
                list(result.attempts),
                result.device,
                partial,
            )
        return result

    def acquire(self) -> DeviceLease:
        """A lease, skipping devices the pool had to drop (it tries the others)."""
        while True:
            if self.stop.is_set():
                raise _Interrupted()
            try:
                return self.pool.acquire(timeout=self.acquire_timeout)
            except DeviceRecoveryError as exc:
                log.warning("a device was dropped from the pool: %s", exc)
                continue

    def run_with_retries(
        self, plan: EpisodePlan, agent: Agent
    ) -> tuple[EpisodeResult, _Capture | None]:
        """The episode's result and, with ``on_episode``, the capture of its final attempt."""
        attempts: list[dict[str, Any]] = []
        last: _DeviceFailure | None = None
        for attempt in range(self.max_retries + 1):
            try:
                lease = self.acquire()
            except PoolError as exc:  # exhausted, timed out or closed: no device to run on
                kind = "device_error"
                attempts.append({"device": "", "error": f"{type(exc).__name__}: {exc}"})
                error = self.error_result(
                    plan, kind, type(exc).__name__, str(exc), attempts, last.device if last else ""
                )
                return error, None
            healthy = True
            # A fresh capture per attempt: a failed attempt's observations are dropped.
            capture = _Capture() if self.on_episode is not None else None
            try:
                result = self.run_once(plan, agent, lease, attempts, capture)
            except _DeviceFailure as failure:
                healthy = False
                last = failure
                attempts.append(
                    {"device": failure.device, "error": f"{failure.error_type}: {failure.message}"}
                )
                log.warning(
                    "episode %s: device %s failed (%s: %s); %s",
                    plan.episode_id,
                    failure.device,
                    failure.error_type,
                    failure.message,
                    "retrying on another device"
                    if attempt < self.max_retries
                    else "giving up (reported as an error)",
                )
                continue
            finally:
                self.pool.release(lease, healthy)
            return result, capture
        assert last is not None
        error = self.error_result(
            plan, "device_error", last.error_type, last.message, attempts, last.device
        )
        return error, None

    def error_result(
        self,
        plan: EpisodePlan,
        kind: str,
        error_type: str,
        message: str,
        attempts: list[dict[str, Any]],
        device: str,
        partial: dict[str, Any] | None = None,
    ) -> EpisodeResult:
        now = time.time()
        partial = partial or {}
        return EpisodeResult(
            episode_id=plan.episode_id,
            task=plan.task.instruction,
            task_id=plan.task.task_id,
            task_set=plan.task.task_set,
            split=plan.task.split,
            goal=plan.task.goal.to_dict(),
            seed=plan.seed,
            agent=partial.get("agent", {}),
            autorater=partial.get("autorater", ""),
            device=device,
            outcome="error",
            success=False,
            steps=len(partial.get("actions", [])),
            max_steps=plan.max_steps,
            cause=kind,
            actions=partial.get("actions", []),
            rewards=partial.get("rewards", []),
            verdicts=partial.get("verdicts", []),
            invalid_actions=partial.get("invalid_actions", 0),
            error={"type": error_type, "message": message, "kind": kind},
            attempts=attempts or [{"device": device, "error": f"{error_type}: {message}"}],
            timings=partial.get("timings", {}),
            started_at=partial.get("started_at", now),
            finished_at=now,
            artifacts=partial.get("artifacts", ""),
        )

    # ------------------------------------------------------------------ one episode
    def observe_row(
        self,
        obs: Observation,
        device: AndroidDevice,
        episode_dir: Path,
        pending: list[Future[tuple[int, int]]],
    ) -> dict[str, Any]:
        if not self.save_artifacts:  # nothing is written: skip the PNG, elements and truth
            return {"step": obs.step, "action": None, "action_raw": None}
        name = f"step-{obs.step:02d}.png"
        saved = scaled_size(obs.screen_size, self.screenshot_scale)
        pending.append(
            self.writer.submit(
                save_screenshot, obs.screenshot, episode_dir / name, self.screenshot_scale
            )
        )
        truth = None
        if self.ground_truth and device.serial not in self.no_truth:
            try:
                truth = read_ground_truth(device)
            except DeviceError as exc:
                raise _DeviceFailure(type(exc).__name__, str(exc), device.serial) from exc
            if truth is None:
                with self.lock:
                    self.no_truth.add(device.serial)
        return {
            "step": obs.step,
            "image": name,
            "image_size": list(saved),
            "screen_size": list(obs.screen_size),
            "activity": list(obs.activity) if obs.activity else None,
            "ui_elements": [element_dict(e) for e in obs.ui_elements],
            "ground_truth": truth,
            "verdict": None,
            "action": None,
            "action_autoui": None,
            "action_raw": None,
            "invalid_action": None,
            "reward": None,
            "done": False,
            "timings": {},
        }

    def run_once(
        self,
        plan: EpisodePlan,
        agent: Agent,
        lease: DeviceLease,
        attempts: list[dict[str, Any]],
        capture: _Capture | None = None,
    ) -> EpisodeResult:
        device = lease.device
        serial = device.serial
        task = plan.task
        episode_dir = self.out_dir / "episodes" / plan.episode_id
        if episode_dir.exists():
            shutil.rmtree(episode_dir)  # a previous attempt's (or killed run's) artifacts
        artifacts = ""
        if self.save_artifacts:
            episode_dir.mkdir(parents=True)
            artifacts = episode_dir.relative_to(self.out_dir).as_posix()
        started_at = time.time()
        t_start = time.perf_counter()
        agent_cfg = agent_config(agent)
        partial: dict[str, Any] = {
            "agent": agent_cfg,
            "artifacts": artifacts,
            "started_at": started_at,
            "actions": [],
            "rewards": [],
            "verdicts": [],
            "invalid_actions": 0,
        }
        try:
            rater = self.autorater_factory(device)
        except DeviceError as exc:
            raise _DeviceFailure(type(exc).__name__, str(exc), serial) from exc
        except Exception as exc:
            raise _EpisodeError("autorater_error", exc) from exc
        partial["autorater"] = str(getattr(rater, "name", type(rater).__name__))
        try:
            env = AndroidEnv(
                device,
                reward_fn=as_reward_fn(rater),
                max_steps=plan.max_steps,
                **self.env_kwargs,
            )
        except DeviceError as exc:
            raise _DeviceFailure(type(exc).__name__, str(exc), serial) from exc
        rows: list[dict[str, Any]] = []
        pending: list[Future[tuple[int, int]]] = []
        timings: dict[str, Any] = {"reset": 0.0, "steps": [], "agent": [], "total": 0.0}
        partial["timings"] = timings
        try:
            try:
                agent.reset(task, seed=plan.seed)
            except Exception as exc:
                return self._agent_failed(plan, exc, attempts, serial, partial, t_start)
            t0 = time.perf_counter()
            try:
                obs, reset_info = env.reset(seed=plan.seed, options={"task": task})
            except DeviceError as exc:
                raise _DeviceFailure(type(exc).__name__, str(exc), serial) from exc
            timings["reset"] = round(time.perf_counter() - t0, 4)
            if capture is not None:
                capture.observations.append(obs)
                capture.infos.append(_captured_info(reset_info))
            rows.append(self.observe_row(obs, device, episode_dir, pending))
            history: list[AgentStep] = []
            actions: list[str] = partial["actions"]
            rewards: list[float] = partial["rewards"]
            verdicts: list[dict[str, Any]] = partial["verdicts"]
            terminated = truncated = False
            last_type = ""
            while True:
                if self.stop.is_set():
                    raise _Interrupted()
                t0 = time.perf_counter()
                try:
                    chosen = agent.act(obs, task, tuple(history))
                except Exception as exc:
                    return self._agent_failed(plan, exc, attempts, serial, partial, t_start)
                timings["agent"].append(round(time.perf_counter() - t0, 4))
                parsed = parse_autoui(chosen) if isinstance(chosen, str) else chosen
                if not isinstance(parsed, Action):
                    return self._agent_failed(
                        plan,
                        TypeError(f"act() returned {type(chosen).__name__}, not an Action"),
                        attempts,
                        serial,
                        partial,
                        t_start,
                    )
                next_obs, reward, terminated, truncated, info = env.step(parsed)
                if info.get("error"):
                    raise _DeviceFailure(
                        str(info.get("error_type", "DeviceError")), str(info["error"]), serial
                    )
                reward = _finite(float(reward))
                row = rows[-1]
                row["action"] = action_dict(parsed)
                row["action_autoui"] = info.get("action")
                invalid = info.get("invalid_action")
                if invalid:
                    partial["invalid_actions"] += 1
                    row["invalid_action"] = invalid
                    row["action_raw"] = parsed.raw if not parsed.is_valid else to_autoui(parsed)
                row["reward"] = reward
                row["done"] = bool(terminated or truncated)
                row["timings"] = {k: round(v, 4) for k, v in info.get("timings", {}).items()}
                actions.append(info.get("action") or row["action_raw"] or "")
                rewards.append(reward)
                verdict = info.get("verdict")
                verdicts.append(_verdict_summary(verdict))
                timings["steps"].append(round(float(info.get("timings", {}).get("total", 0)), 4))
                history.append(AgentStep(step=len(history) + 1, observation=obs, action=parsed))
                assert next_obs is not None
                if capture is not None:
                    capture.observations.append(next_obs)
                    capture.infos.append(
                        _captured_info(
                            info,
                            agent_action=parsed,
                            agent_s=timings["agent"][-1],
                            reward=reward,
                            terminated=bool(terminated),
                            truncated=bool(truncated),
                        )
                    )
                new_row = self.observe_row(next_obs, device, episode_dir, pending)
                new_row["verdict"] = verdict
                rows.append(new_row)
                obs = next_obs
                last_type = parsed.action_type.name
                if terminated or truncated:
                    break
        finally:
            env.close()
            if rows and self.save_artifacts:
                _write_rows(episode_dir / "steps.jsonl", rows)
            for future in pending:  # every screenshot is on disk before the episode counts
                future.result()
            timings["total"] = round(time.perf_counter() - t_start, 4)
        success = any(r >= 1.0 for r in rewards)
        outcome = "success" if success else "failure"
        cause = (
            None
            if success
            else failure_cause(
                actions,
                plan.max_steps,
                partial["invalid_actions"],
                last_action_type=(
                    last_type
                    if last_type
                    in (
                        ActionType.STATUS_TASK_COMPLETE.name,
                        ActionType.STATUS_TASK_IMPOSSIBLE.name,
                    )
                    else ""
                ),
            )
        )
        attempts.append({"device": serial, "error": None})
        return EpisodeResult(
            episode_id=plan.episode_id,
            task=task.instruction,
            task_id=task.task_id,
            task_set=task.task_set,
            split=task.split,
            goal=task.goal.to_dict(),
            seed=plan.seed,
            agent=agent_cfg,
            autorater=partial["autorater"],
            device=serial,
            outcome=outcome,
            success=success,
            steps=len(actions),
            max_steps=plan.max_steps,
            terminated=bool(terminated),
            truncated=bool(truncated),
            cause=cause,
            actions=actions,
            rewards=rewards,
            verdicts=verdicts,
            invalid_actions=partial["invalid_actions"],
            attempts=list(attempts),
            timings=timings,
            started_at=started_at,
            finished_at=time.time(),
            artifacts=artifacts,
        )

    def _agent_failed(
        self,
        plan: EpisodePlan,
        exc: BaseException,
        attempts: list[dict[str, Any]],
        serial: str,
        partial: dict[str, Any],
        t_start: float,
    ) -> EpisodeResult:
        log.warning(
            "episode %s: the agent failed: %s: %s", plan.episode_id, type(exc).__name__, exc
        )
        partial["timings"]["total"] = round(time.perf_counter() - t_start, 4)
        attempts.append({"device": serial, "error": f"{type(exc).__name__}: {exc}"})
        return self.error_result(
            plan, "agent_error", type(exc).__name__, str(exc), list(attempts), serial, partial
        )


def _write_rows(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
    tmp.replace(path)


def agent_config(agent: Agent) -> dict[str, Any]:
    """``agent.config()`` as a JSON-ready dict that always names the agent (what episode ids
    are derived from, so a caller planning its own episodes computes the same ids)."""
    try:
        config = dict(agent.config())
    except Exception as exc:  # an agent without a working config() still gets evaluated
        log.warning("agent %r: config() failed (%s); recording its name only", agent, exc)
        config = {}
    config.setdefault("name", str(getattr(agent, "name", type(agent).__name__)))
    return json.loads(json.dumps(config, sort_keys=True, default=str))


def _check_resume_config(path: Path, config: dict[str, Any]) -> None:
    try:
        old = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return
    for key in ("max_steps", "screenshot_scale", "autorater"):
        if key in old and key in config and old[key] != config[key]:
            log.warning(
                "resuming with %s=%r, but the episodes already recorded used %r",
                key,
                config[key],
                old[key],
            )


def _checked_plans(plans: Sequence[EpisodePlan]) -> list[EpisodePlan]:
    """``plans`` as a list; ValueError for an empty list, non-plans or duplicate ids."""
    out = list(plans)
    if not out:
        raise ValueError("plans must name at least one episode")
    seen: set[str] = set()
    for plan in out:
        if not isinstance(plan, EpisodePlan):
            raise ValueError(f"plans must be EpisodePlan records, got {plan!r}")
        if plan.episode_id in seen:
            raise ValueError(f"episode id {plan.episode_id} appears twice in plans")
        seen.add(plan.episode_id)
    return out


def evaluate(
    tasks: Sequence[Task],
    agent_factory: AgentFactory,
    autorater_factory: AutoraterFactory,
    pool: DevicePool,
    *,
    seeds: Sequence[int] = (0,),
    max_steps: int | None = None,
    out_dir: str | Path,
    resume: bool = False,
    retry_errors: bool = False,
    workers: int | None = None,
    progress: bool = True,
    screenshot_scale: float = 0.5,
    ground_truth: bool = True,
    max_retries: int = 2,
    env_kwargs: Mapping[str, Any] | None = None,
    acquire_timeout: float | None = 600.0,
    report: bool = True,
    stop: threading.Event | None = None,
    config: Mapping[str, Any] | None = None,
    plans: Sequence[EpisodePlan] | None = None,
    skip_ids: Collection[str] | None = None,
    on_episode: EpisodeCallback | None = None,
    save_artifacts: bool = True,
) -> Summary:
    """Run every task with every seed and return the :class:`Summary` (also in summary.json).

    ``resume``: skip the episodes already recorded in ``out_dir/results.jsonl`` (with
    ``retry_errors``, run the ERROR ones again: their new record supersedes the old one).
    ``agent_factory()`` makes one agent per worker thread (agents keep per-episode state);
    ``autorater_factory(device)`` makes the rater for an episode on ``device`` (the oracle reads
    the device; others may ignore it and return a shared instance). ``max_steps`` None: 20 for
    Web Shopping tasks, 10 for the others. ``workers`` None: one per device in the pool.
    ``screenshot_scale``: size of the saved screenshots (0.5 = half width and height).
    ``ground_truth``: record ``dumpsys digiq-sim`` per observation where the device answers
    it. ``env_kwargs`` go to :class:`AndroidEnv` (``snapshot``, ``settle``...). ``stop``: set
    it to end the run early (in-flight episodes are abandoned, not recorded). ``config``:
    extra settings recorded in run.json and the summary (the CLI's options).

    Hooks (see the module docstring): ``plans`` runs these episodes instead of ``tasks`` x
    ``seeds`` (which are then ignored; build them with :func:`plan_episodes` and
    :func:`agent_config` so the ids match the agent's). ``skip_ids`` are episode ids the
    caller already has: they are skipped instead of those in ``results.jsonl`` (which is still
    appended to, with ``resume``). ``on_episode(plan, result, observations, step_infos)`` gets
    every success and failure before it is recorded. ``save_artifacts=False`` writes no
    ``episodes/<id>/`` folders (and reads no ground truth: it would only go there).

    Raises ValueError for bad arguments, FileExistsError when ``out_dir`` already holds
    results and ``resume`` is False, and :class:`PoolExhaustedError` when the pool has no
    device at all. Episode-level failures never raise: they become ERROR results.
    """
    if not callable(agent_factory):
        raise ValueError(
            f"agent_factory must be callable (returning an Agent), got {agent_factory!r}"
        )
    if not callable(autorater_factory):
        raise ValueError(
            f"autorater_factory must be callable (device -> Autorater), got {autorater_factory!r}"
        )
    if not isinstance(pool, DevicePool):
        raise ValueError(f"pool must be an android.pool.DevicePool, got {type(pool).__name__}")
    if not isinstance(screenshot_scale, int | float) or not 0 < screenshot_scale <= 1:
        raise ValueError(f"screenshot_scale must be in (0, 1], got {screenshot_scale!r}")
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
    ):
        raise ValueError(f"workers must be a positive int or None, got {workers!r}")
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise ValueError(f"max_retries must be an int >= 0, got {max_retries!r}")
    if on_episode is not None and not callable(on_episode):
        raise ValueError(f"on_episode must be callable or None, got {on_episode!r}")
    if plans is not None:
        plans = _checked_plans(plans)
    if skip_ids is not None and (
        isinstance(skip_ids, str) or not all(isinstance(i, str) for i in skip_ids)
    ):
        raise ValueError("skip_ids must be a collection of episode id strings")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results_path = out_dir / "results.jsonl"

    first_agent = agent_factory()
    agent_cfg = agent_config(first_agent)
    if plans is None:
        plans = plan_episodes(list(tasks), list(seeds), agent_cfg, max_steps)
    else:  # explicit plans: record what they run, not the ignored arguments
        seeds = sorted({p.seed for p in plans})
        tasks = list({p.task.task_id: p.task for p in plans}.values())
    planned = {p.episode_id for p in plans}

    done: set[str] = set()
    if results_path.exists() and results_path.stat().st_size > 0:
        if not resume:
            raise FileExistsError(
                f"{results_path} already holds results: pass resume=True (--resume) to finish "
                "that run, or choose another output folder"
            )
        repair_results(results_path)
        if skip_ids is None:
            done = {
                r.episode_id
                for r in latest_results(read_results(results_path))
                if not (retry_errors and r.outcome == "error")
            }
    if skip_ids is not None:
        done = set(skip_ids)
    skipped = sum(1 for p in plans if p.episode_id in done)
    plans = [p for p in plans if p.episode_id not in done]
    if skipped:
        log.info("resume: %d episodes already done, %d to run", skipped, len(plans))

    run_config = {
        "agent": agent_cfg,
        "max_steps": max_steps,
        "seeds": list(seeds),
        "tasks": len(tasks),
        "screenshot_scale": screenshot_scale,
        "max_retries": max_retries,
        **dict(config or {}),
    }
    if resume:
        _check_resume_config(out_dir / "run.json", run_config)
    (out_dir / "run.json").write_text(json.dumps(run_config, indent=1, sort_keys=True) + "\n")

    stop = stop or threading.Event()
    run = _Run(
        plans=plans,
        pool=pool,
        agent_factory=agent_factory,
        autorater_factory=autorater_factory,
        out_dir=out_dir,
        screenshot_scale=float(screenshot_scale),
        ground_truth=ground_truth,
        max_retries=max_retries,
        env_kwargs=dict(env_kwargs or {}),
        acquire_timeout=acquire_timeout,
        stop=stop,
        on_episode=on_episode,
        save_artifacts=bool(save_artifacts),
    )
    started = time.perf_counter()
    if plans:
        pool.start()
        if len(pool) == 0:
            raise PoolExhaustedError("the device pool has no devices: nothing to evaluate on")
        n_workers = min(len(plans), workers or len(pool))
        jobs: queue.Queue[EpisodePlan] = queue.Queue()
        for plan in plans:
            jobs.put(plan)
        bar = None
        if progress:
            from tqdm.auto import tqdm

            # disable=None: silent when stderr is not a terminal (logs and CI stay clean)
            bar = tqdm(total=len(plans), desc="eval", unit="ep", dynamic_ncols=True, disable=None)
            if skipped:
                bar.set_description(f"eval (resumed, {skipped} done)")
        run.progress_bar = bar
        run.started = time.perf_counter()
        # Each worker sets its event when it ends. Waiting on events rather than Thread.join:
        # on Python 3.11 a join interrupted by Ctrl-C marks a running thread as stopped, and
        # the joins after the interrupt would return before the workers had let go.
        finished = [threading.Event() for _ in range(n_workers)]

        def work(agent: Agent | None, done: threading.Event) -> None:
            try:
                run.worker(jobs, agent)
            finally:
                done.set()

        for i, done in enumerate(finished):
            threading.Thread(
                target=work,
                args=(first_agent if i == 0 else None, done),
                name=f"eval-worker-{i}",
                daemon=True,
            ).start()
        try:
            for done in finished:
                while not done.wait(0.2):
                    pass
        except KeyboardInterrupt:
            stop.set()
            log.warning("interrupted: abandoning the episodes in flight (rerun with resume)")
            deadline = time.monotonic() + 30
            for done in finished:
                done.wait(max(0.0, deadline - time.monotonic()))
            raise
        finally:
            if bar is not None:
                bar.close()
    run.writer.shutdown(wait=True)
    wall = time.perf_counter() - started
    p = run.progress
    all_results = latest_results(read_results(results_path))
    extra = sum(1 for r in all_results if r.episode_id not in planned)
    if extra:
        log.warning(
            "%s holds %d episodes that are not part of this run's plan; the summary leaves "
            "them out",
            results_path,
            extra,
        )
    results = [r for r in all_results if r.episode_id in planned]
    summary = summarize(
        results,
        run={
            "wall_time_s": round(wall, 3),
            "episodes_run": p.done,
            "episodes_skipped": skipped,
            "episodes_planned": len(planned),
            "steps_run": p.steps,
            "steps_per_s": round(p.steps / wall, 3) if wall > 0 else None,
            "episodes_per_min": round(60 * p.done / wall, 3) if wall > 0 else None,
            "retries": p.retries,
            "workers": min(len(plans), workers or len(pool)) if plans else 0,
            "pool": dataclasses.asdict(pool.stats()),
            "stopped_early": stop.is_set(),
        },
        config=run_config,
    )
    write_summary(out_dir / "summary.json", summary)
    if report:
        from .report import write_eval_report

        try:
            write_eval_report(out_dir, summary=summary)
        except (OSError, ValueError) as exc:  # the numbers are safe in summary.json already
            log.warning("could not write %s: %s", out_dir / "report.html", exc)
    return summary
