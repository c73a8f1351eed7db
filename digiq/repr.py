"""Stage ``repr``: yes/no labels from screen changes, and representation fine-tuning of the VLM.

Digi-Q fine-tunes the VLM to predict whether an action will change the screen before caching
its answer-token hidden state as the critic's main feature; this module does both halves.

Labels (:func:`yes_no_label`, exactly the published rule). For a transition (s, a, s'): both
screenshots are downscaled to 0.25x (bilinear, the same resampling the replay buffer uses) and
compared by the MEAN OF SQUARED PIXEL DIFFERENCES: the per-pixel difference of each RGB channel
as float, squared, averaged over all H x W x 3 values (0-255 scale). More than 30 -> "Yes" (the
action changed the screen), else "No". For taps a cursor icon (a black arrow with a white
outline, 250 px at a 1080-px-wide screen, i.e. ``CURSOR_FRACTION`` of the width; about 62 px
at 0.25x) is pasted with its tip at the touch point BEFORE downscaling. It is pasted on both s
and s' at the same place: so the image shows where the tap lands, while the cursor itself
cancels out of the difference (an opaque cursor only hides changes underneath it) and never
turns a no-op tap into "Yes".

Prompts (:func:`action_prompt`), one per action type, each ending "Answer only Yes or No.":
taps "There is a cursor in the screen. The touch point is located at [y, x]. Is this cursor
clicking on any interactive elements?"; swipes "... will this swipe scroll the screen?"; TYPE
"... will this Type action effectively input the text?"; HOME / BACK / ENTER "will this action
navigate home / go back / submit the input?"; status and invalid actions ask whether the screen
will change. The VLM sees s with the cursor drawn for taps (:func:`action_image`).

Fine-tuning (:func:`run_repr`): full fine-tune by default, or LoRA (peft) on the language
model's attention projections (``lora=True``). Loss: cross-entropy of the answer token at the
answer position over the full vocabulary (``loss="lm"``, plain supervised fine-tuning, keeps the
model a language model) or over the two answer tokens only (``loss="yes_no"``, a classifier
head on the same logits: fewer steps for a randomly initialised tiny model, which first has to
learn to say only Yes or No under "lm"). Train / validation split by episode
(``ReplayBuffer.split``). It reports held-out accuracy together with its balance: base rates,
per-class recall, the confusion matrix, balanced accuracy and the majority-class baseline, and
warns when a class's recall is below 0.2 or the majority baseline is at least as accurate (a
loss collapsed onto one class looks like a good accuracy otherwise). ``balance=True`` samples
the two classes equally (with replacement) instead of shuffling.

Class balance in practice (measured): it depends on the behaviour policy. On the simulated
phone (``world=phone``), 60 episodes x 8 steps of a mixed policy (half taps on clickable
elements, a fifth random taps, swipes, Back, Home, typing) gave 480 transitions with a "Yes"
rate of 0.60: taps on clickable elements 0.78, random taps 0.39, swipes 0.41, Back 0.83, Home
0.62 (already home: no change), typing 0.03 (usually no focused field). So for a policy that
mostly taps interactive elements (AutoUI-like) "No" is the minority class, and it gets rarer
as the policy improves; for random exploration it is the majority. :func:`label_balance`
measures it per action kind; ``run_repr`` logs it and stores it in ``metrics.json``; use
``balance=True`` when one class falls well under a third.

Outputs in ``out_dir``: ``repr_config.json``, ``labels.json`` (cached labels, keyed by the data
fingerprint), ``checkpoints/step-NNNNNN/`` + ``checkpoints/latest.json`` (weights as safetensors,
optimizer state, epoch / batch / step: a stopped run resumes from the latest one),
``final/`` (the fine-tuned VLM, LoRA merged, loadable with :meth:`VLM.load`) and
``metrics.json``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import shutil
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw
from tqdm.auto import tqdm

from android.actions import Action, ActionType, to_pixels
from digiq.device_utils import configure_threads
from digiq.models.vlm import MODEL_JSON, VLM, ImageLike
from digiq.prefetch import prefetch_workers, prefetched
from digiq.work_frames import WorkFrames, WorkFramesWriter, work_frames_path
from trajectories import ReplayBuffer
from trajectories.images import decode_image
from trajectories.manifest import atomic_write_bytes

log = logging.getLogger(__name__)

__all__ = [
    "CHANGE_THRESHOLD",
    "LABEL_SCALE",
    "CURSOR_FRACTION",
    "cursor_icon",
    "draw_cursor",
    "downscale",
    "screen_change",
    "yes_no_label",
    "action_prompt",
    "action_image",
    "work_size",
    "YesNoExample",
    "label_buffer",
    "label_balance",
    "yes_no_metrics",
    "evaluate_yes_no",
    "ReprConfig",
    "run_repr",
]

CHANGE_THRESHOLD = 30.0
LABEL_SCALE = 0.25
CURSOR_FRACTION = 250 / 1080
ANSWER_SUFFIX = " Answer only Yes or No."
PROMPT_VERSION = 1
# Arrow cursor outline in unit coordinates (x, y), tip at the origin.
_ARROW = [(0.0, 0.0), (0.0, 0.85), (0.24, 0.66), (0.4, 1.0), (0.55, 0.93), (0.4, 0.6), (0.68, 0.6)]


# ---------------------------------------------------------------------------------------------
# Cursor, labels, prompts
# ---------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=32)
def cursor_icon(size: int) -> Image.Image:
    """An RGBA arrow cursor ``size`` x ``size`` px, tip at the top-left pixel (transparent
    elsewhere): black fill, white outline so it shows on dark and light screens."""
    if size < 3:
        raise ValueError(f"cursor size must be >= 3 px, got {size}")
    icon = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(icon)
    points = [(x * (size - 1), y * (size - 1)) for x, y in _ARROW]
    draw.polygon(
        points, fill=(0, 0, 0, 255), outline=(255, 255, 255, 255), width=max(1, size // 24)
    )
    return icon


def _as_array(image: ImageLike, what: str) -> np.ndarray:
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    if isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3:
        return image[:, :, :3]
    raise ValueError(f"{what} must be a PIL image or an (H, W, 3) uint8 array")


def draw_cursor(image: ImageLike, touch_yx: tuple[float, float]) -> np.ndarray:
    """A copy of ``image`` with the cursor's tip pasted at normalized ``touch_yx`` = (y, x).

    The cursor is ``CURSOR_FRACTION`` of the image width (250 px on a 1080-px screen), so it
    looks the same whatever resolution the frame was decoded at.
    """
    arr = _as_array(image, "image")
    height, width = arr.shape[:2]
    x, y = to_pixels(touch_yx, (width, height))
    size = max(3, int(round(CURSOR_FRACTION * width)))
    icon = cursor_icon(size)
    canvas = Image.fromarray(arr.copy())
    canvas.paste(icon, (x, y), icon)
    return np.asarray(canvas)


def downscale(image: ImageLike, scale: float = LABEL_SCALE) -> np.ndarray:
    """Resize by ``scale`` (bilinear with PIL's reducing gap, as the replay buffer decodes)."""
    if not 0 < scale <= 1:
        raise ValueError(f"scale must be in (0, 1], got {scale}")
    arr = _as_array(image, "image")
    height, width = arr.shape[:2]
    size = (max(1, int(round(width * scale))), max(1, int(round(height * scale))))
    if size == (width, height):
        return arr
    pil = Image.fromarray(arr).resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    return np.asarray(pil)


def screen_change(before: ImageLike, after: ImageLike) -> float:
    """Mean over all H x W x 3 values of the squared per-channel difference (0-255 scale)."""
    a = _as_array(before, "before image").astype(np.float64)
    b = _as_array(after, "after image").astype(np.float64)
    if a.shape != b.shape:
        raise ValueError(f"images differ in size: {a.shape} vs {b.shape}")
    return float(np.mean((a - b) ** 2))


def yes_no_label(
    before: ImageLike,
    after: ImageLike,
    action: Action,
    *,
    threshold: float = CHANGE_THRESHOLD,
    scale: float = LABEL_SCALE,
) -> tuple[bool, float]:
    """(label, change): ``change`` = :func:`screen_change` of the 0.25x frames (cursor pasted
    on both for taps, before downscaling); label = ``change > threshold``."""
    a = _as_array(before, "before image")
    b = _as_array(after, "after image")
    if a.shape != b.shape:
        # A rotation or resolution change between frames is a change of the screen.
        return True, math.inf
    if action.is_tap:
        assert action.touch_yx is not None
        a = draw_cursor(a, action.touch_yx)
        b = draw_cursor(b, action.touch_yx)
    change = screen_change(downscale(a, scale), downscale(b, scale))
    return change > threshold, change


def _point(yx: tuple[float, float] | None) -> str:
    assert yx is not None
    return f"[{yx[0]:.4f}, {yx[1]:.4f}]"


def action_prompt(action: Action) -> str:
    """The yes/no question for ``action`` (per action type, see the module docstring)."""
    kind = action.action_type
    if kind is ActionType.DUAL_POINT and action.is_tap:
        text = (
            f"There is a cursor in the screen. The touch point is located at "
            f"{_point(action.touch_yx)}. Is this cursor clicking on any interactive elements?"
        )
    elif kind is ActionType.DUAL_POINT:
        text = (
            f"The action is a swipe from {_point(action.touch_yx)} to {_point(action.lift_yx)} "
            f"(the finger moves {action.scroll_direction()}). Will this swipe scroll the screen?"
        )
    elif kind is ActionType.TYPE:
        typed = action.typed_text if len(action.typed_text) <= 200 else action.typed_text[:200]
        text = (
            f'The action types the text "{typed}". Will this Type action effectively input '
            "the text?"
        )
    elif kind is ActionType.PRESS_HOME:
        text = "The action presses the Home button. Will this action navigate home?"
    elif kind is ActionType.PRESS_BACK:
        text = "The action presses the Back button. Will this action go back?"
    elif kind is ActionType.PRESS_ENTER:
        text = "The action presses Enter. Will this action submit the input?"
    elif kind is ActionType.STATUS_TASK_COMPLETE:
        text = "The agent declares the task complete. Will this action change the screen?"
    elif kind is ActionType.STATUS_TASK_IMPOSSIBLE:
        text = "The agent declares the task impossible. Will this action change the screen?"
    else:
        raw = action.raw if len(action.raw) <= 200 else action.raw[:200]
        text = (
            f'The agent wrote "{raw}", which is not a valid action. Will this action change '
            "the screen?"
        )
    return text + ANSWER_SUFFIX


def action_image(image: ImageLike, action: Action) -> np.ndarray:
    """What the VLM sees for ``action`` on screen ``image``: the cursor drawn for taps."""
    if action.is_tap:
        assert action.touch_yx is not None
        return draw_cursor(image, action.touch_yx)
    return _as_array(image, "image")


def work_size(width: int, height: int, image_size: int) -> tuple[int, int]:
    """Decode size (width, height) for VLM inputs: 0.25x like the labels, larger only when
    the VLM's input side needs it, never above the stored resolution."""
    scale = min(1.0, max(LABEL_SCALE, image_size / max(width, height)))
    return max(1, int(round(width * scale))), max(1, int(round(height * scale)))


# ---------------------------------------------------------------------------------------------
# Labelled dataset
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class YesNoExample:
    """One labelled transition: its id, action, question, label and the measured change."""

    transition_id: int
    episode_id: str
    action: Action
    prompt: str
    label: bool
    change: float
    width: int
    height: int


LABEL_BLOCK = 64  # transitions per labelling task: consecutive, so s' is the next s


def _label_block(
    buffer: ReplayBuffer,
    transition_ids: list[int],
    threshold: float,
    scale: float,
    on_frame: Callable[[int, np.ndarray], None] | None = None,
) -> list[tuple[bool, float, int, int]]:
    """(label, change, width, height) of consecutive transitions; full-resolution frames are
    decoded without the buffer's image cache (hundreds of 1080x2280 frames would take
    gigabytes), and s' of one step is s of the next, so the last frame is kept.
    ``on_frame(row, frame)`` sees each transition's full-resolution s (the work-frame cache)."""
    last: tuple[int, np.ndarray] | None = None

    def frame(row: int) -> np.ndarray:
        nonlocal last
        if last is None or last[0] != row:
            last = (row, decode_image(buffer.screenshot_bytes(row)))
        return last[1]

    out = []
    batch = buffer.batch(np.asarray(transition_ids, np.int64))
    for t, row in zip(batch, batch.rows, strict=True):
        before = frame(int(row))
        if on_frame is not None:
            on_frame(int(row), before)
        after = frame(int(row) + 1)
        label, change = yes_no_label(before, after, t.action, threshold=threshold, scale=scale)
        out.append((label, change, before.shape[1], before.shape[0]))
    return out


def label_buffer(
    buffer: ReplayBuffer,
    *,
    threshold: float = CHANGE_THRESHOLD,
    scale: float = LABEL_SCALE,
    progress: bool = False,
    cache: Path | None = None,
    on_frame: Callable[[int, np.ndarray], None] | None = None,
) -> list[YesNoExample]:
    """Label every transition of ``buffer`` with :func:`yes_no_label` (full-resolution frames).

    ``cache``: a JSON file reused when it was written for the same data fingerprint, threshold
    and scale (labelling decodes two full frames per transition, the slow part of the stage).
    ``on_frame(row, frame)``: called (from worker threads) with the full-resolution s of every
    transition labelled now (not those taken from ``cache``).
    """
    key = {
        "data_fingerprint": buffer.manifest.fingerprint(),
        "threshold": threshold,
        "scale": scale,
        "cursor_fraction": CURSOR_FRACTION,
    }
    cached: dict[int, tuple[bool, float, int, int]] = {}
    if cache is not None and cache.is_file():
        data = json.loads(cache.read_text())
        if all(data.get(k) == v for k, v in key.items()):
            cached = {
                int(r[0]): (bool(r[1]), float(r[2]), int(r[3]), int(r[4])) for r in data["rows"]
            }
    ids = buffer.transition_ids
    labelled: dict[int, tuple[bool, float, int, int]] = {}
    todo = [tid for tid in ids.tolist() if tid not in cached]
    # Decoding two full frames per transition is the stage's slow part and PIL and numpy
    # release the GIL there, so contiguous blocks are labelled on worker threads (about 1.8x
    # on 2 cores; the labels are the same, block by block, as a serial loop's).
    blocks = [todo[i : i + LABEL_BLOCK] for i in range(0, len(todo), LABEL_BLOCK)]
    labels = prefetched(
        lambda block: _label_block(buffer, block, threshold, scale, on_frame),
        blocks,
        ahead=prefetch_workers(),
    )
    with tqdm(total=len(ids), desc="labels", disable=not progress) as bar:
        bar.update(len(ids) - len(todo))
        for block, result in zip(blocks, labels, strict=True):
            labelled.update(zip(block, result, strict=True))
            bar.update(len(block))
    fresh = len(labelled)
    out: list[YesNoExample] = []
    for start in range(0, len(ids), 256):
        for t in buffer.batch(ids[start : start + 256]):
            hit = labelled.get(t.transition_id) or cached[t.transition_id]
            out.append(
                YesNoExample(
                    transition_id=t.transition_id,
                    episode_id=t.episode_id,
                    action=t.action,
                    prompt=action_prompt(t.action),
                    label=hit[0],
                    change=hit[1],
                    width=hit[2],
                    height=hit[3],
                )
            )
    if cache is not None and fresh:
        rows = [[e.transition_id, e.label, e.change, e.width, e.height] for e in out]
        seen = {e.transition_id for e in out}
        rows.extend([tid, *v] for tid, v in cached.items() if tid not in seen)
        atomic_write_bytes(cache, json.dumps({**key, "rows": rows}).encode())
    return out


def label_balance(examples: Sequence[YesNoExample]) -> dict[str, Any]:
    """Counts and base rates of the labels, overall and per action kind."""
    kinds: dict[str, list[int]] = {}
    for e in examples:
        if e.action.action_type is ActionType.DUAL_POINT:
            kind = "tap" if e.action.is_tap else "swipe"
        else:
            kind = e.action.action_type.name
        kinds.setdefault(kind, [0, 0])[0 if e.label else 1] += 1
    yes = sum(v[0] for v in kinds.values())
    total = len(examples)
    return {
        "n": total,
        "yes": yes,
        "no": total - yes,
        "yes_rate": yes / total if total else float("nan"),
        "per_kind": {k: {"yes": v[0], "no": v[1]} for k, v in sorted(kinds.items())},
    }


def yes_no_metrics(labels: np.ndarray, predictions: np.ndarray) -> dict[str, Any]:
    """Accuracy with its balance: confusion matrix, per-class recall, base rate, majority
    baseline, balanced accuracy and warnings when the model looks collapsed."""
    labels = np.asarray(labels, bool)
    predictions = np.asarray(predictions, bool)
    n = len(labels)
    tp = int(np.sum(labels & predictions))
    fn = int(np.sum(labels & ~predictions))
    fp = int(np.sum(~labels & predictions))
    tn = int(np.sum(~labels & ~predictions))
    yes_rate = (tp + fn) / n if n else float("nan")
    recall_yes = tp / (tp + fn) if tp + fn else float("nan")
    recall_no = tn / (tn + fp) if tn + fp else float("nan")
    accuracy = (tp + tn) / n if n else float("nan")
    majority = max(yes_rate, 1 - yes_rate) if n else float("nan")
    present = [r for r in (recall_yes, recall_no) if not math.isnan(r)]
    warnings_: list[str] = []
    for name, recall in (("Yes", recall_yes), ("No", recall_no)):
        if not math.isnan(recall) and recall < 0.2:
            warnings_.append(f"recall of class {name} is {recall:.2f} (< 0.2): collapsed?")
    if n and accuracy <= majority:
        warnings_.append(
            f"accuracy {accuracy:.3f} does not beat the majority-class baseline {majority:.3f}"
        )
    return {
        "n": n,
        "accuracy": accuracy,
        "balanced_accuracy": float(np.mean(present)) if present else float("nan"),
        "majority_baseline": majority,
        "yes_rate": yes_rate,
        "predicted_yes_rate": float(np.mean(predictions)) if n else float("nan"),
        "recall_yes": recall_yes,
        "recall_no": recall_no,
        "confusion": {"tp": tp, "fn": fn, "fp": fp, "tn": tn},
        "warnings": warnings_,
    }


def _render(
    buffer: ReplayBuffer,
    examples: Sequence[YesNoExample],
    image_size: int,
    frames: WorkFrames | None = None,
) -> list[np.ndarray]:
    batch = buffer.batch([e.transition_id for e in examples])
    out = []
    for row, e in zip(batch.rows.tolist(), examples, strict=True):
        size = work_size(e.width, e.height, image_size)
        frame = frames.get(row, size) if frames is not None else None
        if frame is None:
            frame = buffer.image(row, size)
        out.append(action_image(frame, e.action))
    return out


def evaluate_yes_no(
    vlm: VLM,
    buffer: ReplayBuffer,
    examples: Sequence[YesNoExample],
    *,
    batch_size: int = 16,
    progress: bool = False,
    frames: WorkFrames | None = None,
) -> dict[str, Any]:
    """:func:`yes_no_metrics` of the VLM's Yes-vs-No logits on ``examples`` (``frames``: the
    work-size frames kept by the labelling pass, :mod:`digiq.work_frames`)."""
    preds: list[np.ndarray] = []
    chunks = [examples[start : start + batch_size] for start in range(0, len(examples), batch_size)]
    rendered = prefetched(lambda c: _render(buffer, c, vlm.image_size, frames), chunks)
    for chunk, images in tqdm(
        zip(chunks, rendered, strict=True), total=len(chunks), desc="eval", disable=not progress
    ):
        logits = vlm.yes_no_logits(images, [e.prompt for e in chunk], batch_size=batch_size)
        preds.append((logits[:, 0] > logits[:, 1]).numpy())
    predictions = np.concatenate(preds) if preds else np.zeros(0, bool)
    return yes_no_metrics(np.array([e.label for e in examples], bool), predictions)


# ---------------------------------------------------------------------------------------------
# Fine-tuning
# ---------------------------------------------------------------------------------------------

# Config fields that may change between a run and its resumption.
_RESUME_FREE = {
    "epochs",
    "progress",
    "device",
    "precision",
    "checkpoint_every",
    "resume",
    "eval_before",
    "eval_every_epoch",
    "cache_dir",
}


@dataclass
class ReprConfig:
    """Settings of the representation fine-tuning stage (``lr`` etc. default to the preset's
    ``training`` section when None). ``cache_dir``: a run's ``cache/``, where the labelling
    pass keeps every state's work-size frame for training and the features stage
    (:mod:`digiq.work_frames`); None decodes them again."""

    data_dir: str
    out_dir: str
    preset: str = "tiny"
    preset_overrides: dict[str, Any] = field(default_factory=dict)
    epochs: int | None = None
    batch_size: int | None = None
    grad_accum: int | None = None
    lr: float | None = None
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    loss: str = "lm"
    lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    balance: bool = False
    val_fraction: float = 0.1
    split_seed: int = 0
    seed: int = 0
    threshold: float = CHANGE_THRESHOLD
    checkpoint_every: int = 0
    eval_before: bool = True
    eval_every_epoch: bool = True
    resume: bool = True
    progress: bool = True
    device: str | None = None
    precision: str = "auto"
    cache_dir: str | None = None


def _lora_wrap(vlm: VLM, r: int, alpha: int) -> None:
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=0.0,
        target_modules=r".*language_model.*\.self_attn\.(q_proj|k_proj|v_proj|o_proj)",
    )
    with warnings.catch_warnings():
        # transformers' deprecation notice for an attribute peft reads: not ours to fix.
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")
        vlm.model = get_peft_model(vlm.core_model, config)


def _epoch_order(
    examples: Sequence[YesNoExample], seed: int, epoch: int, balance: bool
) -> np.ndarray:
    rng = np.random.default_rng([seed, epoch])
    n = len(examples)
    if not balance:
        return rng.permutation(n)
    labels = np.array([e.label for e in examples], bool)
    counts = np.array([np.sum(~labels), np.sum(labels)], float)
    if counts.min() == 0:
        log.warning("balanced sampling asked for, but the training set has one class only")
        return rng.permutation(n)
    weights = 1.0 / counts[labels.astype(int)]
    return rng.choice(n, size=n, replace=True, p=weights / weights.sum())


class _Checkpoints:
    """``checkpoints/step-NNNNNN/`` folders plus an atomically replaced ``latest.json``."""

    def __init__(self, root: Path) -> None:
        self.root = root / "checkpoints"

    def latest(self) -> tuple[Path, dict[str, Any]] | None:
        pointer = self.root / "latest.json"
        if not pointer.is_file():
            return None
        state = json.loads(pointer.read_text())
        path = self.root / state["dir"]
        if not path.is_dir():
            raise FileNotFoundError(f"{pointer} points at missing checkpoint {path}")
        return path, state

    def save(
        self,
        vlm: VLM,
        optimizer: torch.optim.Optimizer,
        state: dict[str, Any],
        lora: bool,
        config: dict[str, Any],
    ) -> Path:
        """Write a complete checkpoint folder (under a temporary name, then renamed), then
        point ``latest.json`` at it: a crash leaves the previous checkpoint in charge."""
        name = f"step-{state['global_step']:06d}"
        path = self.root / name
        tmp = self.root / f".tmp-{name}"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        if lora:
            vlm.model.save_pretrained(tmp / "adapter")  # peft writes safetensors
        else:
            vlm.save(tmp / "model")
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        (tmp / "repr_config.json").write_text(json.dumps(config, indent=1))
        (tmp / "trainer_state.json").write_text(json.dumps(state, indent=1))
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)
        atomic_write_bytes(self.root / "latest.json", json.dumps({**state, "dir": name}).encode())
        for old in self.root.glob("step-*"):
            if old.name != name:
                shutil.rmtree(old, ignore_errors=True)
        return path


def _finished_run(
    out: Path, latest: tuple[Path, dict[str, Any]] | None, epochs: int
) -> dict[str, Any] | None:
    """The stored metrics when ``out`` already holds the final model of this many epochs (so
    re-running a finished stage does not save new weights under a new model id)."""
    metrics_path = out / "metrics.json"
    if latest is None or not metrics_path.is_file() or not (out / "final" / MODEL_JSON).is_file():
        return None
    metrics = json.loads(metrics_path.read_text())
    state = latest[1]
    if (
        state["epoch"] == epochs == metrics.get("epochs")
        and metrics.get("steps") == state["global_step"]
    ):
        return metrics
    return None


def _config_dict(config: ReprConfig) -> dict[str, Any]:
    return json.loads(json.dumps(dataclasses.asdict(config), default=str))


def run_repr(config: ReprConfig, *, vlm: VLM | None = None) -> dict[str, Any]:
    """Label the data, fine-tune the VLM on yes/no, evaluate, save; returns the metrics dict.

    ``vlm`` (optional) is the starting model; by default the preset's VLM. A run whose
    ``out_dir`` has checkpoints from the same configuration resumes from the latest one (epoch,
    batch, step, optimizer state); a different configuration is an error naming the fields
    (``resume=False`` starts over and deletes them).
    """
    from digiq.models.presets import get_preset

    started = time.perf_counter()
    configure_threads()
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    preset = get_preset(config.preset, require=["vlm"], **config.preset_overrides)
    defaults = preset.training
    epochs = config.epochs if config.epochs is not None else defaults.repr_epochs
    batch_size = config.batch_size or defaults.repr_batch_size
    grad_accum = config.grad_accum or defaults.repr_grad_accum
    lr = config.lr if config.lr is not None else defaults.repr_lr
    if config.loss not in ("lm", "yes_no"):
        raise ValueError(f"loss must be 'lm' or 'yes_no', got {config.loss!r}")
    if epochs < 0 or batch_size < 1 or grad_accum < 1 or lr <= 0:
        raise ValueError("epochs >= 0, batch_size >= 1, grad_accum >= 1 and lr > 0 are required")

    buffer = ReplayBuffer.open(config.data_dir)
    checkpoints = _Checkpoints(out)
    config_path = out / "repr_config.json"
    current = {**_config_dict(config), "data_fingerprint": buffer.manifest.fingerprint()}
    if not config.resume and checkpoints.root.exists():
        shutil.rmtree(checkpoints.root)
    latest = checkpoints.latest()
    if latest is not None and config_path.is_file():
        saved = json.loads(config_path.read_text())
        diff = sorted(
            k
            for k in set(saved) | set(current)
            if k not in _RESUME_FREE and saved.get(k) != current.get(k)
        )
        if diff:
            raise ValueError(
                f"{out} holds checkpoints of a different configuration ({', '.join(diff)} differ);"
                " use another out_dir or resume=False to start over"
            )
    atomic_write_bytes(config_path, json.dumps(current, indent=1).encode())
    done = _finished_run(out, latest, epochs)
    if done is not None:
        log.info("representation fine-tuning in %s is already complete (%d epochs)", out, epochs)
        return done

    train_view, val_view = buffer.split(config.val_fraction, seed=config.split_seed)
    fingerprint = buffer.manifest.fingerprint()
    frames, writer = None, None
    if config.cache_dir:
        side = preset.vlm.image_size
        frames_path = work_frames_path(config.cache_dir, side)
        frames = WorkFrames.open(frames_path, fingerprint)
        if frames is None:
            writer = WorkFramesWriter(frames_path, lambda w, h: work_size(w, h, side))
    try:
        examples = label_buffer(
            buffer,
            threshold=config.threshold,
            progress=config.progress,
            cache=out / "labels.json",
            on_frame=writer.add if writer is not None else None,
        )
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    if writer is not None and len(writer):
        writer.finish(fingerprint)
        frames = WorkFrames.open(frames_path, fingerprint)
        log.info("kept %d work-size frames in %s", len(writer), frames_path)
    elif writer is not None:
        writer.abort()  # every label came from labels.json: nothing was decoded
    train_ids = set(train_view.transition_ids.tolist())
    train_ex = [e for e in examples if e.transition_id in train_ids]
    val_ex = [e for e in examples if e.transition_id not in train_ids]
    if not train_ex:
        raise ValueError(f"{config.data_dir}: no training transitions after the split")
    balance = {"train": label_balance(train_ex), "val": label_balance(val_ex)}
    log.info(
        "yes/no labels: train %d (yes rate %.3f), val %d (yes rate %.3f)",
        len(train_ex),
        balance["train"]["yes_rate"],
        len(val_ex),
        balance["val"]["yes_rate"],
    )

    torch.manual_seed(config.seed)
    state: dict[str, Any] = {"epoch": 0, "batch": 0, "global_step": 0, "history": []}
    if latest is not None:
        path, state = latest
        log.info("resuming representation fine-tuning from %s", path)
        if config.lora:
            from peft import PeftModel

            vlm = VLM.load(out / "base", device=config.device, precision=config.precision)
            vlm.model = PeftModel.from_pretrained(
                vlm.core_model, path / "adapter", is_trainable=True
            )
        else:
            vlm = VLM.load(path / "model", device=config.device, precision=config.precision)
    else:
        if vlm is None:
            vlm = VLM.from_preset(preset, device=config.device, precision=config.precision)
        if config.lora:
            vlm.save(out / "base")
    if config.lora and latest is None:
        _lora_wrap(vlm, config.lora_r, config.lora_alpha)
    vlm.preset = preset.name

    val_before = state.get("val_before")
    if config.eval_before and val_ex and latest is None:
        val_before = evaluate_yes_no(
            vlm, buffer, val_ex, batch_size=batch_size, progress=config.progress, frames=frames
        )
    params = [p for p in vlm.model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=config.weight_decay)
    if latest is not None:
        optimizer.load_state_dict(torch.load(latest[0] / "optimizer.pt", weights_only=True))
    yes_no = torch.tensor(vlm.yes_no_token_ids)
    batches_per_epoch = math.ceil(len(train_ex) / batch_size)
    epoch, first_batch, global_step = state["epoch"], state["batch"], state["global_step"]
    history: list[dict[str, Any]] = list(state.get("history", []))

    def save_checkpoint(next_epoch: int, next_batch: int) -> None:
        checkpoints.save(
            vlm,
            optimizer,
            {
                "epoch": next_epoch,
                "batch": next_batch,
                "global_step": global_step,
                "history": history,
                "val_before": val_before,
            },
            config.lora,
            current,
        )

    last_val: dict[str, Any] | None = None
    while epoch < epochs:
        order = _epoch_order(train_ex, config.seed, epoch, config.balance)
        vlm.model.train()
        losses: list[float] = []
        bar = tqdm(
            range(first_batch, batches_per_epoch),
            desc=f"repr epoch {epoch + 1}/{epochs}",
            disable=not config.progress,
        )
        optimizer.zero_grad(set_to_none=True)
        chunks = (
            [train_ex[i] for i in order[b * batch_size : (b + 1) * batch_size]]
            for b in range(first_batch, batches_per_epoch)
        )
        rendered = prefetched(lambda c: (c, _render(buffer, c, vlm.image_size, frames)), chunks)
        for b, (chunk, images) in zip(bar, rendered, strict=True):
            batch = vlm.prepare(images, [e.prompt for e in chunk])
            outputs = vlm.forward_answer(batch, layer=-1, logits=True)
            assert outputs.logits is not None
            targets = yes_no[[0 if e.label else 1 for e in chunk]].to(vlm.device)
            logits = outputs.logits.float()
            if config.loss == "yes_no":
                logits = logits[:, yes_no.to(logits.device)]
                targets = (targets != yes_no[0].to(targets.device)).long()
            loss = torch.nn.functional.cross_entropy(logits, targets)
            (loss / grad_accum).backward()
            losses.append(float(loss.detach()))
            last_of_epoch = b == batches_per_epoch - 1
            if (b + 1) % grad_accum == 0 or last_of_epoch:
                torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                global_step += 1
                bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
                if (
                    config.checkpoint_every
                    and global_step % config.checkpoint_every == 0
                    and not last_of_epoch
                ):
                    save_checkpoint(epoch, b + 1)
        record: dict[str, Any] = {
            "epoch": epoch + 1,
            "train_loss": float(np.mean(losses)) if losses else float("nan"),
            "steps": global_step,
        }
        last_val = None
        if val_ex and (config.eval_every_epoch or epoch == epochs - 1):
            last_val = evaluate_yes_no(vlm, buffer, val_ex, batch_size=batch_size, frames=frames)
            record["val_accuracy"] = last_val["accuracy"]
            record["val_balanced_accuracy"] = last_val["balanced_accuracy"]
        history.append(record)
        log.info("repr epoch %d: %s", epoch + 1, record)
        epoch, first_batch = epoch + 1, 0
        save_checkpoint(epoch, 0)

    vlm.model.eval()
    if config.lora:
        vlm.model = vlm.model.merge_and_unload()
    # The last epoch's evaluation is the final one (merging LoRA changes outputs by rounding only).
    val_metrics = last_val
    if val_metrics is None and val_ex:
        val_metrics = evaluate_yes_no(
            vlm, buffer, val_ex, batch_size=batch_size, progress=config.progress, frames=frames
        )
    if val_metrics:
        for warning in val_metrics["warnings"]:
            log.warning("representation fine-tuning, held-out yes/no: %s", warning)
    final = vlm.save(
        out / "final",
        extra={"repr": {"config": current, "val_accuracy": (val_metrics or {}).get("accuracy")}},
    )
    metrics = {
        "preset": preset.name,
        "model_id": vlm.model_id,
        "checkpoint": str(final),
        "epochs": epochs,
        "steps": global_step,
        "batch_size": batch_size,
        "grad_accum": grad_accum,
        "lr": lr,
        "lora": config.lora,
        "balance": config.balance,
        "labels": balance,
        "val_before": val_before,
        "val": val_metrics,
        "history": history,
        "seconds": time.perf_counter() - started,
    }
    atomic_write_bytes(out / "metrics.json", json.dumps(metrics, indent=1, default=float).encode())
    return metrics
