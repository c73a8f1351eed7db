"""What keeping freed memory in the heap (android/allocator.py) saves, per digiq command.

    .venv/bin/python benchmarks/bench_allocator.py [--repeats 2] [--demos 40] [--bc-steps 100]
        [--collect-episodes 60] [--collect-agent scripted|RUN] [--keep DIR]

Every ``digiq`` command calls :func:`android.allocator.keep_freed_memory` first;
``DIGIQ_MALLOC_TUNING=0`` turns it off. This runs the same commands both ways, alternating the
order in each repeat, and measures each child process tree with ``os.wait4``: wall seconds,
user and system CPU seconds, minor page faults and the largest resident set.

Workloads (simulated phones behind a private adb server, started by the command itself):

* ``collect``: ``digiq collect --task-set general --split train --devices sim:2 --autorater
  rules --image-format webp`` of ``--collect-episodes`` episodes with ``--collect-agent``
  (``scripted`` at noise 0.85 by default; a trained policy run folder, e.g. a quickstart's
  ``runs/behaviour?temperature=0.8``, measures the offline collection itself);
* ``bc``: ``digiq train bc --preset tiny --steps --bc-steps`` on ``--demos`` scripted General
  demonstrations collected once beforehand (not timed).

Prints one JSON object: per workload and setting the medians, and the ratio tuned / default of
the medians of wall time, system time and faults.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import ROOT, machine

from android.allocator import DISABLE_ENV


def _digiq(*args: str) -> list[str]:
    return [sys.executable, "-m", "digiq.cli", *args]


def _run(command: list[str], tuned: bool, log: Path) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env["HF_HUB_OFFLINE"] = "1"
    if tuned:
        env.pop(DISABLE_ENV, None)
    else:
        env[DISABLE_ENV] = "0"
    started = time.perf_counter()
    with open(log, "wb") as err:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:]
        raise SystemExit(f"{' '.join(command)} failed ({proc.returncode}), {log}:\n{tail}")
    return {
        "wall_s": round(wall, 2),
        "user_s": round(usage.ru_utime, 2),
        "sys_s": round(usage.ru_stime, 2),
        "minor_faults": int(usage.ru_minflt),
        "max_rss_mb": round(usage.ru_maxrss / 1024, 1),
    }


def _median(runs: list[dict[str, float]], key: str) -> float:
    return round(statistics.median(r[key] for r in runs), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=2, help="runs of each setting")
    parser.add_argument("--demos", type=int, default=40, help="scripted episodes for bc")
    parser.add_argument("--bc-steps", type=int, default=100, help="bc optimiser steps")
    parser.add_argument("--collect-episodes", type=int, default=60, help="episodes collected")
    parser.add_argument(
        "--collect-agent", default="scripted", help="'scripted' or a policy agent spec"
    )
    parser.add_argument("--keep", type=Path, default=None, help="work folder to keep")
    args = parser.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="digiq-bench-alloc-"))
    work.mkdir(parents=True, exist_ok=True)
    collect = [
        "collect",
        "--task-set",
        "general",
        "--split",
        "train",
        "--devices",
        "sim:2",
        "--autorater",
        "rules",
        "--image-format",
        "webp",
        "--no-progress",
        "--agent-seed",
        "0",
    ]
    demos = work / "demos"
    if not demos.exists():
        _run(
            _digiq(
                *collect,
                "--episodes",
                str(args.demos),
                "--agent",
                "scripted",
                "--noise",
                "0.85",
                "--out",
                str(demos),
            ),
            tuned=True,
            log=work / "demos.log",
        )
    agent = ["--agent", "scripted", "--noise", "0.85"]
    if args.collect_agent != "scripted":
        agent = ["--agent", args.collect_agent]

    def workloads(tag: str) -> dict[str, list[str]]:
        out = work / tag
        shutil.rmtree(out, ignore_errors=True)
        return {
            "collect": _digiq(
                *collect,
                "--episodes",
                str(args.collect_episodes),
                *agent,
                "--out",
                str(out / "collect"),
            ),
            "bc": _digiq(
                "train",
                "bc",
                "--data",
                str(demos),
                "--out",
                str(out / "bc"),
                "--steps",
                str(args.bc_steps),
                "--preset",
                "tiny",
                "--seed",
                "0",
                "--no-progress",
            ),
        }

    runs: dict[str, dict[str, list[dict[str, float]]]] = {
        "collect": {"tuned": [], "default": []},
        "bc": {"tuned": [], "default": []},
    }
    for repeat in range(args.repeats):
        order = [True, False] if repeat % 2 == 0 else [False, True]
        for tuned in order:
            setting = "tuned" if tuned else "default"
            for name, command in workloads(f"r{repeat}-{setting}").items():
                log = work / f"r{repeat}-{setting}-{name}.log"
                runs[name][setting].append(_run(command, tuned, log))

    result: dict[str, Any] = {
        "benchmark": "allocator",
        "machine": machine(),
        "settings": vars(args) | {"keep": str(args.keep) if args.keep else None},
        "workloads": {},
    }
    for name, by_setting in runs.items():
        medians = {
            setting: {key: _median(values, key) for key in values[0]}
            for setting, values in by_setting.items()
        }
        result["workloads"][name] = {
            "median": medians,
            "ratio_tuned_over_default": {
                key: round(medians["tuned"][key] / medians["default"][key], 3)
                for key in ("wall_s", "sys_s", "minor_faults", "max_rss_mb")
                if medians["default"][key]
            },
            "runs": by_setting,
        }
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
