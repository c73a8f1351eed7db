"""``digiq train`` / ``digiq-train``: the learner's stages from the command line.

``digiq-train STAGE --data DIR --out RUN [options]`` runs one stage (``repr``, ``features``,
``candidates``, ``critic``, ``policy``, ``bc``) or ``all`` (repr, candidates, features, critic,
policy) through :func:`digiq.pipeline.run_stages`: each stage is recorded in
``RUN/stages.json`` (status, wall time, peak memory, metrics), a finished stage is skipped when
the command is run again (``--force`` re-runs it), and every stage resumes from its own
checkpoints after an interruption. Checkpoints are safetensors with the configuration that
produced them; TensorBoard logs go to ``RUN/work/<stage>/logs`` (policy stages),
``RUN/work/critic/logs`` and ``RUN/repr``.

Options may also come from ``--config file.yaml`` (keys = the long options with ``_``;
per-stage sections such as ``critic: {steps: 800}`` override the top level for that stage);
options given on the command line win over the file.

Exit codes: 0 done, 1 a stage failed (the error names it; ``RUN/stages.json`` has the
traceback), 2 usage errors (unknown option values, a checkpoint path that does not exist),
130 interrupted (run the same command again to resume).
"""

from __future__ import annotations

import functools
import json
import logging
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from digiq._runtime import raise_interrupt
from digiq.models.presets import MissingCheckpointError, list_presets
from digiq.policy_losses import POLICY_LOSSES

__all__ = ["train_group", "main"]

log = logging.getLogger(__name__)

LOSSES = POLICY_LOSSES
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


def _existing_path(option: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def check(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is not None and not Path(value).exists():
            raise click.BadParameter(
                f"checkpoint path {str(value)!r} does not exist", ctx=ctx, param=param
            )
        return value

    return check


def _common_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option(
            "--data",
            "data_dir",
            type=click.Path(file_okay=False, path_type=Path),
            required=True,
            help="Trajectory dataset folder (written by digiq-collect or digiq data import).",
        ),
        click.option(
            "--out",
            "run_dir",
            type=click.Path(file_okay=False, path_type=Path),
            required=True,
            help="Run folder: stages.json, checkpoints, logs and the trained models.",
        ),
        click.option(
            "--preset",
            type=click.Choice(list_presets()),
            default="tiny",
            show_default=True,
            help="Model preset: tiny (everything built from config, CPU-sized) or a real VLM "
            "whose checkpoints you give with --model-path / --policy-path.",
        ),
        click.option(
            "--model-path",
            default=None,
            callback=_existing_path("--model-path"),
            help="Local VLM checkpoint folder (real presets; loaded with local_files_only).",
        ),
        click.option(
            "--policy-path",
            default=None,
            callback=_existing_path("--policy-path"),
            help="Policy to start from: a saved digiq policy folder (bc: fine-tune it instead "
            "of a new tiny model), or a local T5/AutoUI-Base checkpoint folder (real presets).",
        ),
        click.option(
            "--behaviour-policy",
            default=None,
            callback=_existing_path("--behaviour-policy"),
            help="The behaviour policy (a policy folder, or a run trained with `digiq-train "
            "bc`): samples the candidates and initialises the policy stage.",
        ),
        click.option(
            "--config",
            "config_file",
            type=click.Path(dir_okay=False, path_type=Path),
            default=None,
            help="YAML file of options (long option names with _; per-stage sections); "
            "command-line options win.",
        ),
        click.option(
            "--loss",
            type=click.Choice(LOSSES),
            default=None,
            help="Policy loss. policy stage: bestofn (default: imitate the critic's best "
            "candidate when its advantage > threshold), sft, filtered-bc, awr, pg. bc stage: "
            "sft (default: every step) or filtered-bc (successful episodes only).",
        ),
        click.option(
            "--target",
            type=click.Choice(["td", "td-expected", "mc"]),
            default=None,
            help="Critic target: td (Digi-Q: Q <- r + gamma V'(s'), V <- Q(s, a_dataset)), "
            "td-expected (the same Q target, V <- the mean Q of the state's N candidates, "
            "samples of the behaviour policy) or mc (every head regresses to the Monte-Carlo "
            "return). [default: td]",
        ),
        click.option(
            "--threshold",
            type=float,
            default=None,
            help="Best-of-N advantage threshold. [default: per episode, 0.05 Web Shopping, "
            "0.10 General]",
        ),
        click.option(
            "--anchor-weight",
            type=click.FloatRange(min=0),
            default=None,
            help="policy stage, bestofn: at states where no candidate clears the threshold, "
            "imitate the dataset action (a behaviour-policy sample) with this weight, which "
            "keeps the policy near the behaviour policy where the critic says nothing. "
            "[default: 0, the published loss: such states get no loss]",
        ),
        click.option(
            "--num-candidates",
            type=click.IntRange(min=1),
            default=None,
            help="Candidates per state including the dataset action. [default: 16]",
        ),
        click.option(
            "--temperature",
            type=click.FloatRange(min=0, min_open=True),
            default=None,
            help="Sampling temperature of the candidates. [default: 1.2]",
        ),
        click.option(
            "--steps",
            type=click.IntRange(min=1),
            default=None,
            help="Optimiser steps of the training stage(s) (wins over --epochs). [default: "
            "critic 800; bc/policy from --epochs]",
        ),
        click.option(
            "--epochs",
            type=click.FloatRange(min=0, min_open=True),
            default=None,
            help="Passes over the training data (repr, bc, policy). [default: the preset's / "
            "16 for bc, 2 for policy]",
        ),
        click.option(
            "--lr",
            type=click.FloatRange(min=0, min_open=True),
            default=None,
            help="Learning rate of the training stage(s). [default: the preset's]",
        ),
        click.option(
            "--batch-size",
            type=click.IntRange(min=1),
            default=None,
            help="Batch size of the training stage(s). [default: the preset's]",
        ),
        click.option(
            "--policy-history",
            type=click.IntRange(min=1),
            default=None,
            help="bc stage, a new policy: how many previous actions its input text lists "
            "(the 'Previous Actions' of AutoUI's prompt). 2 tells a site's home page reached "
            "by typing its address from a results page reached by typing a query, which both "
            "follow PRESS_ENTER. A policy fine-tuned from another keeps that one's. "
            "[default: 1, the published last action]",
        ),
        click.option(
            "--lora",
            is_flag=True,
            default=None,
            help="repr stage: LoRA (peft) on the VLM's attention instead of a full fine-tune.",
        ),
        click.option(
            "--ui-tree-text/--no-ui-tree-text",
            default=None,
            help="features stage: give the critic the recorded UI tree's text (the screen's "
            "labelled elements, the element each candidate action hits), or not (the "
            "published inputs). [default: the preset's, on for tiny]",
        ),
        click.option(
            "--clip-values/--no-clip-values",
            default=None,
            help="critic stage: clip the critic's Q and V scores to the interval the data's "
            "discounted returns can lie in ([0, 1/(1-gamma)] for 0/1 rewards), so that a value "
            "the critic cannot mean never makes a Best-of-N target; --no-clip-values scores as "
            "the published code does. [default: clip]",
        ),
        click.option(
            "--device",
            type=click.Choice(["auto", "cpu", "cuda"]),
            default=None,
            help="Torch device. [default: auto = cuda when available, else cpu]",
        ),
        click.option(
            "--workers",
            type=click.IntRange(min=1),
            default=None,
            help="candidates stage: processes sharing the sampling, this one included, each "
            "with one torch thread. On a 2-core CPU machine 2 sampled 1.3x faster than one "
            "process with 2 threads (the decoding loop is mostly single-threaded Python); "
            "keep 1 on a GPU. [default: 1]",
        ),
        click.option("--seed", type=int, default=None, help="Seed of every stage. [default: 0]"),
        click.option(
            "--task-set",
            default=None,
            help="Train on the episodes of this task set only (webshop, general...).",
        ),
        click.option(
            "--features-from",
            default=None,
            callback=_existing_path("--features-from"),
            help="Reuse the repr checkpoint, candidate set and feature stores of this other run "
            "over the same dataset (ablations: critic --target mc, then policy, without a second "
            "feature extraction).",
        ),
        click.option(
            "--force",
            is_flag=True,
            help="Run stages again even when RUN/stages.json marks them done.",
        ),
        click.option("--no-progress", is_flag=True, help="No progress bars."),
        click.option("--json", "as_json", is_flag=True, help="Print the stage records as JSON."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _run(stage_names: list[str], **opts: Any) -> None:
    from digiq.pipeline import PipelineError, load_config, merge_config, run_stages

    data_dir: Path = opts.pop("data_dir")
    run_dir: Path = opts.pop("run_dir")
    preset: str = opts.pop("preset")
    config_file: Path | None = opts.pop("config_file")
    force: bool = opts.pop("force")
    as_json: bool = opts.pop("as_json")
    no_progress: bool = opts.pop("no_progress")
    if not (data_dir / "manifest.json").is_file():
        raise click.BadParameter(
            f"{str(data_dir)!r} is not a trajectory dataset (no manifest.json)", param_hint="--data"
        )
    if opts.get("device") == "auto":
        opts["device"] = None
    cli = dict(opts)
    if no_progress:
        cli["progress"] = False
    try:
        file_config = load_config(config_file) if config_file else None
        config = merge_config(file_config, cli)
    except (FileNotFoundError, ValueError) as exc:
        raise click.BadParameter(str(exc), param_hint="--config") from None
    for key, option in (
        ("model_path", "--model-path"),
        ("policy_path", "--policy-path"),
        ("behaviour_policy", "--behaviour-policy"),
    ):
        value = config.get(key)
        if value and not Path(value).exists():
            raise click.BadParameter(
                f"checkpoint path {str(value)!r} does not exist", param_hint=option
            )
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        record = run_stages(
            stage_names,
            run_dir,
            data_dir,
            preset,
            config,
            force=force,
            echo=functools.partial(click.echo, err=True),
        )
    except KeyboardInterrupt:
        click.echo(
            f"\ninterrupted; run the same command again to resume (state in {run_dir})", err=True
        )
        raise SystemExit(EXIT_INTERRUPTED) from None
    except (MissingCheckpointError, FileNotFoundError) as exc:
        click.echo(f"Error: {exc}", err=True)
        raise SystemExit(2) from None
    except (PipelineError, ValueError, RuntimeError) as exc:
        click.echo(f"Error: {exc} (details in {run_dir / 'stages.json'})", err=True)
        raise SystemExit(EXIT_FAILED) from None
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    if as_json:
        click.echo(json.dumps(record, indent=1, sort_keys=True, default=str))
    else:
        for name in stage_names if stage_names != ["all"] else record["stages"]:
            entry = record["stages"].get(name) or {}
            click.echo(_summary_line(name, entry))


def _summary_line(name: str, entry: dict[str, Any]) -> str:
    metrics = entry.get("metrics") or {}
    keys = [
        "val/action_match",
        "val/text_match",
        "val/loss",
        "val/corr_v_mc",
        "val_accuracy",
        "states",
        "name",
        "steps",
        "step",
    ]
    shown = ", ".join(
        f"{k}={metrics[k]:.4g}" if isinstance(metrics[k], float) else f"{k}={metrics[k]}"
        for k in keys
        if k in metrics
    )
    wall = entry.get("wall_s")
    timing = f" in {wall:.1f} s" if isinstance(wall, int | float) else ""
    return f"{name}: {entry.get('status', '?')}{timing}" + (f" ({shown})" if shown else "")


@click.group(name="train", context_settings={"help_option_names": ["-h", "--help"]})
def train_group() -> None:
    """Train the Digi-Q learner's stages on a trajectory dataset (resumable, recorded in
    RUN/stages.json).

    \b
    Typical run on the tiny preset:
      digiq-train bc  --data DATA --out runs/bp              # behaviour policy (SFT)
      digiq-train all --data DATA --out runs/dq --behaviour-policy runs/bp
      digiq-eval --agent runs/dq --task-set webshop          # the extracted policy
    """


def _stage_command(name: str, summary: str) -> click.Command:
    @_common_options
    def command(**opts: Any) -> None:
        _run([name], **opts)

    command.__doc__ = summary
    return train_group.command(name=name, help=summary)(command)


_stage_command(
    "repr",
    "Representation fine-tuning of the VLM: yes/no 'does this action change the screen' "
    "labels from screen differences (RUN/repr).",
)
_stage_command(
    "features",
    "Cache the critic's inputs (VLM answer-token features, state and action-text embeddings) "
    "for every (state, candidate) in DATA/features.",
)
_stage_command(
    "candidates",
    "Sample N-1 actions per dataset state from the behaviour policy at temperature 1.2 "
    "(invalid ones re-drawn up to 3 times; candidate 0 = the dataset action) into "
    "DATA/candidates. Needs --behaviour-policy.",
)
_stage_command(
    "critic",
    "Train the twin Q / V critic heads (TD or --target mc) on the cached features "
    "(RUN/work/critic).",
)
_stage_command(
    "policy",
    "Extract a policy from the critic (--loss bestofn by default; sft, filtered-bc, awr, pg), "
    "starting from --behaviour-policy (RUN/policy).",
)
_stage_command(
    "bc",
    "Behaviour cloning: supervised learning on the dataset actions (--loss sft, or "
    "filtered-bc for successful episodes only) from a new tiny model or --policy-path "
    "(RUN/bc).",
)
_stage_command(
    "all",
    "Run repr, candidates, features, critic and policy in order (finished stages are skipped). "
    "Needs --behaviour-policy.",
)


def main() -> None:
    """``python -m digiq.train_cli``: the train group (what ``digiq-train`` runs)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    train_group(prog_name="digiq-train")


if __name__ == "__main__":
    main()
