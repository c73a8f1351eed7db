"""Where an evaluation's successes and failures come from: success per task kind, and what the
policy typed into web goals' search boxes.

Why: a Web Shopping success rate mixes three task kinds (go to a site, search it, open the first
result) and two skills, choosing the next move and typing the query. The quickstart's test
split has 16 episodes of each kind per method; the kinds tell which part of the table a method
wins, and the typed texts tell whether a search failed by its moves or by a garbled query
("oral-brush" for 'oral-b electric toothbrush'), which is the copy head's job
(``digiq.models.policy``, ``copy_match``).

Reads each folder's ``results.jsonl`` (written by ``digiq-eval``). For every episode whose goal
has a query, every TYPE action's text is counted as ``query`` (exactly the goal's query),
``site`` (exactly the goal's site, the first step of a web goal) or ``other``;
``query_exact`` = query / (query + other). ``address_exact``: over every episode whose goal has a
site, the typed texts that are the site exactly, of those that look like an address (a '.' or
"com" in them, not the query): a garbled address ("newgeg.com") counts against it.
``after_query``: what the policy did right after it
first typed the exact query and pressed ENTER, in open-the-first-result episodes (on the results
page, where the next move decides them), the five most common next actions: it tells a
policy that opens a result from one that taps the search box again (the results page and the
shop's home page both follow PRESS_ENTER; README, "Two previous actions").

Usage: .venv/bin/python benchmarks/eval_breakdown.py OUT/eval/behaviour OUT/eval/digiq ...
Prints JSON, one entry per folder.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from android.actions import Action, ActionType, parse_autoui  # noqa: E402
from eval.results import ResultsFileError, latest_results, read_results  # noqa: E402


def breakdown(eval_dir: Path) -> dict[str, object]:
    """Success per goal kind and the typed-text counts of one evaluation folder."""
    path = eval_dir / "results.jsonl"
    if not path.is_file():
        raise SystemExit(f"{eval_dir}: no results.jsonl (not a digiq-eval output folder)")
    try:
        results = latest_results(read_results(path))
    except ResultsFileError as exc:
        raise SystemExit(str(exc)) from exc
    successes: Counter[str] = Counter()
    episodes: Counter[str] = Counter()
    typed: Counter[str] = Counter()
    after_query: Counter[str] = Counter()
    addresses: Counter[str] = Counter()
    unparsed = 0
    for result in results:
        kind = str(result.goal.get("kind", "unknown"))
        episodes[kind] += 1
        successes[kind] += bool(result.success)
        query, site = result.goal.get("query"), result.goal.get("site")
        if site:
            for text in _typed_texts(result.actions):
                if text == site:
                    addresses["exact"] += 1
                elif text != query and ("." in text or "com" in text):
                    addresses["garbled"] += 1
        if not query:
            continue
        actions = [parse_autoui(text) for text in result.actions]  # never raises
        unparsed += sum(not action.is_valid for action in actions)
        after = _after_query(actions, query) if kind == "select_first_result" else None
        if after is not None:
            after_query[after] += 1
        for action in actions:
            if action.action_type != ActionType.TYPE or not action.typed_text:
                continue
            if action.typed_text == query:
                typed["query"] += 1
            elif site and action.typed_text == site:
                typed["site"] += 1
            else:
                typed["other"] += 1
    total = sum(episodes.values())
    attempts = typed["query"] + typed["other"]
    address_total = addresses["exact"] + addresses["garbled"]
    return {
        "eval": str(eval_dir),
        "episodes": total,
        "success": round(sum(successes.values()) / total, 4) if total else None,
        "by_kind": {k: f"{successes[k]}/{episodes[k]}" for k in sorted(episodes)},
        "typed": {k: typed[k] for k in ("query", "site", "other")},
        "query_exact": round(typed["query"] / attempts, 3) if attempts else None,
        "addresses": {k: addresses[k] for k in ("exact", "garbled")},
        "address_exact": round(addresses["exact"] / address_total, 3) if address_total else None,
        "after_query": dict(after_query.most_common(5)),
        "unparsed_actions": unparsed,
    }


def _typed_texts(action_strings: list[str]) -> list[str]:
    """The texts of an episode's TYPE actions (unparsable strings skipped)."""
    actions = [parse_autoui(text) for text in action_strings]
    return [a.typed_text for a in actions if a.action_type == ActionType.TYPE and a.typed_text]


def _after_query(actions: list[Action], query: str) -> str | None:
    """The action after the first exact typing of ``query`` followed by PRESS_ENTER, in short
    form (``DUAL_POINT(y, x)`` with the point as the policy wrote it, or the action type)."""
    for first, second, after in zip(actions, actions[1:], actions[2:], strict=False):
        if (
            first.action_type == ActionType.TYPE
            and first.typed_text == query
            and second.action_type == ActionType.PRESS_ENTER
        ):
            if after.action_type == ActionType.DUAL_POINT and after.touch_yx is not None:
                y, x = after.touch_yx
                return f"DUAL_POINT({y:.2f}, {x:.2f})"
            return after.action_type.name
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("eval_dirs", nargs="+", type=Path, help="digiq-eval output folders")
    args = parser.parse_args()
    print(json.dumps([breakdown(d) for d in args.eval_dirs], indent=1))


if __name__ == "__main__":
    main()
