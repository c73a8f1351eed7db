"""Stage orchestration of the learner: run stages in order, record them, resume, skip done ones.

Every stage has the same signature, ``stage(run_dir, data_dir, preset, config) -> metrics``
(:data:`STAGE_FUNCTIONS`), where ``config`` is the merged option dictionary (a YAML file's
values, then the command line's, see :func:`merge_config`). :func:`run_stages` runs a list of
stages, records each one's status, wall time, peak memory and metrics in ``RUN/stages.json``
and skips stages already marked done, so re-running the same command after an interruption
continues where it stopped (each stage also resumes from its own checkpoints).

Stages and where they write (``RUN`` = the run folder, ``DATA`` = the dataset):

=============  ==============================================================================
``repr``       representation fine-tuning of the VLM (:func:`digiq.repr.run_repr`) -> RUN/repr
``candidates`` N candidates per state from the behaviour policy (:mod:`digiq.candidates`) ->
               DATA/candidates/<name> (needs ``behaviour_policy``)
``features``   VLM / state / action-text features for every (state, candidate)
               (:func:`digiq.features.run_features`) -> DATA/features/<run prefix>...
``critic``     twin Q / V heads by TD (or MC) on the cached features
               (:class:`digiq.critic.CriticTrainer`) -> RUN/work/critic
``policy``     policy extraction from the critic (:mod:`digiq.policy_train`) -> RUN/policy
``bc``         behaviour cloning (:mod:`digiq.policy_train`) -> RUN/bc
=============  ==============================================================================

``all`` = repr, candidates, features, critic, policy. The order differs from a plain
"features before candidates" reading on purpose: the critic scores every candidate, so the
features stage must see the candidate set (its stores hold one feature per (state, candidate));
``repr`` does not depend on the candidates. ``bc`` is not part of ``all``: the behaviour policy
is an INPUT of ``candidates`` and ``policy`` (``behaviour_policy``, a policy folder or a run
whose ``bc`` stage trained it), as in Digi-Q where it is the given AutoUI checkpoint.

Feature stores of a run are named with a prefix derived from the run folder (``run-<hash>-``)
so two runs over the same dataset never collide; the candidate set's name comes from the
behaviour policy (``bp-<model id>-n16-t1p2``) unless ``candidates`` names one.

Config options (YAML keys = the command line's long options with ``_``; per-stage sections
override the file's top level for that stage, e.g. ``critic: {steps: 800}``, and an option
given on the command line overrides both): ``model_path``,
``policy_path``, ``behaviour_policy``, ``loss``, ``target``, ``threshold``, ``anchor_weight``,
``num_candidates``, ``temperature``, ``steps``, ``epochs``, ``lr``, ``batch_size``, ``lora``,
``ui_tree_text``, ``device``, ``workers``, ``seed``, ``candidates``, ``task_set``, ``progress``,
``features_from``, ``clip_values``, ``policy_history`` (a new ``bc`` policy's number of previous
actions in its input text). ``ui_tree_text`` (true/false) overrides the preset's
``critic.ui_tree_text``: whether the features stage gives the critic the UI-tree inputs.
``clip_values`` (true/false, default true): the critic's scores are clipped to the interval
the data's discounted returns can lie in (``digiq.critic.return_bounds``); false scores as the
published code does.

``workers`` (an integer, default 1): processes sharing the candidates stage's sampling, each
with one torch thread (:mod:`digiq.workers`); the draws are the same up to the floating-point
order of one thread against several. (The features stage gained nothing from it on 2 cores.)
``features_from`` names another run over the same dataset whose representation checkpoint,
candidate set and feature stores this run reuses instead of computing its own: the ablations
(``digiq-train critic --target mc --features-from runs/dq --out runs/dq-mc``, then ``policy``)
then differ from the main run in exactly one thing and cost no second feature extraction.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from digiq.stage_memory import StagePeak
from trajectories.manifest import atomic_write_bytes

log = logging.getLogger(__name__)

__all__ = [
    "STAGES",
    "ALL_STAGES",
    "STAGE_FUNCTIONS",
    "CONFIG_KEYS",
    "BOOL_KEYS",
    "STAGES_FILE",
    "PipelineError",
    "load_config",
    "merge_config",
    "stage_config",
    "run_stages",
    "read_stages",
    "feature_prefix",
    "expand_stages",
]

STAGES = ("repr", "features", "candidates", "critic", "policy", "bc")
ALL_STAGES = ("repr", "candidates", "features", "critic", "policy")
#: What each stage's output is computed from, within one run folder: a stage marked done is
#: stale when one of these finished after it started (e.g. ``critic --force`` re-trained the
#: critic under a policy extracted from the old one).
STAGE_INPUTS: dict[str, tuple[str, ...]] = {
    "features": ("repr", "candidates"),
    "critic": ("features",),
    "policy": ("critic", "candidates"),
}
STAGES_FILE = "stages.json"
STAGES_FORMAT = "digiq-stages-1"
CONFIG_KEYS = (
    "model_path",
    "policy_path",
    "behaviour_policy",
    "loss",
    "target",
    "threshold",
    "anchor_weight",
    "num_candidates",
    "temperature",
    "steps",
    "epochs",
    "lr",
    "batch_size",
    "lora",
    "policy_history",
    "ui_tree_text",
    "clip_values",
    "device",
    "workers",
    "seed",
    "candidates",
    "task_set",
    "progress",
    "features_from",
)

StageFunction = Callable[[Path, Path, str, Mapping[str, Any]], dict[str, Any]]


class PipelineError(RuntimeError):
    """A stage cannot run (a missing input) or failed; the message names the stage."""


# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------


def load_config(path: str | Path) -> dict[str, Any]:
    """A YAML config file as a dict (top-level options and per-stage sections), validated."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {str(path)!r} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"config file {str(path)!r} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"config file {str(path)!r} must hold a mapping of options")
    _check_keys(data, str(path))
    return data


#: Options that must be YAML booleans, checked when the file is read: a stage far down the
#: pipeline (the critic, after minutes of feature extraction) should not be the first to say so.
BOOL_KEYS = ("ui_tree_text", "clip_values")


def _check_keys(data: Mapping[str, Any], where: str) -> None:
    for key, value in data.items():
        key = str(key).replace("-", "_")
        if key in STAGES:
            if not isinstance(value, Mapping):
                raise ValueError(f"{where}: section {key!r} must be a mapping of options")
            bad = [k for k in value if str(k).replace("-", "_") not in CONFIG_KEYS]
            if bad:
                raise ValueError(
                    f"{where}: unknown option(s) {bad} in section {key!r}; valid: {list(CONFIG_KEYS)}"
                )
            _check_bools(value, f"{where}: section {key!r}")
        elif key not in CONFIG_KEYS:
            raise ValueError(
                f"{where}: unknown option {key!r}; valid: {list(CONFIG_KEYS)} or a stage "
                f"section {list(STAGES)}"
            )
    _check_bools(data, where)


def _check_bools(data: Mapping[str, Any], where: str) -> None:
    for key, value in data.items():
        key = str(key).replace("-", "_")
        if key in BOOL_KEYS and value is not None and not isinstance(value, bool):
            raise ValueError(f"{where}: option {key} must be true or false, got {value!r}")


def _normalise(data: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        key = str(key).replace("-", "_")
        out[key] = _normalise(value) if isinstance(value, Mapping) else value
    return out


def merge_config(file_config: Mapping[str, Any] | None, cli: Mapping[str, Any]) -> dict[str, Any]:
    """File options, then command-line options that were given (None = not given) on top.

    A command-line option wins over the file everywhere, per-stage sections included
    (``--steps 2400`` with ``critic: {steps: 800}`` in the file trains 2400 steps), as
    ``--help`` promises; within the file, a stage's section wins over its top level.
    """
    merged = _normalise(file_config or {})
    _check_keys(merged, "config")
    for key, value in _normalise(cli).items():
        if value is None:
            continue
        if key not in CONFIG_KEYS:
            raise ValueError(f"unknown option {key!r}")
        merged[key] = value
        for stage in STAGES:
            section = merged.get(stage)
            if isinstance(section, dict) and key in section:
                section[key] = value
    return merged


def stage_config(config: Mapping[str, Any], stage: str) -> dict[str, Any]:
    """The options one stage sees: top-level options with its section on top."""
    out = {k: v for k, v in config.items() if k not in STAGES}
    section = config.get(stage) or {}
    out.update({k: v for k, v in section.items() if v is not None})
    return out


def feature_prefix(run_dir: str | Path) -> str:
    """The feature-store prefix of a run (derived from its absolute path)."""
    digest = hashlib.sha1(str(Path(run_dir).resolve()).encode()).hexdigest()[:10]
    return f"run-{digest}-"


def expand_stages(names: Sequence[str]) -> list[str]:
    """Stage names with ``all`` expanded, validated, duplicates removed (order kept)."""
    out: list[str] = []
    for name in names:
        for stage in ALL_STAGES if name == "all" else (name,):
            if stage not in STAGES:
                raise ValueError(f"unknown stage {stage!r}; valid: {list(STAGES)} or 'all'")
            if stage not in out:
                out.append(stage)
    return out


# ---------------------------------------------------------------------------------------------
# Stage records
# ---------------------------------------------------------------------------------------------


def read_stages(run_dir: str | Path) -> dict[str, Any]:
    """``RUN/stages.json`` (an empty record when the run has none yet)."""
    path = Path(run_dir) / STAGES_FILE
    if not path.is_file():
        return {"format": STAGES_FORMAT, "stages": {}}
    data = json.loads(path.read_text())
    if data.get("format") != STAGES_FORMAT:
        raise ValueError(f"{path}: unknown format {data.get('format')!r}")
    return data


def _write_stages(run_dir: Path, data: dict[str, Any]) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(
        run_dir / STAGES_FILE, json.dumps(data, indent=1, sort_keys=True, default=str).encode()
    )


def _stage_output(run_dir: Path, stage: str) -> dict[str, Any]:
    record = read_stages(run_dir)["stages"].get(stage) or {}
    return record.get("metrics") or {}


# ---------------------------------------------------------------------------------------------
# Stages
# ---------------------------------------------------------------------------------------------


def _overrides(config: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if config.get("model_path"):
        out["model_path"] = str(config["model_path"])
    policy_path = config.get("policy_path")
    if policy_path and not _is_saved_policy(policy_path):
        out["policy_path"] = str(policy_path)  # a T5 (AutoUI) checkpoint for a real preset
    if config.get("ui_tree_text") is not None:
        if not isinstance(config["ui_tree_text"], bool):
            raise ValueError(
                f"option ui_tree_text must be true or false, got {config['ui_tree_text']!r}"
            )
        out["critic_ui_tree_text"] = config["ui_tree_text"]
    return out


def _is_saved_policy(path: str | Path) -> bool:
    from digiq.models.policy import POLICY_JSON

    return (Path(path) / POLICY_JSON).is_file()


def _workers(config: Mapping[str, Any]) -> int:
    value = config.get("workers")
    if value is None:
        return 1
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"option workers must be an integer >= 1, got {value!r}")
    return value


def _progress(config: Mapping[str, Any]) -> bool:
    return bool(config.get("progress", True))


def _feature_run(run_dir: Path, config: Mapping[str, Any]) -> Path:
    """The run whose repr checkpoint and feature stores this run uses (``features_from``)."""
    source = config.get("features_from")
    if not source:
        return run_dir
    source = Path(source)
    if not (source / STAGES_FILE).is_file():
        raise FileNotFoundError(
            f"--features-from {str(source)!r} is not a training run (no {STAGES_FILE})"
        )
    return source


def _candidate_name(run_dir: Path, config: Mapping[str, Any]) -> str | None:
    if config.get("candidates"):
        return str(config["candidates"])
    name = _stage_output(run_dir, "candidates").get("name")
    if name is None and config.get("features_from"):
        name = _stage_output(_feature_run(run_dir, config), "candidates").get("name")
    return name


def _behaviour_policy(config: Mapping[str, Any], stage: str) -> str:
    path = config.get("behaviour_policy") or (
        config.get("policy_path") if _is_saved_policy(config.get("policy_path") or "") else None
    )
    if not path:
        raise PipelineError(
            f"stage {stage!r} needs the behaviour policy: give --behaviour-policy RUN_OR_DIR "
            "(a policy folder or a run trained with `digiq-train bc`)"
        )
    if not Path(path).exists():
        raise FileNotFoundError(f"--behaviour-policy path {str(path)!r} does not exist")
    return str(path)


def repr_stage(
    run_dir: Path, data_dir: Path, preset: str, config: Mapping[str, Any]
) -> dict[str, Any]:
    """Representation fine-tuning of the VLM -> ``RUN/repr`` (``final/`` is the model)."""
    from digiq.repr import ReprConfig, run_repr

    cfg = ReprConfig(
        data_dir=str(data_dir),
        out_dir=str(run_dir / "repr"),
        preset=preset,
        preset_overrides=_overrides(config),
        epochs=config.get("epochs"),
        batch_size=config.get("batch_size"),
        lr=config.get("lr"),
        lora=bool(config.get("lora", False)),
        seed=int(config.get("seed", 0)),
        progress=_progress(config),
        device=config.get("device"),
        cache_dir=str(run_dir / "cache"),
    )
    return run_repr(cfg)


def candidates_stage(
    run_dir: Path, data_dir: Path, preset: str, config: Mapping[str, Any]
) -> dict[str, Any]:
    """N candidates per state from the behaviour policy -> ``DATA/candidates/<name>``."""
    from digiq.candidates import CandidatesConfig, run_candidates
    from digiq.models.presets import get_preset

    cfg = CandidatesConfig(
        data_dir=str(data_dir),
        behaviour_policy=_behaviour_policy(config, "candidates"),
        name=config.get("candidates"),
        num_candidates=int(
            config.get("num_candidates") or get_preset(preset, check=False).training.num_candidates
        ),
        temperature=float(
            config.get("temperature")
            or get_preset(preset, check=False).training.candidate_temperature
        ),
        seed=int(config.get("seed", 0)),
        cache_dir=str(run_dir / "cache"),
        device=config.get("device"),
        workers=_workers(config),
        progress=_progress(config),
    )
    result = run_candidates(cfg)
    if not result.get("complete"):
        raise PipelineError(f"candidates stage stopped before covering every state: {result}")
    return result


def features_stage(
    run_dir: Path, data_dir: Path, preset: str, config: Mapping[str, Any]
) -> dict[str, Any]:
    """Critic features of every (state, candidate) -> ``DATA/features/<run prefix>*``."""
    from digiq.features import FeaturesConfig, run_features

    source = _feature_run(run_dir, config)
    checkpoint = source / "repr" / "final"
    cfg = FeaturesConfig(
        data_dir=str(data_dir),
        checkpoint=str(checkpoint) if checkpoint.is_dir() else None,
        preset=preset,
        preset_overrides=_overrides(config),
        candidates=_candidate_name(run_dir, config),
        prefix=feature_prefix(source),
        progress=_progress(config),
        device=config.get("device"),
        cache_dir=str(source / "cache"),
    )
    result = run_features(cfg)
    result["prefix"] = cfg.prefix
    result["candidates"] = cfg.candidates
    return result


def critic_stage(
    run_dir: Path, data_dir: Path, preset: str, config: Mapping[str, Any]
) -> dict[str, Any]:
    """Twin Q / V heads on the cached features -> ``RUN/work/critic/checkpoints``."""
    from digiq.checkpoint import latest_checkpoint
    from digiq.critic import CriticConfig, CriticData, CriticTrainer, return_bounds
    from digiq.models.presets import get_preset
    from trajectories import ReplayBuffer

    buffer = ReplayBuffer.open(data_dir)
    if config.get("task_set"):
        buffer = buffer.filter(task_set=config["task_set"])
    prefix = feature_prefix(_feature_run(run_dir, config))
    try:
        data = CriticData.from_buffer(
            buffer, prefix=prefix, candidates=_candidate_name(run_dir, config)
        )
    except FileNotFoundError as exc:
        raise PipelineError(f"critic stage: run the features stage first ({exc})") from None
    train, val = data.split(0.1, seed=int(config.get("seed", 0)))
    model_preset = get_preset(preset, check=False)
    overrides: dict[str, Any] = {"seed": int(config.get("seed", 0)), "checkpoint_every": 200}
    if config.get("target"):
        overrides["target"] = config["target"]
    if config.get("steps"):
        overrides["steps"] = int(config["steps"])
    if config.get("lr"):
        overrides["lr"] = float(config["lr"])
    cfg = CriticConfig.from_model_preset(
        model_preset,
        state_dim=data.state_dim,
        action_dim=data.action_dim,
        vlm_dim=data.vlm_dim,
        **overrides,
    )
    clip_values = config.get("clip_values", True)
    if not isinstance(clip_values, bool):
        raise PipelineError(f"critic stage: clip_values must be true or false, got {clip_values!r}")
    if clip_values:
        bounds = return_bounds(data.rewards, cfg.gamma, data.episode_lengths())
        cfg = cfg.replace(value_range=bounds)
    work = run_dir / "work" / "critic"
    device = config.get("device") or "cpu"
    latest = latest_checkpoint(work)
    sources = _feature_sources(data)
    sources_file = work / "features.json"
    if latest is not None:
        trainer = CriticTrainer.resume(latest, train, val, run_dir=work, device=device)
        if trainer.config.to_dict() != cfg.to_dict():
            raise PipelineError(
                f"critic stage: {work} holds a critic of another configuration; use another --out"
            )
        # Same dimensions are not the same features: stores recomputed since (other inputs,
        # another repr checkpoint) would otherwise resume, or return as done, the old critic.
        if sources_file.exists() and json.loads(sources_file.read_text()) != sources:
            raise PipelineError(
                f"critic stage: {work} holds a critic trained on other feature stores than "
                f"those in {data_dir} now (see {sources_file}); delete {work} to train it again"
            )
    else:
        trainer = CriticTrainer(cfg, train, val, run_dir=work, device=device)
        work.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(sources_file, json.dumps(sources, indent=1).encode())
    try:
        final = trainer.train()
    finally:
        trainer.close()
    return {
        "steps": trainer.step,
        "target": cfg.target,
        # The interval every score is clipped to (None: not clipped), what Best-of-N compares.
        "value_range": list(cfg.value_range) if cfg.value_range is not None else None,
        "checkpoint": str(latest_checkpoint(work)),
        "train_rows": len(trainer.train_data),
        "excluded": trainer.excluded,
        "notes": trainer.notes + data.notes,
        **{k: v for k, v in final.items() if isinstance(v, int | float)},
    }


def _feature_sources(data: Any) -> dict[str, Any]:
    """What identifies the feature stores a critic reads: name, model and creation time."""
    out = {}
    for key in ("state", "action_text", "vlm"):
        store = getattr(getattr(data, key), "store", None)  # a FeatureStore behind an adapter
        meta = getattr(store, "meta", None)
        if meta is not None:
            out[key] = {"name": meta.name, "model": meta.model, "created": meta.created}
    return out


def _policy_train_config(
    stage: str, run_dir: Path, data_dir: Path, preset: str, config: Mapping[str, Any]
) -> Any:
    from digiq.policy_train import PolicyTrainConfig

    kwargs: dict[str, Any] = {
        "data_dir": str(data_dir),
        "run_dir": str(run_dir),
        "stage": stage,
        "loss": config.get("loss"),
        "preset": preset,
        "preset_overrides": _overrides(config),
        "steps": config.get("steps"),
        "epochs": config.get("epochs"),
        "lr": config.get("lr"),
        "batch_size": config.get("batch_size"),
        "seed": int(config.get("seed", 0)),
        "task_set": config.get("task_set"),
        "device": config.get("device"),
        "progress": _progress(config),
    }
    if stage == "bc":
        policy_path = config.get("policy_path")
        if policy_path and _is_saved_policy(policy_path):
            kwargs["init"] = str(policy_path)
        if config.get("policy_history") is not None:
            kwargs["policy_overrides"] = {"history": int(config["policy_history"])}
    else:
        kwargs["init"] = _behaviour_policy(config, "policy")
        kwargs["threshold"] = config.get("threshold")
        if config.get("anchor_weight") is not None:
            kwargs["anchor_weight"] = float(config["anchor_weight"])
        kwargs["critic"] = str(run_dir / "work" / "critic")
        kwargs["candidates"] = _candidate_name(run_dir, config)
        kwargs["feature_prefix"] = feature_prefix(_feature_run(run_dir, config))
    return PolicyTrainConfig(**kwargs)


def policy_stage(
    run_dir: Path, data_dir: Path, preset: str, config: Mapping[str, Any]
) -> dict[str, Any]:
    """Policy extraction from the critic (Best-of-N by default) -> ``RUN/policy``."""
    from digiq.policy_train import run_policy_train

    cfg = _policy_train_config("policy", run_dir, data_dir, preset, config)
    if cfg.loss in ("bestofn", "awr", "pg") and not (run_dir / "work" / "critic").is_dir():
        raise PipelineError(f"policy stage ({cfg.loss}) needs the critic: run the critic stage")
    return run_policy_train(cfg)


def bc_stage(
    run_dir: Path, data_dir: Path, preset: str, config: Mapping[str, Any]
) -> dict[str, Any]:
    """Behaviour cloning (SFT or filtered BC) -> ``RUN/bc``."""
    from digiq.policy_train import run_policy_train

    return run_policy_train(_policy_train_config("bc", run_dir, data_dir, preset, config))


STAGE_FUNCTIONS: dict[str, StageFunction] = {
    "repr": repr_stage,
    "features": features_stage,
    "candidates": candidates_stage,
    "critic": critic_stage,
    "policy": policy_stage,
    "bc": bc_stage,
}


# ---------------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------------


def run_stages(
    stages: Sequence[str],
    run_dir: str | Path,
    data_dir: str | Path,
    preset: str = "tiny",
    config: Mapping[str, Any] | None = None,
    *,
    force: bool = False,
    functions: Mapping[str, StageFunction] | None = None,
    echo: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run ``stages`` (``all`` expanded) in order; returns the ``stages.json`` record.

    A stage marked done in ``RUN/stages.json`` is skipped (``force`` runs it again; it still
    resumes from its own checkpoints). Each stage's record: status (running / done / failed),
    start and end time, wall seconds, the stage's peak resident memory (MiB, :class:`StagePeak`;
    ``peak_rss_scope`` "stage", or "process" where the OS keeps only the process's peak so far;
    with ``workers`` the larger of this process and its largest worker, not their sum, which the
    quickstart samples), its metrics or its error. A failing stage is
    recorded and its exception re-raised; later stages do not run.
    """
    run = Path(run_dir)
    data = Path(data_dir)
    config = dict(config or {})
    functions = dict(STAGE_FUNCTIONS if functions is None else functions)
    names = expand_stages(stages)
    record = read_stages(run)
    record.update(
        {
            "format": STAGES_FORMAT,
            "run_dir": str(run.resolve()),
            "data_dir": str(data.resolve()),
            "preset": preset,
        }
    )
    record.setdefault("stages", {})
    for name in names:
        previous = record["stages"].get(name) or {}
        if previous.get("status") == "done" and not force:
            _refuse_stale(name, previous, record["stages"], run)
            log.info("stage %s is done (%s); skipping", name, run / STAGES_FILE)
            if echo:
                echo(f"{name}: already done, skipped")
            continue
        options = stage_config(config, name)
        entry = {
            "status": "running",
            "started": time.time(),
            "config": json.loads(json.dumps(options, default=str)),
            "attempts": int(previous.get("attempts", 0)) + 1,
        }
        record["stages"][name] = entry
        _write_stages(run, record)
        if echo:
            echo(f"{name}: running")
        tick = time.perf_counter()
        peak = StagePeak()
        try:
            metrics = functions[name](run, data, preset, options)
        except BaseException as exc:
            entry.update(
                status="interrupted" if isinstance(exc, KeyboardInterrupt) else "failed",
                finished=time.time(),
                wall_s=time.perf_counter() - tick,
                peak_rss_mb=peak.mb(),
                peak_rss_scope=peak.scope,
                error=f"{type(exc).__name__}: {exc}",
                traceback=traceback.format_exc(limit=8),
            )
            _write_stages(run, record)
            raise
        entry.update(
            status="done",
            finished=time.time(),
            wall_s=time.perf_counter() - tick,
            peak_rss_mb=peak.mb(),
            peak_rss_scope=peak.scope,
            metrics=json.loads(json.dumps(_plain(metrics), default=str)),
        )
        _write_stages(run, record)
        if echo:
            echo(f"{name}: done in {entry['wall_s']:.1f} s")
    return record


def _refuse_stale(
    name: str, entry: Mapping[str, Any], stages: Mapping[str, Any], run: Path
) -> None:
    """Raise instead of skipping a done stage whose inputs were rebuilt after it started.

    Skipping it would hand on an output computed from inputs that no longer exist (a policy
    extracted from a critic since re-trained), and nothing downstream could tell."""
    started = entry.get("started")
    for source in STAGE_INPUTS.get(name, ()):
        finished = (stages.get(source) or {}).get("finished")
        if started is not None and finished is not None and finished > started:
            raise PipelineError(
                f"stage {name} in {run} is done but its input stage {source} was run again "
                f"after it (finished {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(finished))}"
                f", {name} started {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(started))}):"
                f" run {name} with --force, after deleting {run / 'work' / name} if it resumes "
                "from checkpoints of the old inputs, or use another --out"
            )


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value
