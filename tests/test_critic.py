"""The Digi-Q critic: TD / V / MC targets, Polyak, twin heads, training on a toy task, checkpoints."""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from android.actions import Action
from digiq.bestofn import build_policy_targets, select_best
from digiq.checkpoint import CheckpointError, latest_checkpoint, open_scalar_log
from digiq.critic import (
    CONSTANT_STD,
    NUM_ACTION_TYPES,
    Critic,
    CriticConfig,
    CriticData,
    CriticTrainer,
    InputNorm,
    TwinV,
    expected_v_targets,
    load_critic,
    mc_targets,
    polyak_update,
    return_bounds,
    td_targets,
    v_targets,
)
from trajectories import (
    CandidateTable,
    CandidateWriter,
    DatasetWriter,
    EpisodeRecord,
    FeatureStore,
    ReplayBuffer,
    StepRecord,
)
from trajectories.images import encode_png

GAMMA = 0.95

# ---------------------------------------------------------------------------------------------
# Pure target maths
# ---------------------------------------------------------------------------------------------


def test_input_norm_centres_constant_dimensions_without_blowing_them_up() -> None:
    # Column 0 varies, column 1 is constant in training (an action type the training split
    # never holds), column 2 nearly so. Before, column 1 was divided by 1e-6: an unseen 1.0
    # became 1e6 and the critic's Q for that candidate an arbitrary huge number.
    x = torch.tensor([[0.0, 0.0, 0.0], [2.0, 0.0, 1e-5], [4.0, 0.0, 0.0]])
    norm = InputNorm(3)
    norm.fit(x)
    assert norm.std.tolist() == pytest.approx([2.0, 1.0, 1.0])
    out = norm(torch.tensor([[2.0, 1.0, 1.0]]))
    assert out.tolist()[0] == pytest.approx([0.0, 1.0, 1.0 - 1e-5 / 3], abs=1e-6)
    assert float(out.abs().max()) <= 1.0 + 1e-6
    varied = torch.randn(64, 2) * CONSTANT_STD * 10
    norm2 = InputNorm(2)
    norm2.fit(varied)
    assert torch.allclose(norm2.std, varied.std(dim=0))  # real variation is still scaled


def test_td_targets_match_a_hand_computed_example() -> None:
    rewards = torch.tensor([0.0, 1.0, 0.5, 0.0])
    dones = torch.tensor([False, True, False, True])
    # Terminal rows carry a placeholder (NaN / garbage): there is no s', it must not leak in.
    v_next = torch.tensor([2.0, float("nan"), -1.0, 123.0])
    got = td_targets(rewards, dones, v_next, gamma=GAMMA)
    expected = torch.tensor([0.0 + 0.95 * 2.0, 1.0, 0.5 - 0.95, 0.0])
    torch.testing.assert_close(got, expected)
    assert not got.requires_grad


def test_td_targets_broadcast_over_twins_and_respect_gamma() -> None:
    v_next = torch.tensor([[1.0, 2.0], [3.0, 4.0]])  # (twin, batch)
    got = td_targets(torch.tensor([1.0, 0.0]), torch.tensor([0, 0]), v_next, gamma=0.5)
    torch.testing.assert_close(got, torch.tensor([[1.5, 1.0], [2.5, 2.0]]))


def test_v_and_mc_targets() -> None:
    q_bar = torch.tensor([0.3, -0.2], requires_grad=True)
    v = v_targets(q_bar)
    torch.testing.assert_close(v, torch.tensor([0.3, -0.2]))
    assert not v.requires_grad
    mc = mc_targets(np.array([1.0, 0.95, 0.9025]))
    torch.testing.assert_close(mc, torch.tensor([1.0, 0.95, 0.9025]))
    with pytest.raises(ValueError, match="NaN"):
        mc_targets(np.array([1.0, np.nan]))


def test_polyak_update_numerics() -> None:
    target, source = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    with torch.no_grad():
        target.weight.copy_(torch.tensor([[1.0, -2.0]]))
        target.bias.fill_(0.0)
        source.weight.copy_(torch.tensor([[11.0, 8.0]]))
        source.bias.fill_(10.0)
    polyak_update(target, source, tau=0.1)
    torch.testing.assert_close(target.weight, torch.tensor([[2.0, -1.0]]))
    torch.testing.assert_close(target.bias, torch.tensor([1.0]))
    torch.testing.assert_close(source.weight, torch.tensor([[11.0, 8.0]]))  # untouched
    with pytest.raises(ValueError, match="tau"):
        polyak_update(target, source, tau=1.5)


# ---------------------------------------------------------------------------------------------
# Heads and configuration
# ---------------------------------------------------------------------------------------------


def test_v_heads_ignore_action_features_and_q_heads_use_them() -> None:
    config = CriticConfig.tiny(state_dim=6, action_dim=5, vlm_dim=4)
    critic = Critic(config)
    rng = np.random.default_rng(0)
    state = rng.normal(size=(3, 6))
    types = np.full((3, 2), 4)
    q1, q2, v1, v2 = critic.score(
        state, rng.normal(size=(3, 2, 5)), rng.normal(size=(3, 2, 4)), types
    )
    q1b, q2b, v1b, v2b = critic.score(
        state, rng.normal(size=(3, 2, 5)), rng.normal(size=(3, 2, 4)), np.full((3, 2), 3)
    )
    assert q1.shape == (3, 2) and v1.shape == (3,)
    np.testing.assert_array_equal(v1, v1b)
    np.testing.assert_array_equal(v2, v2b)
    assert not np.allclose(q1, q1b) and not np.allclose(q2, q2b)
    # The twins are independent networks.
    assert not np.allclose(q1, q2) and not np.allclose(v1, v2)
    # V's input is the state alone, by construction.
    assert isinstance(critic.v, TwinV)
    assert critic.v.v1[0].in_features == 6
    assert critic.q.q1[0].in_features == 6 + 5 + NUM_ACTION_TYPES + 4
    with pytest.raises(ValueError, match="action_types"):
        critic.score(state, rng.normal(size=(3, 2, 5)), rng.normal(size=(3, 2, 4)))


def test_config_presets_and_validation() -> None:
    paper = CriticConfig.paper()
    # Published heads: Q over 5 x 768 text + 2 x 1408 image + 4096 VLM, V over 3 x 768 + 2 x 1408.
    assert paper.q_input_dim == 10752 and paper.v_input_dim == 5120
    assert paper.q_hidden == (10752, 3840, 3840, 3840) and paper.v_hidden == (2304, 2304, 2304)
    assert (paper.gamma, paper.tau, paper.lr, paper.grad_clip) == (0.95, 0.1, 1e-5, 0.01)
    assert (paper.batch_size, paper.micro_batch_size, paper.accumulation) == (128, 32, 4)
    assert paper.steps == 800 and paper.polyak_every == "epoch"
    tiny = CriticConfig.tiny(16, 8, 4)
    assert tiny.q_hidden == (128, 128) and tiny.v_hidden == (64, 64) and tiny.lr == 1e-3
    assert CriticConfig.from_dict(json.loads(json.dumps(tiny.to_dict()))) == tiny
    with pytest.raises(ValueError, match="micro_batch_size"):
        CriticConfig(4, 4, batch_size=100, micro_batch_size=32)
    with pytest.raises(ValueError, match="target"):
        CriticConfig(4, 4, target="sarsa")
    with pytest.raises(ValueError, match="polyak_every"):
        CriticConfig(4, 4, polyak_every="sometimes")
    with pytest.raises(ValueError, match="unknown CriticConfig fields"):
        CriticConfig.from_dict({"state_dim": 4, "action_dim": 4, "hiden": 3})


def test_return_bounds_hold_every_discounted_return() -> None:
    # 0/1 rewards, gamma 0.95: returns lie in [0, 20] (the published AitW setting).
    assert return_bounds([0.0, 1.0, 0.0], 0.95) == pytest.approx((0.0, 20.0))
    assert return_bounds([0.0, 0.0], 0.5) == (0.0, 0.0)
    # A negative reward lowers the bound; NaN rewards (a failed autorater call) are ignored.
    assert return_bounds([-1.0, 2.0, float("nan")], 0.5) == pytest.approx((-2.0, 4.0))
    # gamma 1: the longest episode is the horizon.
    assert return_bounds([0.0, 1.0], 1.0, episode_lengths=[3, 7]) == (0.0, 7.0)
    with pytest.raises(ValueError, match="episode lengths"):
        return_bounds([1.0], 1.0)
    with pytest.raises(ValueError, match="no finite reward"):
        return_bounds([float("nan")], 0.9)
    # Every Monte-Carlo return of the synthetic data lies inside its bounds.
    data = random_data(episodes=6)
    low, high = return_bounds(data.rewards, GAMMA, data.episode_lengths())
    assert list(data.episode_lengths()) == [3] * 6
    assert low <= data.mc_returns.min() and data.mc_returns.max() <= high


def test_value_range_clips_scores_and_nothing_else() -> None:
    """Scores outside the return range are clipped; training's forward pass is not."""
    data = random_data(episodes=4)
    raw = Critic(small_config(data))
    clipped = Critic(small_config(data, value_range=(0.0, 0.05)))
    clipped.load_state_dict(raw.state_dict())
    ids = data.transition_ids[:6]
    args = (
        data.state.get(ids, 0),
        data.action_text.get(ids, None),
        data.vlm.get(ids, None),
        data.candidate_action_types(ids, None),
    )
    before, after = raw.score(*args), clipped.score(*args)
    assert any((b < 0).any() or (b > 0.05).any() for b in before)  # something to clip
    for b, a in zip(before, after, strict=True):
        np.testing.assert_allclose(a, np.clip(b, 0.0, 0.05), rtol=0, atol=1e-7)
    for b, a in zip(before, clipped.score(*args, clip=False), strict=True):
        np.testing.assert_array_equal(a, b)
    tensors = [torch.as_tensor(x) for x in args[:3]]
    action = raw.action_inputs(tensors[1], torch.as_tensor(args[3]))
    forward_raw = raw(tensors[0], action, tensors[2])
    forward_clipped = clipped(tensors[0], action, tensors[2])
    for x, y in zip(forward_raw, forward_clipped, strict=True):
        assert torch.equal(x, y)
    # The range travels with the config (checkpoints) and is validated.
    config = small_config(data, value_range=(0.0, 20.0))
    assert CriticConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ValueError, match="low <= high"):
        small_config(data, value_range=(1.0, 0.0))
    with pytest.raises(ValueError, match=r"\(low, high\)"):
        small_config(data, value_range=(1.0,))


# ---------------------------------------------------------------------------------------------
# Small synthetic data (numpy arrays keyed by transition id)
# ---------------------------------------------------------------------------------------------


def random_data(
    episodes: int = 20, horizon: int = 3, cands: int = 3, seed: int = 0, vlm: bool = True
) -> CriticData:
    rng = np.random.default_rng(seed)
    ids, nxt, rewards, dones, eps = [], [], [], [], []
    tid = 0
    for e in range(episodes):
        for t in range(horizon):
            last = t == horizon - 1
            ids.append(tid)
            nxt.append(-1 if last else tid + 1)
            rewards.append(float(last and e % 2 == 0))
            dones.append(last)
            eps.append(f"ep{e}")
            tid += 1
    rewards_a = np.array(rewards)
    mc = np.zeros(tid)
    for i in reversed(range(tid)):
        mc[i] = rewards_a[i] + (0.0 if dones[i] else GAMMA * mc[i + 1])
    return CriticData(
        transition_ids=np.array(ids),
        next_transition_ids=np.array(nxt),
        rewards=rewards_a,
        dones=np.array(dones),
        mc_returns=mc,
        episode_keys=np.array(eps),
        state=rng.normal(size=(tid, 7)).astype(np.float32),
        action_text=rng.normal(size=(tid, cands, 5)).astype(np.float32),
        vlm=rng.normal(size=(tid, cands, 3)).astype(np.float32) if vlm else None,
        action_types=rng.choice([3, 4, 5], size=(tid, cands)),
        episode_success=np.array([int(k[2:]) % 2 == 0 for k in eps]),
    )


def small_config(data: CriticData, **overrides: object) -> CriticConfig:
    base: dict[str, object] = dict(
        q_hidden=(32, 32), v_hidden=(16, 16), batch_size=16, micro_batch_size=8, steps=12
    )
    base.update(overrides)
    return CriticConfig.tiny(data.state_dim, data.action_dim, data.vlm_dim, **base)  # type: ignore[arg-type]


def test_trainer_targets_are_td_from_target_v_and_v_from_target_q() -> None:
    """One step over the whole data: logged target stats equal those computed independently."""
    data = random_data(episodes=8)
    n = len(data)
    config = small_config(data, batch_size=n, micro_batch_size=n)
    trainer = CriticTrainer(config, data, tensorboard=False)
    # Make the target network differ from the online one, so a mix-up would show.
    with torch.no_grad():
        for p in trainer.target.parameters():
            p.add_(0.05 * torch.randn_like(p))
    ids = data.transition_ids
    types = data.action_types[ids, :1]
    tq1, tq2, _, _ = trainer.target.score(
        data.state.get(ids),
        data.action_text.get(ids, 0)[:, None],
        data.vlm.get(ids, 0)[:, None],
        types,
    )
    live = ~data.dones
    nv1, nv2 = np.zeros(n), np.zeros(n)
    _, _, nv1[live], nv2[live] = trainer.target.score(
        data.state.get(data.next_transition_ids[live]),
        np.zeros((int(live.sum()), 1, data.action_dim)),
        np.zeros((int(live.sum()), 1, data.vlm_dim)),
        np.full((int(live.sum()), 1), 4),
    )
    yq1, yq2 = data.rewards + GAMMA * live * nv1, data.rewards + GAMMA * live * nv2
    yq = np.concatenate([yq1, yq2])
    yv = np.concatenate([tq1[:, 0], tq2[:, 0]])
    # Each online twin regresses to its own target twin: the losses pin the pairing down.
    q1, q2, v1, v2 = trainer.critic.score(
        data.state.get(ids),
        data.action_text.get(ids, 0)[:, None],
        data.vlm.get(ids, 0)[:, None],
        types,
    )
    q_loss = np.mean((q1[:, 0] - yq1) ** 2) + np.mean((q2[:, 0] - yq2) ** 2)
    v_loss = np.mean((v1 - tq1[:, 0]) ** 2) + np.mean((v2 - tq2[:, 0]) ** 2)
    metrics = trainer.train_step()
    assert metrics["q_loss"] == pytest.approx(q_loss, rel=1e-4)
    assert metrics["v_loss"] == pytest.approx(v_loss, rel=1e-4)
    assert metrics["target_q/mean"] == pytest.approx(yq.mean(), abs=1e-5)
    assert metrics["target_q/max"] == pytest.approx(yq.max(), abs=1e-5)
    assert metrics["target_v/mean"] == pytest.approx(yv.mean(), abs=1e-5)
    assert metrics["target_v/min"] == pytest.approx(yv.min(), abs=1e-5)
    # An epoch is one step here: the targets moved by tau towards the online critic.
    assert metrics["polyak"] == 1.0


def test_expected_v_targets_average_the_candidates() -> None:
    q_bar = torch.tensor([[1.0, 0.0, 0.0, 0.2], [0.4, 0.4, 0.4, 0.4]], requires_grad=True)
    v = expected_v_targets(q_bar)
    torch.testing.assert_close(v, torch.tensor([0.3, 0.4]))
    assert not v.requires_grad
    with pytest.raises(ValueError, match="batch, candidates"):
        expected_v_targets(torch.zeros(3))


def test_td_expected_regresses_v_to_the_mean_target_q_of_all_candidates() -> None:
    """One step over the whole data: V's logged targets are the mean of the target Q over the
    state's candidates (not the dataset action's), Q's targets stay the TD ones."""
    data = random_data(episodes=8, cands=3)
    n = len(data)
    config = small_config(data, target="td-expected", batch_size=n, micro_batch_size=n)
    trainer = CriticTrainer(config, data, tensorboard=False)
    with torch.no_grad():
        for p in trainer.target.parameters():
            p.add_(0.05 * torch.randn_like(p))
    ids = data.transition_ids
    tq1, tq2, _, _ = trainer.target.score(
        data.state.get(ids),
        data.action_text.get(ids, None),
        data.vlm.get(ids, None),
        data.action_types[ids, :3],
    )
    assert tq1.shape == (n, 3)
    yv = np.concatenate([tq1.mean(axis=1), tq2.mean(axis=1)])
    dataset_only = np.concatenate([tq1[:, 0], tq2[:, 0]])
    assert abs(yv.mean() - dataset_only.mean()) > 1e-4  # the two definitions differ here
    live = ~data.dones
    _, _, nv1, nv2 = trainer.target.score(
        data.state.get(data.next_transition_ids[live]),
        np.zeros((int(live.sum()), 1, data.action_dim)),
        np.zeros((int(live.sum()), 1, data.vlm_dim)),
        np.full((int(live.sum()), 1), 4),
    )
    yq1, yq2 = data.rewards.copy(), data.rewards.copy()
    yq1[live] += GAMMA * nv1
    yq2[live] += GAMMA * nv2
    yq = np.concatenate([yq1, yq2])
    # The online Q of the dataset action (candidate 0 of the all-candidates read).
    q1, q2, _, _ = trainer.critic.score(
        data.state.get(ids),
        data.action_text.get(ids, 0)[:, None],
        data.vlm.get(ids, 0)[:, None],
        data.action_types[ids, :1],
    )
    q_loss = np.mean((q1[:, 0] - yq1) ** 2) + np.mean((q2[:, 0] - yq2) ** 2)
    metrics = trainer.train_step()
    assert metrics["target_v/mean"] == pytest.approx(yv.mean(), abs=1e-5)
    assert metrics["target_v/max"] == pytest.approx(yv.max(), abs=1e-5)
    assert metrics["target_q/mean"] == pytest.approx(yq.mean(), abs=1e-5)
    assert metrics["target_q/max"] == pytest.approx(yq.max(), abs=1e-5)
    assert metrics["q_loss"] == pytest.approx(q_loss, rel=1e-4)
    # Without candidates (N = 1) it is the published target: the dataset action's.
    single = random_data(episodes=8, cands=1)
    m = len(single)
    one = CriticTrainer(
        small_config(single, target="td-expected", batch_size=m, micro_batch_size=m),
        single,
        tensorboard=False,
    )
    sq1, sq2, _, _ = one.target.score(
        single.state.get(single.transition_ids),
        single.action_text.get(single.transition_ids, 0)[:, None],
        single.vlm.get(single.transition_ids, 0)[:, None],
        single.action_types[single.transition_ids, :1],
    )
    expected = np.concatenate([sq1[:, 0], sq2[:, 0]])
    assert one.train_step()["target_v/mean"] == pytest.approx(expected.mean(), abs=1e-5)
    assert one.notes == ["td-expected without candidates: V <- Qbar(s, a_dataset)"]
    assert trainer.notes == []


def test_mc_mode_regresses_every_head_to_the_return() -> None:
    data = random_data(episodes=8)
    n = len(data)
    trainer = CriticTrainer(
        small_config(data, target="mc", batch_size=n, micro_batch_size=n), data, tensorboard=False
    )
    metrics = trainer.train_step()
    both = np.concatenate([data.mc_returns, data.mc_returns])
    assert metrics["target_q/mean"] == pytest.approx(both.mean(), abs=1e-6)
    assert metrics["target_v/mean"] == pytest.approx(both.mean(), abs=1e-6)
    assert metrics["target_q/max"] == pytest.approx(1.0)


def test_polyak_runs_once_per_epoch_or_every_n_steps() -> None:
    data = random_data(episodes=20)  # 60 transitions, batch 16 -> 4 steps per epoch
    trainer = CriticTrainer(small_config(data), data, tensorboard=False)
    flags = [trainer.train_step()["polyak"] for _ in range(8)]
    assert trainer.steps_per_epoch == 4
    assert flags == [0, 0, 0, 1, 0, 0, 0, 1]
    trainer = CriticTrainer(small_config(data, polyak_every=3), data, tensorboard=False)
    assert [trainer.train_step()["polyak"] for _ in range(6)] == [0, 0, 1, 0, 0, 1]


def test_data_that_does_not_fit_the_config_is_refused_by_name() -> None:
    data = random_data()
    config = small_config(data).replace(state_dim=99)
    with pytest.raises(ValueError, match="state_dim config 99 != data 7"):
        CriticTrainer(config, data, tensorboard=False)
    with pytest.raises(ValueError, match="rewards"):
        CriticData(
            transition_ids=[0, 1],
            next_transition_ids=[1, -1],
            rewards=[0.0],
            dones=[False, True],
            mc_returns=[0.0, 0.0],
            episode_keys=["a", "a"],
            state=np.zeros((2, 3)),
            action_text=np.zeros((2, 1, 3)),
        )


def test_validation_metrics_and_notes_without_candidates() -> None:
    data = random_data(episodes=30, cands=1)
    train, val = data.split(0.3, seed=0)
    assert len(val) and len(train)
    assert not set(train.episode_keys) & set(val.episode_keys)
    trainer = CriticTrainer(small_config(data), train, val, tensorboard=False)
    metrics = trainer.evaluate()
    assert {"val/loss", "val/corr_v_mc", "val/corr_q_mc", "val/auc_success"} <= set(metrics)
    assert "val/argmax_dataset_rate" not in metrics
    assert any("only candidate 0" in note for note in trainer.notes)
    assert 0.0 <= metrics["val/auc_success"] <= 1.0


def test_validation_ranks_raw_scores_not_clipped_ties() -> None:
    """A range that clips every score to one value makes all candidates tie; argmax would then
    pick candidate 0, the dataset action, every time. Validation must not see that."""
    data = random_data(episodes=30, cands=3)
    train, val = data.split(0.3, seed=0)
    rates = []
    for value_range in (None, (5.0, 5.0)):
        config = small_config(data, steps=2, value_range=value_range)
        trainer = CriticTrainer(config, train, val, tensorboard=False)
        trainer.train()
        rates.append(trainer.evaluate()["val/argmax_dataset_rate"])
        # What Best-of-N sees is clipped: every candidate scores the bound.
        scores = trainer.score_data(val)
        assert np.all(np.maximum(scores.q1, scores.q2) == 5.0) or value_range is None
    assert rates[0] == rates[1] < 1.0


# ---------------------------------------------------------------------------------------------
# Toy task on a real dataset: one action is always right
# ---------------------------------------------------------------------------------------------

TOY_EPISODES = 240
TOY_HORIZON = 3
TOY_CANDS = 4
TOY_BROKEN = 3  # episodes cut by a device error: their transition has no s'
TOY_POINTS = [(0.2, 0.5), (0.4, 0.5), (0.6, 0.5), (0.8, 0.5)]  # identity 0 is always right
TOY_DIM = 12


@dataclass
class Toy:
    root: Path
    buffer: ReplayBuffer
    table: CandidateTable
    data: CriticData
    right: dict[int, int]  # transition id -> candidate index of the right action
    right_text: str


def _toy_action(identity: int) -> Action:
    return Action.tap(*TOY_POINTS[identity])


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Toy:
    rng = np.random.default_rng(7)
    root = tmp_path_factory.mktemp("toy") / "ds"
    frame = encode_png(Image.new("RGB", (8, 16), (10, 20, 30)))
    plan: dict[tuple[str, int], np.ndarray] = {}  # (episode, step) -> candidate identities
    with DatasetWriter(root, gamma=GAMMA) as writer:
        for n in range(TOY_EPISODES + TOY_BROKEN):
            broken = n >= TOY_EPISODES
            eid = f"{n:032x}"
            steps = []
            for t in range(TOY_HORIZON):
                order = rng.permutation(TOY_CANDS)
                if broken:
                    order = np.roll(np.arange(TOY_CANDS), -1 - t % 3)  # dataset action wrong
                right = order[0] == 0
                done = bool(right or t == TOY_HORIZON - 1) and not broken
                plan[(eid, t)] = order
                steps.append(
                    StepRecord(
                        eid,
                        t,
                        frame,
                        action=_toy_action(int(order[0])),
                        reward=float(right),
                        done=done,
                    )
                )
                if done or (broken and t == 1):
                    break
            if not broken:
                steps.append(StepRecord(eid, len(steps), frame))
            success = any(s.reward > 0 for s in steps if s.action is not None)
            episode = EpisodeRecord(
                eid,
                "tap the right thing",
                task_set="general",
                split="train",
                success=success,
                length=sum(s.action is not None for s in steps),
                error="device lost" if broken else None,
            )
            writer.add_episode(episode, steps)
    buffer = ReplayBuffer.open(root)
    ids = buffer.transition_ids
    total = int(ids.max()) + 1
    proto_a = rng.normal(size=(TOY_CANDS, TOY_DIM))
    proto_v = rng.normal(size=(TOY_CANDS, TOY_DIM))
    state = np.zeros((total, 1, TOY_DIM + TOY_HORIZON))
    action = np.zeros((total, TOY_CANDS, TOY_DIM))
    vlm = np.zeros((total, TOY_CANDS, TOY_DIM))
    right: dict[int, int] = {}
    with CandidateWriter(buffer, "toy", num_candidates=TOY_CANDS, model="toy") as cand_writer:
        for tid in ids.tolist():
            t = buffer.transition(tid)
            order = plan[(t.episode_id, t.step)]
            state[tid, 0, :TOY_DIM] = rng.normal(size=TOY_DIM)
            state[tid, 0, TOY_DIM + t.step] = 1.0
            action[tid] = proto_a[order] + 0.3 * rng.normal(size=(TOY_CANDS, TOY_DIM))
            vlm[tid] = proto_v[order] + 0.3 * rng.normal(size=(TOY_CANDS, TOY_DIM))
            right[tid] = int(np.flatnonzero(order == 0)[0])
            texts = [t.action_text] + [_autoui(int(k)) for k in order[1:]]
            cand_writer.add(tid, texts, [0.0] * TOY_CANDS)
    for name, values in (("state", state), ("action_text", action), ("vlm", vlm)):
        store = FeatureStore.create(
            root,
            name,
            model="toy",
            layer=0,
            dim=values.shape[2],
            num_candidates=values.shape[1],
            chunk_size=128,
            extra={"candidates": "toy"} if name == "action_text" else None,
        )
        for chunk in range(store.meta.num_chunks):
            lo, hi = store.chunk_range(chunk)
            store.write_chunk(chunk, values[lo:hi])
    table = CandidateTable.open(root, "toy")
    # The candidate set is found through the action-text store's meta, as digiq.features writes it.
    data = CriticData.from_buffer(buffer)
    return Toy(root, buffer, table, data, right, _autoui(0))


def _autoui(identity: int) -> str:
    from android.actions import to_autoui

    return to_autoui(_toy_action(identity))


def _rank_first_rate(trainer: CriticTrainer, data: CriticData, right: dict[int, int]) -> float:
    scores = trainer.score_data(data)
    best, _ = select_best(scores.advantages())
    truth = np.array([right[int(t)] for t in scores.transition_ids])
    return float(np.mean(best == truth))


def test_toy_dataset_has_the_intended_shape(toy: Toy) -> None:
    data = toy.data
    assert data.num_candidates == TOY_CANDS and data.action_type_dim == NUM_ACTION_TYPES
    assert data.state_dim == TOY_DIM + TOY_HORIZON and data.vlm_dim == TOY_DIM
    # All candidates are taps: the type one-hot cannot give the answer away.
    assert set(np.unique(data.action_types[data.transition_ids]).tolist()) == {4}
    missing = (~data.dones & (data.next_transition_ids < 0)).sum()
    assert missing == TOY_BROKEN
    # A store whose features are not all written yet is refused up front, by name.
    partial = FeatureStore.create(toy.root, "partial", model="toy", layer=0, dim=4, chunk_size=128)
    partial.write_chunk(0, np.zeros((128, 1, 4)))
    with pytest.raises(ValueError, match="partial is incomplete"):
        CriticData.from_buffer(toy.buffer, vlm="partial")


@pytest.mark.parametrize("target", ["td", "td-expected", "mc"])
def test_toy_critic_ranks_the_right_action_first_and_best_of_n_selects_it(
    toy: Toy, target: str
) -> None:
    train, val = toy.data.split(0.25, seed=0)
    config = CriticConfig.tiny(
        toy.data.state_dim, toy.data.action_dim, toy.data.vlm_dim, target=target, steps=300
    )
    logged: list[tuple[int, dict[str, float]]] = []
    trainer = CriticTrainer(
        config, train, val, tensorboard=False, callback=lambda s, m: logged.append((s, m))
    )
    if target != "mc":
        assert trainer.excluded["missing_next_state"] == sum(
            1 for k in set(train.episode_keys) if int(k, 16) >= TOY_EPISODES
        )
    before = _rank_first_rate(trainer, val, toy.right)
    final = trainer.train()
    rate = _rank_first_rate(trainer, val, toy.right)
    assert before < 0.6  # untrained: about chance (0.25)
    assert rate >= 0.9, f"{target}: right action ranked first in only {rate:.2%} of held-out states"
    # Validation metrics: Q of the dataset action tracks the return, successful steps are kept.
    assert final["val/argmax_dataset_rate"] >= 0.9
    assert final["val/corr_q_mc"] > 0.4
    assert final["val/auc_success"] > 0.6
    # Any data can be evaluated: transitions without s' are left out rather than crashing.
    assert math.isfinite(trainer.evaluate(toy.data)["val/loss"])
    assert [s for s, _ in logged if s % 10 == 0][:3] == [10, 20, 30]
    assert {"td_error/abs_mean", "q/mean", "v/std", "target_q/max", "grad_norm"} <= set(
        logged[0][1]
    )

    # Best-of-N targets on the held-out episodes pick the right action's AutoUI string.
    _, val_buffer = toy.buffer.split(0.25, seed=0)
    assert sorted(val_buffer.transition_ids.tolist()) == sorted(val.transition_ids.tolist())
    scores = trainer.score_data(val)
    targets = build_policy_targets(val_buffer, toy.table, scores, "bestofn", threshold=0.10)
    assert len(targets) == len(val_buffer)
    picked_right = np.mean([t.target == toy.right_text for t in targets])
    assert picked_right >= 0.9
    positive = [t for t in targets if t.weight == 1.0]
    # States whose dataset action was wrong have a large advantage to gain.
    assert len(positive) >= 0.5 * len(targets)
    assert np.mean([t.target == toy.right_text for t in positive]) >= 0.95


# ---------------------------------------------------------------------------------------------
# Checkpoints and logs
# ---------------------------------------------------------------------------------------------


def _state_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_checkpoint_round_trip_and_exact_resume(tmp_path: Path) -> None:
    data = random_data(episodes=20)
    config = small_config(data, steps=12, log_every=3)
    straight = CriticTrainer(config, data, tensorboard=False)
    straight.train()

    run = tmp_path / "run"
    first = CriticTrainer(config, data, run_dir=run, tensorboard=False)
    first.train(until=6)
    saved = latest_checkpoint(run)
    assert saved is not None and saved.name == "step-00000006"
    assert {p.name for p in saved.iterdir()} >= {
        "model.safetensors",
        "optimizer.safetensors",
        "checkpoint.json",
        "state.safetensors",
    }
    resumed = CriticTrainer.resume(saved, data, run_dir=run, tensorboard=False)
    assert resumed.step == 6
    assert _state_equal(resumed.critic, first.critic) and _state_equal(resumed.target, first.target)
    resumed.train()
    assert resumed.step == 12
    # Same weights, targets and optimizer moments as an uninterrupted run.
    assert _state_equal(resumed.critic, straight.critic)
    assert _state_equal(resumed.target, straight.target)
    assert latest_checkpoint(run).name == "step-00000012"

    # Reloaded critic scores identically.
    critic = load_critic(latest_checkpoint(run))
    ids = data.transition_ids[:5]
    args = (
        data.state.get(ids),
        data.action_text.get(ids, None),
        data.vlm.get(ids, None),
        data.action_types[ids],
    )
    for got, want in zip(critic.score(*args), resumed.score(*args), strict=True):
        np.testing.assert_array_equal(got, want)

    rows = [json.loads(line) for line in (run / "logs" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [3, 6, 9, 12]
    assert all(math.isfinite(r["critic/loss"]) for r in rows)


def test_missing_or_wrong_checkpoints_fail_clearly(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "step-00000010"
    with pytest.raises(CheckpointError, match="no checkpoint at .*nope"):
        load_critic(missing)
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        CriticTrainer.resume(missing, random_data())
    half = tmp_path / "half"
    half.mkdir()
    (half / "checkpoint.json").write_text("{}")
    with pytest.raises(CheckpointError, match="not a complete checkpoint"):
        load_critic(half)
    assert latest_checkpoint(tmp_path / "empty-run") is None
    # A checkpoint of a differently-sized critic does not load silently.
    data = random_data()
    trainer = CriticTrainer(small_config(data), data, tensorboard=False)
    path = trainer.save(tmp_path / "ck")
    other = CriticTrainer(small_config(data, q_hidden=(8,)), data, tensorboard=False)
    with pytest.raises(CheckpointError, match="does not fit"):
        other.load_state(path)


def test_scalar_log_writes_tensorboard_and_degrades_without_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_scalar_log(tmp_path / "tb", tensorboard=True) as slog:
        assert slog.tensorboard
        slog.log(1, {"loss": 0.5, "bad": float("nan")}, prefix="critic/")
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
    row = json.loads((tmp_path / "tb" / "metrics.jsonl").read_text())
    assert row["critic/loss"] == 0.5 and row["critic/bad"] is None

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import now fails
    with open_scalar_log(tmp_path / "plain", tensorboard=True) as slog:
        assert not slog.tensorboard
        slog.log(2, {"loss": 0.25})
    assert not list((tmp_path / "plain").glob("events.out.tfevents.*"))
    assert json.loads((tmp_path / "plain" / "metrics.jsonl").read_text())["loss"] == 0.25


def test_success_auc_counts_ties_as_half() -> None:
    from digiq.critic import _auc

    # Pairs (pos > neg): 3>1, 3>2, 2>1 (twice), ties 2=2 (twice, half each): 5 / 6.
    assert _auc(np.array([3.0, 2.0, 2.0]), np.array([1.0, 2.0])) == pytest.approx(5 / 6)
    assert _auc(np.array([1.0]), np.array([2.0])) == 0.0
    assert math.isnan(_auc(np.array([1.0]), np.array([])))
