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
  direction, Back or Home.

The policy never sees these (it stays an AutoUI-style screenshot + text model); only the critic,
which runs offline on recorded data, does. Enabled by the ``critic.ui_tree_text`` preset field
(on in ``tiny``; off in the 7B presets, whose VLM reads the screen itself).
"""

from __future__ import annotations

from collections.abc import Sequence

from android.actions import Action, ActionType
from android.observation import UIElement

__all__ = ["GROUNDING_VERSION", "element_name", "element_at", "describe_action", "describe_screen"]

# Bump when a description changes: it is part of the feature stores' model name, so stores
# computed with other descriptions are refused instead of silently mixed.
GROUNDING_VERSION = "ui-tree-v2"

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
