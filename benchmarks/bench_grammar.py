"""Benchmark structured (AutoUI-grammar) decoding against free sampling on real dataset states.

Loads a trained policy and a trajectory dataset, takes the first ``--states`` states of the
dataset, and samples ``--n`` candidates per state at ``--temperature`` in batches of 8, once
with the grammar (:mod:`digiq.models.autoui_grammar`) and once without, ``--repeats`` times in
alternating order. Prints JSON: the median states/s of each mode, their ratio, and the share
of sampled strings that do not parse as AutoUI actions (what the candidates stage re-draws).

Usage: .venv/bin/python benchmarks/bench_grammar.py --policy OUT/runs/behaviour/bc
       --data OUT/data/offline [--states 256 --n 4 --temperature 1.0 --repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import machine  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", type=Path, required=True, help="saved policy folder")
    parser.add_argument("--data", type=Path, required=True, help="trajectory dataset folder")
    parser.add_argument("--states", type=int, default=256, help="dataset states to sample at")
    parser.add_argument("--n", type=int, default=4, help="samples per state")
    parser.add_argument("--temperature", type=float, default=1.0, help="sampling temperature")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per mode")
    args = parser.parse_args()

    from android.actions import parse_autoui
    from digiq.models.policy import PolicyModel
    from trajectories import ReplayBuffer

    model = PolicyModel.load(args.policy)
    model.eval()
    buffer = ReplayBuffer.open(args.data)
    images, texts = [], []
    for episode, steps in buffer.iter_episodes():
        history = []
        for step in steps:
            if not step.action_text:
                break
            images.append(step.image())
            texts.append(model.input_text(history, episode.task, model.config.history))
            history.append(parse_autoui(step.action_text))
            if len(images) >= args.states:
                break
        if len(images) >= args.states:
            break
    batches = [model.prepare(images[i : i + 8], texts[i : i + 8]) for i in range(0, len(images), 8)]

    def run(grammar: bool) -> tuple[float, float]:
        tick = time.perf_counter()
        invalid = total = 0
        for b, batch in enumerate(batches):
            rows = model.sample(
                batch, n=args.n, temperature=args.temperature, seed=b, grammar=grammar
            )
            for row in rows:
                for text, _ in row:
                    total += 1
                    invalid += not parse_autoui(text).is_valid
        return len(images) / (time.perf_counter() - tick), invalid / max(total, 1)

    speed: dict[bool, list[float]] = {True: [], False: []}
    invalid: dict[bool, float] = {}
    run(True)  # warm-up (caches, grammar masks)
    for r in range(args.repeats):
        for grammar in (True, False) if r % 2 == 0 else (False, True):
            per_s, bad = run(grammar)
            speed[grammar].append(per_s)
            invalid[grammar] = bad
    result = {
        "benchmark": "grammar",
        "machine": machine(),
        "policy": str(args.policy),
        "data": str(args.data),
        "states": len(images),
        "n": args.n,
        "temperature": args.temperature,
        "grammar_available": model.grammar is not None,
        "states_per_s_grammar_median": round(statistics.median(speed[True]), 2),
        "states_per_s_free_median": round(statistics.median(speed[False]), 2),
        "speed_ratio_grammar_over_free": round(
            statistics.median(speed[True]) / statistics.median(speed[False]), 3
        ),
        "unparseable_fraction_grammar": round(invalid[True], 4),
        "unparseable_fraction_free": round(invalid[False], 4),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
