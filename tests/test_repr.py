"""Yes/no labels (screen change, cursor), prompts, balance metrics and the repr fine-tuning stage."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from android.actions import Action
from digiq.models.presets import TinyVLMConfig
from digiq.models.vlm import VLM
from digiq.repr import (
    CHANGE_THRESHOLD,
    CURSOR_FRACTION,
    LABEL_BLOCK,
    ReprConfig,
    action_prompt,
    draw_cursor,
    evaluate_yes_no,
    label_balance,
    label_buffer,
    run_repr,
    screen_change,
    work_size,
    yes_no_label,
    yes_no_metrics,
)
from digiq.work_frames import WorkFrames, work_frames_path
from trajectories import DatasetWriter, EpisodeRecord, ReplayBuffer, StepRecord
from trajectories.images import decode_image, encode_png

# A small model so a few epochs of fine-tuning fit in seconds on two cores.
TEST_TINY = TinyVLMConfig(
    vision_hidden=32,
    vision_layers=1,
    vision_heads=2,
    vision_intermediate=64,
    text_hidden=64,
    text_layers=2,
    text_heads=4,
    text_kv_heads=2,
    text_intermediate=128,
    vocab_size=1024,
)
OVERRIDES = {"vlm_tiny": TEST_TINY, "vlm_image_size": 32}


def uniform(colour: tuple[int, int, int], size: tuple[int, int] = (1080, 2280)) -> np.ndarray:
    return np.asarray(Image.new("RGB", size, colour))


# --- labels -----------------------------------------------------------------------------------


def test_identical_frames_are_no_even_with_the_cursor_drawn() -> None:
    frame = uniform((200, 200, 200))
    for action in (Action.tap(0.5, 0.5), Action.back(), Action.type("x")):
        label, change = yes_no_label(frame, frame.copy(), action)
        assert (label, change) == (False, 0.0)


def test_threshold_is_the_mean_over_all_rgb_values_of_squared_differences() -> None:
    # One channel differs by d everywhere: the mean over H x W x 3 values is d^2 / 3 at any
    # scale (averaging over pixels but not channels would give d^2 instead).
    before = uniform((100, 100, 100))
    below = uniform((109, 100, 100))  # 81 / 3 = 27 <= 30
    above = uniform((110, 100, 100))  # 100 / 3 = 33.3 > 30
    assert yes_no_label(before, below, Action.back()) == (False, pytest.approx(27.0))
    assert yes_no_label(before, above, Action.back()) == (True, pytest.approx(100 / 3))
    assert CHANGE_THRESHOLD == 30.0


def test_big_change_is_yes_and_small_local_change_is_no() -> None:
    before = uniform((240, 240, 240))
    after = np.array(before)
    after[: 2280 // 2] = (20, 40, 200)  # half the screen changes colour
    label, change = yes_no_label(before, after, Action.tap(0.9, 0.5))
    assert label and change > 1000
    small = np.array(before)
    small[1000:1020, 500:520] = 0  # a 20x20 px dot: about 9 < 30
    label, change = yes_no_label(before, small, Action.tap(0.1, 0.1))
    assert not label and 0 < change < CHANGE_THRESHOLD


def test_cursor_is_drawn_with_its_tip_at_the_touch_point() -> None:
    grey = 128
    frame = uniform((grey, grey, grey))
    out = draw_cursor(frame, (0.5, 0.25))  # (y, x) normalized
    x, y = 270, 1140
    size = round(CURSOR_FRACTION * 1080)
    assert 240 <= size <= 260
    changed = np.argwhere(np.any(out != grey, axis=2))
    (top, left), (bottom, right) = changed.min(0), changed.max(0)
    assert (top, left) == (y, x)  # tip at the touch point; nothing above or left of it
    assert size * 0.9 <= bottom - top + 1 <= size  # about 250 px tall
    assert size * 0.5 <= right - left + 1 <= size * 0.75  # an arrow, narrower than tall
    assert tuple(out[y, x]) == (255, 255, 255)  # white outline at the tip
    assert tuple(out[y + size // 2, x + size // 10]) == (0, 0, 0)  # black body
    assert np.all(frame == grey)  # the input is not modified
    # The same cursor on a 0.25x frame is scaled with the width (about 62 px).
    small = draw_cursor(uniform((grey, grey, grey), (270, 570)), (0.5, 0.25))
    rows = np.argwhere(np.any(small != grey, axis=2))
    assert tuple(rows.min(0)) == (285, 68) and 55 <= np.ptp(rows[:, 0]) + 1 <= 63


def test_cursor_does_not_hide_a_change_elsewhere_and_cancels_itself() -> None:
    before = uniform((255, 255, 255))
    after = np.array(before)
    after[:600] = (0, 0, 0)  # the top of the screen changes
    label, _ = yes_no_label(before, after, Action.tap(0.8, 0.5))
    assert label
    assert screen_change(draw_cursor(before, (0.8, 0.5)), before) > CHANGE_THRESHOLD / 10


def test_frames_of_different_size_count_as_a_change() -> None:
    label, change = yes_no_label(
        uniform((1, 1, 1), (100, 200)), uniform((1, 1, 1), (200, 100)), Action.back()
    )
    assert label and change == float("inf")


def test_prompts_follow_the_action_type() -> None:
    tap = action_prompt(Action.tap(0.25, 0.75))
    assert "There is a cursor in the screen" in tap and "[0.2500, 0.7500]" in tap
    assert "clicking on any interactive elements" in tap
    assert "scroll the screen" in action_prompt(Action.swipe((0.8, 0.5), (0.2, 0.5)))
    assert "effectively input the text" in action_prompt(Action.type("razer kraken"))
    assert "razer kraken" in action_prompt(Action.type("razer kraken"))
    assert "navigate home" in action_prompt(Action.home())
    assert "go back" in action_prompt(Action.back())
    assert "submit" in action_prompt(Action.enter())
    assert "not a valid action" in action_prompt(Action.invalid("bad", raw="garbage"))
    prompts = [action_prompt(a) for a in (Action.tap(0.1, 0.1), Action.back(), Action.complete())]
    assert all(p.endswith("Answer only Yes or No.") for p in prompts)


def test_metrics_expose_a_collapsed_model() -> None:
    labels = np.array([True] * 8 + [False] * 2)
    collapsed = yes_no_metrics(labels, np.ones(10, bool))
    assert collapsed["accuracy"] == 0.8 and collapsed["majority_baseline"] == 0.8
    assert collapsed["recall_no"] == 0.0 and collapsed["confusion"] == {
        "tp": 8,
        "fn": 0,
        "fp": 2,
        "tn": 0,
    }
    assert any("recall of class No" in w for w in collapsed["warnings"])
    assert any("majority-class baseline" in w for w in collapsed["warnings"])
    good = yes_no_metrics(labels, labels)
    assert good["accuracy"] == 1.0 and good["balanced_accuracy"] == 1.0 and not good["warnings"]


# --- a synthetic replay buffer with a learnable label ----------------------------------------

W, H = 96, 192
PALETTE = [(245, 245, 245), (200, 225, 250), (250, 230, 190), (210, 245, 210), (235, 210, 245)]
KINDS = ["tap_button", "tap_empty", "back", "type"]
CHANGES = {"tap_button": True, "tap_empty": False, "back": True, "type": False}


def screen(colour: int) -> np.ndarray:
    """A red button over the top part of the screen; the background colour is the state."""
    img = Image.new("RGB", (W, H), PALETTE[colour])
    ImageDraw.Draw(img).rectangle([0.05 * W, 0.05 * H, 0.95 * W, 0.45 * H], fill=(220, 30, 30))
    return np.asarray(img)


def make_action(kind: str, rng: np.random.Generator) -> Action:
    if kind == "tap_button":
        return Action.tap(round(rng.uniform(0.1, 0.4), 4), round(rng.uniform(0.1, 0.9), 4))
    if kind == "tap_empty":
        return Action.tap(round(rng.uniform(0.6, 0.95), 4), round(rng.uniform(0.1, 0.9), 4))
    return Action.back() if kind == "back" else Action.type("hello")


def write_dataset(root: Path, episodes: int = 24, seed: int = 0) -> Path:
    """Taps on the button and Back change the screen ("Yes"); taps below it and typing (no
    text field) do not ("No"): learnable from the prompt and from where the cursor is."""
    rng = np.random.default_rng(seed)
    with DatasetWriter(root, episodes_per_shard=8) as writer:
        for n in range(episodes):
            kinds = [str(k) for k in rng.permutation(KINDS)]
            episode = EpisodeRecord.new(
                f"Open the red app {n % 3}", episode_id=f"{n + 1:032x}", length=len(kinds)
            )
            colour = int(rng.integers(len(PALETTE)))
            steps = []
            for t, kind in enumerate(kinds):
                steps.append(
                    StepRecord(
                        episode.episode_id,
                        t,
                        encode_png(screen(colour)),
                        action=make_action(kind, rng),
                        done=t == len(kinds) - 1,
                    )
                )
                if CHANGES[kind]:
                    colour = (colour + 1 + int(rng.integers(len(PALETTE) - 1))) % len(PALETTE)
            steps.append(StepRecord(episode.episode_id, len(kinds), encode_png(screen(colour))))
            writer.add_episode(episode, steps)
    return root


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("repr") / "ds")


def test_labels_of_the_buffer_match_the_scenario_and_are_cached(
    dataset: Path, tmp_path: Path
) -> None:
    buffer = ReplayBuffer.open(dataset)
    cache = tmp_path / "labels.json"
    examples = label_buffer(buffer, cache=cache)
    assert len(examples) == len(buffer) == 24 * 4
    for e in examples:
        if e.action.is_tap:
            assert e.label == (e.action.touch_yx[0] < 0.5)
        else:
            assert e.label == (e.action.action_type.name == "PRESS_BACK")
    balance = label_balance(examples)
    assert balance["yes_rate"] == 0.5 and balance["per_kind"]["TYPE"] == {"yes": 0, "no": 24}
    # The cache is used: tamper with it and the tampered labels come back.
    data = json.loads(cache.read_text())
    data["rows"][0][1] = not data["rows"][0][1]
    cache.write_text(json.dumps(data))
    again = label_buffer(buffer, cache=cache)
    assert again[0].label != examples[0].label and again[1:] == examples[1:]


def test_repr_stage_learns_beyond_the_majority_baseline_and_resumes(
    dataset: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    config = ReprConfig(
        str(dataset),
        str(out),
        preset_overrides=OVERRIDES,
        epochs=3,
        batch_size=4,
        val_fraction=0.3,
        eval_every_epoch=False,
        progress=False,
    )
    metrics = run_repr(config)
    val = metrics["val"]
    assert val["n"] >= 20
    assert val["accuracy"] > val["majority_baseline"] + 0.1
    assert val["accuracy"] > metrics["val_before"]["accuracy"]
    assert val["recall_yes"] > 0.2 and val["recall_no"] > 0.2
    assert [h["epoch"] for h in metrics["history"]] == [1, 2, 3]
    assert metrics["labels"]["train"]["n"] + val["n"] == 96
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["val"]["accuracy"] == val["accuracy"]

    # The final checkpoint loads (safetensors) and reproduces the held-out accuracy.
    final = Path(metrics["checkpoint"])
    assert (final / "model.safetensors").is_file() and (final / "digiq_model.json").is_file()
    vlm = VLM.load(final, precision="fp32")
    buffer = ReplayBuffer.open(dataset)
    _, val_view = buffer.split(0.3, seed=0)
    val_ids = set(val_view.transition_ids.tolist())
    val_examples = [e for e in label_buffer(buffer) if e.transition_id in val_ids]
    again = evaluate_yes_no(vlm, buffer, val_examples, batch_size=4)
    assert again["accuracy"] == pytest.approx(val["accuracy"])

    # Resume: one more epoch continues from the last checkpoint instead of starting over.
    steps = metrics["steps"]
    more = run_repr(ReprConfig(**{**config.__dict__, "epochs": 4}))
    assert [h["epoch"] for h in more["history"]] == [1, 2, 3, 4]
    assert more["steps"] == steps + steps // 3
    assert more["val_before"] == metrics["val_before"]  # carried over, not re-evaluated
    # A finished stage run again returns its results without saving new weights.
    again = run_repr(ReprConfig(**{**config.__dict__, "epochs": 4}))
    assert again["model_id"] == more["model_id"] and again["steps"] == more["steps"]
    with pytest.raises(ValueError, match="lr"):
        run_repr(ReprConfig(**{**config.__dict__, "lr": 0.5}))


def test_repr_stage_with_lora_trains_adapters_only_and_saves_merged(
    dataset: Path, tmp_path: Path
) -> None:
    config = ReprConfig(
        str(dataset),
        str(tmp_path / "lora"),
        preset_overrides=OVERRIDES,
        epochs=1,
        lora=True,
        loss="yes_no",
        lr=5e-3,
        balance=True,
        eval_before=False,
        val_fraction=0.3,
        progress=False,
    )
    start = VLM.from_preset("tiny", precision="fp32", **OVERRIDES)
    tower = start.core_model.model.vision_tower
    vision_before = {k: v.detach().clone() for k, v in tower.state_dict().items()}
    lm_before = (
        start.core_model.model.language_model.layers[0].self_attn.q_proj.weight.detach().clone()
    )
    metrics = run_repr(config, vlm=start)
    final = VLM.load(metrics["checkpoint"], precision="fp32")
    vision_after = final.core_model.model.vision_tower.state_dict()
    assert all(torch.equal(vision_before[k], vision_after[k]) for k in vision_before)
    lm_after = final.core_model.model.language_model.layers[0].self_attn.q_proj.weight.detach()
    assert not torch.allclose(lm_before, lm_after)  # the adapter was merged into the weights
    assert not any("lora" in k for k in final.core_model.state_dict())


def test_labels_on_worker_threads_equal_a_serial_loop_and_fill_a_partial_cache(
    dataset: Path, tmp_path: Path
) -> None:
    """Blocks of transitions are labelled on threads (LABEL_BLOCK each; this dataset spans
    two blocks): every label and change must be the serial loop's, and a cache holding only
    some transitions is completed without touching the cached ones."""
    buffer = ReplayBuffer.open(dataset)
    assert len(buffer) > LABEL_BLOCK
    serial = []
    batch = buffer.batch(buffer.transition_ids)
    for t, row in zip(batch, batch.rows, strict=True):
        before = decode_image(buffer.screenshot_bytes(int(row)))
        after = decode_image(buffer.screenshot_bytes(int(row) + 1))
        serial.append((t.transition_id, *yes_no_label(before, after, t.action)))
    threaded = label_buffer(buffer)
    assert [(e.transition_id, e.label, e.change) for e in threaded] == serial

    cache = tmp_path / "labels.json"
    label_buffer(buffer, cache=cache)
    data = json.loads(cache.read_text())
    data["rows"] = [row for row in data["rows"] if row[0] % 3 == 0]  # keep a third
    kept = data["rows"][0][0]
    data["rows"][0][1] = not data["rows"][0][1]  # a cached label is used as it is
    cache.write_text(json.dumps(data))
    again = {e.transition_id: e for e in label_buffer(buffer, cache=cache)}
    for tid, label, change in serial:
        expected = (not label) if tid == kept else label
        assert again[tid].label == expected and again[tid].change == pytest.approx(change)
    assert len(json.loads(cache.read_text())["rows"]) == len(serial)  # completed on disk


def test_repr_stage_keeps_work_size_frames_equal_to_decoded_ones(
    dataset: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The labelling pass keeps each state's work-size frame (digiq.work_frames): exactly
    the buffer's decode at that size, so the later passes read them instead of decoding."""
    cache = tmp_path / "cache"
    config = ReprConfig(
        str(dataset),
        str(tmp_path / "run"),
        preset_overrides=OVERRIDES,
        epochs=1,
        batch_size=8,
        val_fraction=0.3,
        eval_before=False,
        progress=False,
        cache_dir=str(cache),
    )
    metrics = run_repr(config)
    buffer = ReplayBuffer.open(dataset)
    path = work_frames_path(cache, 32)
    frames = WorkFrames.open(path, buffer.manifest.fingerprint())
    assert frames is not None and len(frames) == len(buffer) == 96
    size = work_size(W, H, 32)
    assert size == (24, 48)  # a real resize of the 96x192 screens
    for row in buffer.batch(buffer.transition_ids).rows.tolist():
        kept = frames.get(row, size)
        assert kept is not None and np.array_equal(kept, buffer.image(row, size))
    assert frames.get(0, (W, H)) is None  # another size is decoded, not served wrongly
    assert not path.with_name(path.name + ".tmp").exists()
    # The held-out accuracy reads the same with kept and with decoded frames.
    vlm = VLM.load(metrics["checkpoint"], precision="fp32")
    _, val_view = buffer.split(0.3, seed=0)
    val_ids = set(val_view.transition_ids.tolist())
    val_examples = [e for e in label_buffer(buffer) if e.transition_id in val_ids]
    assert evaluate_yes_no(vlm, buffer, val_examples, frames=frames) == evaluate_yes_no(
        vlm, buffer, val_examples
    )
    frames.close()
    # Kept frames of other data, or a damaged folder, are ignored with a warning naming it.
    with caplog.at_level("WARNING", logger="digiq.work_frames"):
        assert WorkFrames.open(path, "another dataset") is None
        raw = path / "frames.u8"
        raw.write_bytes(raw.read_bytes()[:5000])
        assert WorkFrames.open(path, buffer.manifest.fingerprint()) is None
        (path / "index.npz").write_bytes(b"not an index")
        assert WorkFrames.open(path, buffer.manifest.fingerprint()) is None
    assert caplog.text.count(str(path)) == 3
