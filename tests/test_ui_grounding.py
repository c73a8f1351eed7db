"""The critic's UI-tree inputs: which element an action lands on, and the screen's text."""

from __future__ import annotations

import dataclasses

from android.actions import Action, parse_autoui
from android.observation import UIElement
from digiq.ui_grounding import (
    GOAL_MATCH_DIM,
    describe_action,
    describe_screen,
    element_at,
    element_name,
    goal_match,
)

SCREEN = (1080, 2280)
PAGE = UIElement(class_name="android.widget.FrameLayout", bounds=(0, 0, 1080, 2280))
URL_BAR = UIElement(
    text="ebay.com",
    resource_id="com.android.chrome:id/url_bar",
    class_name="android.widget.EditText",
    bounds=(100, 100, 900, 200),
    clickable=True,
    focused=True,
)
CARD = UIElement(
    class_name="android.view.View",
    content_desc="Razer Kraken X gaming headset",
    bounds=(0, 400, 1080, 800),
    clickable=True,
)
TITLE = UIElement(
    text="Razer Kraken X", class_name="android.widget.TextView", bounds=(50, 450, 600, 500)
)
TREE = [PAGE, URL_BAR, CARD, TITLE]


def test_element_names_read_like_a_person_would() -> None:
    assert element_name(URL_BAR) == "EditText 'ebay.com' (url_bar)"
    assert element_name(CARD) == "View 'Razer Kraken X gaming headset'"
    assert element_name(UIElement(class_name="")) == "View"
    long = UIElement(text="x" * 200, class_name="android.widget.TextView")
    assert len(element_name(long)) < 80


def test_a_touch_lands_on_the_smallest_clickable_element_under_it() -> None:
    # The title text lies inside the clickable card: the tap goes to the card, not the label.
    assert element_at(TREE, 300, 470) is CARD
    assert element_at(TREE, 500, 150) is URL_BAR
    # Nothing clickable there: the smallest element of any kind.
    assert element_at(TREE, 500, 1500) is PAGE
    assert element_at(TREE, 500, 3000) is None
    assert element_at([], 1, 1) is None


def test_actions_are_described_on_the_screen_they_act_on() -> None:
    tap_bar = Action.tap(150 / 2280, 500 / 1080)
    assert describe_action(tap_bar, TREE, SCREEN) == "tap EditText 'ebay.com' (url_bar)"
    tap_card = Action.tap(470 / 2280, 300 / 1080)
    assert describe_action(tap_card, TREE, SCREEN) == "tap View 'Razer Kraken X gaming headset'"
    assert describe_action(Action.tap(0.99, 0.5), [URL_BAR], SCREEN) == "tap empty space"
    typed = describe_action(Action.type("razer  kraken"), TREE, SCREEN)
    assert typed == "type 'razer kraken' into EditText 'ebay.com' (url_bar)"
    unfocused = [CARD]
    assert describe_action(Action.type("x"), unfocused, SCREEN) == "type 'x' into no focused field"
    assert describe_action(Action.swipe((0.8, 0.5), (0.2, 0.5)), TREE, SCREEN) == "swipe up"
    assert (
        describe_action(Action.enter(), TREE, SCREEN)
        == "press enter in EditText 'ebay.com' (url_bar)"
    )
    assert describe_action(Action.enter(), unfocused, SCREEN) == "press enter in no focused field"
    assert describe_action(Action.back(), TREE, SCREEN) == "press back"
    assert describe_action(parse_autoui("tap the red thing"), TREE, SCREEN) == "unparseable action"


def test_the_screen_reads_as_its_labelled_elements_in_order() -> None:
    text = describe_screen(TREE)
    assert text == (
        "EditText 'ebay.com' (url_bar) | View 'Razer Kraken X gaming headset' | "
        "TextView 'Razer Kraken X'"
    )
    assert describe_screen(TREE, max_chars=20) == text[:20]
    assert describe_screen([]) == "no UI tree"
    assert describe_screen([PAGE]) == "no labelled elements"


GOAL = "Go to ebay.com, search for 'razer kraken x', and select the first entry"
FIELD_OK = [1.0, 1.0]  # TREE's focused field, the address bar, holds 'ebay.com'


def test_goal_match_tells_the_goal_s_text_from_a_garbled_copy() -> None:
    def typed(text: str) -> list[float]:
        return goal_match(Action.type(text), TREE, SCREEN, GOAL)

    assert typed("razer kraken x") == [1.0, 1.0, 0.0, *FIELD_OK]
    assert typed("Razer  Kraken") == [1.0, 1.0, 0.0, *FIELD_OK]  # case and spacing ignored
    assert typed("ebay.com") == [1.0, 1.0, 0.0, *FIELD_OK]  # the site is a phrase of the goal
    # Words cut, glued or out of order are not a phrase of the goal.
    assert typed("azer kraken") == [0.0, 0.5, 0.0, *FIELD_OK]
    assert typed("kraken razer") == [0.0, 1.0, 0.0, *FIELD_OK]
    assert typed("razer kraken'razer") == [0.0, 0.5, 0.0, *FIELD_OK]
    assert typed("...") == [0.0, 0.0, 0.0, *FIELD_OK]
    assert len(typed("x")) == GOAL_MATCH_DIM


def test_goal_match_reads_the_element_under_a_tap_and_the_focused_field() -> None:
    on_card = goal_match(Action.tap(470 / 2280, 300 / 1080), TREE, SCREEN, GOAL)
    assert on_card == [0.0, 0.0, 0.6, *FIELD_OK]  # razer, kraken, x of 5 words
    on_bar = goal_match(Action.tap(150 / 2280, 500 / 1080), TREE, SCREEN, GOAL)
    assert on_bar == [0.0, 0.0, 1.0, *FIELD_OK]
    assert goal_match(Action.tap(1500 / 2280, 500 / 1080), TREE, SCREEN, GOAL)[:3] == [0.0] * 3
    # What Enter would submit: the focused field's text against the goal.
    garbled = dataclasses.replace(URL_BAR, text="ebay.cm razer")
    assert goal_match(Action.enter(), TREE, SCREEN, GOAL) == [0.0, 0.0, 0.0, *FIELD_OK]
    assert goal_match(Action.enter(), [PAGE, garbled], SCREEN, GOAL) == [0.0, 0.0, 0.0, 0.0, 0.5]
    assert goal_match(Action.enter(), [PAGE, CARD], SCREEN, GOAL) == [0.0] * 5  # nothing focused
    assert goal_match(parse_autoui("tap the red thing"), [CARD], SCREEN, GOAL) == [0.0] * 5
