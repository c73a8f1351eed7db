"""The features stage: stores, shapes, contents, resumption, staleness and candidates."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from android.actions import Action, parse_autoui, to_autoui
from android.observation import UIElement
from digiq.features import (
    FeaturesConfig,
    open_feature_stores,
    run_features,
    state_layout,
    store_names,
)
from digiq.models import TextEncoder, TinyVLMConfig
from digiq.models.vlm import VLM
from digiq.repr import action_image, action_prompt, work_size
from digiq.ui_grounding import GOAL_MATCH_DIM, describe_action, describe_screen, goal_match
from digiq.work_frames import WorkFramesWriter, work_frames_path
from trajectories import (
    CandidateWriter,
    DatasetWriter,
    EpisodeRecord,
    FeatureStore,
    ReplayBuffer,
    StaleFeaturesError,
    StepRecord,
)
from trajectories.images import encode_png

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
# The published inputs; the UI-tree ones (on in the tiny preset) have their own test below.
OVERRIDES = {"vlm_tiny": TEST_TINY, "vlm_image_size": 32, "critic_ui_tree_text": False}
W, H = 64, 128
EPISODES, STEPS = 6, 3  # 18 transitions


def frame(n: int, t: int) -> bytes:
    img = Image.new("RGB", (W, H), (30 * n % 255, 200, 40 * t % 255))
    ImageDraw.Draw(img).rectangle([8, 10 + 20 * t, 56, 30 + 20 * t], fill=(250, 250, 250))
    return encode_png(img)


ACTIONS = [Action.tap(0.2, 0.5), Action.type("razer kraken"), Action.back()]


def write_dataset(root: Path, offset: int = 0) -> Path:
    with DatasetWriter(root, episodes_per_shard=2) as writer:
        for n in range(offset, offset + EPISODES):
            episode = EpisodeRecord.new(f"task {n}", episode_id=f"{n + 1:032x}", length=STEPS)
            steps = [
                StepRecord(episode.episode_id, t, frame(n, t), action=ACTIONS[t], done=t == 2)
                for t in range(STEPS)
            ]
            steps.append(StepRecord(episode.episode_id, STEPS, frame(n, STEPS)))
            writer.add_episode(episode, steps)
    return root


# Other candidates: a tap elsewhere, Home, and unparseable model output (an INVALID action).
CANDIDATES = [to_autoui(Action.tap(0.8, 0.1)), to_autoui(Action.home()), "tap the red thing"]


def write_candidates(root: Path, name: str = "n3") -> None:
    buffer = ReplayBuffer.open(root)
    with CandidateWriter(buffer, name, num_candidates=4, model="test") as writer:
        for t in buffer.iter_transitions():
            writer.add(t.transition_id, [t.action_text, *CANDIDATES], [0.0, -1.0, -2.0, -9.0])


@pytest.fixture(scope="module")
def vlm() -> VLM:
    return VLM.build_tiny("llava", TEST_TINY, image_size=32, precision="fp32")


@pytest.fixture(scope="module")
def minilm() -> TextEncoder:
    return TextEncoder.minilm()


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    root = write_dataset(tmp_path / "ds")
    write_candidates(root)
    return root


def config(root: Path, **kwargs: object) -> FeaturesConfig:
    base: dict[str, object] = {"preset_overrides": OVERRIDES, "chunk_size": 4, "progress": False}
    return FeaturesConfig(str(root), **{**base, **kwargs})  # type: ignore[arg-type]


def test_stores_have_the_documented_shapes_and_contents(
    dataset: Path, vlm: VLM, minilm: TextEncoder
) -> None:
    result = run_features(config(dataset, candidates="n3"), vlm=vlm, text_encoder=minilm)
    stores = open_feature_stores(dataset)
    n, img = EPISODES * STEPS, vlm.image_feature_dim
    assert stores.vlm.get(np.arange(n), None).shape == (n, 4, vlm.hidden_size)
    assert stores.state.get(np.arange(n), None).shape == (n, 1, 2 * 384 + 2 * img)
    assert stores.action_text.get(np.arange(n), None).shape == (n, 4, 384)
    assert result["stores"]["vlm"]["shape"] == [n, 4, 64]
    assert stores.vlm.meta.model == vlm.model_id and stores.vlm.meta.layer == "-1"
    assert stores.vlm.meta.extra["candidates"] == "n3" and stores.num_candidates == 4
    assert all(s.complete for s in (stores.vlm, stores.state, stores.action_text))

    buffer = ReplayBuffer.open(dataset)
    layout = state_layout(stores.state)
    assert layout == stores.layout()
    assert [
        layout[k].stop - layout[k].start for k in ("goal", "prev_action", "prev_image", "image")
    ] == [384, 384, img, img]
    for t in buffer.iter_transitions():
        size = work_size(W, H, vlm.image_size)
        screen = t.image(size)
        texts = [t.action_text, *CANDIDATES]
        actions = [parse_autoui(x) for x in texts]
        assert not actions[3].is_valid  # the invalid candidate gets its own prompt, no cursor
        expected = vlm.answer_features(
            [action_image(screen, a) for a in actions], [action_prompt(a) for a in actions]
        ).numpy()
        got = stores.vlm.get([t.transition_id], None)[0].astype(np.float32)
        np.testing.assert_allclose(got, expected, atol=2e-2, rtol=1e-2)
        assert not np.allclose(got[0], got[1], atol=1e-3)  # candidates differ
        np.testing.assert_allclose(
            stores.action_text.get([t.transition_id], None)[0], minilm.encode(texts), atol=2e-3
        )
        state = stores.state.get([t.transition_id])[0].astype(np.float32)
        np.testing.assert_allclose(state[layout["goal"]], minilm.encode([t.task])[0], atol=2e-3)
        np.testing.assert_allclose(
            state[layout["image"]], vlm.image_features([screen])[0].numpy(), atol=2e-2, rtol=1e-2
        )
        if t.step == 0:
            assert not state[layout["prev_action"]].any() and not state[layout["prev_image"]].any()
        else:
            prev = buffer.transition(t.transition_id - 1)
            np.testing.assert_allclose(
                state[layout["prev_action"]], minilm.encode([prev.action_text])[0], atol=2e-3
            )
            np.testing.assert_allclose(
                state[layout["prev_image"]],
                vlm.image_features([prev.image(size)])[0].numpy(),
                atol=2e-2,
                rtol=1e-2,
            )


def test_without_candidates_only_the_dataset_action_is_stored(
    dataset: Path, vlm: VLM, minilm: TextEncoder
) -> None:
    run_features(config(dataset, prefix="plain-"), vlm=vlm, text_encoder=minilm)
    stores = open_feature_stores(dataset, prefix="plain-")
    assert stores.vlm.meta.num_candidates == stores.action_text.meta.num_candidates == 1
    with_cands = run_features(config(dataset, candidates="n3"), vlm=vlm, text_encoder=minilm)
    assert with_cands["chunks_written"]["vlm"] == 5
    full = open_feature_stores(dataset)
    # Candidate 0 is the dataset action either way (batches pad differently: rounding only).
    np.testing.assert_allclose(
        full.vlm.get(np.arange(18), 0), stores.vlm.get(np.arange(18), 0), atol=2e-3, rtol=1e-3
    )
    with pytest.raises(FileNotFoundError, match="no candidate set 'n9'"):
        run_features(config(dataset, candidates="n9", prefix="x-"), vlm=vlm, text_encoder=minilm)


def test_repeated_candidates_run_through_the_vlm_once_with_the_same_features(
    tmp_path: Path, vlm: VLM, minilm: TextEncoder
) -> None:
    # Sampled candidates repeat; a repeated action of a state is one VLM input, and every copy
    # gets exactly what the VLM computes for it (compared with a run over the set without
    # repeats). The dataset action repeated as a candidate is deduplicated too.
    root = write_dataset(tmp_path / "ds")
    buffer = ReplayBuffer.open(root)
    other = to_autoui(Action.tap(0.8, 0.1))
    with CandidateWriter(buffer, "rep", num_candidates=4, model="test") as writer:
        for t in buffer.iter_transitions():
            writer.add(t.transition_id, [t.action_text, other, other, t.action_text], [0.0] * 4)
    with CandidateWriter(buffer, "uniq", num_candidates=2, model="test") as writer:
        for t in buffer.iter_transitions():
            writer.add(t.transition_id, [t.action_text, other], [0.0] * 2)
    result = run_features(config(root, candidates="rep"), vlm=vlm, text_encoder=minilm)
    n = EPISODES * STEPS
    assert result["vlm_pairs"] == 4 * n and result["vlm_inputs"] == 2 * n
    run_features(config(root, candidates="uniq", prefix="u-"), vlm=vlm, text_encoder=minilm)
    repeated = open_feature_stores(root).vlm.get(np.arange(n), None).astype(np.float32)
    unique = open_feature_stores(root, prefix="u-").vlm.get(np.arange(n), None).astype(np.float32)
    np.testing.assert_array_equal(repeated[:, 1], repeated[:, 2])
    np.testing.assert_array_equal(repeated[:, 0], repeated[:, 3])
    np.testing.assert_allclose(repeated[:, [0, 1]], unique, atol=2e-3, rtol=1e-3)
    assert not np.allclose(repeated[:, 0], repeated[:, 1], atol=1e-3)


def test_resumes_after_an_interruption(dataset: Path, vlm: VLM, minilm: TextEncoder) -> None:
    first = run_features(
        config(dataset, candidates="n3", max_chunks=2), vlm=vlm, text_encoder=minilm
    )
    assert first["chunks_written"] == {"vlm": 2, "state": 2, "action_text": 2}
    partial = FeatureStore.open(dataset, "vlm")
    assert partial.missing_chunks() == [2, 3, 4] and not partial.complete
    with pytest.raises(KeyError, match="not written"):
        partial.get([17])
    second = run_features(config(dataset, candidates="n3"), vlm=vlm, text_encoder=minilm)
    assert second["chunks_written"] == {"vlm": 3, "state": 3, "action_text": 3}
    resumed = open_feature_stores(dataset)
    assert resumed.vlm.complete and resumed.state.complete
    third = run_features(config(dataset, candidates="n3"), vlm=vlm, text_encoder=minilm)
    assert third["chunks_written"] == {"vlm": 0, "state": 0, "action_text": 0}
    # Same values as one uninterrupted run.
    run_features(config(dataset, candidates="n3", prefix="once-"), vlm=vlm, text_encoder=minilm)
    once = open_feature_stores(dataset, prefix="once-")
    ids = np.arange(EPISODES * STEPS)
    for a, b in (
        (resumed.vlm, once.vlm),
        (resumed.state, once.state),
        (resumed.action_text, once.action_text),
    ):
        np.testing.assert_array_equal(a.get(ids, None), b.get(ids, None))


def test_other_weights_and_changed_data_are_detected(
    dataset: Path, vlm: VLM, minilm: TextEncoder, tmp_path: Path
) -> None:
    run_features(config(dataset, max_chunks=1), vlm=vlm, text_encoder=minilm)
    other = VLM.build_tiny("llava", TEST_TINY, image_size=32, precision="fp32")
    with pytest.raises(ValueError, match="different model"):
        run_features(config(dataset), vlm=other, text_encoder=minilm)
    # A checkpoint saved to disk and loaded by path is used and recorded.
    checkpoint = other.save(tmp_path / "ckpt")
    result = run_features(
        config(dataset, checkpoint=str(checkpoint), recompute=True), text_encoder=minilm
    )
    assert result["stores"]["vlm"]["model"] == other.model_id
    assert FeatureStore.open(dataset, "vlm").meta.extra["checkpoint"] == str(checkpoint)

    # Rewrite the data under the stores: same folder, different episodes.
    for path in [*dataset.glob("episodes/*"), *dataset.glob("steps/*"), dataset / "manifest.json"]:
        path.unlink()
    shutil.rmtree(dataset / "candidates")
    write_dataset(dataset, offset=50)
    with pytest.raises(StaleFeaturesError, match="different version"):
        open_feature_stores(dataset)
    with pytest.raises(StaleFeaturesError):
        run_features(config(dataset), vlm=vlm, text_encoder=minilm)
    run_features(config(dataset, recompute=True), vlm=vlm, text_encoder=minilm)
    assert open_feature_stores(dataset).vlm.complete


def test_candidate_sets_must_cover_every_transition(
    dataset: Path, vlm: VLM, minilm: TextEncoder
) -> None:
    buffer = ReplayBuffer.open(dataset)
    with CandidateWriter(buffer, "partial", num_candidates=2, model="test") as writer:
        first = next(buffer.iter_transitions())
        writer.add(first.transition_id, [first.action_text, CANDIDATES[0]], [0.0, -1.0])
    with pytest.raises(ValueError, match="does not cover every transition"):
        run_features(
            config(dataset, candidates="partial", prefix="p-"), vlm=vlm, text_encoder=minilm
        )
    assert store_names("p-") == {"vlm": "p-vlm", "state": "p-state", "action_text": "p-action_text"}


def test_ui_tree_inputs_describe_the_screen_and_where_each_candidate_lands(
    tmp_path: Path, vlm: VLM, minilm: TextEncoder
) -> None:
    # Each frame's white box (see frame()) is a focused, clickable search field in the tree.
    def tree(t: int) -> list[UIElement]:
        box = UIElement(
            text=f"search {t}",
            resource_id="app:id/search",
            class_name="android.widget.EditText",
            bounds=(8, 10 + 20 * t, 56, 30 + 20 * t),
            clickable=True,
            focused=True,
        )
        return [UIElement(class_name="android.widget.FrameLayout", bounds=(0, 0, W, H)), box]

    root = tmp_path / "ui"
    with DatasetWriter(root, episodes_per_shard=2) as writer:
        for n in range(2):
            goal = f"task {n}: search for 'razer kraken'"
            episode = EpisodeRecord.new(goal, episode_id=f"{n + 1:032x}", length=STEPS)
            steps = [
                StepRecord(
                    episode.episode_id, t, frame(n, t), tree(t), action=ACTIONS[t], done=t == 2
                )
                for t in range(STEPS)
            ]
            steps.append(StepRecord(episode.episode_id, STEPS, frame(n, STEPS), tree(STEPS)))
            writer.add_episode(episode, steps)
    write_candidates(root)
    overrides = {**OVERRIDES, "critic_ui_tree_text": True}
    result = run_features(
        config(root, candidates="n3", preset_overrides=overrides), vlm=vlm, text_encoder=minilm
    )
    stores = open_feature_stores(root)
    img = vlm.image_feature_dim
    layout = state_layout(stores.state)
    assert layout["screen_text"] == slice(2 * 384 + 2 * img, 3 * 384 + 2 * img)
    assert stores.action_text.meta.extra["layout"] == {
        "action": [0, 384],
        "grounded": [384, 768],
        "goal_match": [768, 768 + GOAL_MATCH_DIM],
    }
    assert result["action_layout"] == stores.action_text.meta.extra["layout"]
    assert "ui-tree" in stores.state.meta.model and "ui-tree" in stores.action_text.meta.model

    buffer = ReplayBuffer.open(root)
    described = set()
    goal_matches: set[tuple[float, ...]] = set()
    for t in buffer.iter_transitions():
        texts = [t.action_text, *CANDIDATES]
        grounded = [describe_action(parse_autoui(x), tree(t.step), (W, H)) for x in texts]
        described.update(grounded)
        got = stores.action_text.get([t.transition_id], None)[0]
        np.testing.assert_allclose(got[:, :384], minilm.encode(texts), atol=2e-3)
        np.testing.assert_allclose(got[:, 384:768], minilm.encode(grounded), atol=2e-3)
        matched = [goal_match(parse_autoui(x), tree(t.step), (W, H), t.task) for x in texts]
        np.testing.assert_array_equal(got[:, 768:], np.array(matched, np.float32))
        goal_matches.update(tuple(m) for m in matched)
        state = stores.state.get([t.transition_id], 0)[0]
        np.testing.assert_allclose(
            state[layout["screen_text"]],
            minilm.encode([describe_screen(tree(t.step))])[0],
            atol=2e-3,
        )
    # The dataset's tap at step 0 lands on the search field; typing goes into the focused field.
    assert "tap EditText 'search 0' (search)" in described
    assert "type 'razer kraken' into EditText 'search 1' (search)" in described
    assert "tap FrameLayout" in described  # candidate tap at (0.8, 0.1): only the page is there
    # The dataset's TYPE is the goal's phrase; the tap on "search 0" shares one of its two words
    # with the goal, and so does the focused field, which is that search field.
    assert {(1.0, 1.0, 0.0, 0.0, 0.5), (0.0, 0.0, 0.5, 0.0, 0.5)} <= goal_matches

    # Stores computed without the UI-tree inputs are refused, not mixed in.
    with pytest.raises(ValueError, match="different model|model"):
        run_features(config(root, candidates="n3"), vlm=vlm, text_encoder=minilm)


def test_work_size_frames_kept_by_the_repr_stage_replace_decoding_and_change_nothing(
    dataset: Path, vlm: VLM, minilm: TextEncoder, tmp_path: Path
) -> None:
    buffer = ReplayBuffer.open(dataset)
    cache = tmp_path / "cache"
    writer = WorkFramesWriter(
        work_frames_path(cache, vlm.image_size), lambda w, h: work_size(w, h, vlm.image_size)
    )
    for row in buffer.batch(buffer.transition_ids).rows.tolist():
        writer.add(row, buffer.image(row))  # full resolution, as the labelling pass sees it
    writer.finish(buffer.manifest.fingerprint())

    decoded = run_features(config(dataset, candidates="n3"), vlm=vlm, text_encoder=minilm)
    kept = run_features(
        config(dataset, candidates="n3", prefix="kept-", cache_dir=str(cache)),
        vlm=vlm,
        text_encoder=minilm,
    )
    assert decoded["kept_frames"] is None
    # every state's frame (and its predecessor's) came from the file, none was decoded
    assert kept["kept_frames"]["hits"] > len(buffer) and kept["kept_frames"]["misses"] == 0
    a, b = open_feature_stores(dataset), open_feature_stores(dataset, "kept-")
    ids = buffer.transition_ids
    for name in ("vlm", "state", "action_text"):
        assert np.array_equal(getattr(a, name).get(ids, None), getattr(b, name).get(ids, None)), (
            name
        )
