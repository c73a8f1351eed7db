"""What the critic reads from the recorded UI tree: the screen's text and the element an action hits.

Why this exists: the published critic learns which candidate action helps from the answer-token
feature of a PRETRAINED 7B VLM that reads the screen, sees the cursor and knows what a search
box is. The CPU presets' VLM is built from config and fine-tuned on about a thousand screens:
it learns whether a tap changes the screen, but it cannot read "ebay.com" or tell the address
bar from a result card (measured: benchmarks/diagnose_targets.py, README "Quickstart"). Every
recorded step also holds the UI tree (``uiautomator dump``, on emulators and on the simulated
device alike), so the critic can be given, as text embedded by the same pretrained sentence
encoder as the goal, what a pretrained VLM would have read off the screenshot:

* :func:`describe_screen`: the labelled elements of the screen, in tree order
  ("EditText 'ebay.com' (url_bar) | TextView 'Razer Kraken X ...' | ...");
* :func:`describe_action`: the action grounded on that screen: the element under a tap's touch
  point ("tap EditText 'Search ebay' (gh-ac)"), the focused field a TYPE writes into
  ("type 'razer kraken' into EditText 'Search ebay' (gh-ac)") and that Enter submits, a swipe's
  direction, Back or Home;
* :func:`goal_match`: five numbers that say how the action's words, and those of the focused
  field, meet the instruction's (the typed text is a phrase of the goal; the share of typed
  words, of the tapped element's label words and of the focused field's words that the goal
  contains). A sentence embedding of the goal beside one of the action cannot tell "oxo
  containers" from "o containers" (measured: a fifth of the Best-of-N TYPE targets typed
  garbled goal text, README "Quickstart"); a VLM that reads goal and screen together can.

The policy never sees these (it stays an AutoUI-style screenshot + text model); only the critic,
which runs offline on recorded data, does. Enabled by the ``critic.ui_tree_text`` preset field
(on in ``tiny``; off in the 7B presets, whose VLM reads the screen itself).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from android.actions import Action, ActionType
from android.observation import UIElement

__all__ = [
    "GOAL_MATCH_DIM",
    "GROUNDING_VERSION",
    "describe_action",
    "describe_screen",
    "element_at",
    "element_name",
    "goal_match",
]

# Bump when a description changes: it is part of the feature stores' model name, so stores
# computed with other descriptions are refused instead of silently mixed.
GROUNDING_VERSION = "ui-tree-v3"  # v3: goal_match

# Length of :func:`goal_match`'s vector.
GOAL_MATCH_DIM = 5

_WORD = re.compile(r"[a-z0-9]+(?:[.\-'][a-z0-9]+)*")

_MAX_LABEL = 60


def element_name(element: UIElement) -> str:
    """``Class 'label' (resource-id)``: how the element reads to a person, compactly."""
    parts = [element.class_name.rsplit(".", 1)[-1] or "View"]
    label = " ".join(element.label.split())
    if label:
        parts.append(repr(label[:_MAX_LABEL]))
    rid = element.resource_id.rsplit("/", 1)[-1]
    if rid:
        parts.append(f"({rid})")
    return " ".join(parts)


def element_at(elements: Sequence[UIElement], x: float, y: float) -> UIElement | None:
    """The element a touch at pixel (x, y) lands on: the smallest clickable one containing the
    point, else the smallest one of any kind; None when nothing contains it."""
    best: tuple[tuple[bool, int], UIElement] | None = None
    for element in elements:
        left, top, right, bottom = element.bounds
        if left <= x < right and top <= y < bottom:
            key = (not element.clickable, element.area)
            if best is None or key < best[0]:
                best = (key, element)
    return None if best is None else best[1]


def describe_action(
    action: Action, elements: Sequence[UIElement], screen_size: tuple[int, int]
) -> str:
    """The action in words, grounded on the screen's UI tree (``screen_size`` = (width, height)
    of the screenshot the tree belongs to)."""
    kind = action.action_type
    if kind is ActionType.INVALID:
        return "unparseable action"
    if kind is ActionType.DUAL_POINT:
        if not action.is_tap:
            return f"swipe {action.scroll_direction()}"
        assert action.touch_yx is not None
        width, height = screen_size
        y, x = action.touch_yx
        hit = element_at(elements, x * width, y * height)
        return "tap " + (element_name(hit) if hit is not None else "empty space")
    focused = next((e for e in elements if e.focused), None)
    field = element_name(focused) if focused is not None else "no focused field"
    if kind is ActionType.TYPE:
        typed = " ".join(action.typed_text.split())[:_MAX_LABEL]
        return f"type {typed!r} into {field}"
    if kind is ActionType.PRESS_ENTER:
        # What Enter submits depends on the field it is pressed in (and what that field holds).
        return f"press enter in {field}"
    return kind.name.lower().replace("_", " ")


def describe_screen(elements: Sequence[UIElement], max_chars: int = 1000) -> str:
    """The screen's labelled elements in tree order, joined by " | " and cut at ``max_chars``
    (an empty tree, e.g. a failed dump, reads "no UI tree")."""
    names = [element_name(e) for e in elements if e.label.strip()]
    if not names:
        return "no UI tree" if not elements else "no labelled elements"
    return " | ".join(names)[:max_chars]


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _text_match(text: str, goal_words: list[str]) -> tuple[float, float]:
    """(the words of ``text``, in order, are a whole-word phrase of the goal; the share of
    them that are goal words); (0, 0) for text without words."""
    words = _words(text)
    if not words:
        return 0.0, 0.0
    n = len(words)
    phrase = any(goal_words[i : i + n] == words for i in range(len(goal_words) - n + 1))
    vocabulary = set(goal_words)
    return float(phrase), sum(w in vocabulary for w in words) / n


def goal_match(
    action: Action, elements: Sequence[UIElement], screen_size: tuple[int, int], goal: str
) -> list[float]:
    """:data:`GOAL_MATCH_DIM` numbers in [0, 1] that say how the action's words, and those of
    the field it acts on, meet the goal's words (0 where they do not apply):

    0. a TYPE whose words, in order, are a whole-word phrase of the goal ("oxo containers" for
       "... search for 'oxo containers'"; not "o containers" nor "logitech c9");
    1. the share of a TYPE's words that are words of the goal;
    2. the share of the words of the element under a tap that are goal words (a result that
       names the query, a link to the site the goal names);
    3. the focused field's text is a phrase of the goal (what Enter would submit: "ebay.com"
       in the address bar, or a garbled "ebay.cm");
    4. the share of the focused field's words that are goal words.
    """
    goal_words = _words(goal)
    out = [0.0] * GOAL_MATCH_DIM
    focused = next((e for e in elements if e.focused), None)
    if focused is not None:
        out[3], out[4] = _text_match(focused.text, goal_words)
    kind = action.action_type
    if kind is ActionType.TYPE:
        out[0], out[1] = _text_match(action.typed_text, goal_words)
    elif kind is ActionType.DUAL_POINT and action.is_tap:
        assert action.touch_yx is not None
        width, height = screen_size
        y, x = action.touch_yx
        hit = element_at(elements, x * width, y * height)
        if hit is not None:
            out[2] = _text_match(hit.label, goal_words)[1]
    return out
