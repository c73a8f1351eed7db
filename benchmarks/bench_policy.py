"""Benchmark the AutoUI-style policy (tiny preset, CPU) and run the behaviour-policy experiment.

Default (a few seconds): build the tiny policy with its tokenizer and time

* training steps/s (batch 32 of resized 96 x 192 screens, policy input texts and AutoUI targets
  drawn from the Web Shopping task list, clamp-free NLL + AdamW, as the bc stage does);
* candidate sampling: states/s for N = 16 at temperature 1.2 in batches of 8 states, including
  the teacher-forced pass that gives each string's exact log-probability (the candidates
  stage's inner loop);
* acting: one greedy action from a full-resolution 1080 x 2280 screenshot (resize included);
* ``--policy DIR`` (a trained policy, e.g. ``runs/demo/runs/digiq``): what ``PolicyAgent.act``
  costs per step at the evaluation temperature 0.8, drawing through ``generate`` (what it
  does) against ``sample`` (draw plus the teacher-forced ``log pi`` pass it used to throw
  away), median of ``--act-rounds`` alternating rounds over 8 screens each, and whether both
  drew the same strings; with ``--copy-match-cost``, the cost of the copy head's span-match
  bias instead (the same policy drawing with it and with it switched off).
* ``--copy-match-cost``: also a tiny policy's training step with the span-match bias against
  one without it (median of 5 alternating rounds of 4 steps).
* ``--copy-key-cost`` (with ``--policy``): acting and candidate sampling with the copy head's
  keys of the encoder positions kept over the decoding steps (what generation does) against
  recomputed at every step, and whether both drew the same strings.
* ``--copy-close-cost``: a tiny policy's training step with ``PolicyConfig.copy_close`` against
  one without it (median of ``--train-rounds`` alternating rounds of 4 steps).
* ``--copy-address-cost``: the same with ``PolicyConfig.copy_address`` on and off (the goal's
  web addresses found per input; the examples' goals all name a site).

``--experiment``: the end-to-end behaviour-policy experiment (tens of CPU minutes): collect
``--episodes`` noisy scripted (noise 0.3) Web Shopping TRAIN episodes on 2 simulated phones
with ``digiq-collect``, train the policy by behaviour cloning with ``digiq-train bc``, and
evaluate it on the first ``--eval-tasks`` Web Shopping TEST tasks x ``--seeds`` seeds through
``digiq-eval --agent RUN`` (the trained-policy agent), greedily and at temperature 0.8. Prints
the data size, training time and success rates with 95% Wilson intervals, and the commands.

Usage: .venv/bin/python benchmarks/bench_policy.py [--steps 20] [--states 32] [--policy DIR]
       [--experiment --work DIR --episodes 240 --bc-steps 900 --eval-tasks 24 --seeds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks._common import ROOT, machine  # noqa: E402

PY = sys.executable
# digiq-eval with the trained-policy loader registered (what `digiq-eval --agent RUN` runs once
# digiq/cli.py calls digiq.policy_agent.register()).
EVAL = (
    "import sys; from digiq.policy_agent import register; register(); "
    "from digiq.eval_cli import eval_command; eval_command(sys.argv[1:], prog_name='digiq-eval')"
)


def _examples(n: int, seed: int) -> tuple[list[str], list[str]]:
    """Policy input texts and targets like the Web Shopping data's (scripted-agent moves)."""
    from android.actions import Action, policy_input_text, to_autoui
    from eval.tasks import load_task_set

    rng = np.random.default_rng(seed)
    tasks = load_task_set("webshop", "train")
    texts, targets = [], []
    for _ in range(n):
        task = tasks[int(rng.integers(len(tasks)))]
        moves = [
            Action.tap(0.06, 0.47),
            Action.type(getattr(task.goal, "site", "ebay.com")),
            Action.enter(),
            Action.tap(round(float(rng.random()), 2), round(float(rng.random()), 2)),
            Action.type(getattr(task.goal, "query", "razer kraken")),
        ]
        k = int(rng.integers(1, len(moves)))
        texts.append(policy_input_text([moves[k - 1]], task.instruction))
        targets.append(to_autoui(moves[k]))
    return texts, targets


def micro(steps: int, states: int, seed: int) -> dict[str, object]:
    from digiq.models.policy import PolicyModel, policy_corpus

    torch.manual_seed(seed)
    tick = time.perf_counter()
    corpus = policy_corpus()
    model = PolicyModel.from_preset("tiny", corpus=corpus)
    build_s = time.perf_counter() - tick
    cfg = model.config
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 255, (64, cfg.image_height, cfg.image_width, 3), dtype=np.uint8)
    texts, targets = _examples(64, seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()

    def step(i: int) -> None:
        idx = rng.integers(0, 64, 32)
        batch = model.prepare(model.pixels_from_array(frames[idx]), [texts[j] for j in idx])
        loss = model.loss(batch, [targets[j] for j in idx], [1.0] * 32, clamp=False)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    for i in range(3):
        step(i)
    tick = time.perf_counter()
    for i in range(steps):
        step(i)
    train_s = time.perf_counter() - tick

    model.eval()
    batches = max(1, states // 8)
    tick = time.perf_counter()
    valid = 0
    for b in range(batches):
        idx = np.arange(b * 8, b * 8 + 8) % 64
        batch = model.prepare(model.pixels_from_array(frames[idx]), [texts[j] for j in idx])
        rows = model.sample(batch, n=16, temperature=1.2, seed=b)
        valid += sum(1 for row in rows for text, _ in row if text.startswith("Action Plan"))
    sample_s = time.perf_counter() - tick

    screen = rng.integers(0, 255, (2280, 1080, 3), dtype=np.uint8)
    model.greedy([screen], [texts[0]])
    tick = time.perf_counter()
    for j in range(5):
        model.greedy([screen], [texts[j]])
    act_s = (time.perf_counter() - tick) / 5
    return {
        "parameters": model.num_parameters,
        "precision": model.precision.name,
        "threads": torch.get_num_threads(),
        "tokenizer": model.tokenizer_stats,
        "build_s": round(build_s, 2),
        "train_steps_per_s": round(steps / train_s, 3),
        "train_examples_per_s": round(32 * steps / train_s, 1),
        "sample_states_per_s_n16_t1.2": round(batches * 8 / sample_s, 3),
        "sample_sequences_per_s": round(batches * 8 * 16 / sample_s, 1),
        "act_greedy_full_res_ms": round(act_s * 1000, 1),
        "note": "untrained weights: sampled strings run to max_target_tokens, so sampling "
        "figures are a lower bound for a trained policy (which stops at EOS)",
        "valid_fraction_untrained": round(valid / (batches * 8 * 16), 3),
    }


def acting(policy_spec: str, rounds: int, seed: int) -> dict[str, object]:
    """Per-step acting cost of a trained policy: ``generate`` against ``sample`` (docstring)."""
    import statistics

    from digiq.models.policy import PolicyModel
    from digiq.policy_agent import EVAL_TEMPERATURE, resolve_policy_dir

    model = PolicyModel.load(resolve_policy_dir(policy_spec))
    model.eval()
    rng = np.random.default_rng(seed)
    screens = [rng.integers(0, 255, (2280, 1080, 3), dtype=np.uint8) for _ in range(8)]
    goals = _examples(8, seed)[0]
    per_step: dict[str, list[float]] = {"generate": [], "sample": []}
    same = True
    model.generate([screens[0]], [goals[0]], temperature=EVAL_TEMPERATURE, seed=0)  # warm-up
    for r in range(rounds):
        drawn: dict[str, list[str]] = {}
        for how in ("generate", "sample") if r % 2 == 0 else ("sample", "generate"):
            tick = time.perf_counter()
            out = []
            for k, (screen, goal) in enumerate(zip(screens, goals, strict=True)):
                if how == "generate":
                    out.append(
                        model.generate([screen], [goal], temperature=EVAL_TEMPERATURE, seed=k)[0][0]
                    )
                else:
                    out.append(
                        model.sample([screen], [goal], temperature=EVAL_TEMPERATURE, seed=k)[0][0][
                            0
                        ]
                    )
            per_step[how].append((time.perf_counter() - tick) / len(screens))
            drawn[how] = out
        same = same and drawn["generate"] == drawn["sample"]
    gen = statistics.median(per_step["generate"])
    smp = statistics.median(per_step["sample"])
    return {
        "policy": str(policy_spec),
        "rounds": rounds,
        "act_generate_ms": round(gen * 1000, 1),
        "act_sample_with_logprob_ms": round(smp * 1000, 1),
        "ratio_generate_over_sample": round(gen / smp, 3),
        "same_strings": same,
    }


def copy_match_cost(policy_spec: str, rounds: int, seed: int) -> dict[str, object]:
    """Per-step acting cost of the copy head's span-match bias: the same trained policy drawing
    with the bias (what it does) and with it switched off (``copy_match`` 0 on the loaded
    model; the strings then differ), median of ``rounds`` alternating rounds over 8 screens."""
    import statistics

    from digiq.models.policy import PolicyModel
    from digiq.policy_agent import EVAL_TEMPERATURE, resolve_policy_dir

    model = PolicyModel.load(resolve_policy_dir(policy_spec))
    model.eval()
    t5 = model.net.t5
    if not getattr(t5, "copy_match", 0):
        raise SystemExit(f"{policy_spec}: this policy has no span-match bias (copy_match 0)")
    k = t5.copy_match
    rng = np.random.default_rng(seed)
    screens = [rng.integers(0, 255, (2280, 1080, 3), dtype=np.uint8) for _ in range(8)]
    goals = _examples(8, seed)[0]
    per_step: dict[str, list[float]] = {"with": [], "without": []}
    tokens: dict[str, int] = {"with": 0, "without": 0}
    model.generate([screens[0]], [goals[0]], temperature=EVAL_TEMPERATURE, seed=0)  # warm-up
    try:
        for r in range(rounds):
            for how in ("with", "without") if r % 2 == 0 else ("without", "with"):
                t5.copy_match = k if how == "with" else 0
                tick = time.perf_counter()
                for i, (screen, goal) in enumerate(zip(screens, goals, strict=True)):
                    text = model.generate([screen], [goal], temperature=EVAL_TEMPERATURE, seed=i)
                    if r == 0:
                        tokens[how] += model.token_count(text[0][0])
                per_step[how].append((time.perf_counter() - tick) / len(screens))
    finally:
        t5.copy_match = k
    with_ms = statistics.median(per_step["with"]) * 1000
    without_ms = statistics.median(per_step["without"]) * 1000
    return {
        "policy": str(policy_spec),
        "copy_match": k,
        "rounds": rounds,
        "act_with_span_match_ms": round(with_ms, 1),
        "act_without_span_match_ms": round(without_ms, 1),
        "ratio_with_over_without": round(with_ms / without_ms, 3),
        "tokens_written_per_8_actions": tokens,
    }


def copy_key_cost(policy_spec: str, rounds: int, seed: int) -> dict[str, object]:
    """What keeping the copy head's keys over the decoding steps saves (``PointerT5._copy_keys``):
    the same trained policy acting (one 1080 x 2280 screen, temperature 0.8, ``generate``) and
    sampling candidates (8 states x 7 at temperature 1.0 with their ``log pi``, the
    candidates stage's inner loop) with the keys kept and with them recomputed at every step
    (each call handed a copy of the encoder output, which misses the cache), median of
    ``rounds`` alternating rounds, and whether both wrote the same strings."""
    import statistics

    from digiq.models.policy import PolicyModel
    from digiq.policy_agent import EVAL_TEMPERATURE, resolve_policy_dir

    model = PolicyModel.load(resolve_policy_dir(policy_spec))
    model.eval()
    t5 = model.net.t5
    keys = type(t5)._copy_keys

    def recompute(self, enc, copy_ids, shifted):  # type: ignore[no-untyped-def]
        return keys(self, enc.clone(), copy_ids, shifted)

    rng = np.random.default_rng(seed)
    screens = [rng.integers(0, 255, (2280, 1080, 3), dtype=np.uint8) for _ in range(8)]
    goals = _examples(8, seed)[0]
    batch = model.prepare(screens, goals)
    timings: dict[str, dict[str, list[float]]] = {
        "act": {"kept": [], "recomputed": []},
        "candidates": {"kept": [], "recomputed": []},
    }
    drawn: dict[str, list[object]] = {"kept": [], "recomputed": []}
    model.generate([screens[0]], [goals[0]], temperature=EVAL_TEMPERATURE, seed=0)  # warm-up
    try:
        for r in range(rounds):
            for how in ("kept", "recomputed") if r % 2 == 0 else ("recomputed", "kept"):
                if how == "recomputed":
                    t5._copy_keys = recompute.__get__(t5)
                tick = time.perf_counter()
                acts = [
                    model.generate([s], [g], temperature=EVAL_TEMPERATURE, seed=i)[0][0]
                    for i, (s, g) in enumerate(zip(screens, goals, strict=True))
                ]
                timings["act"][how].append((time.perf_counter() - tick) / len(screens))
                tick = time.perf_counter()
                rows = model.sample(batch, n=7, temperature=1.0, seed=r)
                timings["candidates"][how].append((time.perf_counter() - tick) / (8 * 7))
                if r < 2:
                    drawn[how].append((acts, [[text for text, _ in row] for row in rows]))
                t5.__dict__.pop("_copy_keys", None)
    finally:
        t5.__dict__.pop("_copy_keys", None)
    out: dict[str, object] = {"policy": str(policy_spec), "rounds": rounds}
    for what, unit in (("act", "per_action"), ("candidates", "per_sequence")):
        kept = statistics.median(timings[what]["kept"]) * 1000
        recomputed = statistics.median(timings[what]["recomputed"]) * 1000
        out[what] = {
            f"kept_ms_{unit}": round(kept, 2),
            f"recomputed_ms_{unit}": round(recomputed, 2),
            "ratio_kept_over_recomputed": round(kept / recomputed, 3),
        }
    out["same_strings"] = drawn["kept"] == drawn["recomputed"]
    return out


def _train_step_ms(overrides: dict[str, dict[str, object]], rounds: int, seed: int) -> dict:
    """Median training-step time (ms) of tiny policies built from the preset with each set of
    config ``overrides``, on the same batch of 32 (``_examples`` texts and targets, random
    96 x 192 screens), clamp-free NLL + AdamW; ``rounds`` rounds of 4 steps each, the order of
    the policies alternating between rounds so that drift in the machine's speed hits both."""
    import statistics

    from digiq.models.policy import PolicyModel

    texts, targets = _examples(32, seed)
    rng = np.random.default_rng(seed)
    screens = [rng.integers(0, 255, (192, 96, 3), dtype=np.uint8) for _ in range(32)]
    models = {
        name: PolicyModel.from_preset("tiny", precision="fp32", **kw)
        for name, kw in overrides.items()
    }
    optimizers = {k: torch.optim.AdamW(m.parameters(), lr=1e-4) for k, m in models.items()}
    names = list(models)
    per_step: dict[str, list[float]] = {k: [] for k in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            model, optimizer = models[name], optimizers[name]
            tick = time.perf_counter()
            for _ in range(4):
                loss = model.loss(model.prepare(screens, texts), targets, [1.0] * 32, clamp=False)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            per_step[name].append((time.perf_counter() - tick) / 4)
    return {k: statistics.median(v) * 1000 for k, v in per_step.items()}


def _train_cost(feature: str, on: dict, off: dict, rounds: int, seed: int) -> dict[str, object]:
    """``_train_step_ms`` of a tiny policy with the config overrides ``on`` against ``off``,
    reported as ``train_step_with_<feature>_ms`` / ``..._without_...`` and their ratio."""
    ms = _train_step_ms({"with": on, "without": off}, rounds, seed)
    return {
        "rounds": rounds,
        f"train_step_with_{feature}_ms": round(ms["with"], 1),
        f"train_step_without_{feature}_ms": round(ms["without"], 1),
        "ratio_with_over_without": round(ms["with"] / ms["without"], 3),
    }


def copy_match_train_cost(rounds: int, seed: int) -> dict[str, object]:
    """Training-step cost of the span-match bias: ``copy_match`` 6 against 0 (both without
    ``copy_close``, which needs the bias)."""
    on, off = {"copy_match": 6, "copy_close": False}, {"copy_match": 0, "copy_close": False}
    return _train_cost("span_match", on, off, rounds, seed)


def copy_close_train_cost(rounds: int, seed: int) -> dict[str, object]:
    """Training-step cost of ``copy_close`` (the goal's closing quotes found per input, a fourth
    copy channel, the after-the-close mask) against the gate term it replaces."""
    return _train_cost("copy_close", {"copy_close": True}, {"copy_close": False}, rounds, seed)


def copy_address_train_cost(rounds: int, seed: int) -> dict[str, object]:
    """Training-step cost of ``copy_address`` (each goal's web address found by a scan over its
    tokens, its opening and closing positions) against none (each policy its own tokenizer)."""
    on, off = {"copy_address": True}, {"copy_address": False}
    return _train_cost("copy_address", on, off, rounds, seed)


def _run(cmd: list[str], log: Path, timeout: int) -> tuple[float, str]:
    tick = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.run(
            cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=fh, text=True, timeout=timeout
        )
    if proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}; see {log}")
    return time.perf_counter() - tick, proc.stdout


def experiment(args: argparse.Namespace) -> dict[str, object]:
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    data, run = work / "data", work / "bp"
    env_note = "HF_HUB_OFFLINE=1"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    commands = {
        "collect": [
            PY, "-m", "digiq.collect_cli", "--task-set", "webshop", "--split", "train",
            "--episodes", str(args.episodes), "--noise", "0.3", "--devices", "sim:2",
            "--autorater", "rules", "--image-format", "webp", "--out", str(data), "--json",
            "--no-progress", *(["--resume"] if (data / "manifest.json").exists() else []),
        ],
        "train": [
            PY, "-m", "digiq.train_cli", "bc", "--data", str(data), "--out", str(run),
            "--steps", str(args.bc_steps), "--batch-size", "32", "--seed", str(args.seed),
            "--no-progress", "--json",
        ],
    }  # fmt: skip
    out: dict[str, object] = {"work": str(work)}
    collect_s, collect_out = _run(commands["collect"], work / "collect.log", 3600)
    collected = json.loads(collect_out[collect_out.index("{") :])
    out["data"] = {
        "episodes": collected["dataset"]["episodes"],
        "transitions": collected["dataset"]["transitions"],
        "scripted_success": collected["successes"],
        "collect_s": round(collect_s, 1),
    }
    train_s, train_out = _run(commands["train"], work / "train.log", 7200)
    record = json.loads(train_out[train_out.index("{") :])["stages"]["bc"]
    metrics = record["metrics"]
    out["train"] = {
        "wall_s": round(record["wall_s"], 1),
        "train_s": round(metrics["train_seconds_this_call"], 1),
        "steps": metrics["step"],
        "steps_per_s": round(metrics["steps_per_s"], 3),
        "parameters": metrics["num_parameters"],
        "val_action_match": metrics.get("val/action_match"),
        "val_text_match": metrics.get("val/text_match"),
        "peak_rss_mb": round(record["peak_rss_mb"], 1),
    }
    evals = {}
    for label, spec in (("greedy", f"{run}?greedy"), ("t0.8", str(run))):
        cmd = [
            PY, "-c", EVAL, "--task-set", "webshop", "--split", "test", "--num-tasks",
            str(args.eval_tasks), "--seeds", str(args.seeds), "--agent", spec, "--devices",
            "sim:2", "--autorater", "rules", "--out", str(work / f"eval-{label}"), "--json",
            "--no-progress",
        ]  # fmt: skip
        commands[f"eval_{label}"] = cmd
        wall, text = _run(cmd, work / f"eval-{label}.log", 3600)
        summary = json.loads(text[text.index("{") :])
        evals[label] = {
            "episodes": summary.get("episodes"),
            "successes": summary.get("successes"),
            "success_rate": summary.get("success_rate"),
            "ci95": summary.get("ci95") or summary.get("success_ci"),
            "by_goal_kind": summary.get("by_goal_kind") or summary.get("per_goal_kind"),
            "wall_s": round(wall, 1),
        }
    out["eval"] = evals
    out["commands"] = {k: " ".join(v) for k, v in commands.items()}
    out["env"] = env_note
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20, help="timed training steps")
    parser.add_argument("--states", type=int, default=32, help="states to sample for (N=16)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--experiment", action="store_true", help="run the end-to-end experiment")
    parser.add_argument("--work", default="runs/bench-policy", help="experiment folder")
    parser.add_argument("--episodes", type=int, default=240)
    parser.add_argument("--bc-steps", type=int, default=900)
    parser.add_argument("--eval-tasks", type=int, default=24)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--skip-micro", action="store_true")
    parser.add_argument(
        "--policy", default=None, help="a trained policy: time PolicyAgent.act's draw on it"
    )
    parser.add_argument("--act-rounds", type=int, default=7, help="alternating rounds (--policy)")
    parser.add_argument(
        "--copy-match-cost",
        action="store_true",
        help="time training steps (and, with --policy, acting) with the copy head's "
        "span-match bias on and off",
    )
    parser.add_argument(
        "--copy-key-cost",
        action="store_true",
        help="with --policy: time acting and candidate sampling with the copy head's keys kept "
        "over the decoding steps and recomputed at every step",
    )
    parser.add_argument(
        "--copy-close-cost",
        action="store_true",
        help="time training steps of a tiny policy with PolicyConfig.copy_close on and off",
    )
    parser.add_argument(
        "--copy-address-cost",
        action="store_true",
        help="time training steps of a tiny policy with PolicyConfig.copy_address on and off",
    )
    parser.add_argument(
        "--train-rounds",
        type=int,
        default=9,
        help="alternating rounds (--copy-close-cost, --copy-address-cost)",
    )
    args = parser.parse_args()
    if args.train_rounds < 1:
        parser.error(f"--train-rounds must be >= 1, got {args.train_rounds}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    result: dict[str, object] = {"machine": machine(), "date": time.strftime("%Y-%m-%d")}
    if not args.skip_micro:
        result["micro"] = micro(args.steps, args.states, args.seed)
    if args.copy_match_cost:
        result["copy_match_training"] = copy_match_train_cost(5, args.seed)
    if args.copy_close_cost:
        result["copy_close_training"] = copy_close_train_cost(args.train_rounds, args.seed)
    if args.copy_address_cost:
        result["copy_address_training"] = copy_address_train_cost(args.train_rounds, args.seed)
    if args.copy_key_cost:
        if not args.policy:
            parser.error("--copy-key-cost needs --policy")
        result["copy_keys"] = copy_key_cost(args.policy, args.act_rounds, args.seed)
    if args.policy and args.copy_match_cost:
        result["copy_match"] = copy_match_cost(args.policy, args.act_rounds, args.seed)
    elif args.policy and not args.copy_key_cost:
        result["acting"] = acting(args.policy, args.act_rounds, args.seed)
    if args.experiment:
        result["experiment"] = experiment(args)
    print(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
