"""Stages ``bc`` and ``policy``: train the AutoUI-style policy on a trajectory dataset.

* ``bc`` (behaviour cloning, the behaviour policy Digi-Q starts from): supervised learning on
  the dataset's actions, from a new model (the preset's, tiny by default) or from ``init`` (a
  policy folder or a run). ``loss="sft"``: every valid step; ``loss="filtered-bc"``: the steps
  of successful episodes only.
* ``policy`` (policy extraction from the critic), initialised from the behaviour policy
  (``init``, required): ``loss="bestofn"`` (default): :func:`digiq.bestofn.build_policy_targets`
  over the candidate set with the critic's scores; threshold 0.05 Web Shopping / 0.10 General
  (per episode from its task set, :func:`~digiq.bestofn.threshold_for`) unless ``threshold`` is
  given; ``sft``, ``filtered-bc``, ``awr`` (dataset action weighted by ``min(exp(A/0.01), 20)``)
  and ``pg`` (a random candidate weighted by ``5 A``) as in the published code.

The loss is :meth:`digiq.models.policy.PolicyModel.loss`: ``-mean(w * sum_t log pi_t)`` with the
published probability clamp [0.001, 0.99] (``clamp``; default on for ``policy``, off for ``bc``:
a model trained from random initialisation starts with every token below p = 0.001 under a
1000-token vocabulary, where the clamp passes no gradient at all). Zero-weight examples are
not fed through the model: the loss is scaled by the fraction of non-zero weights instead,
which has the same expectation as the published batch mean over all examples (Best-of-N
keeps only a minority of the states, so this saves most of the compute).

Data: the input text of a state is ``Previous Actions: <last action> Goal: <task>`` over the
episode's earlier actions (:meth:`PolicyModel.input_text`); screens are decoded once, resized
to the policy's image size and cached in ``RUN/cache/`` (keyed by the dataset's fingerprint)
so later stages and resumed runs skip the decoding. Invalid dataset actions (unparseable model
output) are never targets. Validation: a held-out split of episodes
(``ReplayBuffer.split(val_fraction, split_seed)``): the weighted loss, and greedy action
accuracy (:func:`android.actions.actions_match` of the greedy output against the target, with
the screen's clickable elements as annotation boxes), plus action-type and typed-text accuracy.

Query augmentation (``augment_queries``, default 0.5): typed text must be COPIED from the goal,
including queries never seen in training (the test tasks' queries are disjoint from the train
tasks'), and a few hundred demonstrations hold only a few dozen distinct queries, which a small
model memorises instead of learning to copy. So, with this probability per training example
whose goal quotes a query, the query is replaced everywhere in the example (goal, previous
actions, target) by a random made-up one (1-4 words of random syllables, letters with digits,
numbers, hyphenated parts) and the goal's quote character is drawn at random (``"`` or ``'``:
instructions quote either way; the generated train / test task lists use one each). Examples
whose target types something else derived from the query (a typo of it) are left alone.

Training: ``accelerate`` (``Accelerator(mixed_precision="bf16" if supported else "no")``,
so ``accelerate launch -m digiq.cli train ...`` runs it data-parallel unchanged), AdamW with a
linear warm-up and cosine decay to 10 %, gradient clipping, tqdm, scalars to
``metrics.jsonl`` and TensorBoard (:func:`digiq.checkpoint.open_scalar_log`).

Layout in the run folder::

    RUN/<stage>/                 the trained policy (a PolicyModel folder; loadable as an agent)
    RUN/work/<stage>/init/       the initial policy (tokenizer, config, initial weights)
    RUN/work/<stage>/checkpoints/step-N/   weights + optimizer + data order (safetensors)
    RUN/work/<stage>/logs/       metrics.jsonl + TensorBoard events
    RUN/work/<stage>/train_config.json, metrics.json

Resumable: a run whose ``work/<stage>`` has checkpoints of the same configuration continues
from the latest (weights, optimizer, step and data order restored exactly); a finished stage
returns its stored metrics; a different configuration is an error naming the fields
(``restart=True`` starts over).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
import shutil
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from android.actions import Action, ActionType, actions_match, parse_autoui
from digiq.checkpoint import (
    checkpoint_dir,
    latest_checkpoint,
    load_checkpoint,
    open_scalar_log,
    read_checkpoint_info,
    save_checkpoint,
)
from digiq.device_utils import configure_threads, select_precision
from digiq.models.policy import POLICY_JSON, PolicyModel, policy_corpus, screen_pixels
from digiq.policy_losses import BC_LOSSES, POLICY_LOSSES
from trajectories import ReplayBuffer
from trajectories.images import decode_image
from trajectories.manifest import atomic_write_bytes

log = logging.getLogger(__name__)

__all__ = [
    "BC_LOSSES",
    "POLICY_LOSSES",
    "PolicyExample",
    "FrameCache",
    "PolicyTrainConfig",
    "StageConfigError",
    "load_frames",
    "augment_query",
    "fake_query",
    "state_inputs",
    "bc_examples",
    "extraction_examples",
    "resolve_init",
    "evaluate_policy",
    "run_policy_train",
]

STAGES = ("bc", "policy")
DEFAULT_BC_EPOCHS = 16.0
DEFAULT_POLICY_EPOCHS = 2.0
PUBLISHED_POLICY_LR = 1e-4
# Fields of the config that do not change what is trained (a resume may change them).
_RUNTIME_FIELDS = {
    "progress",
    "device",
    "num_threads",
    "eval_every",
    "checkpoint_every",
    "log_every",
    "max_val_examples",
    "restart",
    "tensorboard",
    "max_steps_this_call",
}


class StageConfigError(ValueError):
    """A stage folder holds work of a different configuration."""


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


@dataclass
class PolicyExample:
    """One training / validation example: imitate ``target`` at the state of
    ``transition_id`` with ``weight``."""

    transition_id: int
    row: int
    episode_id: str
    input_text: str
    target: str
    weight: float
    dataset_action: str


class FrameCache:
    """Screens resized to the policy's input size, by internal step row of a buffer."""

    def __init__(self, rows: np.ndarray, frames: np.ndarray) -> None:
        self.rows = np.asarray(rows, np.int64)
        self.frames = frames
        self._index = {int(r): i for i, r in enumerate(self.rows.tolist())}

    def __len__(self) -> int:
        return len(self.rows)

    def get(self, rows: Sequence[int]) -> np.ndarray:
        """``[B, H, W, 3]`` uint8 frames of these rows (KeyError naming a missing row)."""
        try:
            return self.frames[[self._index[int(r)] for r in rows]]
        except KeyError as exc:
            raise KeyError(f"step row {exc.args[0]} is not in the frame cache") from None


def load_frames(
    buffer: ReplayBuffer,
    rows: Sequence[int],
    width: int,
    height: int,
    *,
    cache_dir: Path | str | None = None,
    progress: bool = False,
    workers: int = 2,
) -> FrameCache:
    """Decode and resize the screens of ``rows`` (cached on disk in ``cache_dir``).

    The cache file is keyed by the dataset's fingerprint and the size, and extended with rows
    it does not hold yet, so the bc, candidates and policy stages decode each screen once.
    """
    wanted = sorted(set(int(r) for r in rows))
    cached_rows = np.zeros(0, np.int64)
    cached = np.zeros((0, height, width, 3), np.uint8)
    path = None
    if cache_dir is not None:
        key = buffer.manifest.fingerprint()[:16]
        path = Path(cache_dir) / f"frames-{width}x{height}-{key}.npz"
        if path.is_file():
            try:
                with np.load(path) as data:
                    cached_rows, cached = data["rows"], data["frames"]
            except (OSError, ValueError, KeyError) as exc:
                log.warning("ignoring unreadable frame cache %s (%s)", path, exc)
    have = set(cached_rows.tolist())
    todo = [r for r in wanted if r not in have]
    if todo:

        def decode(row: int) -> np.ndarray:
            return screen_pixels(decode_image(buffer.screenshot_bytes(row)), width, height)

        new = np.zeros((len(todo), height, width, 3), np.uint8)
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            iterator = pool.map(decode, todo)
            for i, frame in enumerate(
                tqdm(iterator, total=len(todo), desc="screens", disable=not progress)
            ):
                new[i] = frame
        cached_rows = np.concatenate([cached_rows, np.asarray(todo, np.int64)])
        cached = np.concatenate([cached, new]) if len(cached) else new
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.npz")
            np.savez(tmp, rows=cached_rows, frames=cached)
            tmp.replace(path)
    return FrameCache(cached_rows, cached)


def state_inputs(buffer: ReplayBuffer, model: PolicyModel) -> dict[int, tuple[int, str, str]]:
    """Per transition id of ``buffer``: (step row, episode id, policy input text), the input
    text built from the episode's earlier actions exactly as the agent builds it."""
    by_episode: dict[str, list[Any]] = defaultdict(list)
    for t in buffer.iter_transitions():
        by_episode[t.episode_id].append(t)
    out: dict[int, tuple[int, str, str]] = {}
    for episode_id, transitions in by_episode.items():
        transitions.sort(key=lambda t: t.step)
        previous: list[Action] = []
        for t in transitions:
            out[t.transition_id] = (int(t._row), episode_id, model.input_text(previous, t.task))
            previous.append(t.action)
    return out


def bc_examples(
    buffer: ReplayBuffer, model: PolicyModel, loss: str = "sft"
) -> tuple[list[PolicyExample], dict[str, int]]:
    """Behaviour-cloning examples: the dataset action of every valid step (``sft``) or of the
    steps of successful episodes (``filtered-bc``); returns (examples, counts)."""
    if loss not in BC_LOSSES:
        raise ValueError(f"unknown bc loss {loss!r}; choose one of {BC_LOSSES}")
    inputs = state_inputs(buffer, model)
    success = {ep.episode_id: bool(ep.success) for ep in buffer.episodes()}
    examples: list[PolicyExample] = []
    counts = {"transitions": 0, "invalid_actions": 0, "failed_episode_steps": 0}
    for t in buffer.iter_transitions():
        counts["transitions"] += 1
        if not t.action.is_valid:
            counts["invalid_actions"] += 1
            continue
        if loss == "filtered-bc" and not success[t.episode_id]:
            counts["failed_episode_steps"] += 1
            continue
        row, episode_id, text = inputs[t.transition_id]
        examples.append(
            PolicyExample(
                t.transition_id,
                row,
                episode_id,
                text,
                model.target_text(t.action),
                1.0,
                t.action_text,
            )
        )
    counts["examples"] = len(examples)
    return examples, counts


def extraction_examples(
    buffer: ReplayBuffer,
    model: PolicyModel,
    method: str,
    *,
    candidate_table: Any = None,
    critic_scores: Any = None,
    threshold: float | None = None,
    seed: int = 0,
    anchor_weight: float = 0.0,
) -> tuple[list[PolicyExample], dict[str, Any]]:
    """Policy-extraction examples from :func:`digiq.bestofn.build_policy_targets`."""
    from digiq.bestofn import build_policy_targets

    if method not in POLICY_LOSSES:
        raise ValueError(f"unknown policy loss {method!r}; choose one of {POLICY_LOSSES}")
    targets = build_policy_targets(
        buffer,
        candidate_table,
        critic_scores,
        method,
        threshold,
        on_missing="skip",
        seed=seed,
        anchor_weight=anchor_weight,
    )
    inputs = state_inputs(buffer, model)
    examples: list[PolicyExample] = []
    invalid = 0
    for target in targets:
        if not parse_autoui(target.target).is_valid:
            invalid += 1
            continue
        row, episode_id, text = inputs[target.transition_id]
        dataset_action = buffer.transition(target.transition_id).action_text
        examples.append(
            PolicyExample(
                target.transition_id,
                row,
                episode_id,
                text,
                model.target_text(target.target),
                float(target.weight),
                dataset_action,
            )
        )
    weights = np.array([e.weight for e in examples], np.float64)
    changed = sum(
        1 for e in examples if e.weight != 0 and e.target != model.target_text(e.dataset_action)
    )
    stats = {
        "targets": len(targets),
        "examples": len(examples),
        "invalid_targets": invalid,
        "nonzero_weight": int(np.count_nonzero(weights)),
        "mean_weight": float(weights.mean()) if len(weights) else 0.0,
        "targets_not_dataset_action": int(changed),
    }
    return examples, stats


_QUOTED = re.compile(r"([\"'])([^\"']+)\1")
_TYPED = re.compile(r'"typed_text": "((?:[^"\\]|\\.)*)"')
_CONSONANTS = "bcdfghjklmnprstvwz"
_VOWELS = "aeiouy"


def _fake_word(rng: np.random.Generator) -> str:
    kind = rng.random()
    if kind < 0.6:
        syllables = int(rng.integers(1, 4))
        word = "".join(
            rng.choice(list(_CONSONANTS))
            + rng.choice(list(_VOWELS))
            + (rng.choice(list(_CONSONANTS)) if rng.random() < 0.3 else "")
            for _ in range(syllables)
        )
    elif kind < 0.8:
        letters = "".join(rng.choice(list(_CONSONANTS + _VOWELS), size=int(rng.integers(1, 4))))
        word = letters + str(int(rng.integers(1, 10000)))
    elif kind < 0.9:
        word = str(int(rng.integers(1, 100000)))
    else:
        word = _fake_word(rng) + "-" + rng.choice(list(_CONSONANTS + _VOWELS))
    return word.capitalize() if rng.random() < 0.1 else word


def fake_query(rng: np.random.Generator) -> str:
    """A made-up search query (1-4 words) for query augmentation."""
    return " ".join(_fake_word(rng) for _ in range(int(rng.integers(1, 5))))


def _escape(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)[1:-1]


def augment_query(input_text: str, target: str, rng: np.random.Generator) -> tuple[str, str] | None:
    """``(input_text, target)`` with the goal's quoted query replaced by a made-up one (and a
    random quote style), or None when the example has no quoted query or its target types a
    text derived from the query other than the query itself (see the module docstring)."""
    goal_at = input_text.rfind("Goal: ")
    if goal_at < 0:
        return None
    goal = input_text[goal_at + len("Goal: ") :]
    match = _QUOTED.search(goal)
    if match is None:
        return None
    query = match.group(2)
    typed = _TYPED.search(target)
    if typed is not None:
        text = json.loads(f'"{typed.group(1)}"')
        if text and text != query and (query in text or text in query or _close(text, query)):
            return None
    fake = fake_query(rng)
    quote = '"' if rng.random() < 0.5 else "'"
    new_goal = goal[: match.start()] + quote + fake + quote + goal[match.end() :]
    old_q, new_q = f'"typed_text": "{_escape(query)}"', f'"typed_text": "{_escape(fake)}"'
    history = input_text[:goal_at].replace(old_q, new_q)
    return history + "Goal: " + new_goal, target.replace(old_q, new_q)


def _close(a: str, b: str) -> bool:
    """Same length within 1 and at most 2 differing characters (a typo of the other)."""
    if abs(len(a) - len(b)) > 1:
        return False
    return sum(x != y for x, y in zip(a, b, strict=False)) + abs(len(a) - len(b)) <= 2


# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------


@dataclass
class PolicyTrainConfig:
    """Settings of the ``bc`` / ``policy`` stages (None = the stage's or preset's default).

    ``init``: a policy folder or a run holding one (``bc``: optional, a new preset model
    otherwise; ``policy``: the behaviour policy, required). ``critic``: the critic checkpoint
    (``policy`` with bestofn / awr / pg). ``candidates``: the candidate set name under
    ``DATA/candidates`` (bestofn / pg); ``feature_prefix``: prefix of the feature stores the
    critic scores from. ``steps`` wins over ``epochs`` (passes over the training examples).
    ``policy_overrides``: :class:`~digiq.models.policy.PolicyConfig` fields for a new model.
    ``max_steps_this_call``: stop after this many steps in this call (time-boxed runs; the
    stage resumes later).
    """

    data_dir: str
    run_dir: str
    stage: str = "bc"
    loss: str | None = None
    init: str | None = None
    preset: str = "tiny"
    preset_overrides: dict[str, Any] = field(default_factory=dict)
    policy_overrides: dict[str, Any] = field(default_factory=dict)
    steps: int | None = None
    epochs: float | None = None
    lr: float | None = None
    batch_size: int | None = None
    grad_accum: int = 1
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    warmup_fraction: float = 0.05
    clamp: bool | None = None
    threshold: float | None = None
    # Best-of-N only: weight of the dataset action at states with no target (0 = published;
    # digiq.bestofn module docstring, "Anchor").
    anchor_weight: float = 0.0
    critic: str | None = None
    candidates: str | None = None
    feature_prefix: str = ""
    task_set: str | None = None
    augment_queries: float = 0.5
    val_fraction: float = 0.1
    split_seed: int = 0
    seed: int = 0
    eval_every: int = 0
    checkpoint_every: int = 200
    log_every: int = 10
    max_val_examples: int = 256
    device: str | None = None
    precision: str = "auto"
    num_threads: int | None = None
    progress: bool = True
    tensorboard: bool = True
    restart: bool = False
    max_steps_this_call: int | None = None

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, got {self.stage!r}")
        if self.loss is None:
            self.loss = "sft" if self.stage == "bc" else "bestofn"
        valid = BC_LOSSES if self.stage == "bc" else POLICY_LOSSES
        if self.loss not in valid:
            raise ValueError(
                f"--loss for stage {self.stage!r} must be one of {valid}, got {self.loss!r}"
            )
        if self.stage == "policy" and not self.init:
            raise ValueError(
                "the policy stage starts from the behaviour policy: give init "
                "(--behaviour-policy / --policy-path)"
            )
        for name in ("steps", "batch_size"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if self.epochs is not None and self.epochs <= 0:
            raise ValueError(f"epochs must be > 0, got {self.epochs}")
        if self.lr is not None and self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.grad_accum < 1:
            raise ValueError(f"grad_accum must be >= 1, got {self.grad_accum}")
        if not (math.isfinite(self.anchor_weight) and self.anchor_weight >= 0):
            raise ValueError(
                f"anchor_weight must be a finite number >= 0, got {self.anchor_weight}"
            )
        if self.anchor_weight and (self.stage, self.loss) != ("policy", "bestofn"):
            raise ValueError(
                f"anchor_weight applies to the policy stage's bestofn loss only, not "
                f"{self.stage} / {self.loss}"
            )
        if not 0.0 <= self.augment_queries <= 1.0:
            raise ValueError(f"augment_queries must be in [0, 1], got {self.augment_queries}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")

    @property
    def use_clamp(self) -> bool:
        return self.stage == "policy" if self.clamp is None else bool(self.clamp)

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self), default=str))

    def result_dict(self) -> dict[str, Any]:
        """The fields that determine the trained weights (compared on resume). A zero
        ``anchor_weight`` is left out, so stages trained before the field existed resume."""
        fields = {k: v for k, v in self.to_dict().items() if k not in _RUNTIME_FIELDS}
        if not fields["anchor_weight"]:
            del fields["anchor_weight"]
        return fields


def resolve_init(path: str | Path, order: Sequence[str] = ("", "bc", "policy")) -> Path:
    """The policy folder of ``path`` (itself, or its ``bc`` / ``policy`` stage folder).

    Raises FileNotFoundError naming the path (never falls back to a new model)."""
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"policy checkpoint path {str(root)!r} does not exist")
    for sub in order:
        candidate = root / sub if sub else root
        if (candidate / POLICY_JSON).is_file():
            return candidate
    looked = ", ".join(str(root / s) if s else str(root) for s in order)
    raise FileNotFoundError(f"no saved policy ({POLICY_JSON}) in any of: {looked}")


# ---------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------


def _boxes(buffer: ReplayBuffer, row: int) -> list[tuple[float, float, float, float]]:
    step = buffer.read_step(row)
    width, height = step.size
    boxes = []
    for element in step.ui_elements:
        if not element.clickable:
            continue
        left, top, right, bottom = element.bounds
        if right > left and bottom > top:
            boxes.append(
                (top / height, left / width, (bottom - top) / height, (right - left) / width)
            )
    return boxes


@torch.no_grad()
def evaluate_policy(
    model: PolicyModel,
    examples: Sequence[PolicyExample],
    frames: FrameCache,
    *,
    buffer: ReplayBuffer | None = None,
    batch_size: int = 32,
    clamp: bool = False,
    loss_scale: float = 1.0,
) -> dict[str, float]:
    """Validation metrics of ``model`` on ``examples`` (keys ``val/...``).

    ``val/loss``: the training loss; ``val/action_match``: greedy output vs target under the
    AitW rule (with the screen's clickable elements as boxes when ``buffer`` is given);
    ``val/type_match``: same action type; ``val/text_match``: exact typed text on TYPE targets;
    ``val/valid``: share of greedy outputs that parse.
    """
    if not examples:
        return {}
    model.eval()
    losses, matches, types, valid = [], [], [], []
    texts: list[bool] = []
    for lo in range(0, len(examples), batch_size):
        chunk = list(examples[lo : lo + batch_size])
        batch = model.prepare(
            model.pixels_from_array(frames.get([e.row for e in chunk])),
            [e.input_text for e in chunk],
        )
        loss = model.loss(batch, [e.target for e in chunk], [e.weight for e in chunk], clamp=clamp)
        losses.append(float(loss) * len(chunk) * loss_scale)
        outputs = model.greedy(batch)
        for example, (text, _) in zip(chunk, outputs, strict=True):
            predicted = parse_autoui(text)
            target = parse_autoui(example.target)
            boxes = _boxes(buffer, example.row) if buffer is not None else []
            matches.append(actions_match(predicted, target, boxes))
            types.append(predicted.action_type == target.action_type)
            valid.append(predicted.is_valid)
            if target.action_type is ActionType.TYPE:
                texts.append(
                    predicted.action_type is ActionType.TYPE
                    and predicted.typed_text == target.typed_text
                )
    model.train()
    out = {
        "val/loss": sum(losses) / len(examples),
        "val/action_match": float(np.mean(matches)),
        "val/type_match": float(np.mean(types)),
        "val/valid": float(np.mean(valid)),
        "val/examples": float(len(examples)),
    }
    if texts:
        out["val/text_match"] = float(np.mean(texts))
    return out


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------


def _lr_at(step: int, total: int, base: float, warmup_fraction: float) -> float:
    warmup = max(1, int(round(total * warmup_fraction)))
    if step < warmup:
        return base * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress)))


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, json.dumps(data, indent=1, default=str).encode())


def _diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    keys = sorted(set(old) | set(new))
    return [k for k in keys if old.get(k) != new.get(k)]


def _new_model(config: PolicyTrainConfig, buffer: ReplayBuffer) -> PolicyModel:
    transitions = list(buffer.iter_transitions())
    corpus = policy_corpus(
        [t.task for t in transitions],
        [t.action_text for t in transitions if t.action.is_valid],
        seed=config.seed,
    )
    overrides = dict(config.policy_overrides)
    overrides.setdefault("seed", config.seed)
    return PolicyModel.from_preset(
        _preset(config),
        corpus=corpus,
        device=config.device,
        precision=config.precision,
        **overrides,
    )


def _preset(config: PolicyTrainConfig, *, check: bool = True) -> Any:
    """The preset (``check``: its policy checkpoint must exist, for a new model)."""
    from digiq.models.presets import get_preset

    return get_preset(config.preset, require=["policy"], check=check, **config.preset_overrides)


def _critic_scores(config: PolicyTrainConfig, buffer: ReplayBuffer, table: Any) -> Any:
    from digiq.critic import CriticData, load_critic, score_data

    if not config.critic:
        raise ValueError(f"policy loss {config.loss!r} needs the critic checkpoint (critic=...)")
    path = Path(config.critic)
    if not path.exists():
        raise FileNotFoundError(f"critic checkpoint path {str(path)!r} does not exist")
    ckpt = path if (path / "checkpoint.json").is_file() else latest_checkpoint(path)
    if ckpt is None:
        raise FileNotFoundError(f"no critic checkpoint in {str(path)!r}")
    critic = load_critic(ckpt)
    info = read_checkpoint_info(ckpt)
    data = CriticData.from_buffer(
        buffer,
        prefix=config.feature_prefix,
        candidates=table,
        vlm="vlm" if int(info.config.get("vlm_dim", 0)) > 0 else None,
    )
    return score_data(critic, data)


class _Trainer:
    """One training run of a stage (see the module docstring)."""

    def __init__(self, config: PolicyTrainConfig, on_step: Callable[[int], None] | None) -> None:
        self.config = config
        self.on_step = on_step
        self.run_dir = Path(config.run_dir)
        self.work = self.run_dir / "work" / config.stage
        self.final = self.run_dir / config.stage

    # -- setup ---------------------------------------------------------------------------------
    def _check_work(self) -> None:
        c = self.config
        stored_path = self.work / "train_config.json"
        if stored_path.is_file():
            stored = json.loads(stored_path.read_text())
            differ = _diff(stored, c.result_dict())
            if differ and not c.restart:
                raise StageConfigError(
                    f"{self.work} holds a {c.stage} run with another configuration (differs in "
                    f"{', '.join(differ)}); use another --out, or restart to delete it"
                )
            if differ or c.restart:
                log.info("restarting %s: deleting %s", c.stage, self.work)
                shutil.rmtree(self.work)
                if self.final.exists():
                    shutil.rmtree(self.final)
        elif c.restart and self.work.exists():
            shutil.rmtree(self.work)

    def _finished(self) -> dict[str, Any] | None:
        metrics_path = self.work / "metrics.json"
        if not (self.final / POLICY_JSON).is_file() or not metrics_path.is_file():
            return None
        metrics = json.loads(metrics_path.read_text())
        return metrics if metrics.get("finished") else None

    def _model(self, buffer: ReplayBuffer) -> PolicyModel:
        c = self.config
        init_dir = self.work / "init"
        if (init_dir / POLICY_JSON).is_file():
            return PolicyModel.load(init_dir, device=c.device, precision=c.precision)
        if c.init:
            source = resolve_init(c.init)
            model = PolicyModel.load(source, device=c.device, precision=c.precision)
            log.info("%s: starting from the policy in %s", c.stage, source)
            differ = {
                k: v
                for k, v in c.policy_overrides.items()
                if k != "seed" and getattr(model.config, k, v) != v
            }
            if differ:
                # A saved policy's inputs are fixed by its training: refuse, rather than
                # silently train it on inputs of another shape.
                raise ValueError(
                    f"{c.stage}: the policy in {source} has "
                    + ", ".join(f"{k}={getattr(model.config, k)!r}" for k in differ)
                    + f"; policy_overrides {differ} apply to a new policy only"
                )
        else:
            model = _new_model(c, buffer)
            log.info(
                "%s: new %s policy (%d parameters, tokenizer %s)",
                c.stage,
                model.config.preset,
                model.num_parameters,
                model.tokenizer_stats,
            )
        model.save(init_dir, extra={"init_source": c.init})
        return model

    def _examples(
        self, buffer: ReplayBuffer, model: PolicyModel
    ) -> tuple[list[PolicyExample], list[PolicyExample], dict[str, Any]]:
        c = self.config
        if c.task_set:
            buffer = buffer.filter(task_set=c.task_set)
        train_buf, val_buf = buffer.split(c.val_fraction, c.split_seed)
        if c.stage == "bc":
            assert c.loss is not None
            train, stats = bc_examples(train_buf, model, c.loss)
            val, _ = bc_examples(val_buf, model, c.loss)
            return train, val, stats
        table = None
        if c.loss in ("bestofn", "pg"):
            from trajectories import CandidateTable

            if not c.candidates:
                raise ValueError(f"policy loss {c.loss!r} needs a candidate set (candidates=...)")
            table = CandidateTable.open(c.data_dir, c.candidates)
        scores = None
        if c.loss in ("bestofn", "awr", "pg"):
            scores = _critic_scores(c, buffer, table)
        assert c.loss is not None
        kwargs = {
            "candidate_table": table,
            "critic_scores": scores,
            "threshold": c.threshold,
            "seed": c.seed,
            "anchor_weight": c.anchor_weight,
        }
        train, stats = extraction_examples(train_buf, model, c.loss, **kwargs)
        val, val_stats = extraction_examples(val_buf, model, c.loss, **kwargs)
        stats["val"] = val_stats
        return train, val, stats

    def _augmented(
        self, chunk: Sequence[PolicyExample], rng: np.random.Generator
    ) -> tuple[list[str], list[str]]:
        texts, targets = [], []
        p = self.config.augment_queries
        draws = rng.random(len(chunk))
        for example, draw in zip(chunk, draws, strict=True):
            out = augment_query(example.input_text, example.target, rng) if draw < p else None
            text, target = out if out is not None else (example.input_text, example.target)
            texts.append(text)
            targets.append(target)
        return texts, targets

    # -- run -----------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        from accelerate import Accelerator

        c = self.config
        started = time.perf_counter()
        configure_threads(c.num_threads)
        self._check_work()
        done = self._finished()
        if done is not None:
            log.info("%s already trained in %s; nothing to do", c.stage, self.final)
            return done
        self.work.mkdir(parents=True, exist_ok=True)
        _write_json(self.work / "train_config.json", c.result_dict())
        buffer = ReplayBuffer.open(c.data_dir)
        model = self._model(buffer)
        train, val, data_stats = self._examples(buffer, model)
        train_nonzero = [e for e in train if e.weight != 0.0]
        if not train_nonzero:
            reason = (
                f"no training example has a non-zero weight ({len(train)} examples; {data_stats})"
            )
            if not c.init:
                raise ValueError(f"{c.stage} ({c.loss}): {reason}")
            return self._finish_unchanged(model, reason, len(train), data_stats, started)
        loss_scale = len(train_nonzero) / len(train)
        val_nonzero = [e for e in val if e.weight != 0.0]
        val_eval = val_nonzero[: c.max_val_examples]
        val_scale = len(val_nonzero) / len(val) if val else 1.0

        precision = select_precision(c.device, c.precision).for_model(model.num_parameters)
        accelerator = Accelerator(
            cpu=precision.device.type == "cpu",
            mixed_precision="bf16" if precision.autocast_dtype is not None else "no",
        )
        preset = _preset(c, check=False)  # training defaults only
        lr = c.lr if c.lr is not None else preset.training.policy_lr
        if c.lr is None and c.stage == "policy":
            # extraction fine-tunes a trained policy: the published 1e-4 at most (measured on
            # the tiny preset: 1e-3 moved the behaviour policy further for no gain)
            lr = min(lr, PUBLISHED_POLICY_LR)
        batch_size = c.batch_size or preset.training.policy_batch_size
        if c.steps is not None:
            total = c.steps
        else:
            epochs = c.epochs or (DEFAULT_BC_EPOCHS if c.stage == "bc" else DEFAULT_POLICY_EPOCHS)
            per_epoch = math.ceil(len(train_nonzero) / (batch_size * c.grad_accum))
            total = max(1, int(round(epochs * per_epoch)))

        frames = load_frames(
            buffer,
            [e.row for e in train_nonzero] + [e.row for e in val_eval],
            model.config.image_width,
            model.config.image_height,
            cache_dir=self.run_dir / "cache",
            progress=c.progress,
        )
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=c.weight_decay)
        model.net, optimizer = accelerator.prepare(model.net, optimizer)
        model.forward_module = model.net
        model.net = accelerator.unwrap_model(model.net)

        step = 0
        rng = np.random.default_rng([c.seed, accelerator.process_index])
        perm = rng.permutation(len(train_nonzero))
        cursor = 0
        latest = latest_checkpoint(self.work)
        if latest is not None:
            info = load_checkpoint(
                latest,
                modules={"policy": model.net},
                optimizers={"adamw": optimizer},
                map_location=model.device,
            )
            step = info.step
            if info.extra.get("train_examples") == len(train_nonzero) and "perm" in info.arrays:
                perm = info.arrays["perm"].astype(np.int64)
                cursor = int(info.extra["cursor"])
                rng.bit_generator.state = info.extra["rng"]
            else:
                log.warning("%s: resumed on different training data; data order restarts", c.stage)
            log.info("%s: resumed from %s (step %d of %d)", c.stage, latest, step, total)

        scalars = open_scalar_log(
            self.work / "logs" if accelerator.is_main_process else None, tensorboard=c.tensorboard
        )
        history: list[dict[str, float]] = []

        def save(at: int) -> None:
            if not accelerator.is_main_process:
                return
            save_checkpoint(
                checkpoint_dir(self.work, at),
                modules={"policy": model.net},
                optimizers={"adamw": optimizer},
                step=at,
                config=c.result_dict(),
                extra={
                    "kind": f"digiq-policy-{c.stage}",
                    "cursor": int(cursor),
                    "rng": rng.bit_generator.state,
                    "train_examples": len(train_nonzero),
                    "total_steps": total,
                },
                arrays={"perm": perm.astype(np.int64)},
            )
            for old in (self.work / "checkpoints").glob("step-*"):
                if old.name != checkpoint_dir(self.work, at).name:
                    shutil.rmtree(old, ignore_errors=True)

        log.info(
            "%s (%s): %d train examples (%d non-zero), %d validation, %d steps of %d x %d, lr %g, "
            "clamp %s, %s",
            c.stage,
            c.loss,
            len(train),
            len(train_nonzero),
            len(val_eval),
            total,
            batch_size,
            c.grad_accum,
            lr,
            c.use_clamp,
            precision.name,
        )
        stop_at = (
            total if c.max_steps_this_call is None else min(total, step + c.max_steps_this_call)
        )
        bar = tqdm(
            total=total,
            initial=step,
            desc=f"{c.stage} ({c.loss})",
            disable=not c.progress or not accelerator.is_main_process,
        )
        train_started = time.perf_counter()
        steps_this_call = 0
        metrics: dict[str, float] = {}
        model.train()
        while step < stop_at:
            for group in optimizer.param_groups:
                group["lr"] = _lr_at(step, total, lr, c.warmup_fraction)
            optimizer.zero_grad(set_to_none=True)
            loss_sum = 0.0
            for _ in range(c.grad_accum):
                if cursor + batch_size > len(perm):
                    perm = rng.permutation(len(train_nonzero))
                    cursor = 0
                picks = perm[cursor : cursor + batch_size]
                cursor += len(picks)
                chunk = [train_nonzero[int(i)] for i in picks]
                texts, targets = self._augmented(chunk, rng)
                batch = model.prepare(
                    model.pixels_from_array(frames.get([e.row for e in chunk])), texts
                )
                loss = model.loss(
                    batch,
                    targets,
                    [e.weight for e in chunk],
                    clamp=c.use_clamp,
                )
                loss = loss * loss_scale / c.grad_accum
                accelerator.backward(loss)
                loss_sum += float(loss.detach())
            grad_norm = accelerator.clip_grad_norm_(model.net.parameters(), c.max_grad_norm)
            optimizer.step()
            step += 1
            steps_this_call += 1
            bar.update(1)
            metrics = {
                "loss": loss_sum,
                "lr": optimizer.param_groups[0]["lr"],
                "grad_norm": float(grad_norm),
                "epoch": step * batch_size * c.grad_accum / len(train_nonzero),
            }
            if c.log_every and step % c.log_every == 0:
                scalars.log(step, metrics, prefix=f"{c.stage}/")
                history.append({"step": float(step), **metrics})
                bar.set_postfix(loss=f"{loss_sum:.3f}")
            if c.eval_every and step % c.eval_every == 0 and val_eval:
                val_metrics = evaluate_policy(
                    model, val_eval, frames, buffer=buffer, clamp=c.use_clamp, loss_scale=val_scale
                )
                scalars.log(step, val_metrics, prefix=f"{c.stage}/")
                log.info("%s step %d: %s", c.stage, step, val_metrics)
            if c.checkpoint_every and step % c.checkpoint_every == 0 and step < total:
                save(step)
            if self.on_step is not None:
                self.on_step(step)
        bar.close()
        train_seconds = time.perf_counter() - train_started
        save(step)
        result: dict[str, Any] = {
            "stage": c.stage,
            "loss": c.loss,
            "step": step,
            "total_steps": total,
            "finished": step >= total,
            "train_examples": len(train),
            "train_nonzero": len(train_nonzero),
            "val_examples": len(val_eval),
            "data": data_stats,
            "batch_size": batch_size,
            "lr": lr,
            "clamp": c.use_clamp,
            "precision": precision.name,
            "num_parameters": model.num_parameters,
            "tokenizer": model.tokenizer_stats,
            "train_seconds_this_call": train_seconds,
            "steps_per_s": steps_this_call / train_seconds if train_seconds > 0 else None,
            "last": metrics,
        }
        if step >= total and accelerator.is_main_process:
            if val_eval:
                val_metrics = evaluate_policy(
                    model, val_eval, frames, buffer=buffer, clamp=c.use_clamp, loss_scale=val_scale
                )
                scalars.log(step, val_metrics, prefix=f"{c.stage}/")
                result.update(val_metrics)
            result["seconds"] = time.perf_counter() - started
            model.model_id = uuid.uuid4().hex  # new weights, new id (candidate sets key on it)
            model.save(self.final, extra={"stage": c.stage, "train_config": c.to_dict(), **result})
            log.info("%s: trained policy saved to %s", c.stage, self.final)
        scalars.close()
        if accelerator.is_main_process:
            _write_json(self.work / "metrics.json", result)
        accelerator.free_memory()
        return result

    def _finish_unchanged(
        self,
        model: PolicyModel,
        reason: str,
        train_examples: int,
        data_stats: dict[str, Any],
        started: float,
    ) -> dict[str, Any]:
        """Zero gradient steps from the initial policy: the result IS the initial policy.

        Filtered BC on data whose training split holds no successful episode, or Best-of-N
        with no state above the threshold, updates nothing; saying so and keeping the
        initial policy is exact, where failing would leave the method without a policy."""
        c = self.config
        log.warning("%s (%s): %s; the result is the initial policy, unchanged", c.stage, c.loss,
                    reason)  # fmt: skip
        result: dict[str, Any] = {
            "stage": c.stage,
            "loss": c.loss,
            "step": 0,
            "total_steps": 0,
            "finished": True,
            "unchanged": reason,
            "train_examples": train_examples,
            "train_nonzero": 0,
            "data": data_stats,
            "num_parameters": model.num_parameters,
            "seconds": time.perf_counter() - started,
        }
        model.save(self.final, extra={"stage": c.stage, "train_config": c.to_dict(), **result})
        _write_json(self.work / "metrics.json", result)
        return result


def run_policy_train(
    config: PolicyTrainConfig, *, on_step: Callable[[int], None] | None = None
) -> dict[str, Any]:
    """Run (or resume, or skip when finished) a ``bc`` / ``policy`` stage; returns its metrics.

    ``on_step(step)`` is called after every optimiser step (progress hooks, tests that stop a
    run part-way).
    """
    return _Trainer(config, on_step).run()
