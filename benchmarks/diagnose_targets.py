"""How good are the actions each policy-extraction method imitates? (simulated Web Shopping, General)

The quickstart's table says which policy succeeds; this says why, by scoring what each method
is trained to imitate against the scripted expert (``eval.agents.scripted.ScriptedAgent`` at
noise 0, the agent that writes the demonstrations). At every recorded state of the offline data
the expert's intended action is computed from the RECORDED UI tree (the same reading of the
screen the scripted agent does online; nothing here touches a simulator), then:

* ``dataset_match``: share of the behaviour policy's own actions that match the expert;
* ``candidate_coverage``: share of states where at least one of the N candidates matches it
  (the ceiling of Best-of-N with a perfect critic);
* ``critic_pairwise``: over states holding both expert-matching and other valid candidates,
  P(max(Q1, Q2) of a matching candidate > that of a non-matching one), a tie counting half
  (0.5 = chance; ties are common where the scores are clipped to the return range, and
  ``critic_pairs_tied`` counts them);
* ``bestofn``: the Best-of-N targets with weight > 0 (what the Digi-Q policy imitates): count,
  share matching the expert, the most common confusions (expert intent -> chosen target);
* ``by_expert_intent``: the same split by what the expert would do in the state, every intent
  (taps are labelled ``tap(x,y)``, x first, one decimal: "tap(0.5,0.1)" is the address bar,
  "tap(0.2,0.4)" a shop's first result; ``eval_breakdown.py`` writes AitW's (y, x) instead):
  states, candidate coverage, argmax / threshold / target hits, and over the covered states
  the mean max(Q1, Q2) of the best matching candidate and the mean max(V1, V2);
* ``filtered_bc``: the steps of successful episodes (what Filtered BC imitates): count, share
  matching the expert, share unparseable.

Match rule: TYPE needs the same text (case-insensitive); other actions use the AitW rule
(``android.actions.actions_match``) with the clickable elements' boxes of the recorded screen.
Episodes of tasks outside the generated Web Shopping and General lists are left out. The
threshold is, unless ``--threshold`` is given, each episode's published one (0.05 Web Shopping,
0.10 General), as in the policy stage.

``--policies``: where does each trained policy put its probability? For every state with an
expert action, p(expert action) = exp(log pi of the expert's AutoUI string) under each policy,
averaged separately over the states where Best-of-N (the TD critic at ``--threshold``) gave a
target and those where it gave none, overall and by expert intent. The Best-of-N policy is
trained on the first kind only; what it does on the second is drift (or generalisation) from
them, while Filtered BC trains on every step of the successful episodes. With ``--quickstart``
the four policies of the run are scored, plus any ``--policy NAME=DIR``.

``--data-size 0.33,0.67,1``: does the critic rank better with more data? A quarter of the
episodes (by a hash of the episode id) is held out; TD critics (tiny preset, seeds 0 and 1) are
trained on the given fractions of the rest, on the run's features, and ``critic_pairwise`` is
measured on the held-out states only. (The VLM features come from the run's repr stage, which
saw every episode: a small leak in the held-out figure's favour.)

Usage: .venv/bin/python benchmarks/diagnose_targets.py --quickstart runs/demo [--data-size F,F]
           [--threshold A] [--value-range LOW,HIGH] [--policies [--policy NAME=DIR ...]]
       .venv/bin/python benchmarks/diagnose_targets.py --data D --run R [--features-run F]
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import collections
import io
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from android.actions import Action, ActionType, actions_match, parse_autoui  # noqa: E402
from android.observation import Observation  # noqa: E402
from benchmarks._common import machine  # noqa: E402
from eval.agents.base import AgentStep  # noqa: E402
from eval.agents.scripted import ScriptedAgent  # noqa: E402
from eval.tasks import SPLITS, TASK_SETS, load_task_set  # noqa: E402
from trajectories import CandidateTable, ReplayBuffer  # noqa: E402


def _screen_size(step: Any) -> tuple[int, int]:
    """(width, height) of a recorded screenshot (its header only; the pixels are not needed)."""
    with Image.open(io.BytesIO(step.screenshot)) as image:
        return image.size


def _boxes(step: Any, screen: tuple[int, int]) -> list[tuple[float, float, float, float]]:
    return [e.normalized_box(screen) for e in step.ui_elements if e.clickable]


def expert_actions(buffer: ReplayBuffer) -> dict[tuple[str, int], tuple[Action, list]]:
    """(episode id, step) -> (the expert's intended action, clickable boxes) for every state."""
    tasks: dict[str, Any] = {}
    for task_set in TASK_SETS:
        for split in SPLITS:
            tasks.update({t.task_id: t for t in load_task_set(task_set, split)})
    expert = ScriptedAgent(noise=0.0)
    out: dict[tuple[str, int], tuple[Action, list]] = {}
    for episode, steps in buffer.iter_episodes():
        task = tasks.get(episode.task_id)
        if task is None:
            continue
        history: list[AgentStep] = []
        screen = _screen_size(steps[0])
        # Geometry only (coordinates are normalised by it): the expert reads the UI tree.
        shot = np.zeros((screen[1], screen[0], 3), np.uint8)
        for step in steps:
            if not step.action_text:
                break
            obs = Observation(shot, list(step.ui_elements), step.activity, step=step.step)
            intended = expert.intent(obs, task, history).action
            out[(episode.episode_id, step.step)] = (intended, _boxes(step, screen))
            history.append(AgentStep(step.step, obs, parse_autoui(step.action_text)))
    return out


def matches(text: str, intended: Action, boxes: list) -> bool:
    action = parse_autoui(text)
    if not action.is_valid:
        return False
    if action.action_type is ActionType.TYPE and intended.action_type is ActionType.TYPE:
        return action.typed_text.strip().lower() == intended.typed_text.strip().lower()
    return actions_match(action, intended, boxes)


def _summary(action: Action, task: str) -> str:
    if not action.is_valid:
        return "INVALID"
    if action.action_type is ActionType.DUAL_POINT:
        kind = "tap" if action.is_tap else "swipe"
        y, x = action.touch_yx or (0, 0)
        return f"{kind}({x:.1f},{y:.1f})"
    if action.action_type is ActionType.TYPE:
        return "type:" + ("from-goal" if action.typed_text.lower() in task.lower() else "other")
    return action.action_type.name


ValueRange = tuple[float, float] | None


def _critic_scores(
    data: Path, run: Path, features_run: Path, value_range: ValueRange = None
) -> tuple[Any, Any, Any]:
    """(buffer, candidate table, scores of every candidate by ``run``'s critic).

    ``value_range``: clip the scores to it instead of the checkpoint's own range."""
    from digiq.checkpoint import latest_checkpoint
    from digiq.critic import CriticData, load_critic, score_data
    from digiq.pipeline import feature_prefix, read_stages

    buffer = ReplayBuffer.open(data)
    candidates = read_stages(features_run)["stages"]["candidates"]["metrics"]["name"]
    table = CandidateTable.open(data, candidates)
    ckpt = latest_checkpoint(run / "work" / "critic")
    if ckpt is None:
        raise SystemExit(f"no critic checkpoint under {run / 'work' / 'critic'}")
    critic_data = CriticData.from_buffer(
        buffer, prefix=feature_prefix(features_run), candidates=table
    )
    critic = load_critic(ckpt)
    if value_range is not None:
        critic.config = critic.config.replace(value_range=value_range)
    return buffer, table, score_data(critic, critic_data)


def _targeted(
    data: Path,
    run: Path,
    features_run: Path,
    threshold: float | None,
    value_range: ValueRange = None,
) -> set[int]:
    """Transition ids where the Best-of-N targets of ``run``'s critic have a non-zero weight."""
    from digiq.bestofn import build_policy_targets

    buffer, table, scores = _critic_scores(data, run, features_run, value_range)
    targets = build_policy_targets(buffer, table, scores, "bestofn", threshold, on_missing="skip")
    return {t.transition_id for t in targets if t.weight > 0}


def _mean(values: np.ndarray, mask: np.ndarray) -> float | None:
    return round(float(values[mask].mean()), 3) if mask.any() else None


def policy_expert_probability(
    data: Path, policies: dict[str, Path], targeted: set[int], batch_size: int = 64
) -> dict[str, Any]:
    """Mean p(expert action) under each policy, on targeted and untargeted states."""
    import torch

    from digiq.models.policy import PolicyModel

    buffer = ReplayBuffer.open(data)
    expert = expert_actions(buffer)
    tid_of = {(t.episode_id, t.step): t.transition_id for t in buffer.iter_transitions()}
    states = []  # (targeted, intent, screenshot, previous actions, goal, expert action)
    for episode, steps in buffer.iter_episodes():
        previous: list[Action] = []
        for step in steps:
            if not step.action_text:
                break
            key = (episode.episode_id, step.step)
            if key in expert:
                intended = expert[key][0]
                states.append(
                    (
                        tid_of[key] in targeted,
                        _summary(intended, episode.task),
                        step.screenshot,
                        list(previous),
                        episode.task,
                        intended,
                    )
                )
            previous.append(parse_autoui(step.action_text))
    hit = np.array([s[0] for s in states], bool)
    intents = np.array([s[1] for s in states])
    out: dict[str, Any] = {}
    for name, path in policies.items():
        model = PolicyModel.load(path).eval()
        logps: list[float] = []
        for lo in range(0, len(states), batch_size):
            chunk = states[lo : lo + batch_size]
            images = [Image.open(io.BytesIO(s[2])).convert("RGB") for s in chunk]
            texts = [model.input_text(s[3], s[4]) for s in chunk]
            batch = model.prepare(model.pixels(images), texts)
            with torch.no_grad():
                logp = model.sequence_logprobs(batch, [model.target_text(s[5]) for s in chunk])
            logps += logp.tolist()
        prob = np.exp(np.array(logps))
        by_intent = {}
        for intent, _ in collections.Counter(intents.tolist()).most_common(8):
            m = intents == intent
            by_intent[intent] = {
                "targeted": _mean(prob, m & hit),
                "n_targeted": int((m & hit).sum()),
                "untargeted": _mean(prob, m & ~hit),
                "n_untargeted": int((m & ~hit).sum()),
            }
        out[name] = {
            "policy": str(path),
            "all": _mean(prob, np.ones_like(hit)),
            "targeted": _mean(prob, hit),
            "untargeted": _mean(prob, ~hit),
            "by_expert_intent": by_intent,
        }
    return {"states": len(states), "targeted_states": int(hit.sum()), "policies": out}


def diagnose(
    data: Path,
    run: Path,
    features_run: Path,
    threshold: float | None = None,
    value_range: ValueRange = None,
) -> dict[str, Any]:
    from digiq.bestofn import build_policy_targets, threshold_for

    buffer, table, scores = _critic_scores(data, run, features_run, value_range)
    q = np.maximum(scores.q1, scores.q2)
    expert = expert_actions(buffer)

    task_sets = {e.episode_id: e.task_set for e in buffer.episodes()}
    key_of = {}
    thresholds: dict[int, float] = {}
    for tid in scores.transition_ids.tolist():
        t = buffer.transition(tid)
        key_of[tid] = ((t.episode_id, t.step), t.task)
        thresholds[tid] = threshold_for(task_sets[t.episode_id])
    labels = candidate_labels(scores.transition_ids, buffer, table, expert)
    dataset = [ok[0] for ok, _ in labels.values()]
    coverage = [any(ok) for ok, _ in labels.values()]
    pairs = _pairwise(q, labels)

    targets = build_policy_targets(buffer, table, scores, "bestofn", threshold, on_missing="skip")
    by_intent = _by_intent(scores, labels, key_of, expert, targets, threshold, thresholds)
    chosen, by_type, confusions = [], collections.Counter(), collections.Counter()
    for target in targets:
        if target.weight <= 0:
            continue
        key, task = key_of.get(target.transition_id, (None, ""))
        if key not in expert:
            continue
        intended, boxes = expert[key]
        ok = matches(target.target, intended, boxes)
        chosen.append(ok)
        action = parse_autoui(target.target)
        by_type[(_summary(action, task).split("(")[0].split(":")[0], ok)] += 1
        if not ok:
            confusions[(_summary(intended, task), _summary(action, task))] += 1

    fbc, fbc_invalid = [], 0
    for episode, steps in buffer.iter_episodes():
        if not episode.success:
            continue
        for step in steps:
            key = (episode.episode_id, step.step)
            if not step.action_text or key not in expert:
                continue
            fbc.append(matches(step.action_text, *expert[key]))
            fbc_invalid += not parse_autoui(step.action_text).is_valid

    def share(values: list) -> float | None:
        return round(float(np.mean(values)), 4) if values else None

    kinds = sorted({k for k, _ in by_type})
    return {
        "run": str(run),
        "states": len(dataset),
        "num_candidates": table.num_candidates,
        "dataset_match": share(dataset),
        "candidate_coverage": share(coverage),
        "critic_pairwise": share(pairs),
        "critic_pairs": len(pairs),
        "critic_pairs_tied": sum(p == 0.5 for p in pairs),
        "bestofn": {
            "targets": len(chosen),
            "expert_match": share(chosen),
            "by_type": {
                k: {"match": by_type[(k, True)], "miss": by_type[(k, False)]} for k in kinds
            },
            "top_confusions": [
                {"expert": e, "target": t, "count": n} for (e, t), n in confusions.most_common(8)
            ],
        },
        "by_expert_intent": by_intent,
        "filtered_bc": {
            "targets": len(fbc),
            "expert_match": share(fbc),
            "invalid": round(fbc_invalid / len(fbc), 4) if fbc else None,
        },
    }


def _by_intent(
    scores: Any,
    labels: dict,
    key_of: dict,
    expert: dict,
    targets: list,
    threshold: float | None,
    thresholds: dict[int, float],
) -> list[dict[str, Any]]:
    """Per expert intent (the action the expert would take there), how far Best-of-N gets:
    states, states with a matching candidate (``covered``), of those where the argmax candidate
    matches (``argmax_matches``) and where a matching candidate clears the threshold
    (``matching_above_threshold``; ``threshold``, by default each state's task set's published
    one from ``thresholds``, as for the targets), then weighted targets and how many match."""
    advantages = scores.advantages()
    q = np.maximum(scores.q1, scores.q2)
    v = np.maximum(scores.v1, scores.v2)
    values: dict[str, list[tuple[float, float]]] = collections.defaultdict(list)
    by_tid = {t.transition_id: t for t in targets}
    rows: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for row, (ok, _) in labels.items():
        tid = int(scores.transition_ids[row])
        key, task = key_of[tid]
        intended, boxes = expert[key]
        counts = rows[_summary(intended, task)]
        counts["states"] += 1
        adv = advantages[row]
        matching = [float(adv[k]) for k in range(len(ok)) if ok[k] and not np.isnan(adv[k])]
        if matching:
            counts["covered"] += 1
            counts["argmax_matches"] += bool(ok[int(np.nanargmax(adv))])
            state_threshold = thresholds[tid] if threshold is None else threshold
            counts["matching_above_threshold"] += max(matching) > state_threshold
            best_q = max(
                float(q[row, k]) for k in range(len(ok)) if ok[k] and not np.isnan(q[row, k])
            )
            values[_summary(intended, task)].append((best_q, float(v[row])))
        target = by_tid.get(tid)
        if target is not None and target.weight > 0:
            counts["targets"] += 1
            counts["targets_matching"] += matches(target.target, intended, boxes)
    fields = (
        "states",
        "covered",
        "argmax_matches",
        "matching_above_threshold",
        "targets",
        "targets_matching",
    )
    ordered = sorted(rows.items(), key=lambda kv: -kv[1]["states"])
    out = []
    for intent, counts in ordered:
        row_out: dict[str, Any] = {"intent": intent, **{f: int(counts[f]) for f in fields}}
        if values[intent]:
            means = np.mean(np.asarray(values[intent]), axis=0)
            row_out["mean_q_matching"] = round(float(means[0]), 4)
            row_out["mean_v"] = round(float(means[1]), 4)
        out.append(row_out)
    return out


def candidate_labels(
    transition_ids: np.ndarray, buffer: ReplayBuffer, table: CandidateTable, expert: dict
) -> dict[int, tuple[list[bool], list[bool]]]:
    """row -> (candidate matches the expert, candidate parses) for rows the expert covers."""
    labels = {}
    for row, tid in enumerate(np.asarray(transition_ids).tolist()):
        t = buffer.transition(tid)
        key = (t.episode_id, t.step)
        if key not in expert:
            continue
        cands = [a for a, _ in table.get(tid)]
        labels[row] = (
            [matches(a, *expert[key]) for a in cands],
            [parse_autoui(a).is_valid for a in cands],
        )
    return labels


def _pairwise(q: np.ndarray, labels: dict[int, tuple[list[bool], list[bool]]]) -> list[float]:
    """1 where a matching candidate scores above a non-matching one, 0.5 for a tie, else 0."""
    pairs: list[float] = []
    for row, (ok, valid) in labels.items():
        good = [k for k in range(len(ok)) if ok[k] and not np.isnan(q[row, k])]
        bad = [k for k in range(len(ok)) if valid[k] and not ok[k] and not np.isnan(q[row, k])]
        pairs += [float(np.sign(q[row, g] - q[row, b])) / 2 + 0.5 for g in good for b in bad]
    return pairs


def data_size(data: Path, features_run: Path, fractions: list[float]) -> list[dict[str, Any]]:
    """Held-out critic_pairwise of TD critics trained on growing shares of the episodes."""
    from critic_heldout import HELD_OUT_SHARE, episode_buckets, train_critic

    from digiq.critic import CriticData, score_data
    from digiq.pipeline import feature_prefix, read_stages

    buffer = ReplayBuffer.open(data)
    name = read_stages(features_run)["stages"]["candidates"]["metrics"]["name"]
    table = CandidateTable.open(data, name)
    full = CriticData.from_buffer(buffer, prefix=feature_prefix(features_run), candidates=table)
    expert = expert_actions(buffer)
    episode = np.array([buffer.transition(int(t)).episode_id for t in full.transition_ids])
    bucket = episode_buckets(buffer, full)
    held = full.subset(bucket < HELD_OUT_SHARE)
    labels = candidate_labels(held.transition_ids, buffer, table, expert)
    out = []
    for fraction in fractions:
        top = HELD_OUT_SHARE + (1 - HELD_OUT_SHARE) * fraction
        pool = (bucket >= HELD_OUT_SHARE) & (bucket < top)
        train, val = full.subset(pool).split(0.1, seed=0)
        for seed in (0, 1):
            critic, _ = train_critic(train, val, {"target": "td"}, seed)
            scores = score_data(critic, held)
            pairs = _pairwise(np.maximum(scores.q1, scores.q2), labels)
            out.append(
                {
                    "train_fraction": fraction,
                    "seed": seed,
                    "train_episodes": len(set(episode[pool].tolist())),
                    "train_transitions": int(pool.sum()),
                    "heldout_pairs": len(pairs),
                    "heldout_pairwise": round(float(np.mean(pairs)), 4) if pairs else None,
                }
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quickstart", type=Path, help="a quickstart OUT folder (both runs)")
    parser.add_argument("--data", type=Path, help="the offline dataset folder")
    parser.add_argument("--run", type=Path, help="a Digi-Q run folder (its critic)")
    parser.add_argument("--features-run", type=Path, help="run holding the candidates/features")
    parser.add_argument("--data-size", help="comma-separated training fractions (see above)")
    parser.add_argument(
        "--threshold",
        type=float,
        help="Best-of-N advantage threshold (default: the published one of the task set)",
    )
    parser.add_argument(
        "--value-range",
        metavar="LOW,HIGH",
        help="clip the critics' scores to this interval instead of each checkpoint's own "
        "value_range (e.g. 0,20 to re-score critics saved before scores were clipped)",
    )
    parser.add_argument(
        "--policies",
        action="store_true",
        help="score the trained policies' p(expert action) (see above; needs --quickstart)",
    )
    parser.add_argument(
        "--policy",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="with --policies: score this policy folder too (repeatable)",
    )
    args = parser.parse_args()
    if args.policies and not args.quickstart:
        parser.error("--policies needs --quickstart OUT")
    extra = dict(item.split("=", 1) for item in args.policy if "=" in item)
    if len(extra) != len(args.policy):
        parser.error("--policy takes NAME=DIR")
    value_range = None
    if args.value_range:
        try:
            low, high = (float(x) for x in args.value_range.split(","))
        except ValueError:
            parser.error(f"--value-range takes LOW,HIGH (two numbers), got {args.value_range!r}")
        if not low <= high:
            parser.error(f"--value-range: LOW must be <= HIGH, got {args.value_range!r}")
        value_range = (low, high)
    if args.quickstart:
        out = args.quickstart
        jobs = [
            (out / "data/offline", out / "runs" / r, out / "runs/digiq")
            for r in ("digiq", "digiq-mc")
        ]
    elif args.data and args.run:
        jobs = [(args.data, args.run, args.features_run or args.run)]
    else:
        parser.error("give --quickstart OUT, or --data and --run")
    results = [
        diagnose(*job, threshold=args.threshold, value_range=value_range)
        for job in jobs
        if (job[1] / "work" / "critic").exists()
    ]
    report: dict[str, Any] = {
        "machine": machine(),
        "threshold": args.threshold,
        "value_range": value_range,
        "results": results,
    }
    if args.policies:
        out = args.quickstart
        if not (out / "runs/digiq/work/critic").is_dir():
            parser.error(f"--policies: no Digi-Q critic under {out / 'runs/digiq'}")
        policies = {
            "behaviour": out / "runs/behaviour/bc",
            "filtered-bc": out / "runs/filtered-bc/bc",
            "digiq-mc": out / "runs/digiq-mc/policy",
            "digiq": out / "runs/digiq/policy",
            **{name: Path(path) for name, path in extra.items()},
        }
        targeted = _targeted(*jobs[0], args.threshold, value_range)
        report["policy_expert_probability"] = policy_expert_probability(
            jobs[0][0], {k: v for k, v in policies.items() if v.exists()}, targeted
        )
    if args.data_size:
        fractions = [float(f) for f in args.data_size.split(",")]
        report["data_size"] = data_size(jobs[0][0], jobs[0][2], fractions)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
