"""Does a critic variant rank actions better on episodes it never saw? (simulated General, Web Shopping)

The Best-of-N targets come from the critic's ranking of candidates that are never in the data
(only candidate 0, the dataset action, has a training target), so what matters is how the
critic generalises. This script holds out a quarter of a run's offline episodes (by a hash of
the episode id, as ``diagnose_targets.py --data-size`` does), trains TD critics of the run's
own configuration (the ``tiny`` preset, ``td-expected`` targets, 800 steps) and variants of it
on the rest, and scores them on the held-out states:

* ``heldout_pairwise``: over held-out states holding both a candidate that matches the scripted
  expert's action and a valid one that does not, P(max(Q1, Q2) of the matching one > that of
  the other), ties counting half, on raw (unclipped) scores;
* ``heldout_auc``: P(Q of the dataset action of a successful episode > Q of one of a failed
  episode) on the held-out states;
* ``val_auc``: the same on the trainer's own validation split (10% of the training rows).

Variants (``--variants``; each trained with seeds 0 .. ``--seeds``-1): ``base``; ``steps200``,
``steps400``, ``steps1600``; ``wd1e-2``, ``wd1e-1`` (AdamW weight decay instead of Adam);
``dropout0.3``; ``hidden64``, ``hidden256`` (both heads' widths); ``lr3e-4``; and
``ensemble`` (the mean Q1, Q2, V1, V2 of the ``base`` critics of every seed, as one critic).

Usage: .venv/bin/python benchmarks/critic_heldout.py --quickstart runs/demo [--quickstart ...]
           [--variants base,ensemble,wd1e-2] [--seeds 5] [--steps N]
Prints one JSON object: per run and variant, the figures of each seed and their mean.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import machine  # noqa: E402
from diagnose_targets import _pairwise, candidate_labels, expert_actions  # noqa: E402

from digiq.critic import CriticConfig, CriticData, CriticTrainer, _auc, score_data  # noqa: E402
from digiq.models.presets import get_preset  # noqa: E402
from digiq.pipeline import feature_prefix, read_stages  # noqa: E402
from trajectories import CandidateTable, ReplayBuffer  # noqa: E402

#: name -> CriticConfig overrides; "_weight_decay" switches the optimiser to AdamW.
VARIANTS: dict[str, dict[str, Any]] = {
    "base": {},
    "steps200": {"steps": 200},
    "steps400": {"steps": 400},
    "steps1600": {"steps": 1600},
    "wd1e-2": {"_weight_decay": 1e-2},
    "wd1e-1": {"_weight_decay": 1e-1},
    "dropout0.3": {"dropout": 0.3},
    "hidden64": {"q_hidden": (64, 64), "v_hidden": (64, 64)},
    "hidden256": {"q_hidden": (256, 256), "v_hidden": (256, 256)},
    "lr3e-4": {"lr": 3e-4},
}
ENSEMBLE = "ensemble"
HELD_OUT_SHARE = 0.25


def episode_buckets(buffer: ReplayBuffer, data: CriticData) -> np.ndarray:
    """Per row of ``data``, a number in [0, 1) fixed by its episode id (a hash): rows below
    ``HELD_OUT_SHARE`` are held out, so whole episodes are, the same ones on every call."""
    episode = [buffer.transition(int(t)).episode_id for t in data.transition_ids]
    return np.array([zlib.crc32(e.encode()) % 1000 / 1000 for e in episode])


def train_critic(
    train: CriticData,
    val: CriticData,
    overrides: dict[str, Any],
    seed: int,
    steps: int | None = None,
) -> tuple[Any, dict[str, float]]:
    """(critic, final metrics) of a tiny-preset critic, ``td-expected`` unless ``overrides``
    say otherwise (``_weight_decay``: AdamW instead of Adam); no run folder, no TensorBoard."""
    if steps is not None and "steps" not in overrides:
        overrides = {**overrides, "steps": steps}
    fields = {"seed": seed, "target": "td-expected"}
    fields.update({k: v for k, v in overrides.items() if not k.startswith("_")})
    config = CriticConfig.from_model_preset(
        get_preset("tiny", check=False),
        state_dim=train.state_dim,
        action_dim=train.action_dim,
        vlm_dim=train.vlm_dim,
        **fields,
    )
    trainer = CriticTrainer(config, train, val, run_dir=None, device="cpu", tensorboard=False)
    if "_weight_decay" in overrides:
        trainer.optimizer = torch.optim.AdamW(
            trainer.critic.parameters(), lr=config.lr, weight_decay=overrides["_weight_decay"]
        )
    metrics = trainer.train()
    trainer.close()
    return trainer.critic, metrics


def _judge(q1: np.ndarray, q2: np.ndarray, held: CriticData, labels: dict) -> dict[str, Any]:
    q = np.maximum(q1, q2)
    pairs = _pairwise(q, labels)
    success = held.episode_success
    auc = float(_auc(q[:, 0][success], q[:, 0][~success]))  # NaN: one outcome only
    return {
        "heldout_pairwise": round(float(np.mean(pairs)), 4) if pairs else None,
        "heldout_pairs": len(pairs),
        "heldout_auc": None if np.isnan(auc) else round(auc, 4),
    }


def _mean(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None and not np.isnan(r[key])]
    return round(statistics.mean(values), 4) if values else None


def run_one(
    quickstart: Path, variants: list[str], seeds: int, steps: int | None = None
) -> dict[str, Any]:
    data = quickstart / "data" / "offline"
    features_run = quickstart / "runs" / "digiq"
    buffer = ReplayBuffer.open(data)
    name = read_stages(features_run)["stages"]["candidates"]["metrics"]["name"]
    table = CandidateTable.open(data, name)
    full = CriticData.from_buffer(buffer, prefix=feature_prefix(features_run), candidates=table)
    bucket = episode_buckets(buffer, full)
    pool, held = full.subset(bucket >= HELD_OUT_SHARE), full.subset(bucket < HELD_OUT_SHARE)
    if not len(held) or not len(pool):
        raise SystemExit(
            f"{quickstart}: too few episodes to hold a quarter out ({len(pool)} training rows, "
            f"{len(held)} held out)"
        )
    labels = candidate_labels(held.transition_ids, buffer, table, expert_actions(buffer))
    train, val = pool.split(0.1, seed=0)
    out: dict[str, Any] = {
        "run": str(quickstart),
        "train_rows": len(train),
        "heldout_rows": len(held),
    }
    base_scores = []
    for variant in [v for v in variants if v != ENSEMBLE] + (
        ["base"] if ENSEMBLE in variants and "base" not in variants else []
    ):
        rows = []
        for seed in range(seeds):
            started = time.perf_counter()
            critic, metrics = train_critic(train, val, VARIANTS[variant], seed, steps)
            scores = score_data(critic, held, clip=False)
            if variant == "base":
                base_scores.append(scores)
            rows.append(
                {
                    "seed": seed,
                    **_judge(scores.q1, scores.q2, held, labels),
                    "val_auc": round(float(metrics.get("val/auc_success", float("nan"))), 4),
                    "seconds": round(time.perf_counter() - started, 1),
                }
            )
        if variant in variants:
            out[variant] = {
                "seeds": rows,
                **{f"mean_{k}": _mean(rows, k) for k in ("heldout_pairwise", "heldout_auc")},
            }
    if ENSEMBLE in variants:
        q1 = np.mean([s.q1 for s in base_scores], axis=0)
        q2 = np.mean([s.q2 for s in base_scores], axis=0)
        out[ENSEMBLE] = {"members": len(base_scores), **_judge(q1, q2, held, labels)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quickstart", type=Path, action="append", required=True, help="a quickstart OUT folder"
    )
    parser.add_argument(
        "--variants",
        default="base,ensemble",
        help=f"comma-separated, of: {', '.join([*VARIANTS, ENSEMBLE])} (default base,ensemble)",
    )
    parser.add_argument("--seeds", type=int, default=5, help="critics per variant (default 5)")
    parser.add_argument(
        "--steps", type=int, help="critic steps of the variants that set none (default: 800)"
    )
    args = parser.parse_args()
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS and v != ENSEMBLE]
    if unknown:
        parser.error(f"--variants: unknown {unknown}; choose from {[*VARIANTS, ENSEMBLE]}")
    if args.seeds < 1:
        parser.error(f"--seeds must be >= 1, got {args.seeds}")
    for q in args.quickstart:
        if not (q / "runs" / "digiq" / "stages.json").is_file():
            parser.error(f"--quickstart {str(q)!r} holds no Digi-Q run (runs/digiq/stages.json)")
    report = {
        "machine": machine(),
        "variants": variants,
        "seeds": args.seeds,
        "results": [run_one(q, variants, args.seeds, args.steps) for q in args.quickstart],
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
