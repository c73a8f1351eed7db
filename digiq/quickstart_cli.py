"""``digiq quickstart``: the paper's experiment end to end (see :mod:`digiq.quickstart`)."""

from __future__ import annotations

import dataclasses
import json
import signal
import threading
from pathlib import Path
from typing import Any

import click

from digiq._runtime import raise_interrupt
from digiq.quickstart import EXIT_INTERRUPTED, METHODS, SCALES, QuickstartError, run_quickstart
from eval.tasks import load_task_set

STEP_NAMES = (
    "demos",
    "behaviour",
    "eval-behaviour",
    "offline",
    "digiq",
    "digiq-mc",
    "filtered-bc",
    *(f"eval-{m}" for m in METHODS if m != "behaviour"),
    "report",
)


@click.command(name="quickstart", context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--task-set",
    type=click.Choice(["webshop", "general"]),
    default="webshop",
    show_default=True,
    help="Task set of the experiment (train split for the data, test split for evaluation). "
    "`make demo` runs general: there Digi-Q beats the behaviour policy and, in most runs, "
    "Filtered BC, while on webshop the simulated shops are easy enough that Filtered BC "
    "reaches 88-96% and the two tie (README).",
)
@click.option(
    "--scale",
    type=click.Choice(list(SCALES)),
    default="small",
    show_default=True,
    help="small: 2 CPU cores, tiny models, <= 20 minutes (what `make demo` runs): on webshop "
    "100 offline episodes and 24 test tasks x 2 seeds per method, on general 300 and the first "
    "96 test tasks x 1 seed; tiny: a few episodes per step (a smoke test); medium: 300 offline "
    "episodes and 24 test tasks x 4 seeds per method on either task set (webshop: about 35 "
    "minutes on 2 cores); full: the paper's protocol (96 test tasks x 3 seeds) for a GPU "
    "server.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Output folder (data/, runs/, eval/, plots/, RESULTS.md, quickstart.json). Run the "
    "same command again to resume. [default: runs/quickstart-<task-set>-<scale>]",
)
@click.option(
    "--until",
    type=click.Choice(STEP_NAMES),
    default=None,
    help="Stop after this step (the later ones run when the command is run again without it).",
)
@click.option(
    "--preset",
    default=None,
    help="Model preset of every training step (tiny, llava-1.5-7b, qwen2-vl-2b, ...). "
    "[default: the scale's: tiny]",
)
@click.option(
    "--model-path",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="Local VLM checkpoint folder for a real preset.",
)
@click.option(
    "--policy-path",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="Local policy checkpoint (e.g. AutoUI-Base) the behaviour policy is fine-tuned from.",
)
@click.option(
    "--devices",
    default=None,
    help="Device spec of collection and evaluation (sim:N, serials, adb:HOST:PORT; see "
    "digiq-collect --help). [default: sim:<the scale's device count>]",
)
@click.option(
    "--wildness",
    type=click.FloatRange(0.0, 1.0),
    default=None,
    help="In-the-wild perturbation level (popups, sponsored first results, search "
    "suggestions, slow loads, layout shifts) of the simulated devices of every collection and "
    "evaluation, 0..1; simulated devices only. [default: the simulator's, 0.35]",
)
@click.option(
    "--num-candidates",
    type=click.IntRange(min=1),
    default=None,
    help="Candidate actions per state of the two Digi-Q runs, the dataset action included (the "
    "N of Best-of-N). More candidates put an expert-like action among them more often, at "
    "some minutes of sampling and VLM features: on general, with 8, Digi-Q led Filtered BC on "
    "5 of 5 datasets re-trained (with 4 on 4) and in 11 of 13 fresh runs, and a small run takes "
    "12-18 minutes on 2 cores (README). Recorded in quickstart.json; a run folder resumes only with the value it "
    "started with. [default: the scale's: 4 at small and medium (8 on general), 16 at full]",
)
@click.option(
    "--eval-tasks",
    type=click.IntRange(min=1),
    default=None,
    help="Evaluate every method on the first N test tasks (each with the scale's seeds) instead "
    "of the scale's number. More tasks narrow the intervals, at about 4 minutes per 96 more on "
    "2 cores for general: with 192, the gain over the behaviour policy was significant in 11 of "
    '12 runs\' policies against 8 of 12 on their first 96 (README, "192 test tasks"). Recorded in '
    "quickstart.json like --num-candidates. [default: the scale's: 96 on general at small, 24 "
    "on webshop, 96 at full]",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of every step.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print quickstart.json at the end.")
def quickstart_command(
    task_set: str,
    scale: str,
    out: Path | None,
    until: str | None,
    preset: str | None,
    model_path: str | None,
    policy_path: str | None,
    devices: str | None,
    wildness: float | None,
    num_candidates: int | None,
    eval_tasks: int | None,
    seed: int,
    no_progress: bool,
    as_json: bool,
) -> None:
    """Reproduce the Digi-Q experiment on simulated devices: noisy scripted demos -> behaviour
    policy (SL) -> its offline rollouts -> Digi-Q (repr, features, candidates, TD critic,
    Best-of-N) and the baselines Filtered BC and Digi-Q with an MC critic -> evaluation of the
    four policies on the test split -> table with 95% CIs, plots, RESULTS.md.

    Every step is a digiq command run as a subprocess (its log in OUT/logs/); quickstart.json
    records each step's command, wall time and peak memory. Exit code 0 when done, 1 when a
    step failed, 130 when interrupted (run the same command again to resume).
    """
    out = out or Path("runs") / f"quickstart-{task_set}-{scale}"
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, raise_interrupt)

    def echo(text: str) -> None:
        click.echo(text, err=True)

    chosen = SCALES[scale].for_task_set(task_set)
    notes = chosen.notes
    if num_candidates is not None and num_candidates != chosen.num_candidates:
        chosen = dataclasses.replace(chosen, num_candidates=num_candidates)
        notes += f"; N = {num_candidates} candidates per state"
    if eval_tasks is not None and eval_tasks != chosen.eval_tasks:
        available = len(load_task_set(task_set, "test"))
        if eval_tasks > available:  # refused now, not after the training steps
            raise click.BadParameter(
                f"{eval_tasks}, but the {task_set} test split has {available} tasks",
                param_hint="--eval-tasks",
            )
        chosen = dataclasses.replace(chosen, eval_tasks=eval_tasks)
        notes += f"; the first {eval_tasks} test tasks"
    click.echo(f"quickstart ({task_set}, scale {scale}: {notes}) -> {out}", err=True)
    try:
        record: dict[str, Any] = run_quickstart(
            out,
            chosen,
            task_set,
            until=until,
            preset=preset,
            model_path=model_path,
            policy_path=policy_path,
            devices=devices,
            seed=seed,
            wildness=wildness,
            progress=not no_progress,
            echo=echo,
        )
    except KeyboardInterrupt:
        click.echo(f"\ninterrupted; run the same command again to resume ({out})", err=True)
        raise SystemExit(EXIT_INTERRUPTED) from None
    except QuickstartError as exc:
        click.echo(f"Error: {exc}", err=True)
        raise SystemExit(1) from None
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    if as_json:
        click.echo(json.dumps(record, indent=1, default=str))
        return
    if until is not None and until != "report":
        click.echo(f"stopped after {until}; the record is {out / 'quickstart.json'}")
        return
    click.echo(
        "\n".join(
            [
                f"results:  {out / 'RESULTS.md'}",
                f"summary:  {out / 'summary.json'}",
                f"plots:    {out / 'plots'}/",
                f"reports:  {out / 'eval'}/<method>/report.html",
                f"data:     {out / 'data'}/(demos|offline)",
                f"policies: {out / 'runs'}/(behaviour|filtered-bc|digiq|digiq-mc)",
                f"record:   {out / 'quickstart.json'} (logs in {out / 'logs'}/)",
            ]
        )
    )
