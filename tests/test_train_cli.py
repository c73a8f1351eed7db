"""``digiq-train`` stages end to end on a small synthetic dataset, resumption, the candidates
stage, the trained-policy agent (through eval's registered loader) and clear failures.

The dataset is written with :class:`trajectories.DatasetWriter`: Web Shopping-like episodes on
small drawn screens (tap the search box, type the query, ENTER), half of them successful. Models
are the tiny preset (built from config); the stages run for a handful of steps, so these tests
check wiring, files, resumption and numerics, not learning (tests/test_policy.py does that).
"""

from __future__ import annotations

import json
import mmap
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image, ImageDraw

from android.actions import Action, parse_autoui
from android.observation import Observation
from digiq.candidates import INVALID_FILE, CandidatesConfig, run_candidates
from digiq.critic import load_critic
from digiq.models.policy import POLICY_JSON, PolicyModel
from digiq.pipeline import (
    PipelineError,
    _overrides,
    feature_prefix,
    load_config,
    merge_config,
    read_stages,
    run_stages,
    stage_config,
)
from digiq.policy_agent import PolicyAgent, register
from digiq.policy_train import PolicyTrainConfig, run_policy_train
from digiq.stage_memory import StagePeak
from digiq.train_cli import train_group
from digiq.ui_grounding import GOAL_MATCH_DIM
from eval.agents.base import load_agent
from eval.tasks import load_task_set
from trajectories import CandidateTable, DatasetWriter, EpisodeRecord, ReplayBuffer, StepRecord
from trajectories.features import FeatureStore
from trajectories.images import encode_png

W, H = 108, 228  # a tenth of the DigiRL screen
QUERIES = ["razer kraken", "usb c cable", "coffee maker", "gaming mouse", "water bottle", "tripod"]
SMALL_POLICY = {
    "d_model": 32,
    "d_ff": 64,
    "num_layers": 1,
    "num_decoder_layers": 1,
    "num_heads": 2,
    "d_kv": 16,
    "cnn_channels": (8, 16, 16),
    "vocab_size": 512,
    "max_target_tokens": 24,
}


def frame(episode: int, step: int) -> bytes:
    img = Image.new("RGB", (W, H), (240, 240, 240))
    draw = ImageDraw.Draw(img)
    draw.rectangle([8, 20, 100, 40], fill=(200, 200, 255) if step else (255, 255, 255))
    draw.rectangle([8, 60 + 10 * step, 100, 90 + 10 * step], fill=(30 * episode % 255, 120, 60))
    return encode_png(img)


def write_dataset(root: Path, episodes: int = 12, *, successes: bool = True) -> Path:
    with DatasetWriter(root, episodes_per_shard=4) as writer:
        for n in range(episodes):
            query = QUERIES[n % len(QUERIES)]
            success = successes and n % 2 == 0
            actions = [Action.tap(0.13, 0.5), Action.type(query), Action.enter()]
            episode = EpisodeRecord.new(
                f'Go to ebay.com, search for "{query}"',
                task_set="webshop",
                split="train",
                agent="scripted",
                success=success,
                length=len(actions),
                terminated=success,
                truncated=not success,
            )
            steps = [
                StepRecord(
                    episode.episode_id,
                    t,
                    frame(n, t),
                    action=action,
                    reward=1.0 if success and t == len(actions) - 1 else 0.0,
                    done=t == len(actions) - 1,
                )
                for t, action in enumerate(actions)
            ]
            steps.append(StepRecord(episode.episode_id, len(actions), frame(n, len(actions))))
            writer.add_episode(episode, steps)
    return root


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("train-cli") / "data")


def bc_config(data: Path, run: Path, **kwargs: object) -> PolicyTrainConfig:
    base: dict[str, object] = dict(
        data_dir=str(data),
        run_dir=str(run),
        stage="bc",
        steps=8,
        batch_size=4,
        checkpoint_every=3,
        progress=False,
        tensorboard=False,
        policy_overrides=SMALL_POLICY,
    )
    base.update(kwargs)
    return PolicyTrainConfig(**base)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def bc_run(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A behaviour policy trained by the bc stage (small, a few steps)."""
    run = tmp_path_factory.mktemp("bc") / "run"
    run_policy_train(bc_config(dataset, run))
    return run


def invoke(*args: str) -> object:
    return CliRunner().invoke(train_group, list(args), catch_exceptions=False)


# ------------------------------------------------------------------------------- CLI


def test_help_explains_every_option() -> None:
    for name, command in train_group.commands.items():  # type: ignore[attr-defined]
        result = CliRunner().invoke(train_group, [name, "--help"])
        assert result.exit_code == 0, result.output
        for param in command.params:
            assert param.opts[0] in result.output, (name, param.opts[0])
            assert getattr(param, "help", None), f"{name} {param.opts[0]} has no help text"
    assert set(train_group.commands) == {  # type: ignore[attr-defined]
        "repr", "features", "candidates", "critic", "policy", "bc", "all",
    }  # fmt: skip


def test_bc_through_the_cli_then_the_agent_loads_it(dataset: Path, tmp_path: Path) -> None:
    run = tmp_path / "bp"
    config = tmp_path / "bc.yaml"
    config.write_text("batch_size: 4\nbc:\n  steps: 3\n")
    result = CliRunner().invoke(
        train_group,
        [
            "bc",
            "--data",
            str(dataset),
            "--out",
            str(run),
            "--config",
            str(config),
            "--no-progress",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    record = json.loads(result.output[result.output.index("{") :])
    entry = record["stages"]["bc"]
    assert entry["status"] == "done" and entry["wall_s"] > 0 and entry["peak_rss_mb"] > 10
    assert entry["metrics"]["step"] == 3 and entry["metrics"]["batch_size"] == 4
    assert (run / "bc" / POLICY_JSON).is_file()
    assert list((run / "work" / "bc" / "checkpoints").glob("step-*/model.safetensors"))
    assert (run / "work" / "bc" / "logs" / "metrics.jsonl").is_file()
    # eval's loader: RUN (-> RUN/bc), with settings in the spec
    register()
    agent = load_agent(str(run))
    assert isinstance(agent, PolicyAgent) and agent.policy_dir == run / "bc"
    assert agent.temperature == 0.8 and not agent.greedy
    greedy = load_agent(f"{run}?greedy", seed=4)
    assert isinstance(greedy, PolicyAgent) and greedy.greedy and greedy.seed == 4
    with pytest.raises(ValueError, match="noise"):
        load_agent(str(run), noise=0.3)
    task = load_task_set("webshop", "test")[1]
    obs = Observation(np.zeros((H * 10, W * 10, 3), np.uint8), [], None)
    agent.reset(task, seed=0)
    action = agent.act(obs, task, [])
    assert isinstance(action, Action)  # possibly INVALID: returned as is, never raised
    candidates = agent.sample(obs, task, [], 3)
    assert len(candidates) == 3
    assert all(isinstance(c.logprob, float) and c.logprob < 0 for c in candidates)
    assert agent.config()["policy_dir"] == str(run / "bc")
    # a second identical command skips the finished stage
    again = invoke(
        "bc", "--data", str(dataset), "--out", str(run), "--config", str(config), "--no-progress"
    )
    assert "already done" in again.output  # type: ignore[attr-defined]
    assert read_stages(run)["stages"]["bc"]["attempts"] == 1


def test_policy_history_makes_a_new_policy_list_that_many_previous_actions(
    dataset: Path, bc_run: Path, tmp_path: Path
) -> None:
    run = tmp_path / "h2"
    config = tmp_path / "bc.yaml"
    config.write_text("batch_size: 4\nbc:\n  steps: 2\n")
    result = invoke(
        "bc", "--data", str(dataset), "--out", str(run), "--config", str(config),
        "--policy-history", "2", "--no-progress",
    )  # fmt: skip
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    model = PolicyModel.load(run / "bc")
    assert model.config.history == 2
    register()
    assert load_agent(str(run)).history == 2  # acts on what it was trained on
    # A saved policy keeps its own inputs: asking for others is refused, naming both.
    assert PolicyModel.load(bc_run / "bc").config.history == 1
    refused = CliRunner().invoke(
        train_group,
        [
            "bc", "--data", str(dataset), "--out", str(tmp_path / "ft"), "--config", str(config),
            "--policy-path", str(bc_run / "bc"), "--policy-history", "2", "--no-progress",
        ],
    )  # fmt: skip
    assert refused.exit_code != 0
    assert "history=1" in refused.output and "new policy only" in refused.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bc", "--policy-path", "/nonexistent/policy"], "/nonexistent/policy"),
        (["repr", "--model-path", "/nonexistent/vlm"], "/nonexistent/vlm"),
        (["candidates", "--behaviour-policy", "/nonexistent/bp"], "/nonexistent/bp"),
        (["bc", "--config", "/nonexistent/cfg.yaml"], "/nonexistent/cfg.yaml"),
    ],
)
def test_missing_paths_fail_clearly(
    args: list[str], message: str, dataset: Path, tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        train_group, [*args, "--data", str(dataset), "--out", str(tmp_path / "r"), "--no-progress"]
    )
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_stages_that_need_inputs_say_which(dataset: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        train_group,
        ["policy", "--data", str(dataset), "--out", str(tmp_path / "r"), "--no-progress"],
    )
    assert result.exit_code != 0 and "--behaviour-policy" in result.output
    result = CliRunner().invoke(
        train_group, ["bc", "--data", str(tmp_path), "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 2 and "not a trajectory dataset" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("stepz: 3\n")
    result = CliRunner().invoke(
        train_group,
        ["bc", "--data", str(dataset), "--out", str(tmp_path / "r"), "--config", str(bad)],
    )
    assert result.exit_code == 2 and "stepz" in result.output


def test_config_file_and_command_line_merge(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("lr: 0.01\nsteps: 5\ncritic:\n  steps: 800\n  lr: 0.001\nnum-candidates: 8\n")
    merged = merge_config(load_config(path), {"steps": 7, "lr": None, "seed": 3})
    assert merged["steps"] == 7 and merged["lr"] == 0.01 and merged["seed"] == 3
    assert merged["num_candidates"] == 8
    # The command line wins over the file's stage sections too (--help: "command-line
    # options win"); an option not given on the command line keeps the section's value.
    assert stage_config(merged, "critic")["steps"] == 7
    assert stage_config(merged, "critic")["lr"] == 0.001
    assert stage_config(merged, "policy")["steps"] == 7
    file_only = merge_config(load_config(path), {})
    assert stage_config(file_only, "critic")["steps"] == 800
    assert stage_config(file_only, "policy")["steps"] == 5
    path.write_text("ui-tree-text: false\n")
    assert load_config(path)["ui-tree-text"] is False
    assert _overrides(merge_config(load_config(path), {})) == {"critic_ui_tree_text": False}
    with pytest.raises(ValueError, match="ui_tree_text must be true or false, got 'no'"):
        _overrides({"ui_tree_text": "no"})
    # Boolean options are checked when the file is read, not when their stage is reached.
    path.write_text("critic:\n  clip_values: 'off'\n")
    with pytest.raises(ValueError, match="section 'critic': option clip_values must be true or"):
        load_config(path)
    path.write_text("clip-values: 1\n")
    with pytest.raises(ValueError, match="option clip_values must be true or false, got 1"):
        load_config(path)
    path.write_text("critic:\n  clip_values: false\n")
    assert stage_config(merge_config(load_config(path), {}), "critic")["clip_values"] is False


# ------------------------------------------------------------------------------- stages


def test_candidates_have_n_per_state_dataset_action_first_and_redraw_invalid(
    dataset: Path, bc_run: Path
) -> None:
    model = PolicyModel.load(bc_run / "bc")
    # an 8-step policy writes mostly unparseable text: every such sample is re-drawn 3 times
    config = CandidatesConfig(
        str(dataset), str(bc_run), name="t-redraw", num_candidates=4, batch_size=5, progress=False
    )
    result = run_candidates(config, model=model)
    buffer = ReplayBuffer.open(dataset)
    table = CandidateTable.open(dataset, "t-redraw")
    assert result["complete"] and result["states"] == len(buffer) == len(table)
    for t in buffer.iter_transitions():
        actions = table.actions([t.transition_id])[0]
        assert len(actions) == 4 and actions[0] == t.action_text
    logprobs = table.logprobs(table.transition_ids)
    assert logprobs.shape == (len(buffer), 4)
    assert np.isfinite(logprobs).all() and (logprobs < 0).all()
    marked = table.root / INVALID_FILE
    lines = marked.read_text().splitlines() if marked.exists() else []
    marks = [json.loads(line) for line in lines]
    assert len(marks) == result["invalid_kept"]
    for mark in marks:
        text = table.actions([mark["transition_id"]])[0][mark["candidate"]]
        assert not parse_autoui(text).is_valid
    # each candidate still invalid at the end was drawn 1 + 3 times
    assert result["redraws"] >= 3 * result["invalid_kept"]
    # without re-draws nothing is re-drawn; resumed calls add nothing
    none = run_candidates(
        CandidatesConfig(
            str(dataset),
            str(bc_run),
            name="t-none",
            num_candidates=4,
            max_redraws=0,
            progress=False,
        ),
        model=model,
    )
    assert none["redraws"] == 0 and none["invalid_kept"] >= result["invalid_kept"]
    assert run_candidates(config, model=model)["states"] == 0


def test_candidates_shared_with_a_worker_process_draw_what_one_process_draws(
    dataset: Path, bc_run: Path
) -> None:
    # Each batch's draw is seeded by its index, so the process that samples it does not
    # matter: the same strings, log-probabilities up to one thread's float order against two.
    runs = {}
    for workers in (1, 2):
        config = CandidatesConfig(
            str(dataset),
            str(bc_run),
            name=f"t-w{workers}",
            num_candidates=4,
            batch_size=4,
            seed=7,
            workers=workers,
            progress=False,
        )
        result = run_candidates(config)
        assert result["complete"] and result["workers"] == workers
        runs[workers] = (result, CandidateTable.open(dataset, f"t-w{workers}"))
    (one, a), (two, b) = runs[1], runs[2]
    ids = a.transition_ids
    assert np.array_equal(ids, b.transition_ids) and len(ids) == len(ReplayBuffer.open(dataset))
    assert a.actions(ids) == b.actions(ids)
    np.testing.assert_allclose(a.logprobs(ids), b.logprobs(ids), atol=1e-4)
    assert (one["redraws"], one["invalid_kept"]) == (two["redraws"], two["invalid_kept"])
    with pytest.raises(ValueError, match="workers must be >= 1"):
        CandidatesConfig(str(dataset), str(bc_run), workers=0)
    # a YAML config's workers: 0 is refused, not read as the default
    from digiq.pipeline import candidates_stage

    for bad in (0, True, "2"):
        with pytest.raises(ValueError, match="option workers must be an integer >= 1"):
            candidates_stage(
                bc_run, dataset, "tiny", {"behaviour_policy": str(bc_run), "workers": bad}
            )


def test_a_stopped_bc_run_resumes_to_the_same_weights(dataset: Path, tmp_path: Path) -> None:
    straight = run_policy_train(bc_config(dataset, tmp_path / "a"))

    class Stop(Exception):
        pass

    def stop_at_5(step: int) -> None:
        if step == 5:
            raise Stop

    with pytest.raises(Stop):
        run_policy_train(bc_config(dataset, tmp_path / "b"), on_step=stop_at_5)
    assert not (tmp_path / "b" / "bc" / POLICY_JSON).exists()  # not finished
    resumed = run_policy_train(bc_config(dataset, tmp_path / "b"))
    assert resumed["step"] == straight["step"] == 8
    a = PolicyModel.load(tmp_path / "a" / "bc").net.state_dict()
    b = PolicyModel.load(tmp_path / "b" / "bc").net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # a finished stage is not trained again; another configuration is refused
    assert run_policy_train(bc_config(dataset, tmp_path / "b"))["step"] == 8
    with pytest.raises(ValueError, match="lr"):
        run_policy_train(bc_config(dataset, tmp_path / "b", lr=0.5))


def test_filtered_bc_with_nothing_to_imitate_keeps_the_initial_policy(
    bc_run: Path, tmp_path: Path
) -> None:
    failures = write_dataset(tmp_path / "failures", episodes=6, successes=False)
    result = run_policy_train(
        bc_config(failures, tmp_path / "fbc", loss="filtered-bc", init=str(bc_run / "bc"))
    )
    assert "no training example has a non-zero weight" in result["unchanged"]
    assert result["finished"] and result["step"] == 0
    init = PolicyModel.load(bc_run / "bc")
    kept = PolicyModel.load(tmp_path / "fbc" / "bc")
    assert kept.model_id == init.model_id  # same weights, same id (candidate sets key on it)
    a, b = init.net.state_dict(), kept.net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # without an initial policy there is nothing to keep: a clear error
    with pytest.raises(ValueError, match="no training example has a non-zero weight"):
        run_policy_train(bc_config(failures, tmp_path / "new", loss="filtered-bc"))


def test_a_done_stage_whose_input_stage_ran_again_is_refused_not_skipped(
    dataset: Path, tmp_path: Path
) -> None:
    calls: list[str] = []

    def stage(name: str):
        def run(run: Path, data: Path, preset: str, config: dict) -> dict:
            calls.append(name)
            return {}

        return run

    functions = {name: stage(name) for name in ("critic", "policy")}
    run_stages(["critic", "policy"], tmp_path, dataset, functions=functions)
    # Resuming: both done, in order -> both skipped.
    run_stages(["critic", "policy"], tmp_path, dataset, functions=functions)
    assert calls == ["critic", "policy"]
    # The critic re-trained under a done policy: skipping the policy would keep one extracted
    # from the old critic.
    run_stages(["critic"], tmp_path, dataset, functions=functions, force=True)
    with pytest.raises(PipelineError, match="stage policy .* input stage critic was run again"):
        run_stages(["policy"], tmp_path, dataset, functions=functions)
    assert calls == ["critic", "policy", "critic"]
    run_stages(["policy"], tmp_path, dataset, functions=functions, force=True)
    run_stages(["critic", "policy"], tmp_path, dataset, functions=functions)  # in order again
    assert calls == ["critic", "policy", "critic", "policy"]


def test_run_stages_records_failures_and_skips_done_stages(dataset: Path, tmp_path: Path) -> None:
    calls: list[str] = []

    def flaky(run: Path, data: Path, preset: str, config: dict) -> dict:
        calls.append(preset)
        if len(calls) == 1:
            raise RuntimeError("device fell over")
        return {"value": config["seed"]}

    with pytest.raises(RuntimeError):
        run_stages(["bc"], tmp_path, dataset, config={"seed": 5}, functions={"bc": flaky})
    entry = read_stages(tmp_path)["stages"]["bc"]
    assert entry["status"] == "failed" and "device fell over" in entry["error"]
    run_stages(["bc"], tmp_path, dataset, config={"seed": 5}, functions={"bc": flaky})
    run_stages(["bc"], tmp_path, dataset, config={"seed": 5}, functions={"bc": flaky})
    entry = read_stages(tmp_path)["stages"]["bc"]
    assert entry["status"] == "done" and entry["metrics"] == {"value": 5}
    assert entry["attempts"] == 2 and len(calls) == 2
    assert entry["peak_rss_mb"] > 0 and entry["wall_s"] >= 0


def test_each_stage_records_its_own_peak_memory(dataset: Path, tmp_path: Path) -> None:
    """A stage after a memory-hungry one records its own peak, not the process's so far
    (``ru_maxrss`` only grows: every stage after the features once reported their 2.5 GB)."""
    if StagePeak().scope != "stage":
        pytest.skip("this OS keeps only the process's peak resident memory")
    size = 400 * 2**20

    def hungry(run: Path, data: Path, preset: str, config: dict) -> dict:
        block = mmap.mmap(-1, size)  # unmapped on close, whatever the allocator keeps
        for offset in range(0, size, mmap.PAGESIZE):
            block[offset] = 1
        block.close()
        return {}

    def frugal(run: Path, data: Path, preset: str, config: dict) -> dict:
        return {}

    run_stages(
        ["critic", "policy"],
        tmp_path,
        dataset,
        functions={"critic": hungry, "policy": frugal},
    )
    stages = read_stages(tmp_path)["stages"]
    assert {stages[s]["peak_rss_scope"] for s in ("critic", "policy")} == {"stage"}
    hungry_mb, frugal_mb = stages["critic"]["peak_rss_mb"], stages["policy"]["peak_rss_mb"]
    assert hungry_mb - frugal_mb > 300, (hungry_mb, frugal_mb)
    assert frugal_mb > 10  # the interpreter itself


@pytest.mark.slow
def test_all_stages_then_the_extracted_policy_loads(
    dataset: Path, bc_run: Path, tmp_path: Path
) -> None:
    run = tmp_path / "dq"
    config = tmp_path / "all.yaml"
    config.write_text(
        "batch_size: 4\nrepr:\n  epochs: 1\ncritic:\n  steps: 20\npolicy:\n  steps: 4\n"
    )
    result = CliRunner().invoke(
        train_group,
        [
            "all", "--data", str(dataset), "--out", str(run), "--behaviour-policy", str(bc_run),
            "--num-candidates", "4", "--threshold", "-10", "--config", str(config),
            "--no-progress",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    stages = read_stages(run)["stages"]
    assert list(stages) == ["repr", "candidates", "features", "critic", "policy"] or set(stages) == {
        "repr", "candidates", "features", "critic", "policy"
    }  # fmt: skip
    assert all(stages[s]["status"] == "done" for s in stages)
    name = stages["candidates"]["metrics"]["name"]
    assert CandidateTable.open(dataset, name).num_candidates == 4
    features = stages["features"]["metrics"]
    assert features["stores"]["vlm"]["shape"][1] == 4
    # The tiny preset gives the critic the UI-tree inputs: screen text and grounded actions.
    assert "screen_text" in features["layout"]
    assert features["stores"]["action_text"]["shape"][2] == 2 * 384 + GOAL_MATCH_DIM
    assert stages["critic"]["metrics"]["steps"] == 20
    # Scores are clipped to the interval the data's returns lie in (0/1 rewards, gamma 0.95).
    critic_config = load_critic(stages["critic"]["metrics"]["checkpoint"]).config
    assert critic_config.value_range == pytest.approx((0.0, 20.0))
    assert stages["critic"]["metrics"]["value_range"] == pytest.approx([0.0, 20.0])
    policy = stages["policy"]["metrics"]
    assert policy["loss"] == "bestofn" and policy["clamp"] is True
    assert policy["data"]["nonzero_weight"] > 0 and policy["step"] == 4
    model = PolicyModel.load(run / "policy")
    assert model.model_id != PolicyModel.load(bc_run / "bc").model_id
    register()
    assert load_agent(str(run)).policy_dir == run / "policy"  # type: ignore[attr-defined]
    # everything done: a second run skips every stage
    again = CliRunner().invoke(
        train_group,
        [
            "all",
            "--data",
            str(dataset),
            "--out",
            str(run),
            "--behaviour-policy",
            str(bc_run),
            "--config",
            str(config),
        ],
    )
    assert again.exit_code == 0 and again.output.count("already done") == 5
    # --anchor-weight: with no candidate above a threshold of 10, every state imitates its
    # dataset action at the anchor's weight (without it, nothing would be trained).
    anchored = tmp_path / "dq-anchored"
    for stage in ("critic", "policy"):
        result = CliRunner().invoke(
            train_group,
            [
                stage, "--data", str(dataset), "--out", str(anchored), "--behaviour-policy",
                str(bc_run), "--features-from", str(run), "--num-candidates", "4",
                "--threshold", "10", "--anchor-weight", "0.5", "--config", str(config),
                "--no-progress",
            ],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
    data = read_stages(anchored)["stages"]["policy"]["metrics"]["data"]
    assert data["nonzero_weight"] == data["examples"] > 0
    assert data["mean_weight"] == pytest.approx(0.5)
    assert data["targets_not_dataset_action"] == 0
    # Feature stores recomputed since, with the same dimensions: the finished critic is not
    # returned as done (--force) nor resumed on them.
    for store in ("vlm", "state", "action_text"):
        shutil.rmtree(FeatureStore.path(dataset, feature_prefix(run) + store))
    args = ["--data", str(dataset), "--out", str(run), "--behaviour-policy", str(bc_run),
            "--num-candidates", "4", "--config", str(config), "--no-progress", "--force"]  # fmt: skip
    recomputed = CliRunner().invoke(train_group, ["features", *args])
    assert recomputed.exit_code == 0, recomputed.output
    stale = CliRunner().invoke(train_group, ["critic", *args])
    assert stale.exit_code != 0 and "other feature stores" in stale.output, stale.output
    # --target td-expected: a critic whose V averages the candidates, on the same features.
    expected = tmp_path / "dq-expected"
    result = CliRunner().invoke(
        train_group,
        [
            "critic", "--data", str(dataset), "--out", str(expected), "--behaviour-policy",
            str(bc_run), "--features-from", str(run), "--target", "td-expected", "--config",
            str(config), "--no-progress", "--no-clip-values",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    critic = read_stages(expected)["stages"]["critic"]["metrics"]
    assert critic["target"] == "td-expected" and critic["steps"] == 20
    assert load_critic(critic["checkpoint"]).config.value_range is None  # published scores
    # --no-ui-tree-text: the published inputs (same candidates, another run's stores).
    plain = tmp_path / "dq-plain"
    result = CliRunner().invoke(
        train_group,
        [
            "features", "--data", str(dataset), "--out", str(plain), "--behaviour-policy",
            str(bc_run), "--num-candidates", "4", "--no-ui-tree-text", "--no-progress",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics = read_stages(plain)["stages"]["features"]["metrics"]
    assert "screen_text" not in metrics["layout"]
    assert metrics["stores"]["action_text"]["shape"][2] == 384


@pytest.mark.slow
def test_digiq_eval_runs_the_trained_policy_on_a_simulated_phone(
    adb_env, bc_run: Path, tmp_path: Path
) -> None:
    from digiq.eval_cli import eval_command
    from eval.results import read_results

    register()
    out = tmp_path / "eval"
    result = CliRunner().invoke(
        eval_command,
        [
            "--task-set", "webshop", "--num-tasks", "1", "--agent", f"{bc_run}?temperature=1.0",
            "--devices", "sim:1", "--max-steps", "2", "--out", str(out), "--no-progress",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (record,) = read_results(out / "results.jsonl")
    assert record.agent["policy_dir"] == str(bc_run / "bc")  # type: ignore[index]
    assert record.agent["temperature"] == 1.0  # type: ignore[index]
    assert 1 <= len(record.actions) <= 2
