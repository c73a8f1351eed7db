"""Grammar-constrained decoding of AutoUI strings (digiq.models.autoui_grammar).

The grammar is derived from the policy tokenizer; these tests walk every kind of AutoUI string
through it, check that an untrained policy (whose unconstrained samples are garbage) only
writes well-formed strings under it, and that tokenizers that cannot express it decode freely.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from android.actions import Action, ActionType, parse_autoui, to_autoui
from digiq.models.autoui_grammar import FREE_TEXT, FREE_TEXT_OR_END, AutoUIGrammar
from digiq.models.policy import PolicyConfig, PolicyModel, build_policy_tokenizer, policy_corpus
from digiq.policy_agent import _split_spec

W, H = 32, 64


def _config(**overrides: object) -> PolicyConfig:
    base: dict[str, object] = dict(
        d_model=32,
        d_ff=64,
        num_layers=1,
        num_decoder_layers=1,
        num_heads=2,
        d_kv=16,
        image_width=W,
        image_height=H,
        cnn_channels=(8, 16, 16),
        max_input_tokens=40,
        max_target_tokens=32,
    )
    base.update(overrides)
    return PolicyConfig(**base)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def tokenizer():  # type: ignore[no-untyped-def]
    goals = ['Search for "razer kraken"', "Go to ebay.com", 'Search "blender" on walmart.com']
    return build_policy_tokenizer(
        policy_corpus(goals, size=200, include_task_sets=False), vocab_size=500
    )


@pytest.fixture(scope="module")
def untrained(tokenizer) -> PolicyModel:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    return PolicyModel.build(_config(), tokenizer=tokenizer, precision="fp32")


def _ids(tokenizer, text: str) -> list[int]:  # type: ignore[no-untyped-def]
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def test_every_kind_of_action_string_is_accepted_token_by_token(untrained: PolicyModel) -> None:
    grammar = untrained.grammar
    assert isinstance(grammar, AutoUIGrammar)
    assert grammar.point_pattern.count(None) == 4  # two points, two coordinates each
    actions = [
        Action.tap(0.12, 0.56),
        Action.swipe((0.8, 0.5), (0.2, 0.5)),
        Action.tap(0.0, 1.0),
        Action.type("razer kraken"),
        Action.type(""),
        *(Action(kind) for kind in ActionType if kind not in (ActionType.DUAL_POINT,
                                                              ActionType.TYPE,
                                                              ActionType.INVALID)),
    ]  # fmt: skip
    for action in actions:
        ids = _ids(untrained.tokenizer, to_autoui(action))
        for k, token in enumerate(ids):
            allowed = grammar.allowed(ids[:k])
            if isinstance(allowed, str):
                assert token not in grammar.structural_ids(), (action, k)
            else:
                assert token in allowed, (action, k, untrained.tokenizer.decode([token]))
        # the string is complete: the grammar now allows exactly the end of sequence
        end = grammar.allowed(ids)
        assert end == [grammar.eos_id] or end == FREE_TEXT_OR_END, action


def test_grammar_rejects_garbled_coordinates_and_an_unclosed_typed_text(untrained) -> None:  # type: ignore[no-untyped-def]
    grammar, tok = untrained.grammar, untrained.tokenizer
    tap = _ids(tok, to_autoui(Action.tap(0.44, 0.17)))
    word = _ids(tok, " blender")[0]
    assert word not in grammar.allowed(tap[:1])  # a goal word where a coordinate belongs
    assert grammar.eos_id not in grammar.allowed(tap[:3])  # ended before the point is written
    typed = _ids(tok, to_autoui(Action.type("razer")))
    assert grammar.allowed(typed[:-1]) == FREE_TEXT  # inside the quotes: no end yet
    assert grammar.allowed(typed) == FREE_TEXT_OR_END
    back = _ids(tok, to_autoui(Action.back()))
    assert grammar.allowed(back) == [grammar.eos_id]


def test_an_untrained_policy_writes_only_well_formed_actions_under_the_grammar(
    untrained: PolicyModel,
) -> None:
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (H * 4, W * 4, 3), dtype=np.uint8) for _ in range(3)]
    texts = [untrained.input_text([], "Go to ebay.com")] * 3
    free = untrained.sample(images, texts, n=8, temperature=1.0, seed=1, grammar=False)
    held = untrained.sample(images, texts, n=8, temperature=1.0, seed=1)
    free_valid = [parse_autoui(t).is_valid for row in free for t, _ in row]
    assert sum(free_valid) < len(free_valid)  # random weights: the free sampler garbles
    type_prefix = to_autoui(Action.type(""))[:-1]  # up to the opening quote of typed_text
    held_texts = [t for row in held for t, _ in row]
    # a TYPE may run into the length limit before closing its quote; nothing else can fail
    structured = [t for t in held_texts if not t.startswith(type_prefix)]
    assert structured, held_texts
    assert all(parse_autoui(t).is_valid for t in structured), structured
    # the returned log-probabilities are still the unconstrained policy's
    flat = [t for row in held for t, _ in row]
    recomputed = untrained.sequence_logprobs(untrained.prepare(images, texts).repeat(8), flat)
    returned = torch.tensor([lp for row in held for _, lp in row])
    assert torch.allclose(returned, recomputed.float(), atol=1e-4)
    greedy = untrained.greedy(images, texts)
    for text, _ in greedy:
        assert parse_autoui(text).is_valid or text.startswith(type_prefix), text


def test_a_policy_trained_on_four_decimals_decodes_unconstrained(tokenizer) -> None:  # type: ignore[no-untyped-def]
    model = PolicyModel.build(
        _config(round_coordinates=None), tokenizer=tokenizer, precision="fp32"
    )
    assert model.grammar is None
    rng = np.random.default_rng(1)
    image = [rng.integers(0, 255, (H * 4, W * 4, 3), dtype=np.uint8)]
    assert len(model.sample(image, [model.input_text([], "Go to ebay.com")], n=2)[0]) == 2


def test_agent_spec_turns_the_grammar_off() -> None:
    assert _split_spec("RUN?grammar=0") == ("RUN", {"grammar": False})
    assert _split_spec("RUN?grammar=1&temperature=1.0") == (
        "RUN",
        {"grammar": True, "temperature": 1.0},
    )
