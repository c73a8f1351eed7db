"""Best-of-N policy extraction: advantages, selection, weights, the clamped loss, targets."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from android.actions import Action, to_autoui
from digiq.bestofn import (
    AWR_MAX_WEIGHT,
    CriticScores,
    advantages,
    build_policy_targets,
    policy_loss,
    policy_weights,
    select_best,
    threshold_for,
)
from trajectories import (
    CandidateTable,
    CandidateWriter,
    DatasetWriter,
    EpisodeRecord,
    ReplayBuffer,
    StepRecord,
)
from trajectories.images import encode_png


def test_advantage_is_max_q_minus_max_v_per_candidate() -> None:
    q1 = np.array([[1.0, 2.0], [0.0, -1.0]])
    q2 = np.array([[1.5, 1.0], [0.5, -2.0]])
    v1 = np.array([1.0, 0.0])
    v2 = np.array([0.5, 0.2])
    expected = np.array([[0.5, 1.0], [0.3, -1.2]])
    np.testing.assert_allclose(advantages(q1, q2, v1, v2), expected)
    got = advantages(*(torch.tensor(x) for x in (q1, q2, v1, v2)))
    assert isinstance(got, torch.Tensor)
    np.testing.assert_allclose(got.numpy(), expected)


def test_select_best_picks_the_highest_advantage_ignoring_nan_and_preferring_candidate_0() -> None:
    assert select_best([0.1, 0.7, 0.3]) == (1, pytest.approx(0.7))
    index, best = select_best(np.array([[0.1, 0.7, 0.3], [0.2, 0.2, -1.0], [np.nan, -0.5, -0.2]]))
    assert index.tolist() == [1, 0, 2]
    np.testing.assert_allclose(best, [0.7, 0.2, -0.2])
    with pytest.raises(ValueError, match="no candidate"):
        select_best([np.nan, np.nan])
    with pytest.raises(ValueError, match="at least one candidate"):
        select_best(np.zeros((2, 0)))


def test_bestofn_weight_is_one_only_strictly_above_the_threshold() -> None:
    a = np.array([0.10, np.nextafter(0.10, 1.0), 0.5, -0.3, 0.0])
    np.testing.assert_array_equal(policy_weights(a, "bestofn", 0.10), [0, 1, 1, 0, 0])
    np.testing.assert_array_equal(policy_weights([0.05, 0.07], "bestofn", 0.05), [0, 1])
    # Per-example thresholds (mixed task sets).
    np.testing.assert_array_equal(policy_weights([0.07, 0.07], "bestofn", [0.10, 0.05]), [0, 1])
    with pytest.raises(ValueError, match="threshold"):
        policy_weights(a, "bestofn")
    assert threshold_for("general") == 0.10
    assert threshold_for("webshop") == threshold_for("Web Shopping") == 0.05
    assert threshold_for("custom") == 0.10


def test_alternative_weights() -> None:
    a = np.array([-0.02, 0.0, 0.01, 0.5])
    np.testing.assert_array_equal(policy_weights(a, "sft"), [1, 1, 1, 1])
    awr = policy_weights(a, "awr")
    np.testing.assert_allclose(awr[:3], [math.exp(-2.0), 1.0, math.exp(1.0)])
    assert awr[3] == AWR_MAX_WEIGHT  # exp(50) clipped
    assert np.isfinite(policy_weights([1e4], "awr")).all()
    np.testing.assert_allclose(policy_weights(a, "pg"), 5 * a)
    np.testing.assert_array_equal(
        policy_weights(a, "filtered-bc", success=[True, False, True, False]), [1, 0, 1, 0]
    )
    with pytest.raises(ValueError, match="success"):
        policy_weights(a, "filtered-bc")
    with pytest.raises(ValueError, match="unknown policy extraction method 'ppo'"):
        policy_weights(a, "ppo")


def test_policy_loss_clamps_token_probabilities() -> None:
    probs = torch.tensor([[0.5, 0.999, 1e-5], [0.2, 0.7, 0.3]], dtype=torch.float64)
    logprobs = probs.log().requires_grad_(True)
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    weights = torch.tensor([1.0, 0.5], dtype=torch.float64)
    loss = policy_loss(logprobs, mask, weights)
    seq0 = math.log(0.5) + math.log(0.99) + math.log(0.001)  # 0.999 -> 0.99, 1e-5 -> 0.001
    seq1 = math.log(0.2)  # padding ignored
    assert loss.item() == pytest.approx(-(1.0 * seq0 + 0.5 * seq1) / 2)
    loss.backward()
    grad = logprobs.grad
    assert grad is not None
    # Clamped tokens and padding get no gradient; the others get -w / batch.
    np.testing.assert_allclose(grad.numpy(), [[-0.5, 0.0, 0.0], [-0.25, 0.0, 0.0]])
    # Zero weights still count in the mean (published behaviour).
    half = policy_loss(logprobs.detach(), mask, torch.tensor([1.0, 0.0], dtype=torch.float64))
    assert float(half) == pytest.approx(-seq0 / 2)
    with pytest.raises(ValueError, match="same shape"):
        policy_loss(logprobs, mask[:, :2], weights)


# ---------------------------------------------------------------------------------------------
# Targets from a real dataset + candidate table
# ---------------------------------------------------------------------------------------------

TAP = Action.tap(0.3, 0.4)
TYPE = Action.type("razer kraken")
BACK = Action.back()
HOME = Action.home()


@pytest.fixture
def small(tmp_path: Path) -> tuple[ReplayBuffer, CandidateTable]:
    """Two 2-step episodes (general: success, webshop: failure) with 3 candidates per state."""
    root = tmp_path / "ds"
    frame = encode_png(Image.new("RGB", (8, 16), (1, 2, 3)))
    with DatasetWriter(root) as writer:
        for n, (task_set, success) in enumerate([("general", True), ("webshop", False)]):
            eid = f"{n + 1:032x}"
            steps = [
                StepRecord(eid, 0, frame, action=TAP, reward=0.0),
                StepRecord(eid, 1, frame, action=TYPE, reward=float(success), done=True),
                StepRecord(eid, 2, frame),
            ]
            writer.add_episode(
                EpisodeRecord(eid, "search", task_set=task_set, success=success, length=2), steps
            )
    buffer = ReplayBuffer.open(root)
    with CandidateWriter(buffer, "n3", num_candidates=3) as cands:
        for tid in buffer.transition_ids.tolist():
            data_action = buffer.transition(tid).action_text
            cands.add(tid, [data_action, to_autoui(BACK), "not an action"], [0.0, -1.0, -2.0])
    return buffer, CandidateTable.open(root, "n3")


def scores_for(buffer: ReplayBuffer, q: list[list[float]], v: list[float]) -> CriticScores:
    q_arr = np.array(q)
    return CriticScores(buffer.transition_ids, q_arr, q_arr - 1.0, np.array(v), np.array(v) - 1.0)


def test_bestofn_targets_pick_the_argmax_candidate_with_task_set_thresholds(small) -> None:
    buffer, table = small
    ids = buffer.transition_ids.tolist()
    assert len(ids) == 4
    scores = scores_for(
        buffer,
        # candidates: [dataset action, PRESS_BACK, unparseable]
        q=[[0.2, 0.27, 9.0], [0.5, 0.1, 9.0], [0.2, 0.27, 9.0], [0.0, 0.9, 9.0]],
        v=[0.2, 0.2, 0.2, 0.2],
    )
    targets = build_policy_targets(buffer, table, scores, "bestofn")
    by_id = {t.transition_id: t for t in targets}
    back, tap, type_ = to_autoui(BACK), to_autoui(TAP), to_autoui(TYPE)
    # The unparseable candidate has the highest Q but is never a target.
    assert all(t.target != "not an action" for t in targets)
    # A = 0.07: below the General threshold (0.10), above the Web Shopping one (0.05).
    assert by_id[ids[0]] == (ids[0], back, 0.0)
    assert by_id[ids[2]] == (ids[2], back, 1.0)
    assert by_id[ids[1]] == (ids[1], type_, 1.0)  # the dataset action is the best: A = 0.3
    assert by_id[ids[3]] == (ids[3], back, 1.0)
    # An explicit threshold overrides the task sets; drop_zero leaves out weight-0 examples.
    strict = build_policy_targets(buffer, table, scores, "bestofn", threshold=0.5, drop_zero=True)
    assert [t.transition_id for t in strict] == [ids[3]]
    assert tap not in {t.target for t in targets}


def test_alternative_targets_use_the_dataset_action(small) -> None:
    buffer, table = small
    ids = buffer.transition_ids.tolist()
    data_actions = [buffer.transition(t).action_text for t in ids]
    sft = build_policy_targets(buffer, None, None, "sft")
    assert [(t.target, t.weight) for t in sft] == [(a, 1.0) for a in data_actions]
    fbc = build_policy_targets(buffer, None, None, "filtered-bc")
    assert [t.weight for t in fbc] == [1.0, 1.0, 0.0, 0.0]  # episode 0 succeeded
    assert [t.target for t in fbc] == data_actions
    scores = scores_for(
        buffer,
        q=[[0.21, 0.0, 0.0], [0.2, 0.0, 0.0], [0.19, 0.0, 0.0], [0.9, 0.0, 0.0]],
        v=[0.2] * 4,
    )
    awr = build_policy_targets(buffer, table, scores, "awr")
    assert [t.target for t in awr] == data_actions
    np.testing.assert_allclose(
        [t.weight for t in awr], [math.e, 1.0, math.exp(-1.0), AWR_MAX_WEIGHT], rtol=1e-6
    )
    pg = build_policy_targets(buffer, table, scores, "pg", seed=3)
    adv = scores.advantages()
    for t, row in zip(pg, adv, strict=True):
        k = table.actions([t.transition_id])[0].index(t.target)
        assert t.weight == pytest.approx(5 * row[k])
    assert pg == build_policy_targets(buffer, table, scores, "pg", seed=3)


def test_anchor_weight_imitates_the_dataset_action_where_no_candidate_clears_the_threshold(
    small,
) -> None:
    buffer, table = small
    ids = buffer.transition_ids.tolist()
    data_actions = [buffer.transition(t).action_text for t in ids]
    scores = scores_for(
        buffer,
        q=[[0.2, 0.27, 9.0], [0.5, 0.1, 9.0], [0.2, 0.27, 9.0], [0.0, 0.9, 9.0]],
        v=[0.2, 0.2, 0.2, 0.2],
    )
    plain = build_policy_targets(buffer, table, scores, "bestofn")
    anchored = build_policy_targets(buffer, table, scores, "bestofn", anchor_weight=0.25)
    back = to_autoui(BACK)
    # Only state 0 (A = 0.07 < the General 0.10) has no target: there the anchor imitates the
    # dataset action (not the sub-threshold best candidate, PRESS_BACK) with weight 0.25.
    assert plain[0] == (ids[0], back, 0.0)
    assert anchored[0] == (ids[0], data_actions[0], 0.25)
    # Targeted states are untouched, including one whose best is the dataset action itself.
    assert anchored[1:] == plain[1:]
    assert anchored[2] == (ids[2], back, 1.0)
    # Zero means the published loss; the anchor is refused where it means nothing.
    assert build_policy_targets(buffer, table, scores, "bestofn", anchor_weight=0.0) == plain
    with pytest.raises(ValueError, match="anchor_weight must be a finite number >= 0"):
        build_policy_targets(buffer, table, scores, "bestofn", anchor_weight=-0.1)
    with pytest.raises(ValueError, match="applies to method 'bestofn' only, not 'awr'"):
        build_policy_targets(buffer, table, scores, "awr", anchor_weight=0.5)
    # The trainer's config: refused outside the policy stage's bestofn loss; a zero weight is
    # left out of the fields compared on resume (stages trained before the option resume).
    from digiq.policy_train import PolicyTrainConfig

    with pytest.raises(ValueError, match="anchor_weight applies to the policy stage's bestofn"):
        PolicyTrainConfig(data_dir="d", run_dir="r", stage="bc", anchor_weight=0.5)
    plain_config = PolicyTrainConfig(data_dir="d", run_dir="r", stage="policy", init="p")
    assert "anchor_weight" not in plain_config.result_dict()
    anchored_config = PolicyTrainConfig(
        data_dir="d", run_dir="r", stage="policy", init="p", anchor_weight=0.5
    )
    assert anchored_config.result_dict()["anchor_weight"] == 0.5


def test_missing_inputs_are_reported(small) -> None:
    buffer, table = small
    ids = buffer.transition_ids
    partial = CriticScores(ids[:2], np.zeros((2, 3)), np.zeros((2, 3)), np.zeros(2), np.zeros(2))
    with pytest.raises(KeyError, match="2 transitions have no critic scores"):
        build_policy_targets(buffer, table, partial, "bestofn")
    kept = build_policy_targets(buffer, table, partial, "bestofn", on_missing="skip")
    assert [t.transition_id for t in kept] == ids[:2].tolist()
    with pytest.raises(ValueError, match="needs critic_scores"):
        build_policy_targets(buffer, table, None, "bestofn")
    with pytest.raises(ValueError, match="needs a candidate_table"):
        build_policy_targets(buffer, None, partial, "pg")
    with pytest.raises(ValueError, match="unknown policy extraction method"):
        build_policy_targets(buffer, table, partial, "best")
    with pytest.raises(ValueError, match="q1/q2"):
        CriticScores(ids, np.zeros((3, 3)), np.zeros((3, 3)), np.zeros(4), np.zeros(4))
