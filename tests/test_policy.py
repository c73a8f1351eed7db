"""The AutoUI-style policy model: tokenizer, save/load, sampling (free and held to the AutoUI
grammar), loss numerics, learning.

Everything runs on CPU with a small policy built from config (a few hundred thousand
parameters) so the module stays fast; the training test is a real (short) optimisation.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from android.actions import Action, ActionType, actions_match, parse_autoui, to_autoui
from digiq.bestofn import policy_loss
from digiq.models.autoui_grammar import FREE_TEXT, FREE_TEXT_OR_END, AutoUIGrammar
from digiq.models.policy import (
    POLICY_JSON,
    PolicyConfig,
    PolicyModel,
    autoui_added_tokens,
    build_policy_tokenizer,
    policy_corpus,
    round_action,
    span_match_lengths,
)
from digiq.models.presets import MissingCheckpointError, get_preset
from digiq.policy_train import augment_query, fake_query

W, H = 32, 64  # toy screens; the CNN's stride is 16, so a 4 x 2 patch grid
ROWS, COLS = 4, 2
WORDS = [
    "kraken", "soundcore", "toothbrush", "nutella", "headphones", "blender", "keyboard",
    "monitor", "charger", "backpack", "sneakers", "notebook", "lantern", "kettle", "tripod",
    "scanner", "speaker", "printer", "router", "webcam", "camera", "drone", "guitar", "helmet",
]  # fmt: skip
TRAIN_WORDS, TEST_WORDS = WORDS[:18], WORDS[18:]


def small_config(**overrides: object) -> PolicyConfig:
    base: dict[str, object] = dict(
        d_model=64,
        d_ff=128,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=4,
        d_kv=16,
        image_width=W,
        image_height=H,
        cnn_channels=(16, 32, 32),
        max_input_tokens=48,
        max_target_tokens=40,
    )
    base.update(overrides)
    return PolicyConfig(**base)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def tokenizer():  # type: ignore[no-untyped-def]
    goals = [f'Search for "{w}"' for w in WORDS] + ["Tap the red square", "Go to ebay.com"]
    return build_policy_tokenizer(
        policy_corpus(goals, size=300, include_task_sets=False), vocab_size=600
    )


@pytest.fixture(scope="module")
def policy(tokenizer) -> PolicyModel:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    return PolicyModel.build(small_config(), tokenizer=tokenizer, precision="fp32")


def screens(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 255, (H * 4, W * 4, 3), dtype=np.uint8) for _ in range(n)]


# ------------------------------------------------------------------------------- tokenizer


def test_tokenizer_round_trips_autoui_strings_and_keeps_constant_parts_short(tokenizer) -> None:  # type: ignore[no-untyped-def]
    actions = [
        Action.tap(0.12, 0.56),
        Action.tap(0.1234, 0.5678),
        Action.swipe((0.8, 0.5), (0.2, 0.5)),
        Action.type('oral-b "pro" 1000\\x'),
        Action.back(),
        Action.home(),
        Action.enter(),
        Action.complete(),
        Action.impossible(),
    ]
    for action in actions:
        text = to_autoui(action)
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert tokenizer.decode(ids) == text
        assert parse_autoui(tokenizer.decode(ids)) == action
    count = {
        a.action_type: len(tokenizer(to_autoui(a), add_special_tokens=False)["input_ids"])
        for a in actions
    }
    assert count[ActionType.PRESS_BACK] == 1  # a whole constant action is one added token
    tap = len(tokenizer(to_autoui(Action.tap(0.12, 0.56)), add_special_tokens=False)["input_ids"])
    assert tap <= 12  # prefix, 4 coordinates, joints: not ~150 characters of JSON
    assert len(autoui_added_tokens()) >= 10


def test_tokenizer_splits_a_query_the_same_in_the_goal_and_in_typed_text(tokenizer) -> None:  # type: ignore[no-untyped-def]
    for query in ("samsung galaxy s9", "oral-b electric toothbrush", "tripod"):
        for quote in ('"', "'"):
            goal = tokenizer.tokenize(f"Go to ebay.com, search for {quote}{query}{quote}")
            typed = tokenizer.tokenize(to_autoui(Action.type(query)))
            q = tokenizer.tokenize(query)
            # the query's tokens appear as a contiguous run in both
            assert any(goal[i : i + len(q)] == q for i in range(len(goal)))
            assert typed[1 : 1 + len(q)] == q


def test_round_action_rounds_points_only() -> None:
    assert round_action(Action.tap(0.1234, 0.5678), 2) == Action.tap(0.12, 0.57)
    assert round_action(Action.type("x"), 2) == Action.type("x")
    assert round_action(Action.tap(0.1234, 0.5678), None) == Action.tap(0.1234, 0.5678)


# ------------------------------------------------------------------------------- model


def test_save_load_round_trip_gives_identical_log_probs(
    policy: PolicyModel, tmp_path: Path
) -> None:
    images = screens(3)
    texts = [policy.input_text([], f'Search for "{w}"') for w in ("kraken", "nutella", "drone")]
    targets = [to_autoui(Action.type("kraken")), to_autoui(Action.tap(0.5, 0.5)), "garbage"]
    before = policy.sequence_logprobs(policy.prepare(images, texts), targets)
    path = policy.save(tmp_path / "policy")
    assert (path / POLICY_JSON).is_file() and (path / "model.safetensors").is_file()
    loaded = PolicyModel.load(path, precision="fp32")
    after = loaded.sequence_logprobs(loaded.prepare(images, texts), targets)
    assert torch.equal(before, after)
    assert loaded.model_id == policy.model_id
    assert loaded.config == policy.config


def test_sample_returns_n_strings_with_teacher_forced_log_probs(policy: PolicyModel) -> None:
    images = screens(2, seed=1)
    texts = [policy.input_text([], "Tap the red square"), policy.input_text([], "Go to ebay.com")]
    rows = policy.sample(images, texts, n=5, temperature=1.2, seed=3)
    assert len(rows) == 2 and all(len(row) == 5 for row in rows)
    flat = [text for row in rows for text, _ in row]
    assert all(isinstance(t, str) for t in flat)
    recomputed = policy.sequence_logprobs(policy.prepare(images, texts).repeat(5), flat)
    returned = torch.tensor([lp for row in rows for _, lp in row])
    assert torch.allclose(returned, recomputed.float(), atol=1e-4)
    assert (returned < 0).all()
    # the same seed draws the same samples
    again = policy.sample(images, texts, n=5, temperature=1.2, seed=3)
    assert [t for row in again for t, _ in row] == flat


def test_generate_draws_what_sample_draws_without_scoring(policy: PolicyModel) -> None:
    # PolicyAgent.act uses generate (no log-probability pass): the actions must be the ones
    # sample would have drawn with the same seed, and greedy's with temperature 0.
    images = screens(2, seed=4)
    texts = [policy.input_text([], "Go to ebay.com"), policy.input_text([], "Open the clock")]
    sampled = policy.sample(images, texts, n=3, temperature=0.8, seed=11)
    drawn = policy.generate(images, texts, n=3, temperature=0.8, seed=11)
    assert drawn == [[text for text, _ in row] for row in sampled]
    assert policy.generate(images, texts, temperature=0.0) == [
        [text] for text, _ in policy.greedy(images, texts)
    ]
    with pytest.raises(ValueError, match="n must be >= 1"):
        policy.generate(images, texts, n=0)


def test_weighted_loss_matches_the_published_formula(policy: PolicyModel) -> None:
    images = screens(2, seed=2)
    texts = [policy.input_text([], "Go to ebay.com")] * 2
    targets = [to_autoui(Action.back()), to_autoui(Action.type("ebay.com"))]
    batch = policy.prepare(images, texts)
    token_logp, mask = policy.token_logprobs(batch, targets)
    expected = policy_loss(token_logp, mask, torch.tensor([1.0, 0.0]))
    loss = policy.loss(batch, targets, [1.0, 0.0])
    assert torch.allclose(loss, expected)
    # a zero-weight example contributes nothing: same value as the first example alone / 2
    alone = policy.loss(policy.prepare(images[:1], texts[:1]), targets[:1], [1.0])
    assert torch.allclose(loss, alone / 2, atol=1e-6)
    # and no gradient flows from it
    policy.net.zero_grad()
    policy.loss(policy.prepare(images[1:], texts[1:]), targets[1:], [0.0]).backward()
    grads = [p.grad for p in policy.net.parameters() if p.grad is not None]
    assert all(float(g.abs().sum()) == 0.0 for g in grads)
    # the clamp: unclamped NLL differs once a token is below p = 0.001
    unclamped = policy.loss(batch, targets, [1.0, 1.0], clamp=False)
    assert torch.allclose(unclamped, -(token_logp * mask).sum(-1).mean())


def test_load_of_a_missing_path_names_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope"):
        PolicyModel.load(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="digiq_policy.json"):
        PolicyModel.load(tmp_path / "empty")
    missing = get_preset("tiny", check=False, policy_path=str(tmp_path / "t5-missing"))
    with pytest.raises(FileNotFoundError, match="t5-missing"):
        PolicyModel.from_preset(missing)
    real = get_preset("llava-1.5-7b", check=False, model_path=str(tmp_path))
    with pytest.raises(MissingCheckpointError, match="--policy-path"):
        PolicyModel.from_preset(real)


# ------------------------------------------------------------------------------- copy head


def test_span_match_lengths_count_the_run_just_copied() -> None:
    # input: [image] 5 6 7 5 8; written so far: start, 5, 6 (ids); -1 never matches
    tokens = torch.tensor([[-1, 5, 6, 7, 5, 8]])
    written = torch.tensor([[0, 5, 6]])
    lengths = span_match_lengths(written, tokens, steps=3, max_length=4)
    assert lengths.tolist() == [
        [
            [0, 0, 0, 0, 0, 0],  # after the start token: nothing copied yet
            [0, 0, 1, 0, 0, 1],  # after "5": both tokens that follow a 5
            [0, 0, 0, 2, 0, 0],  # after "5 6": only the 7 continues the run
        ]
    ]
    # capped at max_length, and only the last `steps` positions are returned
    long = span_match_lengths(torch.tensor([[0, 5, 6, 7]]), tokens, steps=1, max_length=2)
    assert long.tolist() == [[[0, 0, 0, 0, 2, 0]]]


def test_copy_match_reads_the_goal_only_and_counts_either_quote_as_one(policy) -> None:  # type: ignore[no-untyped-def]
    # An unseen query: the tokenizer splits it into short pieces that repeat ("o", "x", "o"),
    # where a one-token "copy what follows" cue is ambiguous and the span length is not.
    query = "oxo containers"
    text = policy.input_text([Action.type("ebay.com")], f"Search for '{query}'")
    batch = policy.prepare(screens(1), [text])
    _, _, copy_ids = policy._encode(batch)
    ids = batch.input_ids[0].tolist()
    tokens = policy.tokenizer.convert_ids_to_tokens(ids)
    match_ids = copy_ids[0, -len(ids) :, 2].tolist()
    goal_at = tokens.index(":", tokens.index("ĠGoal")) + 1
    # the previous action's typed text (before "Goal:") is not a place to continue a span
    assert set(match_ids[:goal_at]) == {-1} and min(match_ids[goal_at:-1]) >= 0
    quote_class = int(policy.net.t5.copy_class[-1])
    assert match_ids[tokens.index("'")] == quote_class
    target = policy.target_text(Action.type(query))
    labels = policy.tokenizer(target, return_tensors="pt")["input_ids"]
    written = policy.net.t5.copy_class[policy.net.t5._shift_right(labels)]
    lengths = span_match_lengths(written, copy_ids[..., 2], labels.shape[1], 6)[0]
    lengths = lengths.masked_fill(copy_ids[0, :, 0] < 0, 0)  # only where copying is allowed
    k = copy_ids.shape[1] - len(ids)
    first = tokens.index("'") + 1
    label_tokens = policy.tokenizer.convert_ids_to_tokens(labels[0].tolist())
    for step in range(1, len(label_tokens) - 1):  # each query token, the first included
        # the position of the token this step must write has the longest run, and only it
        best = lengths[step].argmax().item() - k
        assert best == first + step - 1, (step, label_tokens[step], tokens[best])
        assert (lengths[step] == lengths[step].max()).sum() == 1


def teacher_forced_logits(model: PolicyModel, batch, labels: torch.Tensor) -> torch.Tensor:  # type: ignore[no-untyped-def]
    """The pointer T5's ``[B, T, V]`` output (log p) for ``labels``, teacher-forced, no cache."""
    enc, mask, copy_ids = model._encode(batch)
    with torch.no_grad():
        return model.net.t5(
            encoder_outputs=enc,
            attention_mask=mask,
            decoder_input_ids=model.net.t5._shift_right(labels),
            copy_ids=copy_ids,
            use_cache=False,
        ).logits


def test_generation_gives_the_copy_head_the_whole_written_prefix(tokenizer) -> None:  # type: ignore[no-untyped-def]
    # With a cache, generate feeds the model one token at a time; the span-match bias must
    # still see every token written, or generation would follow another distribution than
    # the teacher-forced one that training and scoring use.
    torch.manual_seed(0)
    model = PolicyModel.build(small_config(), tokenizer=tokenizer, precision="fp32")
    with torch.no_grad():
        model.net.t5.copy_gate.bias.fill_(-6.0)  # mostly copying: the bias decides
    images = screens(2, seed=6)
    texts = [model.input_text([], f'Search for "{q}"') for q in ("oxo containers", "ab ab ac")]
    batch = model.prepare(images, texts)
    out = model._generate(batch, 1, None, None, grammar=False)
    targets = [row[0] for row in out]
    labels = model.tokenizer(targets, return_tensors="pt", padding=True)["input_ids"]
    logits = teacher_forced_logits(model, batch, labels)
    real = labels != model.pad_id
    assert torch.equal(logits.argmax(-1)[real], labels[real])
    assert max(len(t) for t in targets) > 5  # it wrote something to compare


def test_a_policy_saved_before_the_span_match_bias_loads_without_it(
    tokenizer, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    old = PolicyModel.build(
        small_config(copy_match=0, copy_source="input"), tokenizer=tokenizer, precision="fp32"
    )
    path = old.save(tmp_path / "old")
    meta = json.loads((path / POLICY_JSON).read_text())
    del meta["config"]["copy_match"]  # as written before the fields existed
    del meta["config"]["copy_source"]
    (path / POLICY_JSON).write_text(json.dumps(meta))
    loaded = PolicyModel.load(path, precision="fp32")
    assert loaded.config.copy_match == 0 and not hasattr(loaded.net.t5, "copy_match_bias")
    assert loaded.config.copy_source == "input" and loaded.net.copy_source == "input"
    texts = [old.input_text([], 'Search for "kraken"')]
    target = [to_autoui(Action.type("kraken"))]
    before = old.sequence_logprobs(old.prepare(screens(1), texts), target)
    assert torch.equal(before, loaded.sequence_logprobs(loaded.prepare(screens(1), texts), target))
    with pytest.raises(ValueError, match="copy_match"):
        small_config(copy_match=-1)


def test_closing_quotes_pair_up_in_the_goal_and_skip_apostrophes(policy) -> None:  # type: ignore[no-untyped-def]
    net = policy.net
    assert net.t5.copy_close and net.close_id == policy.tokenizer.convert_tokens_to_ids('"')
    cases = {
        # goal -> the text after each closing quote
        "Search for 'oxo containers', and select it": [", and select it"],
        'Go to ebay.com, search for "levi\'s jeans"': [""],  # not the apostrophe
        "Search for 'men's shoes' on ebay.com": [" on ebay.com"],
        "What's the weather in Paris?": [],  # an apostrophe opens nothing
        "Go to ebay.com": [],
    }
    for goal, after in cases.items():
        # the previous action's typed text holds quotes too: not the goal's, never marked
        text = policy.input_text([Action.type("say 'hi'")], goal)
        batch = policy.prepare(screens(1), [text])
        _, _, copy_ids = policy._encode(batch)
        ids = batch.input_ids[0].tolist()
        tokens = policy.tokenizer.convert_ids_to_tokens(ids)
        k = copy_ids.shape[1] - len(ids)
        closing = copy_ids[0, k:, 3].nonzero().flatten().tolist()
        # (the token after "ebay.com" closes the address: test_web_addresses_open_and_close)
        closing = [i for i in closing if tokens[i] in ("'", '"')]
        following = [
            policy.tokenizer.decode(ids[i + 1 :], skip_special_tokens=True) for i in closing
        ]
        assert following == after, goal
        for i in closing:  # copying it writes the typed text's closing quote
            assert tokens[i] in ("'", '"') and int(copy_ids[0, k + i, 0]) == net.close_id
        assert copy_ids[0, :k, 3].eq(0).all()  # image tokens: no closing quote


def test_the_copy_head_ends_the_query_by_copying_the_goals_closing_quote(tokenizer) -> None:  # type: ignore[no-untyped-def]
    # "oxo" is o, x, o: after the last "o", the "x" that followed the first "o" is a one-token
    # match. Without copy_close the closing quote got no bias, so the copying head went on to
    # "x" ("oxoxo...", as qs49's policies typed "toothbrushbrushbrush"); with it, the closing
    # quote continues the whole span and copying it writes the typed text's closing '"'.
    query = "oxo"
    closing_p, after_close_p = {}, {}
    for close in (True, False):
        torch.manual_seed(0)
        model = PolicyModel.build(
            small_config(copy_close=close), tokenizer=tokenizer, precision="fp32"
        )
        assert model.config.closes_by_copy == close
        assert hasattr(model.net.t5, "copy_end_gate") != close
        with torch.no_grad():
            model.net.t5.copy_gate.bias.fill_(-6.0)  # mostly copying: the copy head decides
        text = model.input_text([], f"Go to ebay.com, search for '{query}', and select it")
        target = model.target_text(Action.type(query))
        labels = model.tokenizer(target)["input_ids"]
        assert model.tokenizer.convert_ids_to_tokens(labels)[-2:] == ["o", '"']
        with torch.no_grad():
            logp, mask = model.token_logprobs(model.prepare(screens(1), [text]), [target])
        length = int(mask[0].sum())
        closing_p[close] = float(logp[0, length - 2].exp())
        if close:  # the span is continued too (step 0 is the opening, 1 the query's first)
            assert logp[0, 2 : length - 2].exp().min() > 0.5
        # After the closing quote: the goal's next token (",") continued the span before; with
        # copy_close the text is over there, no span goes on (EOS, generated, ends the action).
        labels_t = torch.tensor([labels + [model.eos_id]])
        logits = teacher_forced_logits(model, model.prepare(screens(1), [text]), labels_t)
        comma = model.tokenizer.convert_tokens_to_ids(",")
        after_close_p[close] = float(logits[0, -1].softmax(-1)[comma])
    assert closing_p[True] > 0.9 and closing_p[False] < 0.1, closing_p
    assert after_close_p[True] < 0.2 < 0.5 < after_close_p[False], after_close_p


def test_web_addresses_open_and_close_in_the_goal(policy) -> None:  # type: ignore[no-untyped-def]
    tokenizer = policy.tokenizer
    address = tokenizer.tokenize("newegg.com")
    goal = tokenizer.tokenize("Go to newegg.com, search for 'gtx 1660'")
    typed = tokenizer.tokenize(to_autoui(Action.type("newegg.com")))
    # the space before the address is its own token; the address is the same tokens in the
    # goal and in typed text
    at = next(i for i in range(len(goal)) if goal[i : i + len(address)] == address)
    assert goal[at - 1] == "\u0120" and typed[1 : 1 + len(address)] == address
    quote_class = int(policy.net.t5.copy_class[-1])
    cases = {
        # goal -> (the address, the text after its close)
        "Go to newegg.com, search for 'gtx 1660'": [("newegg.com", ", search for 'gtx 1660'")],
        "Navigate to bestbuy.com": [("bestbuy.com", "")],  # closes at EOS
        "Visit www.ebay.co.uk.": [("www.ebay.co.uk", ".")],  # the sentence's full stop closes
        "Search for 'gtx 1660' and 'rtx 3060 ti'": [],  # not addresses
    }
    for goal, expected in cases.items():
        # the previous action's typed address is not the goal's: never marked
        text = policy.input_text([Action.type("ebay.com")], goal)
        batch = policy.prepare(screens(1), [text])
        _, _, copy_ids = policy._encode(batch)
        ids = batch.input_ids[0].tolist()
        k = copy_ids.shape[1] - len(ids)
        closing = [
            i
            for i in copy_ids[0, k:, 3].nonzero().flatten().tolist()
            if tokenizer.convert_ids_to_tokens(ids[i]) not in ("'", '"')
        ]
        opening = [i for i in range(len(ids)) if int(copy_ids[0, k + i, 2]) == quote_class]
        opening = [i for i in opening if ids[i] == policy.net.space_id]
        found = [
            (
                tokenizer.decode(ids[o + 1 : c]),
                tokenizer.decode(ids[c:], skip_special_tokens=True),
            )
            for o, c in zip(opening, closing, strict=True)
        ]
        assert found == expected, goal
        for i in closing:  # copying the close writes the typed text's closing quote
            assert int(copy_ids[0, k + i, 0]) == policy.net.close_id


def test_the_copy_head_copies_a_web_address_and_closes_it(tokenizer) -> None:  # type: ignore[no-untyped-def]
    # The goal's " newegg" used to be one token with its space and the typed "newegg" two
    # others, so the address was never copied (qs63's Digi-Q typed 'newgeg.com'). With
    # copy_address the space before it opens a span like a quote, the address is copied token
    # by token and the token after it closes the typed text.
    probs = {}
    for on in (True, False):
        torch.manual_seed(0)
        model = PolicyModel.build(
            small_config(copy_address=on), tokenizer=tokenizer, precision="fp32"
        )
        assert model.config.copies_addresses == on and model.net.copy_address == on
        with torch.no_grad():
            model.net.t5.copy_gate.bias.fill_(-6.0)  # mostly copying: the copy head decides
        for goal in ("Go to newegg.com, search for 'oxo'", "Navigate to newegg.com"):
            text = model.input_text([], goal)
            target = model.target_text(Action.type("newegg.com"))
            labels = model.tokenizer(target)["input_ids"]
            with torch.no_grad():
                logp, mask = model.token_logprobs(model.prepare(screens(1), [text]), [target])
            length = int(mask[0].sum())
            # step 0 is the opening, then the address, then the closing quote, then EOS
            probs[on, goal] = logp[0, 1 : length - 1].exp()
            if on:
                labels_t = torch.tensor([labels + [model.eos_id]])
                logits = teacher_forced_logits(model, model.prepare(screens(1), [text]), labels_t)
                comma = model.tokenizer.convert_tokens_to_ids(",")
                assert float(logits[0, -1].softmax(-1)[comma]) < 0.2  # nothing after the close
    for goal in ("Go to newegg.com, search for 'oxo'", "Navigate to newegg.com"):
        # every piece after the first and the closing quote; the close was the goal's ','
        # or generated before
        assert probs[True, goal][1:].min() > 0.5, probs[True, goal]
        assert probs[False, goal][-1] < 0.1, probs[False, goal]
        # The first piece continues the opening now (untrained, other terms still weigh in;
        # where the goal also holds a query, its first token is the other opening: which text
        # to type is the trained policy's choice).
        assert probs[True, goal][0] > 10 * probs[False, goal][0], (goal, probs)


def test_a_policy_saved_before_copy_close_keeps_generating_the_closing_quote(
    tokenizer, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    old = PolicyModel.build(small_config(copy_close=False), tokenizer=tokenizer, precision="fp32")
    path = old.save(tmp_path / "old")
    meta = json.loads((path / POLICY_JSON).read_text())
    del meta["config"]["copy_close"]  # as written before the fields existed
    del meta["config"]["copy_address"]
    (path / POLICY_JSON).write_text(json.dumps(meta))
    loaded = PolicyModel.load(path, precision="fp32")
    assert not loaded.config.copy_close and not loaded.net.t5.copy_close
    assert not loaded.config.copy_address and not loaded.net.copy_address
    assert hasattr(loaded.net.t5, "copy_end_gate")
    texts = [old.input_text([], "Search for 'kraken'")]
    target = [to_autoui(Action.type("kraken"))]
    before = old.sequence_logprobs(old.prepare(screens(1), texts), target)
    assert torch.equal(before, loaded.sequence_logprobs(loaded.prepare(screens(1), texts), target))
    # and a new policy saved and loaded keeps copy_close (a closing-quote channel, no gate term)
    new = PolicyModel.build(small_config(), tokenizer=tokenizer, precision="fp32")
    reloaded = PolicyModel.load(new.save(tmp_path / "new"), precision="fp32")
    assert reloaded.net.t5.copy_close and not hasattr(reloaded.net.t5, "copy_end_gate")
    assert reloaded.net.copy_address and reloaded.net.space_id is not None
    texts = [new.input_text([], "Search for 'kraken'")]
    assert torch.equal(
        new.sequence_logprobs(new.prepare(screens(1), texts), target),
        reloaded.sequence_logprobs(reloaded.prepare(screens(1), texts), target),
    )


def test_copy_source_goal_copies_from_the_goal_only(tokenizer) -> None:  # type: ignore[no-untyped-def]
    # The previous actions hold coordinates and an earlier typed text; a policy that copies
    # from them can type "hot wheels0.1000" (README, "Two previous actions: tried, not adopted").
    for source, history_copyable in (("goal", False), ("input", True)):
        torch.manual_seed(0)
        model = PolicyModel.build(
            small_config(copy_source=source, history=2), tokenizer=tokenizer, precision="fp32"
        )
        text = model.input_text(
            [Action.tap(0.2, 0.43), Action.type("ebay.com")], "Search for 'kraken'"
        )
        batch = model.prepare(screens(1), [text])
        _, _, copy_ids = model._encode(batch)
        ids = batch.input_ids[0].tolist()
        tokens = model.tokenizer.convert_ids_to_tokens(ids)
        goal_at = tokens.index(":", tokens.index("ĠGoal")) + 1
        copyable = copy_ids[0, -len(ids) :, 0].tolist()
        assert (max(copyable[:goal_at]) >= 0) == history_copyable, source
        assert min(copyable[goal_at:-1]) >= 0, source  # the goal's tokens (not EOS)
    with pytest.raises(ValueError, match="copy_source"):
        small_config(copy_source="everything")


# ------------------------------------------------------------------------------- learning


def toy_example(kind: str, rng: np.random.Generator, words: list[str]) -> tuple:
    """A screen with a red square in one of 8 cells; tap its centre, or type the quoted word."""
    img = np.full((H, W, 3), 230, np.uint8)
    r, c = int(rng.integers(ROWS)), int(rng.integers(COLS))
    ch, cw = H // ROWS, W // COLS
    img[r * ch + 3 : (r + 1) * ch - 3, c * cw + 3 : (c + 1) * cw - 3] = (220, 30, 30)
    if kind == "tap":
        target = Action.tap(round((r + 0.5) / ROWS, 2), round((c + 0.5) / COLS, 2))
        return img, "Tap the red square", target
    word = str(rng.choice(words))
    return img, f'Search for "{word}"', Action.type(word)


def train_on_toy(
    model: PolicyModel,
    rng: np.random.Generator,
    steps: int,
    kind_of: Callable[[int], str],
    clamp: bool = True,
) -> None:
    """``steps`` AdamW steps (lr 3e-3) on batches of 32 toy examples; ``kind_of(i)`` says
    whether example ``i`` of a batch is a tap or a type."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(steps):
        batch = [toy_example(kind_of(i), rng, TRAIN_WORDS) for i in range(32)]
        prepared = model.prepare([b[0] for b in batch], [model.input_text([], b[1]) for b in batch])
        loss = model.loss(
            prepared, [model.target_text(b[2]) for b in batch], [1.0] * 32, clamp=clamp
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def test_policy_learns_where_to_tap_and_to_copy_an_unseen_word(tokenizer) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    model = PolicyModel.build(small_config(), tokenizer=tokenizer, precision="fp32")
    rng = np.random.default_rng(0)
    train_on_toy(model, rng, 160, lambda _: "tap" if rng.random() < 0.5 else "type", clamp=False)
    test_rng = np.random.default_rng(123)
    taps = [toy_example("tap", test_rng, TEST_WORDS) for _ in range(32)]
    types = [toy_example("type", test_rng, TEST_WORDS) for _ in range(32)]
    outputs = model.greedy(
        [b[0] for b in taps + types], [model.input_text([], b[1]) for b in taps + types]
    )
    tap_ok = [
        actions_match(parse_autoui(o), b[2]) for (o, _), b in zip(outputs[:32], taps, strict=True)
    ]
    copy_ok = [
        parse_autoui(o).typed_text == b[2].typed_text
        for (o, _), b in zip(outputs[32:], types, strict=True)
    ]
    # chance: 1/8 of the cells for taps; 0 for words never seen in a target
    assert np.mean(tap_ok) >= 0.6, np.mean(tap_ok)
    assert np.mean(copy_ok) >= 0.5, np.mean(copy_ok)


def lightly_trained_on_toy(tokenizer, seed: int, num_states: int) -> tuple:  # type: ignore[no-untyped-def]
    """A small policy after 30 toy training steps (so that decoding depends on its context) and
    a prepared batch of ``num_states`` new toy states: (model, states, batch)."""
    torch.manual_seed(0)
    model = PolicyModel.build(small_config(), tokenizer=tokenizer, precision="fp32")
    rng = np.random.default_rng(seed)
    train_on_toy(model, rng, 30, lambda i: ("tap", "type")[i % 2])
    states = [toy_example(("tap", "type")[i % 2], rng, TEST_WORDS) for i in range(num_states)]
    batch = model.prepare([b[0] for b in states], [model.input_text([], b[1]) for b in states])
    return model, states, batch


def test_decoding_with_the_cache_writes_what_decoding_without_it_writes(tokenizer) -> None:  # type: ignore[no-untyped-def]
    # generate() feeds only the last token when it keeps a cache: a cache that does not reach
    # the decoder (transformers 5.24 renamed it; CI, 2026-11-24) decodes every step without
    # context, which scored taps in the wrong column. Lightly trained so that the context matters.
    model, _, batch = lightly_trained_on_toy(tokenizer, seed=0, num_states=16)
    for n, temperature, seed in ((1, None, None), (2, 1.0, 7)):
        cached = model._generate(batch, n, temperature, seed, use_cache=True)
        uncached = model._generate(batch, n, temperature, seed, use_cache=False)
        assert cached == uncached, temperature
    assert len({row[0] for row in cached}) > 4  # sampled texts differ between states


def test_copy_keys_kept_over_decoding_steps_write_what_recomputed_keys_write(tokenizer) -> None:  # type: ignore[no-untyped-def]
    # Generation reuses the copy head's keys of the encoder positions from step to step
    # (PointerT5._copy_keys); recomputed at every step (a copy of the encoder output is a new
    # tensor, which misses the cache) the sampled texts and their scores must be the same.
    model, states, batch = lightly_trained_on_toy(tokenizer, seed=1, num_states=12)
    t5 = model.net.t5
    key_passes = []
    hook = t5.copy_key.register_forward_hook(lambda *_: key_passes.append(1))
    kept = model.sample(batch, n=3, temperature=1.0, seed=3)
    kept_passes = len(key_passes)
    assert t5._copy_key_cache is None  # released after the call: nothing held until the next
    keys = type(t5)._copy_keys

    def recompute(self, enc, copy_ids, shifted):  # type: ignore[no-untyped-def]
        return keys(self, enc.clone(), copy_ids, shifted)

    t5._copy_keys = recompute.__get__(t5)
    key_passes.clear()
    recomputed = model.sample(batch, n=3, temperature=1.0, seed=3)
    del t5._copy_keys
    hook.remove()
    # kept: one pass for the whole generation and one for the scoring pass; recomputed: one
    # per decoding step
    assert kept_passes == 2 and len(key_passes) > 5
    assert [[text for text, _ in row] for row in kept] == [
        [text for text, _ in row] for row in recomputed
    ]
    np.testing.assert_allclose(
        [lp for row in kept for _, lp in row],
        [lp for row in recomputed for _, lp in row],
        atol=1e-5,
    )
    # with gradients (training) nothing is kept, and nothing kept is used: a weight update
    # must change the keys
    t5._copy_key_cache = ("stale",)
    with torch.enable_grad():
        model.loss(batch, [model.target_text(b[2]) for b in states], torch.ones(len(states)))
    assert t5._copy_key_cache is None


def test_query_augmentation_replaces_the_query_consistently() -> None:
    rng = np.random.default_rng(0)
    previous = to_autoui(Action.type("razer kraken")).split("Action Decision: ")[1]
    text = f'Previous Actions: {previous} Goal: Go to ebay.com, search for "razer kraken"'
    target = to_autoui(Action.type("razer kraken"))
    new_text, new_target = augment_query(text, target, rng)
    typed = parse_autoui(new_target).typed_text
    assert typed != "razer kraken" and typed in new_text.split("Goal: ")[1]
    assert "razer kraken" not in new_text and new_text.count(typed) == 2
    # a typo of the query as target: left alone (the pair would no longer be consistent)
    assert augment_query(text, to_autoui(Action.type("razer krakne")), rng) is None
    assert augment_query("Previous Actions: Goal: Open Clock", target, rng) is None
    assert all(fake_query(rng).strip() for _ in range(20))


def test_frozen_image_encoder_mode_for_real_presets(tokenizer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A frozen pooled encoder (here the seeded small CNN; BLIP-2 as published) projected to a
    few encoder tokens: only the projection trains, and a reload gives the same outputs."""
    config = small_config(
        image_mode="frozen",
        frozen_image={"kind": "small-cnn", "cnn_dim": 32, "image_size": 32},
        image_tokens=2,
    )
    model = PolicyModel.build(config, tokenizer=tokenizer, precision="fp32")
    frozen = {id(p) for p in model.frozen_encoder.module.parameters()}
    assert frozen and not frozen & {id(p) for p in model.net.parameters()}
    images = screens(2, seed=5)
    texts = [model.input_text([], "Go to ebay.com")] * 2
    targets = [to_autoui(Action.back()), to_autoui(Action.tap(0.5, 0.5))]
    batch = model.prepare(images, texts)
    assert batch.pixels.shape == (2, 32)
    model.loss(batch, targets, [1.0, 1.0], clamp=False).backward()
    assert model.net.image.proj.weight.grad is not None
    assert len(model.sample(batch, n=2, temperature=1.0, seed=0)[0]) == 2
    before = model.sequence_logprobs(batch, targets)
    loaded = PolicyModel.load(model.save(tmp_path / "frozen"), precision="fp32")
    after = loaded.sequence_logprobs(loaded.prepare(images, texts), targets)
    assert torch.allclose(before, after)


# ------------------------------------------------------------------- structured decoding
# digiq.models.autoui_grammar: every kind of AutoUI string walks through the grammar, an
# untrained policy (whose free samples are garbage) writes only well-formed strings under it,
# and a model on 4-decimal coordinates decodes freely.


def _ids(tokenizer, text: str) -> list[int]:  # type: ignore[no-untyped-def]
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def test_every_kind_of_action_string_is_accepted_token_by_token(policy: PolicyModel) -> None:
    grammar = policy.grammar
    assert isinstance(grammar, AutoUIGrammar)
    assert grammar.point_pattern.count(None) == 4  # two points, two coordinates each
    for char in (",", " "):
        assert _ids(policy.tokenizer, char)[0] not in grammar.structural_ids, char
    actions = [
        Action.tap(0.12, 0.56),
        Action.swipe((0.8, 0.5), (0.2, 0.5)),
        Action.tap(0.0, 1.0),
        Action.type("razer kraken"),
        # a space before a digit and a comma are tokens of the point pattern too: typed text
        # must still be able to use them (16% of the Web Shopping queries need the space)
        Action.type("gtx 1660, black"),
        Action.type(""),
        *(Action(kind) for kind in ActionType if kind not in (ActionType.DUAL_POINT,
                                                              ActionType.TYPE,
                                                              ActionType.INVALID)),
    ]  # fmt: skip
    for action in actions:
        ids = _ids(policy.tokenizer, to_autoui(action))
        for k, token in enumerate(ids):
            allowed = grammar.allowed(ids[:k])
            if isinstance(allowed, str):
                assert token not in grammar.structural_ids, (action, k)
            else:
                assert token in allowed, (action, k, policy.tokenizer.decode([token]))
        # the string is complete: the grammar now allows exactly the end of sequence
        end = grammar.allowed(ids)
        assert end == [grammar.eos_id] or end == FREE_TEXT_OR_END, action


def test_grammar_rejects_garbled_coordinates_and_an_unclosed_typed_text(policy) -> None:  # type: ignore[no-untyped-def]
    grammar, tok = policy.grammar, policy.tokenizer
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
    policy: PolicyModel,
) -> None:
    images = screens(3, seed=7)
    texts = [policy.input_text([], "Go to ebay.com")] * 3
    free = policy.sample(images, texts, n=8, temperature=1.0, seed=1, grammar=False)
    held = policy.sample(images, texts, n=8, temperature=1.0, seed=1)
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
    recomputed = policy.sequence_logprobs(policy.prepare(images, texts).repeat(8), flat)
    returned = torch.tensor([lp for row in held for _, lp in row])
    assert torch.allclose(returned, recomputed.float(), atol=1e-4)
    greedy = policy.greedy(images, texts)
    for text, _ in greedy:
        assert parse_autoui(text).is_valid or text.startswith(type_prefix), text


def test_a_policy_trained_on_four_decimals_decodes_unconstrained(tokenizer) -> None:  # type: ignore[no-untyped-def]
    model = PolicyModel.build(
        small_config(round_coordinates=None), tokenizer=tokenizer, precision="fp32"
    )
    assert model.grammar is None
    image = screens(1, seed=8)
    assert len(model.sample(image, [model.input_text([], "Go to ebay.com")], n=2)[0]) == 2


def test_agent_spec_turns_the_grammar_off() -> None:
    from digiq.policy_agent import _split_spec

    assert _split_spec("RUN?grammar=0") == ("RUN", {"grammar": False})
    assert _split_spec("RUN?grammar=1&temperature=1.0") == (
        "RUN",
        {"grammar": True, "temperature": 1.0},
    )


def test_the_agent_acts_on_as_many_previous_actions_as_its_policy_was_trained_on(
    tokenizer,  # type: ignore[no-untyped-def]
) -> None:
    from android.actions import parse_autoui
    from digiq.policy_agent import PolicyAgent
    from eval.agents.base import AgentStep
    from eval.tasks import load_task_set

    torch.manual_seed(0)
    model = PolicyModel.build(small_config(history=2), tokenizer=tokenizer, precision="fp32")
    steps = [
        AgentStep(step=i + 1, observation=None, action=parse_autoui(a))  # type: ignore[arg-type]
        for i, a in enumerate(
            [
                '"action_type": "TYPE", "touch_point": "[-1.0, -1.0]", '
                '"lift_point": "[-1.0, -1.0]", "typed_text": "ebay.com"',
                '"action_type": "PRESS_ENTER", "touch_point": "[-1.0, -1.0]", '
                '"lift_point": "[-1.0, -1.0]", "typed_text": ""',
            ]
        )
    ]
    task = load_task_set("webshop", "test")[0]
    trained = PolicyAgent("policy", model=model)._input_text(task, steps)
    assert "ebay.com" in trained.split("Goal:")[0] and "PRESS_ENTER" in trained
    one = PolicyAgent("policy", model=model, history=1)._input_text(task, steps)
    assert "ebay.com" not in one.split("Goal:")[0] and "PRESS_ENTER" in one
