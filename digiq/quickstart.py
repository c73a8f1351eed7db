"""``digiq quickstart``: the Digi-Q paper's experiment, end to end, on simulated devices.

The paper's claim: from offline data of a mediocre policy, a learned Q-function plus Best-of-N
policy extraction gives a policy far better than the data's policy and than Filtered BC, with
no online interaction. The quickstart reproduces that shape with the project's own commands,
each run as a subprocess exactly as a user would type it (so every step is also a recipe):

==============  =================================================================================
``demos``       ``digiq-collect`` noisy scripted demonstrations on the TRAIN split
``behaviour``   ``digiq-train bc`` on them: the behaviour policy (our stand-in for AutoUI-Base,
                a pretrained but mediocre agent)
``offline``     ``digiq-collect --agent behaviour`` on the train split: the offline dataset,
                rewards from the rules autorater (the paper used Gemini)
``digiq``       ``digiq-train all``: repr, candidates, features, critic (TD), Best-of-N policy
``digiq-mc``    ``digiq-train critic --target mc`` + ``policy`` on the same features
                (the paper's Monte-Carlo ablation)
``filtered-bc`` ``digiq-train bc --loss filtered-bc`` from the behaviour policy on the
                successful episodes of the same data
``eval-*``      ``digiq-eval`` of the four policies on the TEST split (rules autorater; the
                oracle's verdict is re-judged from the recorded simulator ground truth)
``report``      the table (success rate with 95% Wilson intervals, oracle and rules), PNG
                plots, ``RESULTS.md``, ``summary.json``
==============  =================================================================================

With simulated devices (``sim:N``), ``eval-behaviour`` runs beside ``offline`` and the three
final evaluations run together (:attr:`Step.group`): each is its own subprocess with its own
phones, and one rollout process keeps only about 1.3 of 2 cores busy. ``digiq-mc`` and
``filtered-bc`` train side by side whatever the devices (one torch thread each; the MC
critic trains on one thread anyway). ``wildness`` (simulated devices only) sets the phones'
in-the-wild perturbation level for every collection and evaluation alike; it is part of the
run's settings.

Everything is recorded in ``OUT/quickstart.json`` (each step's command, status, wall time and
peak memory of its process tree; a group's wall time under ``groups``); a step marked done is
skipped when the command runs again, and an interrupted step resumes through its own
command's resume (``--resume`` for collection and evaluation, checkpoints for training), so
re-running the same ``digiq quickstart`` after Ctrl-C or a crash continues where it stopped.

Scales (:data:`SCALES`): ``tiny`` (a few episodes per step: the CI test), ``small`` (the
default, ``make demo``: 2 CPU cores, tiny models, <= 20 minutes), ``medium`` (``small`` with
three times the offline data, about 35 minutes) and ``full`` (the paper's
evaluation protocol, the first 96 test tasks x 3 seeds, on a GPU server with real checkpoints:
see README).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from digiq.policy_agent import EVAL_TEMPERATURE
from eval.devices import DeviceSpecError, parse_devices
from trajectories.manifest import atomic_write_bytes

log = logging.getLogger(__name__)

__all__ = [
    "Scale",
    "SCALES",
    "METHODS",
    "Step",
    "QuickstartError",
    "plan_steps",
    "run_quickstart",
    "read_record",
]

RECORD_FILE = "quickstart.json"
RECORD_FORMAT = "digiq-quickstart-1"
EXIT_INTERRUPTED = 130


class QuickstartError(RuntimeError):
    """A step failed; the message names it and where its log is."""


@dataclass(frozen=True)
class Scale:
    """How big each step is. ``small`` is sized for 2 CPU cores in <= 20 minutes.

    The behaviour policy is mediocre by wrong choices rather than broken output, as AutoUI
    is, though less so: it is trained to convergence-ish (``small``: 400 steps) on
    demonstrations with mistakes (``demo_noise``; ``small``: 0.85, a mistake at 42.5% of
    steps, which leaves it at 48-77% success, against AutoUI's 25% on AitW; see ``_SMALL`` for
    why not the maximum 1.0, which left it at 27-50% but blind to the last step of "open the
    first result"), and its sampling is held to the AutoUI grammar
    (:mod:`digiq.models.autoui_grammar`), so no action is unparseable (10% were before). The
    earlier setting (150 steps on noise-0.5 demos) was mediocre mostly by garbling the AutoUI
    format (44% of its offline actions unparseable), which any further supervised step
    repairs, whatever it imitates (README, Quickstart, "What changed from the runs below, and
    why"). Noise 0.5 with the grammar gave a 58% behaviour policy whose Best-of-N policy
    drifted below it (README, "Structured decoding, running rollouts side by side"); with
    today's copy head it gives 81% (probe p3, README, "Demonstrations that reach the last
    step").
    """

    name: str
    demo_episodes: int
    demo_noise: float
    behaviour_steps: int
    offline_episodes: int
    num_candidates: int
    critic_steps: int
    repr_epochs: float
    eval_tasks: int
    eval_seeds: int
    devices: int
    # One training budget for every policy-extraction method (Filtered BC and the Best-of-N
    # policy of both Digi-Q runs): the same optimiser steps and learning rate, all starting
    # from the behaviour policy, so the table compares what each method imitates, not how long
    # it trained. Required, so no scale can fall back to the stages' different defaults
    # (which is what happened before: Filtered BC had 80 steps at lr 1e-3 and Best-of-N 24 at
    # 1e-4, so Best-of-N barely moved the behaviour policy; README).
    # ``small`` uses 3e-4 (published: 1e-4, under which Best-of-N barely moved the tiny
    # policy). At 1e-3 the Best-of-N policy drifted where no target told it anything: on qs15's
    # data its probability of tapping a shop's search box, where the critic gave 7 targets,
    # fell from the behaviour policy's 0.42 to 0.00 (about 0.25 at 3e-4), and it solved no site
    # search (benchmarks/diagnose_targets.py --policies; README "Best-of-N drifts where it has
    # no targets").
    extraction_steps: int
    extraction_lr: float
    preset: str = "tiny"
    max_steps: int | None = None  # episode step budget (None: the task set's default)
    # Sampling temperature of the behaviour policy's offline rollouts: the evaluation
    # temperature (EVAL_TEMPERATURE, the published 0.8), so the data come from exactly the
    # policy that the table's behaviour row evaluates ("better than the data's policy" compares
    # like with like). Until 2026-11-23 the data were sampled at 1.0, a weaker policy than the
    # row (offline success 22-30% against 37-57% with the same six behaviour policies; README,
    # Quickstart, "Offline data at the evaluation temperature").
    offline_temperature: float = EVAL_TEMPERATURE
    # Candidate sampling temperature. Published: 1.2. The tiny copy-head policy garbles the
    # typed query at 1.2 (measured: 46 of 58 Best-of-N TYPE targets typed text not in the goal;
    # at 1.0, 35 of 71, and Digi-Q 41.7% instead of 27.1% on the same data; README).
    candidate_temperature: float = 1.2
    # Processes sharing the candidates stage's sampling (digiq-train --workers), one torch
    # thread each. On 2 CPU cores two sampled N = 8 candidates for 2,503 states in 108 s
    # against 141 s for one process with two threads, the same strings (benchmarks/RESULTS.md,
    # twenty-first session); a GPU is better fed by one process, so the default is 1.
    candidate_workers: int = 1
    # Best-of-N advantage threshold (None: the published per-task-set value, 0.05 Web Shopping,
    # 0.10 General). ``small`` uses 0.10 on Web Shopping: its critic, trained on ~100 episodes,
    # is off by about 0.05 on states whose true value is >= 0 (V down to -0.06), so at 0.05
    # noise passes the threshold. Measured with one critic on 120 episodes (README): targets
    # 743 -> 382, agreement with the scripted expert 72.5% -> 87.7%, STATUS_TASK_COMPLETE
    # targets 31 -> 3; on 60 episodes, Digi-Q episodes ended by a premature
    # STATUS_TASK_COMPLETE 22 -> 0 of 48. Re-tried once scores were clipped to the return range
    # (qs30-qs33): 0.05 then made ~50% more expert-matching targets and no premature
    # completions, but no better policy (same-data mean 56.0% against 58.3% at 0.10; README).
    bestofn_threshold: float | None = None
    # Critic target (``digiq-train critic --target``). Published: "td" (V <- Qbar(s, a_dataset)).
    # "td-expected" (V <- mean Qbar over the N candidates) undoes V's memorising of the dataset
    # action on small data. Before scores were clipped to the return range it moved Digi-Q by
    # +4.2, +6.3, +14.6, -8.4, -10.4 and -39.6 points on six datasets; with the clip, on the
    # five datasets qs19-qs23, by +6.3, +4.2, -4.2, +6.2 and +18.8 (mean 48.3% -> 54.6%, ahead
    # of Filtered BC on all five), so ``small`` uses it (README, "V memorises the dataset
    # action"). ``full`` keeps the published "td": the paper's data repeat states enough.
    critic_target: str = "td"
    # Previous actions in the policy's input text (``digiq-train bc --policy-history``).
    # Published: the last one, kept at every scale. After PRESS_ENTER the last action alone
    # does not tell a shop's home page (tap the search box next) from its results page (tap the
    # first result next), and the extracted policies often tapped the search box on the results
    # page. Two previous actions fixed that (first-result taps 37% -> 72% of Digi-Q's results
    # pages) but garbled more typed queries (exact 76% -> 57%) and made the behaviour policy's
    # data weaker; Digi-Q's lead over Filtered BC did not grow (qs50-qs56; README, "Two previous
    # actions: tried, not adopted"). With the closing quote copied (PolicyConfig.copy_close)
    # two actions typed well and both trained methods scored ~20 points higher, but Digi-Q and
    # Filtered BC tied in 3 of 4 runs, twice near the ceiling, and runs took 17-19 minutes
    # (qs59-qs68; README, "Ending the typed query"): not the default yet.
    policy_history: int = 1
    notes: str = ""
    # Per task set, fields that differ from the ones above (``for_task_set`` applies them).
    # ``small`` sizes its offline data and evaluation by what fits in 20 minutes on each task
    # set: General episodes take half the steps of Web Shopping ones (about 8.5 against 13-14
    # per offline episode) and Digi-Q needs ~300 of them to lead Filtered BC there (README,
    # Quickstart, "The General task set").
    task_set_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)

    def for_task_set(self, task_set: str) -> Scale:
        """This scale as it runs on ``task_set``: its overrides applied (none left)."""
        changes = dict(self.task_set_overrides.get(task_set, {}))
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(
                f"scale {self.name!r}: unknown fields {sorted(unknown)} for {task_set}"
            )
        return dataclasses.replace(self, **changes, task_set_overrides={})

    def to_dict(self) -> dict[str, Any]:
        """The fields as run (what quickstart.json records); the overrides table is left out,
        so a run folder records the sizes it actually used."""
        out = dataclasses.asdict(self)
        out.pop("task_set_overrides")
        return out


# The scale of `make demo`; ``medium`` is derived from it.
_SMALL = Scale(
    name="small",
    demo_episodes=80,
    # A mistake at 42.5% of demonstration steps. At 1.0 (every other step) most
    # demonstrations ended early (qs76's: 51 of 80 failed, 30 by a premature
    # STATUS_TASK_COMPLETE, 21 at the 20-step budget) and 4-5 of the 26 "open the first
    # result" ones succeeded; the behaviour policy never learnt that last tap (probability
    # 0.006 on results pages; 0.004 with 200 demonstrations, 0.026 with a 40-step budget),
    # offline datasets of 100 episodes held it rewarded 0-2 times, and Digi-Q learnt it in 1
    # of 4 runs (README, Quickstart, "Demonstrations that reach the last step"). At 0.85
    # about 10 of 26 succeed, the behaviour policy opens the first result in 3-9 of 16 test
    # tasks, and every step of every task kind is rewarded in the data (qs78-qs82).
    demo_noise=0.85,
    behaviour_steps=400,
    offline_episodes=100,
    num_candidates=4,
    bestofn_threshold=0.10,
    critic_steps=800,
    critic_target="td-expected",
    repr_epochs=1,
    eval_tasks=24,
    eval_seeds=2,
    devices=2,
    extraction_steps=80,
    extraction_lr=3e-4,
    candidate_temperature=1.0,
    candidate_workers=2,
    notes="2 CPU cores, tiny models, about 20 minutes",
    # General (``make demo``): three times the offline data, and 96 evaluation episodes per
    # method on 96 different tasks (the first 96 of the test list, as in the paper, 1 seed).
    # With 100 episodes Digi-Q was not reliable there (ahead of Filtered BC in 1 of 3 runs,
    # qg1-qg3); with 300 the paper's ordering held in 8 of 10 runs evaluated on 24 tasks x 4
    # seeds (qgm1-qgm8; not in qge1 and qgs9). Outcomes are nearly all-or-nothing per task, so
    # 24 tasks x 4 seeds measure 24 tasks: on test tasks 25-96 Digi-Q led Filtered BC with the
    # policies of both misses too. With this evaluation: 2 of 3 runs (qgs10 no; qgs11, qgs12).
    # Since every process keeps its freed memory (android/allocator.py) such a run takes 18-19
    # minutes on 2 cores instead of 21-23 (README, Quickstart, "The General task set").
    # 8 candidates per state on General (2026-11-24): on the same five datasets and repr
    # checkpoints Digi-Q led Filtered BC on all five with 8 (pooled +6.5 [+0.6, +12.3] points),
    # on four with 4 (+4.4 [-1.5, +10.2]); in fresh runs with 8 it led in 11 of 13 (qgs13,
    # qgs17-qgs28, +5.0 [+1.3, +8.7] pooled). With the screens decoded once and the candidates
    # sampled on two processes a run with 8 takes 12-18 minutes (qgs17-qgs28), what one with 4
    # took before (README, "Eight candidates per state").
    # 96 test tasks, not 192 (tried 2026-11-25): 192 took a run from 12:05 to 16:01 on the
    # faster 2-core instance (qgs26 -> qgs29), about 21.5 minutes on the instance of the day
    # before, 1.35x slower, so it would not keep the 20 minutes there. ``--eval-tasks 192``
    # (``make demo DEMO_EVAL_TASKS=192``) runs it where there is time (README, "192 test
    # tasks").
    task_set_overrides={
        "general": {
            "offline_episodes": 300,
            "num_candidates": 8,
            "eval_tasks": 96,
            "eval_seeds": 1,
            "notes": "2 CPU cores, tiny models, 300 General episodes, 8 candidates, 12-18 minutes",
        }
    },
)

SCALES: dict[str, Scale] = {
    "tiny": Scale(
        name="tiny",
        demo_episodes=6,
        demo_noise=0.3,
        behaviour_steps=40,
        offline_episodes=4,
        num_candidates=2,
        critic_steps=10,
        repr_epochs=1,
        eval_tasks=2,
        eval_seeds=1,
        devices=2,
        extraction_steps=2,
        extraction_lr=1e-3,
        max_steps=5,
        candidate_temperature=1.0,
        notes="a few episodes per step: proves the pipeline runs, says nothing about quality",
    ),
    "small": _SMALL,
    # ``small`` with three times its offline data and twice its evaluation episodes, nothing
    # else changed, so the two compare data size alone. Why it exists: with noise-1.0
    # demonstrations (``small`` until 2026-11-24) 100 episodes held 0-4 rewarded examples of
    # "open the first result" (a third of the test split), and Best-of-N can only target that
    # tap where the data reward it; with 300, Digi-Q learned the tap (27 and 9 of 32 test tasks
    # in two datasets, Filtered BC 1 and 0), but in one of the two it also tapped there on
    # shops' home pages and lost the site searches (README, Quickstart, "Three times the
    # data"). 35 minutes on 2 cores (qm1); with the 0.85 demonstrations 34 minutes and no lead
    # of Digi-Q over Filtered BC either (qm2: 85.4% against 92.7% of 96 episodes; README,
    # "Level with Filtered BC"). On the General tasks it is the same as ``small``, whose
    # General sizes these are (``task_set_overrides``).
    "medium": dataclasses.replace(
        _SMALL,
        name="medium",
        offline_episodes=300,
        eval_seeds=4,
        notes="small with 3x the offline data: 2 CPU cores, tiny models, about 35 minutes",
        task_set_overrides={},
    ),
    "full": Scale(
        name="full",
        demo_episodes=1024,
        demo_noise=1.0,
        behaviour_steps=4000,
        offline_episodes=1296,
        num_candidates=16,
        critic_steps=4000,
        repr_epochs=3,
        eval_tasks=96,
        eval_seeds=3,
        devices=8,
        extraction_steps=1000,
        extraction_lr=1e-4,
        notes="the paper's protocol (first 96 test tasks x 3 seeds); a GPU server",
    ),
}

# method name -> (step that trains it, the agent spec relative to OUT, label in the table)
METHODS: dict[str, tuple[str, str, str]] = {
    "behaviour": ("behaviour", "runs/behaviour", "Behaviour policy (SL on noisy demos)"),
    "filtered-bc": ("filtered-bc", "runs/filtered-bc", "Filtered BC"),
    "digiq-mc": ("digiq-mc", "runs/digiq-mc", "Digi-Q, MC critic (ablation)"),
    "digiq": ("digiq", "runs/digiq", "Digi-Q (TD critic, Best-of-N)"),
}


@dataclass
class Step:
    """One step of the quickstart: one or more commands run in order as subprocesses."""

    name: str
    commands: list[list[str]]
    outputs: list[str] = field(default_factory=list)
    resume_flag: str | None = None  # added to commands[0] when its output folder exists
    resume_dir: str | None = None
    description: str = ""
    # Consecutive steps with the same group run at the same time (each its own subprocess).
    # Rollouts are grouped on simulated devices only: each command starts its own phones, so
    # they share nothing, and one rollout process keeps about 1.3 of 2 cores busy (measured:
    # two evaluations at once took 120 s, one alone 81 s; results identical, README). The two
    # baseline trainings (digiq-mc, filtered-bc) are grouped too: they use no device.
    group: str | None = None


def _cli(*args: str) -> list[str]:
    """A ``digiq`` subcommand through this interpreter (works without the venv on PATH)."""
    return [sys.executable, "-m", "digiq.cli", *args]


def default_devices(scale: Scale, devices: str | None) -> str:
    """The device spec of a run: the caller's, else the scale's count of simulated phones."""
    return devices or f"sim:{scale.devices}"


def plan_steps(
    out: Path,
    scale: Scale,
    task_set: str = "webshop",
    *,
    preset: str | None = None,
    model_path: str | None = None,
    policy_path: str | None = None,
    devices: str | None = None,
    seed: int = 0,
    wildness: float | None = None,
) -> list[Step]:
    """Every step of the quickstart with its exact commands (nothing runs here).

    ``wildness`` (simulated devices only) is the in-the-wild perturbation level of every
    collection and evaluation, so the data and the test meet the same phones; None keeps the
    simulator's default.
    """
    scale = scale.for_task_set(task_set)
    preset = preset or scale.preset
    device_spec = default_devices(scale, devices)
    wild = _wildness_options(wildness, device_spec)
    data_demos = out / "data" / "demos"
    data_offline = out / "data" / "offline"
    runs = out / "runs"
    common_train = ["--preset", preset, "--seed", str(seed), "--no-progress"]
    if model_path:
        common_train += ["--model-path", model_path]
    collect = [
        "collect",
        "--task-set",
        task_set,
        "--split",
        "train",
        "--devices",
        device_spec,
        "--autorater",
        "rules",
        "--image-format",
        "webp",
        "--no-progress",
        *(["--max-steps", str(scale.max_steps)] if scale.max_steps else []),
        *wild,
    ]
    steps = [
        Step(
            "demos",
            [
                _cli(
                    *collect,
                    "--episodes",
                    str(scale.demo_episodes),
                    "--agent",
                    "scripted",
                    "--noise",
                    str(scale.demo_noise),
                    "--agent-seed",
                    str(seed),
                    "--out",
                    str(data_demos),
                )
            ],
            outputs=[str(data_demos)],
            resume_flag="--resume",
            resume_dir=str(data_demos),
            description=f"noisy scripted demonstrations (noise {scale.demo_noise})",
        ),
        Step(
            "behaviour",
            [
                _cli(
                    "train",
                    "bc",
                    "--data",
                    str(data_demos),
                    "--out",
                    str(runs / "behaviour"),
                    "--steps",
                    str(scale.behaviour_steps),
                    *common_train,
                    # A given policy keeps the input it was trained with; a new one gets the
                    # scale's (asking a saved policy for another history is refused).
                    *(
                        ["--policy-path", policy_path]
                        if policy_path
                        else ["--policy-history", str(scale.policy_history)]
                    ),
                )
            ],
            outputs=[str(runs / "behaviour")],
            description="behaviour policy: supervised learning on the demonstrations",
        ),
        Step(
            "offline",
            [
                _cli(
                    *collect,
                    "--episodes",
                    str(scale.offline_episodes),
                    "--agent",
                    f"{runs / 'behaviour'}?temperature={scale.offline_temperature}",
                    "--agent-seed",
                    str(seed),
                    "--out",
                    str(data_offline),
                )
            ],
            outputs=[str(data_offline)],
            resume_flag="--resume",
            resume_dir=str(data_offline),
            description="offline data: the behaviour policy's rollouts, rules-autorater rewards",
        ),
        Step(
            "digiq",
            [
                _cli(
                    "train",
                    "all",
                    "--data",
                    str(data_offline),
                    "--out",
                    str(runs / "digiq"),
                    "--behaviour-policy",
                    str(runs / "behaviour"),
                    "--num-candidates",
                    str(scale.num_candidates),
                    "--config",
                    str(out / "digiq-train.yaml"),
                    *common_train,
                )
            ],
            outputs=[str(runs / "digiq")],
            description="Digi-Q: repr, candidates, features, TD critic, Best-of-N policy",
        ),
        Step(
            "digiq-mc",
            [
                _cli(
                    "train",
                    stage,
                    "--data",
                    str(data_offline),
                    "--out",
                    str(runs / "digiq-mc"),
                    "--behaviour-policy",
                    str(runs / "behaviour"),
                    "--features-from",
                    str(runs / "digiq"),
                    "--target",
                    "mc",
                    "--config",
                    str(out / "digiq-train.yaml"),
                    *common_train,
                )
                for stage in ("critic", "policy")
            ],
            outputs=[str(runs / "digiq-mc")],
            description="ablation: the same pipeline with Monte-Carlo critic targets",
        ),
        Step(
            "filtered-bc",
            [
                _cli(
                    "train",
                    "bc",
                    "--loss",
                    "filtered-bc",
                    "--data",
                    str(data_offline),
                    "--out",
                    str(runs / "filtered-bc"),
                    "--policy-path",
                    str(runs / "behaviour" / "bc"),
                    *_extraction_options(scale),
                    *common_train,
                )
            ],
            outputs=[str(runs / "filtered-bc")],
            description="baseline: the behaviour policy fine-tuned on the successful episodes",
        ),
    ]
    # Rollouts on simulated devices run side by side (Step.group); real devices are shared, so
    # with any other device spec every step runs alone.
    concurrent = device_spec.startswith("sim:")
    for method, (_, agent, _) in METHODS.items():
        eval_dir = out / "eval" / method
        position = 2 if method == "behaviour" else len(steps)  # early: says how good the data is
        if method == "behaviour":  # beside the offline collection, which needs the same policy
            group = "behaviour-rollouts" if concurrent else None
        else:
            group = "evaluations" if concurrent else None
        steps.insert(
            position,
            Step(
                f"eval-{method}",
                [
                    _cli(
                        "eval",
                        "--task-set",
                        task_set,
                        "--split",
                        "test",
                        "--num-tasks",
                        str(scale.eval_tasks),
                        "--seeds",
                        str(scale.eval_seeds),
                        "--agent",
                        str(out / agent),
                        "--agent-seed",
                        str(seed),
                        "--devices",
                        device_spec,
                        "--autorater",
                        "rules",
                        "--out",
                        str(eval_dir),
                        "--no-progress",
                        *(["--max-steps", str(scale.max_steps)] if scale.max_steps else []),
                        *wild,
                    )
                ],
                outputs=[str(eval_dir)],
                resume_flag="--resume",
                resume_dir=str(eval_dir),
                description=f"evaluation of {method} on the test split",
                group=group,
            ),
        )
    if concurrent:
        next(s for s in steps if s.name == "offline").group = "behaviour-rollouts"
    # The two baselines train side by side whatever the devices (they use none): the MC
    # critic trains on one thread, and together they took 87 s against 104 s one after the
    # other (qgs12's data, 2 cores).
    for step in steps:
        if step.name in ("digiq-mc", "filtered-bc"):
            step.group = "baselines"
    return steps


def _wildness_options(wildness: float | None, device_spec: str) -> list[str]:
    """``--wildness W`` for the rollout commands; refused (naming the option) where it cannot
    apply, before any step runs."""
    if wildness is None:
        return []
    if isinstance(wildness, bool) or not isinstance(wildness, (int, float)):
        raise QuickstartError(f"--wildness must be a number in [0, 1], got {wildness!r}")
    if not math.isfinite(wildness) or not 0.0 <= wildness <= 1.0:
        raise QuickstartError(f"--wildness must be in [0, 1], got {wildness!r}")
    try:
        only_sim = parse_devices(device_spec).only_sim  # the check collection and evaluation make
    except DeviceSpecError as exc:
        raise QuickstartError(str(exc)) from None
    if not only_sim:
        raise QuickstartError(
            f"--wildness applies to simulated devices only (--devices sim:N), not {device_spec!r}"
        )
    return ["--wildness", str(float(wildness))]


def train_config(scale: Scale) -> dict[str, Any]:
    """The per-stage options of the Digi-Q runs (written to ``OUT/digiq-train.yaml``)."""
    config: dict[str, Any] = {
        "repr": {"epochs": scale.repr_epochs},
        "candidates": {
            "temperature": scale.candidate_temperature,
            "workers": scale.candidate_workers,
        },
        "critic": {"steps": scale.critic_steps, "target": scale.critic_target},
    }
    config["policy"] = _extraction_budget(scale)
    if scale.bestofn_threshold is not None:
        config["policy"]["threshold"] = scale.bestofn_threshold
    return config


def _extraction_budget(scale: Scale) -> dict[str, Any]:
    """The training budget every policy-extraction method gets (see :class:`Scale`)."""
    return {"steps": scale.extraction_steps, "lr": scale.extraction_lr}


def _extraction_options(scale: Scale) -> list[str]:
    """Filtered BC's command-line form of :func:`_extraction_budget`."""
    return [
        arg for key, value in _extraction_budget(scale).items() for arg in (f"--{key}", str(value))
    ]


# ---------------------------------------------------------------------------------------------
# The record
# ---------------------------------------------------------------------------------------------


def read_record(out: str | Path) -> dict[str, Any]:
    """``OUT/quickstart.json`` (an empty record when there is none yet)."""
    path = Path(out) / RECORD_FILE
    if not path.is_file():
        return {"format": RECORD_FORMAT, "steps": {}}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise QuickstartError(
            f"{path} is not valid JSON ({exc}); move it away to start over"
        ) from None
    if data.get("format") != RECORD_FORMAT:
        raise QuickstartError(f"{path}: unknown format {data.get('format')!r}")
    return data


def _write_record(out: Path, record: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / RECORD_FILE, json.dumps(record, indent=1, default=str).encode())


# ---------------------------------------------------------------------------------------------
# Running one command with its process tree's peak memory
# ---------------------------------------------------------------------------------------------


class _TreeMemory:
    """Samples the resident memory of a process and all its descendants (the simulated
    devices and the adb server a collection starts) and keeps the peak of the sum."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="tree-memory")

    def __enter__(self) -> _TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        import psutil

        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self._stop.is_set():
            total = 0
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                return
            for proc in procs:
                try:
                    total += proc.memory_info().rss
                except psutil.Error:
                    continue
            self.peak_bytes = max(self.peak_bytes, total)
            self._stop.wait(self.interval)


_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


class _Children:
    """The step subprocesses running now, so that Ctrl-C in the main thread can stop the ones
    that worker threads of a step group started (only the main thread sees the signal)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.procs: set[subprocess.Popen] = set()
        self.interrupted = threading.Event()

    def stop_all(self) -> None:
        """SIGINT every running step's process group, then SIGKILL what is left after 60 s."""
        self.interrupted.set()
        with self.lock:
            procs = list(self.procs)
        for proc in procs:
            _interrupt(proc)


def _interrupt(proc: subprocess.Popen) -> None:
    """Stop a step's process group cleanly (it keeps what it finished) and wait for it."""
    try:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _run_command(
    command: Sequence[str],
    log_path: Path,
    env: dict[str, str],
    children: _Children | None = None,
) -> tuple[int, float]:
    """Run ``command`` with its output appended to ``log_path``; (exit code, peak MiB)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log_file:
        log_file.write(f"\n$ {' '.join(command)}\n".encode())
        log_file.flush()
        proc = subprocess.Popen(
            list(command),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        if children is not None:
            with children.lock:
                children.procs.add(proc)
            if children.interrupted.is_set():  # Ctrl-C came while this one was starting
                _interrupt(proc)
        try:
            with _TreeMemory(proc.pid) as memory:
                try:
                    code = proc.wait()
                except BaseException:
                    # Ctrl-C / SIGTERM in this thread: stop the child and wait.
                    _interrupt(proc)
                    raise
        finally:
            if children is not None:
                with children.lock:
                    children.procs.discard(proc)
    return code, memory.peak_bytes / 2**20


# ---------------------------------------------------------------------------------------------
# The pipeline
# ---------------------------------------------------------------------------------------------


def run_quickstart(
    out: str | Path,
    scale: Scale,
    task_set: str = "webshop",
    *,
    until: str | None = None,
    preset: str | None = None,
    model_path: str | None = None,
    policy_path: str | None = None,
    devices: str | None = None,
    seed: int = 0,
    wildness: float | None = None,
    progress: bool = True,
    echo: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run (or continue) the quickstart in ``out``; returns the record (``quickstart.json``).

    ``until`` stops after that step (it and the earlier ones done). Raises
    :class:`QuickstartError` when a step fails (its log is named) and ``KeyboardInterrupt`` when
    interrupted (the record says which step; run again to resume).
    """
    from tqdm.auto import tqdm

    out = Path(out)
    scale = scale.for_task_set(task_set)
    echo = echo or (lambda text: log.info("%s", text))
    # Planned first (nothing is written there): bad --wildness, devices or --until are refused
    # before the record exists.
    steps = plan_steps(
        out,
        scale,
        task_set,
        preset=preset,
        model_path=model_path,
        policy_path=policy_path,
        devices=devices,
        seed=seed,
        wildness=wildness,
    )
    names = [s.name for s in steps] + ["report"]
    if until is not None and until not in names:
        raise QuickstartError(f"unknown step {until!r}; steps: {', '.join(names)}")
    device_spec = default_devices(scale, devices)
    record = read_record(out)
    settings = {
        "task_set": task_set,
        "scale": scale.to_dict(),
        "preset": preset or scale.preset,
        "model_path": model_path,
        "policy_path": policy_path,
        "devices": device_spec,
        "seed": seed,
    }
    if wildness is not None:  # absent otherwise, so runs recorded before the option resume
        settings["wildness"] = wildness
    if record.get("settings") and record["settings"] != settings:
        keys = set(settings) | set(record["settings"])
        changed = sorted(k for k in keys if record["settings"].get(k) != settings.get(k))
        raise QuickstartError(
            f"{out / RECORD_FILE} was started with other settings ({', '.join(changed)}); "
            "use another --out or the same options"
        )
    record.update(format=RECORD_FORMAT, out=str(out.resolve()), settings=settings)
    record.setdefault("steps", {})
    record.setdefault("started", time.time())
    _write_record(out, record)
    _write_yaml(out / "digiq-train.yaml", train_config(scale))
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    bar = tqdm(total=len(names), desc="quickstart", unit="step", disable=not progress)
    try:
        for batch in _batches(steps, until):
            bar.set_postfix_str(" + ".join(step.name for step in batch))
            try:
                if len(batch) == 1:
                    _run_step(out, batch[0], record, env, echo)
                else:
                    _run_group(out, batch, record, env, echo)
            finally:
                _keep_plan_order(out, record, names)
            bar.update(len(batch))
            if until in (step.name for step in batch):
                return record
        _report_step(out, record, echo)
        bar.update(1)
    finally:
        bar.close()
    return record


def _keep_plan_order(out: Path, record: dict[str, Any], names: Sequence[str]) -> None:
    """List the record's steps in the plan's order: the steps of a group enter it in whatever
    order their threads start, and readers (and a resumed run's record) should not depend on
    that race."""
    steps = record["steps"]
    ordered = {name: steps[name] for name in names if name in steps}
    ordered.update((name, entry) for name, entry in steps.items() if name not in ordered)
    if list(ordered) != list(steps):
        record["steps"] = ordered
        _write_record(out, record)


def _batches(steps: Sequence[Step], until: str | None) -> list[list[Step]]:
    """Consecutive steps of one group together (run at the same time), others alone; nothing
    after ``until``."""
    batches: list[list[Step]] = []
    for step in steps:
        if batches and step.group is not None and batches[-1][-1].group == step.group:
            batches[-1].append(step)
        else:
            batches.append([step])
        if step.name == until:
            break
    return batches


def side_by_side_env(env: dict[str, str], steps: int) -> dict[str, str]:
    """The environment of ``steps`` processes that run at the same time: each gets its share of
    the cores as torch threads (``OMP_NUM_THREADS``), unless the caller's environment sets it.

    Every process otherwise starts one torch thread per core, and on 2 cores three evaluations
    then run 6 threads: with one thread each, three evaluations of 24 episodes took 48-59 s
    instead of 53-67 s, with the same outcomes (benchmarks/RESULTS.md, eighteenth session).
    """
    if steps < 2 or "OMP_NUM_THREADS" in env:
        return env
    return {**env, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // steps))}


def _run_group(
    out: Path, batch: Sequence[Step], record: dict[str, Any], env: dict[str, str], echo: Callable
) -> None:
    """Run the steps of one group at the same time, one thread each (every step's own record,
    log and resume as when it runs alone); the group's wall time and the sum of its steps'
    peaks (an upper bound of its peak) go to ``record["groups"]``. Ctrl-C stops them all."""
    lock = threading.Lock()
    children = _Children()
    errors: list[BaseException] = []
    group = batch[0].group or "group"
    finished = [threading.Event() for _ in batch]

    def work(step: Step, done: threading.Event) -> None:
        # The mask is inherited from the starting thread (below) and would be by the step's
        # subprocesses, which must see Ctrl-C.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
        try:
            _run_step(out, step, record, env, echo, lock=lock, children=children)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            done.set()

    def wait_all() -> None:
        # Not Thread.join: on Python 3.11 a join interrupted by Ctrl-C marks a thread that is
        # still running as stopped, so a second join returns at once and the run would exit
        # before the step has recorded itself as interrupted. The short waits let the main
        # thread run the Ctrl-C handler when the kernel gave the signal to a worker thread.
        for done in finished:
            while not done.wait(0.5):
                pass

    echo(f"{group}: {', '.join(s.name for s in batch)} at the same time")
    env = side_by_side_env(env, len(batch))
    tick = time.perf_counter()
    threads = [
        threading.Thread(target=work, args=(step, done), name=f"step-{step.name}")
        for step, done in zip(batch, finished, strict=True)
    ]
    # Ctrl-C is held back while the threads start (it is delivered right after), so that every
    # step whose completion is waited for below has really started.
    held = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        for thread in threads:
            thread.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
    try:
        wait_all()
    except BaseException:
        children.stop_all()
        wait_all()
        raise
    with lock:
        entries = [record["steps"].get(step.name) or {} for step in batch]
        record.setdefault("groups", {})[group] = {
            "steps": [step.name for step in batch],
            "wall_s": round(time.perf_counter() - tick, 2),
            "torch_threads_per_step": env.get("OMP_NUM_THREADS"),
            "peak_rss_mb_sum": round(sum(float(e.get("peak_rss_mb") or 0) for e in entries), 1),
        }
        _write_record(out, record)
    if errors:
        raise errors[0]


def _run_step(
    out: Path,
    step: Step,
    record: dict[str, Any],
    env: dict[str, str],
    echo: Callable,
    *,
    lock: threading.Lock | None = None,
    children: _Children | None = None,
) -> None:
    """Run one step's commands in order and record it. ``lock`` guards ``record`` when steps
    of a group run in threads; ``children`` lets the main thread stop them."""
    lock = lock or threading.Lock()
    previous = record["steps"].get(step.name) or {}
    if previous.get("status") == "done":
        echo(f"{step.name}: done earlier, skipped")
        return
    log_path = out / "logs" / f"{step.name}.log"
    entry: dict[str, Any] = {
        "status": "running",
        "description": step.description,
        "started": time.time(),
        "attempts": int(previous.get("attempts", 0)) + 1,
        "log": str(log_path),
        "outputs": step.outputs,
        "commands": [],
        "peak_rss_mb": 0.0,
    }
    with lock:
        record["steps"][step.name] = entry
        _write_record(out, record)
    echo(f"{step.name}: {step.description} (log: {log_path})")
    tick = time.perf_counter()
    try:
        for index, command in enumerate(step.commands):
            if children is not None and children.interrupted.is_set():
                raise KeyboardInterrupt  # another step of the group was stopped: start nothing
            command = list(command)
            if index == 0 and step.resume_flag and step.resume_dir:
                if Path(step.resume_dir).exists():
                    command.append(step.resume_flag)
            with lock:
                entry["commands"].append(" ".join(command))
            code, peak = _run_command(command, log_path, env, children)
            with lock:
                entry["peak_rss_mb"] = max(entry["peak_rss_mb"], round(peak, 1))
            if children is not None and children.interrupted.is_set():
                raise KeyboardInterrupt
            if code != 0:
                with lock:
                    entry.update(status="failed", exit_code=code, wall_s=time.perf_counter() - tick)
                    _write_record(out, record)
                raise QuickstartError(
                    f"step {step.name!r} failed (exit code {code}); see {log_path}. Run the same "
                    "command again to retry it (finished steps are kept)."
                )
    except KeyboardInterrupt:
        with lock:
            entry.update(status="interrupted", wall_s=time.perf_counter() - tick)
            _write_record(out, record)
        raise
    with lock:
        entry.update(
            status="done", finished=time.time(), wall_s=round(time.perf_counter() - tick, 2)
        )
        _write_record(out, record)
    echo(f"{step.name}: done in {entry['wall_s']:.1f} s (peak {entry['peak_rss_mb']:.0f} MiB)")


def _write_yaml(path: Path, data: dict[str, Any]) -> None:
    import yaml

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, yaml.safe_dump(data, sort_keys=True).encode())


def _report_step(out: Path, record: dict[str, Any], echo: Callable) -> None:
    from digiq.quickstart_report import write_report

    tick = time.perf_counter()
    entry = {"status": "running", "started": time.time(), "attempts": 1}
    record["steps"]["report"] = entry
    _write_record(out, record)
    summary = write_report(out, record)
    entry.update(
        status="done",
        finished=time.time(),
        wall_s=round(time.perf_counter() - tick, 2),
        outputs=summary["files"],
    )
    record["finished"] = time.time()
    record["summary"] = {k: v for k, v in summary.items() if k != "files"}
    _write_record(out, record)
    echo(summary["table_text"])
