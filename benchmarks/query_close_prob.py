"""Where a typed query goes wrong: the probability a policy gives to each token of the goal's
query, teacher-forced, at the states where it typed something other than the site's address.

Why: most failed searches of the quickstart's policies type the query and then keep going
("hot wheelso", "oral-b electric toothbrushbrushbrush"). Every token of the query itself gets
p ~ 0.99, so the question is the token that ends the typed text (the closing quote of
``"typed_text": "..."``): a low probability there, sampled at every search, is a garbled query
in that share of the searches (README, "Two previous actions").

Reads an evaluation folder written by ``digiq-eval`` (``results.jsonl`` and each episode's
``step-NN.png``), rebuilds each such state's input text with the policy's own history length,
and scores the TYPE action of the goal's exact query. Prints JSON: the number of states, the
median and minimum probability of the closing token, and the median probability of the whole
action.

Usage: .venv/bin/python benchmarks/query_close_prob.py --policy OUT/runs/digiq/policy \
           --eval OUT/eval/digiq [--policy ... --eval ...]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from PIL import Image  # noqa: E402

from android.actions import Action, ActionType, parse_autoui  # noqa: E402
from digiq.models.policy import PolicyModel  # noqa: E402
from digiq.policy_train import resolve_init  # noqa: E402
from eval.results import EpisodeResult, ResultsFileError, latest_results, read_results  # noqa: E402


def query_states(eval_dir: Path) -> list[tuple[Path, list[Action], str, str]]:
    """(screenshot, previous actions, instruction, query) of every state of a query goal where
    the policy typed a text that is not the goal's site."""
    states = []
    for result in _results(eval_dir):
        query, site = result.goal.get("query"), result.goal.get("site")
        if not query:
            continue
        actions = [parse_autoui(text) for text in result.actions]
        for index, action in enumerate(actions):
            if action.action_type == ActionType.TYPE and action.typed_text not in ("", site):
                screen = eval_dir / result.artifacts / f"step-{index:02d}.png"
                if result.artifacts and screen.is_file():
                    states.append((screen, actions[:index], result.task, query))
    return states


def _results(eval_dir: Path) -> list[EpisodeResult]:
    """The evaluation's episodes (the last record of each), or exit naming the folder."""
    path = eval_dir / "results.jsonl"
    if not path.is_file():
        raise SystemExit(f"{eval_dir}: no results.jsonl (not a digiq-eval output folder)")
    try:
        return latest_results(read_results(path))
    except ResultsFileError as exc:
        raise SystemExit(str(exc)) from exc


def close_probabilities(policy_dir: Path, eval_dir: Path) -> dict[str, object]:
    model = PolicyModel.load(resolve_init(policy_dir))
    model.eval()
    states = query_states(eval_dir)
    if not states:
        return {"policy": str(policy_dir), "eval": str(eval_dir), "states": 0}
    images = []
    for state in states:
        with Image.open(state[0]) as image:
            images.append(image.convert("RGB"))
    texts = [model.input_text(s[1], s[2]) for s in states]
    targets = [
        model.target_text(Action(action_type=ActionType.TYPE, typed_text=s[3])) for s in states
    ]
    with torch.no_grad():
        logp, mask = model.token_logprobs(model.prepare(images, texts), targets)
    closing, whole = [], []
    for row in range(len(targets)):
        length = int(mask[row].sum())
        # The closing token: the last target token before EOS (the quote ending typed_text).
        closing.append(float(logp[row, length - 2].exp()))
        whole.append(float(logp[row, :length].sum().exp()))
    return {
        "policy": str(policy_dir),
        "eval": str(eval_dir),
        "states": len(states),
        "close_prob_median": round(statistics.median(closing), 3),
        "close_prob_min": round(min(closing), 3),
        "action_prob_median": round(statistics.median(whole), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--policy", type=Path, action="append", required=True, help="policy")
    parser.add_argument("--eval", type=Path, action="append", required=True, help="eval folder")
    args = parser.parse_args()
    if len(args.policy) != len(args.eval):
        parser.error("give one --eval per --policy")
    pairs = zip(args.policy, args.eval, strict=True)
    print(json.dumps([close_probabilities(p, e) for p, e in pairs], indent=1))


if __name__ == "__main__":
    main()
