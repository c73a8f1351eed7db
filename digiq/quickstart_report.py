"""The quickstart's report: the results table, its statistics, plots and ``RESULTS.md``.

Success is counted twice per evaluation episode: by the rules autorater that judged the run
(its recorded verdicts: ``success`` in ``results.jsonl``) and by the simulator's oracle,
re-judged offline from the ground truth recorded at every step (an episode is an oracle
success when any of its observations satisfies the goal). Intervals are 95% Wilson score
intervals per method; the gain of a method over the behaviour policy gets Newcombe's hybrid
score interval for a difference of two independent proportions, so "the gain is larger than
the confidence intervals" is a statement with a definite meaning: the gain's interval lies
above zero. That verdict keeps the independent interval, the conservative one.

Every method runs the same test tasks with the same seeds, so the report also pairs the
episodes: how many tasks one method solved and the other did not, and Newcombe's paired
interval for the difference (:func:`paired_difference_interval`). Outcomes are nearly
all-or-nothing per task, so that interval is the one that says how sure a single run is of
which method leads; it is reported beside the verdict, not in place of it. Success per goal
kind (web search, open an app, ...) shows where each method wins.
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eval.report import read_steps
from eval.results import latest_results, read_results, wilson_interval
from trajectories.manifest import atomic_write_bytes

log = logging.getLogger(__name__)

__all__ = [
    "EpisodeOutcome",
    "episode_outcomes",
    "counts_from_outcomes",
    "evaluation_counts",
    "difference_interval",
    "paired_difference_interval",
    "paired_comparison",
    "PAIRED_AGAINST",
    "paired_key",
    "write_report",
    "ordering_check",
]


@dataclass(frozen=True)
class EpisodeOutcome:
    """One evaluation episode's verdicts, keyed by (task, seed) so methods can be paired:
    every method of a quickstart runs the same test tasks with the same seeds."""

    task_id: str
    seed: int
    kind: str
    error: bool
    rules: bool
    oracle: bool
    has_ground_truth: bool

    @property
    def key(self) -> tuple[str, int]:
        return self.task_id, self.seed


def episode_outcomes(eval_dir: Path) -> list[EpisodeOutcome]:
    """Every finished episode of one ``digiq-eval`` run folder, judged by both raters."""
    from eval.autoraters.oracle import oracle_verdict
    from eval.goals import Goal

    path = eval_dir / "results.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: the evaluation step has not run")
    outcomes = []
    for result in latest_results(read_results(path)):
        kind = str(result.goal.get("kind", "?"))
        if result.is_error:  # an errored episode counts as a failure, never as a success
            outcomes.append(
                EpisodeOutcome(
                    result.task_id,
                    result.seed,
                    kind,
                    error=True,
                    rules=False,
                    oracle=False,
                    has_ground_truth=True,  # not asked: the episode never finished
                )
            )
            continue
        goal = Goal.from_dict(result.goal)
        rows = read_steps(eval_dir / result.artifacts / "steps.jsonl")
        truths = [r.get("ground_truth") for r in rows if r.get("step", 0) >= 1]
        oracle = any(
            t and oracle_verdict(goal, t).status == "success" for t in truths if isinstance(t, dict)
        )
        outcomes.append(
            EpisodeOutcome(
                result.task_id,
                result.seed,
                kind,
                error=False,
                rules=bool(result.success),
                oracle=oracle,
                has_ground_truth=any(truths),
            )
        )
    return outcomes


def counts_from_outcomes(outcomes: Sequence[EpisodeOutcome]) -> dict[str, Any]:
    """Episodes, errors, rules and oracle successes with their Wilson intervals, overall and
    per goal kind (web search, open an app, ...)."""
    n = len(outcomes)
    rules = sum(o.rules for o in outcomes)
    oracle = sum(o.oracle for o in outcomes)
    by_kind: dict[str, dict[str, int]] = {}
    for o in outcomes:
        row = by_kind.setdefault(
            o.kind, {"episodes": 0, "rules_successes": 0, "oracle_successes": 0}
        )
        row["episodes"] += 1
        row["rules_successes"] += o.rules
        row["oracle_successes"] += o.oracle
    return {
        "episodes": n,
        "errors": sum(o.error for o in outcomes),
        "rules_successes": rules,
        "oracle_successes": oracle,
        "episodes_without_ground_truth": sum(
            not o.error and not o.has_ground_truth for o in outcomes
        ),
        "rules_rate": rules / n if n else None,
        "oracle_rate": oracle / n if n else None,
        "rules_ci": list(wilson_interval(rules, n)),
        "oracle_ci": list(wilson_interval(oracle, n)),
        "by_kind": dict(sorted(by_kind.items())),
    }


def evaluation_counts(eval_dir: Path) -> dict[str, Any]:
    """Episodes, errors, rules and oracle successes of one ``digiq-eval`` run folder."""
    return counts_from_outcomes(episode_outcomes(eval_dir))


def _square_and_add(k1: int, n1: int, k2: int, n2: int, phi: float) -> tuple[float, float]:
    """Newcombe's interval for p1 - p2 from the two Wilson intervals, with ``phi`` the
    correlation of the two estimates (0 for independent samples)."""
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson_interval(k1, n1)
    l2, u2 = wilson_interval(k2, n2)
    d = p1 - p2
    low_var = (p1 - l1) ** 2 + (u2 - p2) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2)
    high_var = (u1 - p1) ** 2 + (p2 - l2) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2)
    low = d - math.sqrt(max(0.0, low_var))
    high = d + math.sqrt(max(0.0, high_var))
    return max(-1.0, low), min(1.0, high)


def difference_interval(k1: int, n1: int, k2: int, n2: int) -> tuple[float, float]:
    """Newcombe's hybrid score 95% interval for p1 - p2 (independent samples)."""
    if n1 == 0 or n2 == 0:
        return -1.0, 1.0
    return _square_and_add(k1, n1, k2, n2, 0.0)


def paired_difference_interval(
    both: int, first_only: int, second_only: int, neither: int
) -> tuple[float, float]:
    """Newcombe's square-and-add 95% interval for p1 - p2 on paired outcomes (Newcombe 1998,
    Statistics in Medicine 17:2635, method 10): the two Wilson intervals combined with the
    correlation of the pairs, continuity-corrected as published. Two methods run on the same
    tasks and seeds fail and succeed on the same hard and easy tasks, so this interval is
    narrower than the independent one when the outcomes are positively correlated."""
    n = both + first_only + second_only + neither
    if n == 0:
        return -1.0, 1.0
    k1, k2 = both + first_only, both + second_only
    margins = k1 * (n - k1) * k2 * (n - k2)
    phi = 0.0
    if margins > 0:
        cross = both * neither - first_only * second_only
        if cross > n / 2:
            phi = (cross - n / 2) / math.sqrt(margins)
        elif cross < 0:
            phi = cross / math.sqrt(margins)
    return _square_and_add(k1, n, k2, n, phi)


def paired_comparison(
    first: Sequence[EpisodeOutcome], second: Sequence[EpisodeOutcome], rater: str
) -> dict[str, Any]:
    """Two methods compared episode by episode on the (task, seed) pairs both ran: how many
    each solved alone, and the paired interval of the difference in success rate."""
    if rater not in ("oracle", "rules"):
        raise ValueError(f"rater must be 'oracle' or 'rules', not {rater!r}")
    second_by_key = {o.key: o for o in second}
    table = {"both": 0, "first_only": 0, "second_only": 0, "neither": 0}
    for a in {o.key: o for o in first}.values():
        b = second_by_key.get(a.key)
        if b is None:
            continue
        x, y = getattr(a, rater), getattr(b, rater)
        table["both" if x and y else "first_only" if x else "second_only" if y else "neither"] += 1
    pairs = sum(table.values())
    low, high = paired_difference_interval(
        table["both"], table["first_only"], table["second_only"], table["neither"]
    )
    return {
        "pairs": pairs,
        **table,
        "difference": (table["first_only"] - table["second_only"]) / pairs if pairs else 0.0,
        "ci": [low, high],
    }


PAIRED_AGAINST = ("behaviour", "filtered-bc")  # the methods Digi-Q is paired with


def paired_key(other: str) -> str:
    """``summary.json``'s key of Digi-Q paired with ``other``: ``digiq_vs_filtered_bc``."""
    return f"digiq_vs_{other.replace('-', '_')}"


def ordering_check(counts: dict[str, dict[str, Any]], rater: str) -> dict[str, Any]:
    """The paper's claim on one rater's counts: Digi-Q > Filtered BC > behaviour, and the
    Digi-Q gain over the behaviour policy significant (its 95% interval above zero)."""
    key = f"{rater}_successes"
    rate = {m: (c[key] / c["episodes"] if c["episodes"] else 0.0) for m, c in counts.items()}
    low, high = difference_interval(
        counts["digiq"][key],
        counts["digiq"]["episodes"],
        counts["behaviour"][key],
        counts["behaviour"]["episodes"],
    )
    return {
        "digiq_gt_filtered_bc": rate["digiq"] > rate["filtered-bc"],
        "filtered_bc_gt_behaviour": rate["filtered-bc"] > rate["behaviour"],
        "digiq_gain": rate["digiq"] - rate["behaviour"],
        "digiq_gain_ci": [low, high],
        "gain_significant": low > 0,
    }


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _ci(interval: list[float]) -> str:
    return f"[{100 * interval[0]:.1f}, {100 * interval[1]:.1f}]"


def _table_rows(counts: dict[str, dict[str, Any]], labels: dict[str, str]) -> list[list[str]]:
    rows = []
    base = counts["behaviour"]
    for method, c in counts.items():
        gain_low, gain_high = difference_interval(
            c["oracle_successes"], c["episodes"], base["oracle_successes"], base["episodes"]
        )
        gain = (
            "-"
            if method == "behaviour"
            else f"{100 * ((c['oracle_rate'] or 0) - (base['oracle_rate'] or 0)):+.1f} "
            f"[{100 * gain_low:+.1f}, {100 * gain_high:+.1f}]"
        )
        rows.append(
            [
                labels[method],
                str(c["episodes"]),
                f"{_pct(c['oracle_rate'])} {_ci(c['oracle_ci'])}",
                f"{_pct(c['rules_rate'])} {_ci(c['rules_ci'])}",
                gain,
                str(c["errors"]),
            ]
        )
    return rows


HEADER = [
    "method",
    "episodes",
    "success, oracle [95% CI]",
    "success, rules [95% CI]",
    "gain over behaviour, oracle [95% CI]",
    "errors",
]


SHORT_LABELS = {"behaviour": "behaviour", "filtered-bc": "Filtered BC"}


def _paired_text(paired: dict[str, dict[str, Any]]) -> str:
    parts = []
    for method in PAIRED_AGAINST:
        comparison, other = paired[paired_key(method)], SHORT_LABELS[method]
        low, high = comparison["ci"]
        parts.append(
            f"Digi-Q vs {other} on {comparison['pairs']} pairs: Digi-Q alone "
            f"{comparison['first_only']}, {other} alone {comparison['second_only']}, "
            f"difference {100 * comparison['difference']:+.1f} [{100 * low:+.1f}, "
            f"{100 * high:+.1f}], " + ("above zero" if low > 0 else "not above zero")
        )
    return "; ".join(parts)


def _kind_table(
    counts: dict[str, dict[str, Any]], labels: dict[str, str]
) -> tuple[list[str], list[list[str]]]:
    kinds = sorted({k for c in counts.values() for k in c.get("by_kind", {})})
    header = ["goal kind", *[labels[m] for m in counts]]
    rows = []
    for kind in kinds:
        cells = []
        for c in counts.values():
            row = c.get("by_kind", {}).get(kind)
            cells.append(f"{row['oracle_successes']}/{row['episodes']}" if row else "-")
        rows.append([kind, *cells])
    return header, rows


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _text_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    body = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join([line, "-" * len(line), *body])


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    if not path.is_file():
        return rows
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def _curve(rows: list[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    xs = [float(r["step"]) for r in rows if isinstance(r.get(key), int | float)]
    ys = [float(r[key]) for r in rows if isinstance(r.get(key), int | float)]
    return xs, ys


def _plots(out: Path, counts: dict[str, dict[str, Any]], labels: dict[str, str]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots = out / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    written: list[str] = []

    # Success per method with 95% Wilson error bars, oracle and rules side by side.
    fig, ax = plt.subplots(figsize=(7.5, 4))
    methods = list(counts)
    width = 0.38
    for offset, rater, colour in (
        (-width / 2, "oracle", "#3b75af"),
        (width / 2, "rules", "#ef8636"),
    ):
        rates = [100 * (counts[m][f"{rater}_rate"] or 0) for m in methods]
        lows = [rates[i] - 100 * counts[m][f"{rater}_ci"][0] for i, m in enumerate(methods)]
        highs = [100 * counts[m][f"{rater}_ci"][1] - rates[i] for i, m in enumerate(methods)]
        ax.bar(
            [i + offset for i in range(len(methods))],
            rates,
            width,
            yerr=[lows, highs],
            capsize=4,
            label=f"{rater} autorater",
            color=colour,
        )
    ax.set_xticks(range(len(methods)))
    ax.set_xticklabels([labels[m].split(" (")[0] for m in methods], fontsize=8)
    ax.set_ylabel("success rate (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"Test success, {counts[methods[0]]['episodes']} episodes per method (95% CI)")
    ax.legend()
    fig.tight_layout()
    path = plots / "success.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(str(path))

    # Critic learning curves: TD (Digi-Q) and MC (ablation).
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for run, style in (("digiq", "-"), ("digiq-mc", "--")):
        rows = _read_jsonl(out / "runs" / run / "work" / "critic" / "logs" / "metrics.jsonl")
        for ax, key, title in (
            (axes[0], "critic/q_loss", "Q loss"),
            (axes[1], "critic/v_loss", "V loss"),
        ):
            xs, ys = _curve(rows, key)
            if xs:
                ax.plot(xs, ys, style, label=run)
                ax.set_title(title)
                ax.set_xlabel("critic step")
                ax.set_yscale("log")
    for ax in axes:
        if ax.lines:
            ax.legend()
    fig.tight_layout()
    path = plots / "critic_curves.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(str(path))

    # Policy learning curves: training loss of every trained policy.
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for run, stage in (
        ("behaviour", "bc"),
        ("filtered-bc", "bc"),
        ("digiq", "policy"),
        ("digiq-mc", "policy"),
    ):
        rows = _read_jsonl(out / "runs" / run / "work" / stage / "logs" / "metrics.jsonl")
        xs, ys = _curve(rows, f"{stage}/loss")
        if xs:
            ax.plot(xs, ys, label=run)
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("training loss")
    ax.set_yscale("log")
    ax.set_title("Policy training")
    if ax.lines:
        ax.legend()
    fig.tight_layout()
    path = plots / "policy_curves.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(str(path))
    return written


def _stage_table(record: dict[str, Any]) -> str:
    """Wall time and peak memory per step. Steps of a group ran at the same time: the total
    counts the group's wall time once, and the peak is at most the sum of its steps' peaks."""
    groups = record.get("groups", {})
    group_of = {name: g for g, info in groups.items() for name in info.get("steps", [])}
    rows = []
    total = 0.0
    for name, entry in record.get("steps", {}).items():
        if name == "report":
            continue
        wall = float(entry.get("wall_s") or 0.0)
        if name not in group_of:
            total += wall
        rows.append(
            [
                name,
                entry.get("status", "?"),
                f"{wall:.1f}",
                f"{entry.get('peak_rss_mb', 0):.0f}",
                group_of.get(name, ""),
            ]
        )
    for group, info in groups.items():
        total += float(info.get("wall_s") or 0.0)
        rows.append(
            [
                f"({group}, together)",
                "",
                f"{float(info.get('wall_s') or 0.0):.1f}",
                f"<= {float(info.get('peak_rss_mb_sum') or 0):.0f}",
                group,
            ]
        )
    peak = max(
        [float(e.get("peak_rss_mb") or 0) for e in record.get("steps", {}).values()]
        + [float(g.get("peak_rss_mb_sum") or 0) for g in groups.values()],
        default=0,
    )
    rows.append(["total", "", f"{total:.1f}", f"{peak:.0f} (max)", ""])
    return _markdown_table(
        ["step", "status", "wall time (s)", "peak memory (MiB)", "group (run together)"],
        rows,
    )


def _training_facts(out: Path) -> dict[str, Any]:
    """A few numbers from the training runs that explain the result."""
    facts: dict[str, Any] = {}
    for run in ("behaviour", "filtered-bc", "digiq", "digiq-mc"):
        path = out / "runs" / run / "stages.json"
        if not path.is_file():
            continue
        stages = json.loads(path.read_text()).get("stages", {})
        for stage, entry in stages.items():
            metrics = entry.get("metrics") or {}
            keep = {
                k: v
                for k, v in metrics.items()
                if isinstance(v, int | float)
                and (k.startswith("val") or k in ("states", "train_examples", "train_nonzero"))
            }
            if metrics.get("unchanged"):
                keep["unchanged"] = metrics["unchanged"]  # nothing to train on: the init policy
            if keep:
                facts[f"{run}/{stage}"] = keep
    for name in ("demos", "offline"):
        root = out / "data" / name
        if not (root / "manifest.json").is_file():
            continue
        from android.actions import parse_autoui
        from trajectories import ReplayBuffer

        buffer = ReplayBuffer.open(root)
        episodes = buffer.episodes()
        transitions = list(buffer.iter_transitions())
        facts[f"data/{name}"] = {
            "episodes": len(episodes),
            "successful_episodes": sum(1 for e in episodes if e.success),
            "transitions": len(transitions),
            "invalid_actions": sum(
                1 for t in transitions if not parse_autoui(t.action_text).is_valid
            ),
        }
    return facts


def write_report(out: Path, record: dict[str, Any]) -> dict[str, Any]:
    """Write ``summary.json``, ``RESULTS.md`` and ``plots/*.png`` into ``out``."""
    from digiq.quickstart import METHODS

    labels = {m: label for m, (_, _, label) in METHODS.items()}
    outcomes = {m: episode_outcomes(out / "eval" / m) for m in METHODS}
    counts = {m: counts_from_outcomes(o) for m, o in outcomes.items()}
    rows = _table_rows(counts, labels)
    checks = {r: ordering_check(counts, r) for r in ("oracle", "rules")}
    for rater, check in checks.items():
        check["paired"] = {
            paired_key(other): paired_comparison(outcomes["digiq"], outcomes[other], rater)
            for other in PAIRED_AGAINST
        }
        check["gain_significant_paired"] = check["paired"][paired_key("behaviour")]["ci"][0] > 0
    plots = _plots(out, counts, labels)
    settings = record.get("settings", {})
    scale = settings.get("scale", {})
    facts = _training_facts(out)
    text_table = _text_table(HEADER, rows)
    verdict_lines = []
    for rater, check in checks.items():
        low, high = check["digiq_gain_ci"]
        verdict_lines.append(
            f"{rater}: Digi-Q > Filtered BC: {'yes' if check['digiq_gt_filtered_bc'] else 'NO'}; "
            f"Filtered BC > behaviour: {'yes' if check['filtered_bc_gt_behaviour'] else 'NO'}; "
            f"Digi-Q gain over behaviour {100 * check['digiq_gain']:+.1f} points, 95% CI "
            f"[{100 * low:+.1f}, {100 * high:+.1f}]: "
            + (
                "its interval lies above zero (significant)"
                if check["gain_significant"]
                else "its interval does NOT lie above zero"
            )
        )
        verdict_lines.append(f"{rater}, paired by task: " + _paired_text(check["paired"]))
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(record.get("started", time.time())))
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}"
    devices = str(settings.get("devices"))
    if settings.get("wildness") is not None:
        devices += f" (wildness {settings['wildness']})"
    markdown = "\n".join(
        [
            f"# Quickstart results ({settings.get('task_set', '?')}, scale {scale.get('name')})",
            "",
            f"Run {when} on {machine}; preset {settings.get('preset')}; devices "
            f"{devices}; seed {settings.get('seed')}. Test split, first "
            f"{scale.get('eval_tasks')} tasks x {scale.get('eval_seeds')} seed(s) per method.",
            "",
            _markdown_table(HEADER, rows),
            "",
            *[f"- {line}" for line in verdict_lines],
            "",
            "Paired by task: every method ran the same test tasks with the same seeds; "
            "'alone' counts the episodes one method solved and the other did not, and the "
            "interval is Newcombe's for paired proportions. The verdict above uses the "
            "independent intervals of the table.",
            "",
            "## Success per goal kind (oracle)",
            "",
            _markdown_table(*_kind_table(counts, labels)),
            "",
            "Success counts an errored episode as a failure. Oracle = the simulator's ground "
            "truth re-judged at every recorded step; rules = the verdicts of the rules "
            "autorater during the run (which also ended the episode).",
            "",
            "## Steps: wall time and peak memory (process tree)",
            "",
            _stage_table(record),
            "",
            "## Plots",
            "",
            *[f"![{Path(p).stem}](plots/{Path(p).name})" for p in plots],
            "",
            "## Evaluation reports",
            "",
            *[f"- {m}: eval/{m}/report.html" for m in METHODS],
            "",
            "## Training facts",
            "",
            "```json",
            json.dumps(facts, indent=1, default=str),
            "```",
            "",
        ]
    )
    atomic_write_bytes(out / "RESULTS.md", markdown.encode())
    summary = {
        "counts": counts,
        "checks": checks,
        "training": facts,
        "table_text": text_table + "\n" + "\n".join(verdict_lines),
        "files": [
            str(out / "RESULTS.md"),
            str(out / "summary.json"),
            *plots,
            *[str(out / "eval" / m / "report.html") for m in METHODS],
        ],
    }
    atomic_write_bytes(out / "summary.json", json.dumps(summary, indent=1, default=str).encode())
    return summary
