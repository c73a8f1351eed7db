"""Pool several quickstart runs: how often the paper's ordering held, and the pooled rates with
their intervals, independent and paired by task.

Why: one quickstart run evaluates 96 episodes per method, and its behaviour policy is retrained
every time, so which method leads a single run is partly chance (README, "The General task
set"). Whether Digi-Q > Filtered BC > behaviour is reproducible is a statement about many runs:
this script reads each run's ``eval/<method>/`` folders, re-judges every episode with both
raters (as the report does) and pools them. Episodes are paired by (run, task, seed), so the
paired interval compares the methods on the very same episodes.

Usage: .venv/bin/python benchmarks/pool_runs.py RUN [RUN ...] [--rater oracle|rules]
Prints JSON: per run the counts and the report's checks, then the pooled counts, the
independent (Newcombe hybrid score) and paired (Newcombe method 10) intervals of Digi-Q against
Filtered BC and against the behaviour policy, and how many runs held the ordering.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from digiq.quickstart import METHODS  # noqa: E402
from digiq.quickstart_report import (  # noqa: E402
    PAIRED_AGAINST,
    EpisodeOutcome,
    counts_from_outcomes,
    difference_interval,
    episode_outcomes,
    ordering_check,
    paired_comparison,
    paired_key,
)


def pool_runs(runs: list[Path], rater: str = "oracle") -> dict[str, object]:
    """Per-run counts and checks, and the pooled comparison of Digi-Q with the baselines."""
    per_run: dict[str, object] = {}
    pooled: dict[str, list[EpisodeOutcome]] = {m: [] for m in METHODS}
    held = significant = 0
    for run in runs:
        outcomes = {m: episode_outcomes(run / "eval" / m) for m in METHODS}
        counts = {m: counts_from_outcomes(o) for m, o in outcomes.items()}
        check = ordering_check(counts, rater)
        held += check["digiq_gt_filtered_bc"] and check["filtered_bc_gt_behaviour"]
        significant += check["gain_significant"]
        per_run[str(run)] = {
            "successes": {m: c[f"{rater}_successes"] for m, c in counts.items()},
            "episodes": counts["digiq"]["episodes"],
            "check": check,
        }
        for method, rows in outcomes.items():  # the run's name keeps its episodes apart
            pooled[method] += [dataclasses.replace(o, task_id=f"{run}:{o.task_id}") for o in rows]
    totals = {m: counts_from_outcomes(o) for m, o in pooled.items()}
    key = f"{rater}_successes"
    comparisons = {}
    for other in PAIRED_AGAINST:
        a, b = totals["digiq"], totals[other]
        low, high = difference_interval(a[key], a["episodes"], b[key], b["episodes"])
        comparisons[paired_key(other)] = {
            "difference": a[key] / a["episodes"] - b[key] / b["episodes"]
            if a["episodes"] and b["episodes"]
            else None,
            "independent_ci": [low, high],
            "paired": paired_comparison(pooled["digiq"], pooled[other], rater),
        }
    return {
        "rater": rater,
        "runs": per_run,
        "pooled": {
            m: {"episodes": c["episodes"], "successes": c[key], "rate": c[f"{rater}_rate"]}
            for m, c in totals.items()
        },
        "comparisons": comparisons,
        "ordering_held": held,
        "gain_significant": significant,
        "run_count": len(runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="quickstart run folders (--out)")
    parser.add_argument("--rater", choices=("oracle", "rules"), default="oracle")
    args = parser.parse_args()
    missing = [str(r) for r in args.runs if not (r / "eval").is_dir()]
    if missing:
        parser.error(f"not quickstart run folders (no eval/ inside): {', '.join(missing)}")
    try:
        pooled = pool_runs(args.runs, args.rater)
    except FileNotFoundError as exc:  # a run stopped before one of its evaluations
        parser.error(str(exc))
    print(json.dumps(pooled, indent=1, default=str))


if __name__ == "__main__":
    main()
