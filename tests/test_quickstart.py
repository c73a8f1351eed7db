"""``digiq quickstart`` end to end at the tiny scale on simulated phones, interrupted and
resumed, and the report's statistics on hand-checkable numbers."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from digiq.policy_agent import EVAL_TEMPERATURE
from digiq.quickstart import (
    METHODS,
    RECORD_FILE,
    SCALES,
    QuickstartError,
    Scale,
    Step,
    _batches,
    _keep_plan_order,
    _run_group,
    plan_steps,
    run_quickstart,
    side_by_side_env,
    train_config,
)
from digiq.quickstart_cli import quickstart_command
from digiq.quickstart_report import (
    EpisodeOutcome,
    counts_from_outcomes,
    difference_interval,
    ordering_check,
    paired_comparison,
    paired_difference_interval,
)

STEPS = [
    "demos",
    "behaviour",
    "eval-behaviour",
    "offline",
    "digiq",
    "digiq-mc",
    "filtered-bc",
    *(f"eval-{m}" for m in METHODS if m != "behaviour"),
    "report",
]


def test_help_explains_every_option() -> None:
    result = CliRunner().invoke(quickstart_command, ["--help"])
    assert result.exit_code == 0, result.output
    for param in quickstart_command.params:
        assert param.opts[0] in result.output
        assert getattr(param, "help", None), f"{param.opts[0]} has no help text"


def test_plan_names_every_step_and_uses_the_scale(tmp_path: Path) -> None:
    scale = SCALES["small"]
    steps = plan_steps(tmp_path, scale)
    assert [s.name for s in steps] + ["report"] == STEPS
    by_name = {s.name: s for s in steps}
    demos = by_name["demos"].commands[0]
    assert demos[demos.index("--episodes") + 1] == str(scale.demo_episodes)
    assert demos[demos.index("--noise") + 1] == str(scale.demo_noise)
    assert demos[demos.index("--split") + 1] == "train"
    behaviour = by_name["behaviour"].commands[0]
    assert behaviour[behaviour.index("--policy-history") + 1] == str(scale.policy_history)
    assert all(s.policy_history == 1 for s in SCALES.values())  # the published last action
    given = plan_steps(tmp_path, scale, policy_path="/some/policy")
    given_bc = {s.name: s for s in given}["behaviour"].commands[0]
    assert "--policy-path" in given_bc and "--policy-history" not in given_bc  # keeps its own
    offline = by_name["offline"].commands[0]
    assert offline[offline.index("--agent") + 1].startswith(str(tmp_path / "runs" / "behaviour"))
    mc = by_name["digiq-mc"].commands
    assert [c[c.index("train") + 1] for c in mc] == ["critic", "policy"]
    assert all(c[c.index("--target") + 1] == "mc" for c in mc)
    assert all(c[c.index("--features-from") + 1] == str(tmp_path / "runs" / "digiq") for c in mc)
    for method in METHODS:
        command = by_name[f"eval-{method}"].commands[0]
        assert command[command.index("--split") + 1] == "test"
        assert command[command.index("--num-tasks") + 1] == str(scale.eval_tasks)
        assert command[command.index("--seeds") + 1] == str(scale.eval_seeds)
    assert scale.eval_tasks * scale.eval_seeds >= 48  # the minimum per method
    # The stage options go to the Digi-Q runs through their YAML config.
    assert train_config(scale)["candidates"]["temperature"] == scale.candidate_temperature
    assert train_config(scale)["critic"]["steps"] == scale.critic_steps
    assert SCALES["full"].candidate_temperature == 1.2  # the published setting
    # two sampling processes on the 2-core scales, one on the GPU preset
    assert train_config(scale)["candidates"]["workers"] == scale.candidate_workers == 2
    assert train_config(SCALES["full"])["candidates"]["workers"] == 1


def test_medium_is_small_with_more_data_and_evaluation_only(tmp_path: Path) -> None:
    # medium exists to measure data size (README, "Three times the data"): any other difference
    # from small would confound that comparison.
    small, medium = SCALES["small"].to_dict(), SCALES["medium"].to_dict()
    differing = {k for k in small if small[k] != medium[k]}
    assert differing == {"name", "offline_episodes", "eval_seeds", "notes"}
    assert medium["offline_episodes"] == 3 * small["offline_episodes"]
    assert medium["eval_tasks"] * medium["eval_seeds"] == 96
    steps = {s.name: s for s in plan_steps(tmp_path, SCALES["medium"])}
    offline = steps["offline"].commands[0]
    assert offline[offline.index("--episodes") + 1] == "300"
    assert train_config(SCALES["medium"]) == train_config(SCALES["small"])


def test_small_on_general_has_more_data_and_more_test_tasks(tmp_path: Path) -> None:
    # make demo runs General: 300 offline episodes, 8 candidates per state and 96 evaluation
    # episodes per method, on the first 96 test tasks, one seed each (README, "The General task
    # set"); Web Shopping keeps 100, 4 and 24 tasks x 2 seeds, and nothing else differs.
    small = SCALES["small"]
    general, webshop = small.for_task_set("general"), small.for_task_set("webshop")
    assert webshop.to_dict() == small.to_dict()
    assert general.offline_episodes == 300
    assert (general.eval_tasks, general.eval_seeds) == (96, 1)
    differing = {k for k, v in general.to_dict().items() if webshop.to_dict()[k] != v}
    assert differing == {"offline_episodes", "num_candidates", "eval_tasks", "eval_seeds", "notes"}
    assert (general.num_candidates, webshop.num_candidates) == (8, 4)
    assert "task_set_overrides" not in general.to_dict()  # quickstart.json records what ran
    assert general.for_task_set("general") == general  # applied once, nothing left
    assert train_config(general) == train_config(small)
    for task_set, episodes, tasks, seeds in (
        ("general", "300", "96", "1"),
        ("webshop", "100", "24", "2"),
    ):
        steps = {s.name: s for s in plan_steps(tmp_path, small, task_set)}
        offline = steps["offline"].commands[0]
        assert offline[offline.index("--episodes") + 1] == episodes
        for name in ("eval-behaviour", "eval-digiq", "eval-filtered-bc", "eval-digiq-mc"):
            evaluation = steps[name].commands[0]
            assert evaluation[evaluation.index("--num-tasks") + 1] == tasks, name
            assert evaluation[evaluation.index("--seeds") + 1] == seeds, name
    broken = dataclasses.replace(small, task_set_overrides={"general": {"episodes": 3}})
    with pytest.raises(ValueError, match="unknown fields"):
        broken.for_task_set("general")


@pytest.mark.parametrize("name", sorted(SCALES))
def test_every_extraction_method_gets_the_same_training_budget(tmp_path: Path, name: str) -> None:
    # Filtered BC (a bc command) and the Best-of-N policies (the YAML's policy section) must
    # train for the same steps at the same learning rate, or the table compares budgets.
    scale = SCALES[name]
    fbc = {s.name: s for s in plan_steps(tmp_path, scale)}["filtered-bc"].commands[0]
    policy = train_config(scale)["policy"]
    budget = {k: policy[k] for k in ("steps", "lr")}
    assert budget == {"steps": scale.extraction_steps, "lr": scale.extraction_lr}
    assert int(fbc[fbc.index("--steps") + 1]) == policy["steps"]
    assert float(fbc[fbc.index("--lr") + 1]) == policy["lr"]


def test_critic_target_reaches_the_digiq_critic_and_the_mc_ablation_keeps_mc(
    tmp_path: Path,
) -> None:
    import yaml

    from digiq.pipeline import load_config, merge_config, stage_config

    # small averages V over the candidates (README, "V memorises the dataset action"); the
    # other scales keep the published target.
    targets = {name: train_config(SCALES[name])["critic"]["target"] for name in SCALES}
    assert targets == {"tiny": "td", "small": "td-expected", "medium": "td-expected", "full": "td"}
    scale = SCALES["small"]
    steps = {s.name: s for s in plan_steps(tmp_path, scale)}
    config_path = tmp_path / "digiq-train.yaml"  # what run_quickstart writes
    config_path.write_text(yaml.safe_dump(train_config(scale)))
    file_config = load_config(config_path)
    # The Digi-Q run takes the file's target; the MC ablation's --target mc wins over it.
    assert stage_config(merge_config(file_config, {}), "critic")["target"] == "td-expected"
    mc = steps["digiq-mc"].commands[0]
    assert mc[mc.index("--target") + 1] == "mc"
    assert stage_config(merge_config(file_config, {"target": "mc"}), "critic")["target"] == "mc"


def test_offline_data_come_from_the_evaluated_behaviour_policy(tmp_path: Path) -> None:
    # The offline rollouts sample at the temperature the behaviour row is evaluated at, so the
    # table's "behaviour" is the data's policy (README, Quickstart, "What it measures now").
    for name, scale in SCALES.items():
        steps = {s.name: s for s in plan_steps(tmp_path / name, scale)}
        offline = steps["offline"].commands[0]
        evaluated = steps["eval-behaviour"].commands[0]
        behaviour = evaluated[evaluated.index("--agent") + 1]
        assert "?" not in behaviour, name  # evaluated at the agent's default, EVAL_TEMPERATURE
        assert (
            offline[offline.index("--agent") + 1] == f"{behaviour}?temperature={EVAL_TEMPERATURE}"
        )


def test_bestofn_threshold_reaches_the_policy_stage_only_where_a_scale_sets_it(
    tmp_path: Path,
) -> None:
    # small: 0.10 (its critic's noise is about 0.05; README); tiny and full: the published
    # per-task-set value, i.e. no threshold in the config, so the policy stage picks it.
    assert train_config(SCALES["small"])["policy"]["threshold"] == 0.10
    assert train_config(SCALES["medium"])["policy"]["threshold"] == 0.10
    for name in ("tiny", "full"):
        assert SCALES[name].bestofn_threshold is None
        assert "threshold" not in train_config(SCALES[name])["policy"]
    # Filtered BC has no critic: the threshold must not leak into its command.
    fbc = {s.name: s for s in plan_steps(tmp_path, SCALES["small"])}["filtered-bc"].commands[0]
    assert "--threshold" not in fbc
    # And the policy stage reads it from the YAML the quickstart writes (validated keys).
    from digiq.pipeline import load_config, stage_config
    from digiq.quickstart import _write_yaml

    _write_yaml(tmp_path / "digiq-train.yaml", train_config(SCALES["small"]))
    loaded = load_config(tmp_path / "digiq-train.yaml")
    assert stage_config(loaded, "policy")["threshold"] == 0.10
    assert "threshold" not in stage_config(loaded, "critic")


def test_difference_interval_and_ordering() -> None:
    # Newcombe (1998) example 1 (hybrid score, method 10): 56/70 - 48/80 -> [0.0524, 0.3339].
    low, high = difference_interval(56, 70, 48, 80)
    assert low == pytest.approx(0.0524, abs=5e-4) and high == pytest.approx(0.3339, abs=5e-4)
    counts = {
        "behaviour": {"episodes": 48, "oracle_successes": 10, "rules_successes": 10},
        "filtered-bc": {"episodes": 48, "oracle_successes": 16, "rules_successes": 16},
        "digiq-mc": {"episodes": 48, "oracle_successes": 20, "rules_successes": 20},
        "digiq": {"episodes": 48, "oracle_successes": 30, "rules_successes": 12},
    }
    oracle = ordering_check(counts, "oracle")
    assert oracle["digiq_gt_filtered_bc"] and oracle["filtered_bc_gt_behaviour"]
    assert oracle["gain_significant"] and oracle["digiq_gain"] == pytest.approx(20 / 48)
    rules = ordering_check(counts, "rules")
    assert not rules["digiq_gt_filtered_bc"] and not rules["gain_significant"]


def test_paired_interval_matches_the_published_example_and_narrows_with_correlation() -> None:
    # Fagerland, Lydersen & Laake, "Statistical Analysis of Contingency Tables", ch. 8 (Cavo
    # et al. 2012): pairs 59 both / 6 first only / 16 second only / 80 neither ->
    # -0.0621 [-0.1186, -0.0046] with Newcombe's square-and-add interval.
    low, high = paired_difference_interval(59, 6, 16, 80)
    assert low == pytest.approx(-0.1186, abs=5e-5) and high == pytest.approx(-0.0046, abs=5e-5)
    # No correlation left after the continuity correction: the independent formula on n pairs.
    both, first_only, second_only, neither = 10, 10, 10, 10
    assert paired_difference_interval(both, first_only, second_only, neither) == pytest.approx(
        difference_interval(20, 40, 20, 40)
    )
    # Strongly correlated pairs (the same tasks solved by both): narrower than independent.
    low, high = paired_difference_interval(20, 8, 1, 67)
    ind_low, ind_high = difference_interval(28, 96, 21, 96)
    assert ind_low < 0 < low < 7 / 96 < high < ind_high
    assert paired_difference_interval(0, 0, 0, 0) == (-1.0, 1.0)


def _outcome(task: str, kind: str, oracle: bool, rules: bool | None = None) -> EpisodeOutcome:
    rules = oracle if rules is None else rules
    return EpisodeOutcome(task, 0, kind, False, rules, oracle, True)


def test_paired_comparison_counts_only_common_tasks_and_per_kind_counts() -> None:
    digiq = [
        _outcome("a", "web_search", True),
        _outcome("b", "web_search", True),
        _outcome("c", "open_app", False, rules=True),
        _outcome("d", "open_app", True),  # the other method has no episode of task d
    ]
    other = [
        _outcome("a", "web_search", True),
        _outcome("b", "web_search", False),
        _outcome("c", "open_app", True),
        _outcome("e", "open_app", True),
    ]
    oracle = paired_comparison(digiq, other, "oracle")
    assert (oracle["pairs"], oracle["both"], oracle["first_only"]) == (3, 1, 1)
    assert (oracle["second_only"], oracle["neither"], oracle["difference"]) == (1, 0, 0.0)
    rules = paired_comparison(digiq, other, "rules")
    assert (rules["both"], rules["first_only"], rules["second_only"]) == (2, 1, 0)
    assert rules["difference"] == pytest.approx(1 / 3) and rules["ci"][0] < 1 / 3 < rules["ci"][1]
    with pytest.raises(ValueError, match="rater"):
        paired_comparison(digiq, other, "gemini")
    errored = EpisodeOutcome("f", 0, "open_app", True, False, False, True)
    counts = counts_from_outcomes([*digiq, errored])
    assert (counts["episodes"], counts["errors"], counts["oracle_successes"]) == (5, 1, 3)
    assert counts["by_kind"] == {
        "open_app": {"episodes": 3, "rules_successes": 2, "oracle_successes": 1},
        "web_search": {"episodes": 2, "rules_successes": 2, "oracle_successes": 2},
    }


def test_pool_runs_names_a_run_without_its_evaluations(tmp_path: Path) -> None:
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "pool_runs.py"
    (tmp_path / "stopped" / "eval").mkdir(parents=True)  # stopped before any evaluation
    for run, why in (("stopped", "results.jsonl does not exist"), ("absent", "no eval/")):
        done = subprocess.run(
            [sys.executable, str(script), str(tmp_path / run)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 2 and done.stdout == "", done.stderr
        assert str(tmp_path / run) in done.stderr and why in done.stderr, done.stderr


def test_rollouts_on_simulated_phones_are_grouped_and_real_devices_run_alone(
    tmp_path: Path,
) -> None:
    scale = SCALES["small"]
    groups = {s.name: s.group for s in plan_steps(tmp_path, scale)}
    assert groups["eval-behaviour"] == groups["offline"] == "behaviour-rollouts"
    evals = [f"eval-{m}" for m in METHODS if m != "behaviour"]
    assert {groups[name] for name in evals} == {"evaluations"}
    assert all(groups[n] is None for n in ("demos", "behaviour", "digiq"))
    batches = [[s.name for s in b] for b in _batches(plan_steps(tmp_path, scale), None)]
    assert ["eval-behaviour", "offline"] in batches and evals in batches
    # the two baseline trainings use no device: side by side, whatever the devices
    assert ["digiq-mc", "filtered-bc"] in batches
    # --until inside a group stops the group there
    cut = _batches(plan_steps(tmp_path, scale), "eval-behaviour")
    assert [s.name for s in cut[-1]] == ["eval-behaviour"]
    # real devices are shared between steps: nothing runs at the same time
    serial = plan_steps(tmp_path, scale, devices="emulator-5554")
    assert {s.name: s.group for s in serial if s.group} == {
        "digiq-mc": "baselines",
        "filtered-bc": "baselines",
    }


_STAMP = (
    "import sys, time, pathlib; p = pathlib.Path(sys.argv[1]); "
    "p.write_text(f'{time.time()}\\n'); time.sleep(float(sys.argv[2])); "
    "p.write_text(p.read_text() + f'{time.time()}\\n')"
)


def _stamp_step(name: str, path: Path, seconds: float, group: str = "g") -> Step:
    return Step(name, [[sys.executable, "-c", _STAMP, str(path), str(seconds)]], group=group)


def test_a_group_runs_its_steps_at_the_same_time_and_records_each(tmp_path: Path) -> None:
    record: dict = {"steps": {}}
    batch = [_stamp_step(n, tmp_path / f"{n}.txt", 1.0) for n in ("a", "b")]
    _run_group(tmp_path, batch, record, dict(os.environ), lambda _: None)
    (a0, a1), (b0, b1) = (
        [float(x) for x in (tmp_path / f"{n}.txt").read_text().split()] for n in ("a", "b")
    )
    assert a0 < b1 and b0 < a1  # the two runs overlapped
    assert {record["steps"][n]["status"] for n in ("a", "b")} == {"done"}
    group = record["groups"]["g"]
    assert group["steps"] == ["a", "b"]
    assert group["peak_rss_mb_sum"] == pytest.approx(
        sum(record["steps"][n]["peak_rss_mb"] for n in ("a", "b")), abs=0.2
    )
    saved = json.loads((tmp_path / RECORD_FILE).read_text())
    assert saved["groups"]["g"]["steps"] == ["a", "b"]


_THREADS = "import os, sys, pathlib; pathlib.Path(sys.argv[1]).write_text(os.environ.get('OMP_NUM_THREADS', 'unset'))"


def test_steps_side_by_side_share_the_cores_as_torch_threads(tmp_path: Path) -> None:
    """Each step of a group starts with OMP_NUM_THREADS = its share of the cores (at least 1);
    a step alone, or a caller who set the variable, keeps the environment as it is."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    share = str(max(1, (os.cpu_count() or 1) // 2))
    assert side_by_side_env(env, 1) is env
    assert side_by_side_env(env, 2)["OMP_NUM_THREADS"] == share
    assert side_by_side_env(env, 64)["OMP_NUM_THREADS"] == "1"
    assert side_by_side_env({**env, "OMP_NUM_THREADS": "7"}, 3)["OMP_NUM_THREADS"] == "7"
    record: dict = {"steps": {}}
    batch = [
        Step(n, [[sys.executable, "-c", _THREADS, str(tmp_path / f"{n}.txt")]], group="g")
        for n in ("a", "b")
    ]
    _run_group(tmp_path, batch, record, env, lambda _: None)
    assert [(tmp_path / f"{n}.txt").read_text() for n in ("a", "b")] == [share, share]
    assert record["groups"]["g"]["torch_threads_per_step"] == share
    assert "OMP_NUM_THREADS" not in env  # the caller's mapping is not changed


def test_the_record_lists_steps_in_plan_order_whichever_thread_started_first(
    tmp_path: Path,
) -> None:
    # The steps of a group enter the record when their threads start, in any order.
    record: dict = {"steps": {"demos": {"status": "done"}, "eval-b": {}, "eval-a": {}}}
    _keep_plan_order(tmp_path, record, ["demos", "eval-a", "eval-b", "report"])
    assert list(record["steps"]) == ["demos", "eval-a", "eval-b"]
    saved = json.loads((tmp_path / RECORD_FILE).read_text())
    assert list(saved["steps"]) == ["demos", "eval-a", "eval-b"]


def test_a_failing_step_of_a_group_is_reported_after_the_others_finish(tmp_path: Path) -> None:
    record: dict = {"steps": {}}
    bad = Step("bad", [[sys.executable, "-c", "raise SystemExit(3)"]], group="g")
    good = _stamp_step("good", tmp_path / "good.txt", 0.5)
    with pytest.raises(QuickstartError, match="'bad' failed"):
        _run_group(tmp_path, [bad, good], record, dict(os.environ), print)
    assert record["steps"]["bad"]["status"] == "failed"
    assert record["steps"]["good"]["status"] == "done"
    assert len((tmp_path / "good.txt").read_text().split()) == 2


_GROUP_SCRIPT = """
import os, sys
from pathlib import Path
from digiq.quickstart import Step, _run_group
out = Path(sys.argv[1])
code = "import time, pathlib, sys; pathlib.Path(sys.argv[1]).touch(); time.sleep(120)"
touch = "import pathlib, sys; pathlib.Path(sys.argv[1]).touch()"
batch = [Step(n, [[sys.executable, "-c", code, str(out / (n + ".started"))]], group="g")
         for n in ("a", "b")]
batch[0].commands.append([sys.executable, "-c", touch, str(out / "a.second")])
record = {"steps": {}}
try:
    _run_group(out, batch, record, dict(os.environ), print)
except KeyboardInterrupt:
    sys.exit(130)
"""


def test_ctrl_c_stops_every_step_of_a_group_and_marks_them_interrupted(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", _GROUP_SCRIPT, str(tmp_path)])
    try:
        deadline = time.monotonic() + 60
        while not all((tmp_path / f"{n}.started").exists() for n in ("a", "b")):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=90) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
    steps = json.loads((tmp_path / RECORD_FILE).read_text())["steps"]
    assert {steps[n]["status"] for n in ("a", "b")} == {"interrupted"}
    assert not (tmp_path / "a.second").exists()  # a stopped step starts no further command


def test_wildness_reaches_every_rollout_and_nothing_else(tmp_path: Path) -> None:
    scale = SCALES["small"]
    rollouts = {"demos", "offline", *(f"eval-{m}" for m in METHODS)}
    for step in plan_steps(tmp_path, scale, wildness=0.5):
        for command in step.commands:
            if step.name in rollouts:
                assert command[command.index("--wildness") + 1] == "0.5", step.name
            else:
                assert "--wildness" not in command, step.name
    default = plan_steps(tmp_path, scale)
    assert not any("--wildness" in c for s in default for c in s.commands)  # the sim's own
    for real in ("emulator-5554", "sim:2;emulator-5554"):  # mixed specs are not sim-only
        with pytest.raises(QuickstartError, match="simulated devices only"):
            plan_steps(tmp_path, scale, wildness=0.5, devices=real)
    assert plan_steps(tmp_path, scale, wildness=0.5, devices="SIM:3")  # the parser's spelling
    with pytest.raises(QuickstartError, match="must be sim:N"):
        plan_steps(tmp_path, scale, wildness=0.5, devices="sim:x")
    for bad in (1.5, -0.1, float("nan"), True, "0.5"):
        with pytest.raises(QuickstartError, match="--wildness"):
            plan_steps(tmp_path, scale, wildness=bad)  # type: ignore[arg-type]
    result = CliRunner().invoke(
        quickstart_command, ["--wildness", "2", "--out", str(tmp_path / "qs")]
    )
    assert result.exit_code == 2 and "--wildness" in result.output
    assert not (tmp_path / "qs").exists()  # refused before anything was written
    refused = tmp_path / "refused"
    with pytest.raises(QuickstartError, match="simulated devices only"):
        run_quickstart(refused, SCALES["tiny"], devices="emulator-5554", wildness=0.5)
    assert not (refused / RECORD_FILE).exists()
    with pytest.raises(QuickstartError, match="unknown step 'nope'"):
        run_quickstart(refused, SCALES["tiny"], until="nope", progress=False)
    assert not (refused / RECORD_FILE).exists()  # an unknown --until writes nothing either


def _tiny_settings() -> dict:
    """The settings quickstart.json records for the tiny scale with every option left out."""
    tiny = SCALES["tiny"]
    return {
        "task_set": "webshop",
        "scale": tiny.to_dict(),
        "preset": tiny.preset,
        "model_path": None,
        "policy_path": None,
        "devices": f"sim:{tiny.devices}",
        "seed": 0,
    }


def _capture_scales(monkeypatch: pytest.MonkeyPatch) -> list[Scale]:
    """The scales the quickstart command would run (as the task set applies them), recorded
    instead of running them."""
    import digiq.quickstart_cli as cli

    seen: list[Scale] = []

    def capture(out, scale, task_set, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(scale.for_task_set(task_set))
        return {}

    monkeypatch.setattr(cli, "run_quickstart", capture)
    return seen


def test_eval_tasks_option_reaches_the_evaluations_and_is_checked_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _capture_scales(monkeypatch)
    args = ["--task-set", "general", "--out", str(tmp_path / "q")]
    result = CliRunner().invoke(quickstart_command, [*args, "--eval-tasks", "192"])
    assert result.exit_code == 0, result.output
    (t192,) = seen
    # only the evaluation differs from make demo's scale
    assert t192 == dataclasses.replace(SCALES["small"].for_task_set("general"), eval_tasks=192)
    evals = [s for s in plan_steps(tmp_path, t192, "general") if s.name.startswith("eval-")]
    assert len(evals) == 4
    for step in evals:
        assert step.commands[0][step.commands[0].index("--num-tasks") + 1] == "192"
    # more tasks than the test split holds: refused before any step runs, naming the option
    bad = CliRunner().invoke(quickstart_command, [*args, "--eval-tasks", "433"])
    assert bad.exit_code == 2 and "--eval-tasks" in bad.output and "432 tasks" in bad.output
    assert len(seen) == 1


def test_num_candidates_option_reaches_the_digiq_runs_and_the_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _capture_scales(monkeypatch)
    args = ["--task-set", "general", "--out", str(tmp_path / "q"), "--until", "digiq"]
    assert CliRunner().invoke(quickstart_command, [*args, "--num-candidates", "4"]).exit_code == 0
    assert CliRunner().invoke(quickstart_command, args).exit_code == 0
    n4, default = seen
    # only N differs; the General sizes of the small scale still apply (8 candidates on General)
    assert n4.num_candidates == 4 and default.num_candidates == 8
    assert dataclasses.replace(n4, num_candidates=8) == default
    assert n4.offline_episodes == 300 and n4.eval_tasks == 96
    for scale, n in ((n4, "4"), (default, "8")):
        digiq = next(s for s in plan_steps(tmp_path, scale, "general") if s.name == "digiq")
        assert digiq.commands[0][digiq.commands[0].index("--num-candidates") + 1] == n
    bad = CliRunner().invoke(quickstart_command, [*args, "--num-candidates", "0"])
    assert bad.exit_code == 2 and "--num-candidates" in bad.output
    # a run folder started with N = 4 is not continued with N = 8: the scale is a setting
    tiny = SCALES["tiny"]
    (tmp_path / RECORD_FILE).write_text(
        json.dumps({"format": "digiq-quickstart-1", "steps": {}, "settings": _tiny_settings()})
    )
    with pytest.raises(QuickstartError, match=r"other settings \(scale\)"):
        run_quickstart(
            tmp_path, dataclasses.replace(tiny, num_candidates=3), until="demos", progress=False
        )


def test_a_run_with_other_settings_is_refused(tmp_path: Path) -> None:
    (tmp_path / RECORD_FILE).write_text(
        json.dumps({"format": "digiq-quickstart-1", "steps": {}, "settings": {"seed": 5}})
    )
    with pytest.raises(QuickstartError, match="other settings"):
        run_quickstart(tmp_path, SCALES["tiny"], until="demos", progress=False)
    # A run started with --wildness and continued without it (or the reverse) names it.
    tiny = SCALES["tiny"]
    settings = _tiny_settings()
    for recorded, given in (({**settings, "wildness": 0.5}, None), (settings, 0.5)):
        (tmp_path / RECORD_FILE).write_text(
            json.dumps({"format": "digiq-quickstart-1", "steps": {}, "settings": recorded})
        )
        with pytest.raises(QuickstartError, match=r"other settings \(wildness\)"):
            run_quickstart(tmp_path, tiny, until="demos", progress=False, wildness=given)
    (tmp_path / RECORD_FILE).write_text("{not json")
    with pytest.raises(QuickstartError, match="not valid JSON"):
        run_quickstart(tmp_path, SCALES["tiny"], until="demos", progress=False)


def _text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def _record(out: Path) -> dict:
    try:
        return json.loads((out / RECORD_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_tiny_quickstart_interrupted_then_resumed_writes_every_output(
    adb_env, tmp_path: Path
) -> None:
    out = tmp_path / "qs"
    command = [
        sys.executable, "-m", "digiq.cli", "quickstart", "--scale", "tiny", "--out", str(out),
        "--no-progress", "--wildness", "0.2",
    ]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline:
            steps = _record(out).get("steps", {})
            if steps.get("behaviour", {}).get("status") == "running":
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.2)
        else:
            pytest.fail("the behaviour step never started")
        log = out / "logs" / "behaviour.log"
        while time.monotonic() < deadline and "bc: running" not in _text(log):
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)  # poll: interrupt the training process itself, once it runs
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "run the same command again to resume" in err
    steps = _record(out)["steps"]
    assert steps["demos"]["status"] == "done"
    assert steps["behaviour"]["status"] == "interrupted"

    done = subprocess.run(command, capture_output=True, text=True, timeout=1400)
    assert done.returncode == 0, done.stderr[-4000:]
    record = _record(out)
    assert list(record["steps"]) == STEPS
    assert all(s["status"] == "done" for s in record["steps"].values()), record["steps"]
    assert record["steps"]["demos"]["attempts"] == 1  # not run again
    assert record["steps"]["behaviour"]["attempts"] == 2  # resumed
    assert "demos: done earlier, skipped" in done.stderr
    for name in STEPS[:-1]:
        entry = record["steps"][name]
        assert entry["wall_s"] > 0 and entry["peak_rss_mb"] > 0, (name, entry)
        assert Path(entry["log"]).is_file()
    assert record["groups"]["evaluations"]["steps"] == [f"eval-{m}" for m in METHODS][1:]
    assert record["groups"]["behaviour-rollouts"]["steps"] == ["eval-behaviour", "offline"]

    for policy in ("behaviour/bc", "filtered-bc/bc", "digiq/policy", "digiq-mc/policy"):
        saved = json.loads((out / "runs" / policy / "digiq_policy.json").read_text())
        assert saved["config"]["history"] == SCALES["tiny"].policy_history, policy
    stages = json.loads((out / "runs" / "digiq" / "stages.json").read_text())["stages"]
    assert stages["candidates"]["metrics"]["temperature"] == SCALES["tiny"].candidate_temperature
    assert stages["critic"]["metrics"]["steps"] == SCALES["tiny"].critic_steps
    summary = json.loads((out / "summary.json").read_text())
    scale = SCALES["tiny"]
    for method in METHODS:
        counts = summary["counts"][method]
        assert counts["episodes"] == scale.eval_tasks * scale.eval_seeds
        assert 0 <= counts["oracle_successes"] <= counts["episodes"]
        assert counts["episodes_without_ground_truth"] == 0  # simulated phones record it
        assert (out / "eval" / method / "report.html").is_file()
    assert set(summary["checks"]) == {"oracle", "rules"}
    for check in summary["checks"].values():  # same tasks and seeds: every episode pairs
        for comparison in check["paired"].values():
            assert comparison["pairs"] == scale.eval_tasks * scale.eval_seeds
        gain = check["paired"]["digiq_vs_behaviour"]
        assert check["gain_significant_paired"] == (gain["ci"][0] > 0)
        assert gain["difference"] == pytest.approx(check["digiq_gain"])
    kinds = set(summary["counts"]["digiq"]["by_kind"])
    assert kinds and all(set(summary["counts"][m]["by_kind"]) == kinds for m in METHODS)
    results = (out / "RESULTS.md").read_text()
    assert "oracle, paired by task: Digi-Q vs behaviour on " in results
    assert "## Success per goal kind (oracle)" in results
    # benchmarks/pool_runs.py pools run folders: on one run it reproduces the report's counts.
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "pool_runs.py"
    pooled = subprocess.run(
        [sys.executable, str(script), str(out)], capture_output=True, text=True, timeout=300
    )
    assert pooled.returncode == 0, pooled.stderr[-3000:]
    pool = json.loads(pooled.stdout)
    for method in METHODS:
        assert pool["pooled"][method]["successes"] == summary["counts"][method]["oracle_successes"]
    assert pool["run_count"] == 1 and pool["gain_significant"] == int(
        summary["checks"]["oracle"]["gain_significant"]
    )
    paired = pool["comparisons"]["digiq_vs_behaviour"]["paired"]
    assert paired == summary["checks"]["oracle"]["paired"]["digiq_vs_behaviour"]
    for kind in kinds:
        assert f"| {kind} |" in results
    assert "success, oracle [95% CI]" in results
    assert "devices sim:2 (wildness 0.2)" in results
    for method in METHODS:  # every evaluation met the same phones as the data
        assert json.loads((out / "eval" / method / "run.json").read_text())["wildness"] == 0.2
    assert "(evaluations, together)" in results
    for _, _, label in METHODS.values():
        assert label in results or label.split(" (")[0] in results
    for name in ("success", "critic_curves", "policy_curves"):
        assert (out / "plots" / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"results:  {out / 'RESULTS.md'}" in done.stdout
    assert "success, oracle" in done.stderr  # the table is printed
