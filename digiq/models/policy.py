"""The AutoUI-style policy: a T5 encoder-decoder reading the screen and writing AutoUI actions.

AutoUI-Base (the behaviour policy of DigiRL / Digi-Q) is a T5 encoder-decoder whose encoder
input is the text ``"Previous Actions: <last action> Goal: <task>"`` with an image feature of
the screenshot fused in; its decoder writes an AutoUI action string
(``Action Plan: [...] ; Action Decision: "action_type": ...``). :class:`PolicyModel` is that
model, either built from config (the ``tiny`` preset, CPU-sized) or loaded from a local T5
checkpoint (``local_files_only``, never a download, never a fallback).

Architecture (why each piece is there):

* Screen -> encoder tokens. ``image_mode="grid-cnn"`` (tiny preset): the screenshot is resized
  to ``image_width`` x ``image_height`` (96 x 192, portrait) and a 4-stage stride-2 CNN turns
  it into a grid of patch features (12 rows x 6 columns = 72 tokens for 96 x 192), projected to
  ``d_model`` with learned row and column embeddings added, and PREPENDED to the text token
  embeddings. It trains end to end with the policy, so the decoder can find WHERE to tap by
  cross-attending to the patch that holds the target (T5's relative position bias is 1-D and
  cannot say where a patch is, hence the 2-D embeddings). ``image_mode="frozen"`` (real
  presets): a frozen encoder from :mod:`digiq.models.image_encoder` (BLIP-2 pooled features as
  published, or the seeded small CNN) gives one vector per screen, linearly projected to
  ``image_tokens`` encoder tokens, which is how AutoUI fuses its BLIP-2 feature.
* Copying typed text (``copy=True``). Typed text (a site, a search query) must be copied from
  the goal, including queries never seen in training. A pointer-generator head (See et al.,
  2017) mixes T5's vocabulary distribution with a copy distribution over the goal's tokens:
  ``p(w) = g * softmax(lm_logits)(w) + (1 - g) * sum_{s: x_s = w} attn(s)``, where ``attn`` is
  a single-head attention from the decoder state to the encoder's TEXT positions and the gate
  ``g`` is a sigmoid of [decoder state, attended context]. The copy attention's query and keys
  also get "shifted-token" terms, initialised to the identity: the embedding of the last token
  WRITTEN against the embedding of the token BEFORE each input position, so "copy the token
  that follows the one just copied" (sequential copying of an unseen multi-token query) is the
  starting point rather than something to discover. That term compares ONE token, so where the
  goal holds a token twice it cannot tell the two places apart, and the tiny policy typed
  "oral-brush" for 'oral-b electric toothbrush' (after "b", the token that follows the other
  "b") or "series rival rival rival 600" (measured: 20-48% of the typed search queries in
  qs30-qs34's evaluations were the goal's query; the 1024-token tokenizer splits an unseen
  word into letters, "oxo" into o, x, o). ``copy_match`` = K > 0 adds a learned bias per MATCH
  LENGTH to the copy scores of the GOAL's positions (after the last "Goal:"): how many of the
  last K tokens written equal the K goal tokens before that position (exact ids, from the
  whole written prefix, in teacher forcing and in generation alike), so the copy continues the
  longest matching span of the goal. Quote characters and the AutoUI ``"typed_text": "``
  opening count as one token for this, so the query's first letters match after either quote.
  It is the exact-match form of pointer networks' location-based attention; the bias starts at
  ``4 * length`` and is trained with the rest. The END of the typed text (``copy_close``, on
  for new policies): the goal's CLOSING quote is a copy position like the query's tokens, with
  the bias of the span it ends, and copying it writes the typed text's closing quote ``"``. So
  once the whole query has been copied, the longest match is the closing quote and the copy
  head closes the text; once that quote is written no span continues (the goal's ", and
  select..." after its closing quote had the longest match, and 3 of Digi-Q's 46 typed
  queries in qs61 went on with it), so the action ends there. Quotes pair up in the goal (the
  first opens, the next of the same character closes; an apostrophe between letters,
  "levi's", is neither); other quotes get no bias. Before it, the closing quote got no bias
  and a gate term pushed towards GENERATING the closing quote once the span reached it; but
  where the query's last token also occurs inside it ("toothbrush" = to o t h b r us h), a
  one-token match kept the copy attention inside the query, the gate kept copying, and the
  policy typed "toothbrushbrushbrush"; where the gate did switch, the vocabulary head gave the
  closing quote only p ~ 0.03-0.88 after an unseen query
  (measured on qs49's evaluation states; README, "Ending the typed query"). Policies saved
  before ``copy_close`` existed load with it off and keep that gate term.
  Web ADDRESSES (``copy_address``, on for new policies) are copied the same way: the tokenizer
  splits the space off before an address ("Go to newegg.com" gives a lone space, then the
  glued pieces of "newegg.com", the same tokens as the typed text), that space matches the
  typed text's opening like a quote, and the token after the address (",", EOS) is a closing
  position that writes ``"``. Before it, the goal's " newegg" was one token with its space and
  the typed "newegg" two others, so an address was never copied, only generated, and qs63's
  Digi-Q typed "newgeg.com" 32 times. An address is a run of glued letter/digit pieces, "."
  and "-" after a lone space, starting with a letter and holding a "." before a letter (so
  "e.g." counts too: harmless unless typed). Policies saved before it load with it off.
  ``copy_source="goal"`` lets the head copy only the goal's tokens, not the previous actions'
  coordinates and typed texts ("hot wheels0.1000"); the default, "input", copies from the
  whole input text (README, "Two previous actions: tried, not adopted").
  The model's ``logits`` are then ``log p`` (already normalised), so generation, temperature
  and teacher forcing treat it like any T5. Input and output embeddings are tied (T5's default).
* Tokenizer. A byte-level BPE trained with :func:`digiq.models.train_tokenizer` on AutoUI
  strings of every action type (the data's coordinates and typed texts, random ones) and policy
  input texts, then made copy-friendly: the pre-tokenizer splits letter runs (with their
  leading space), single digits and single punctuation characters, and has no ``'s``
  contraction rule, so a quoted query is the same token sequence in the goal and in
  ``typed_text`` whichever quote character opens it (``'samsung`` would otherwise become
  ``'s`` + ``amsung``), and every word after the first is one ``" word"`` unit, which keeps
  sequential copying unambiguous (a separate space token would be followed by a different
  word at every position). The constant parts of AutoUI
  strings are added tokens (e.g. the whole ``Action Plan: [DUAL_POINT] ; Action Decision:
  "action_type": "DUAL_POINT", "touch_point": "[`` prefix, or a complete PRESS_BACK string), and
  so are the 101 coordinates at 2 decimals (``0.1200``): a tap at 2 decimals is 11 tokens,
  PRESS_BACK is one.
* Coordinates for the tiny preset. The AutoUI format is unchanged (4 decimals), but training
  TARGETS (and the previous actions in the input text) have their coordinates rounded to
  ``round_coordinates`` = 2 decimals (``[0.1200, 0.5600]``): the last two digits are then
  constant, the model spends its capacity on the two that matter, and 0.01 of the screen is
  far below the 0.14 AitW match radius and the size of any tappable element. Real presets
  keep 4 decimals (``round_coordinates=None``).

API: :meth:`PolicyModel.build` / :meth:`from_preset`, :meth:`load`, :meth:`save`,
:meth:`prepare`, :meth:`token_logprobs`, :meth:`sequence_logprobs`, :meth:`loss`,
:meth:`sample`, :meth:`greedy`, :meth:`input_text`, :meth:`target_text`.

Log-probabilities returned by :meth:`sample` and :meth:`greedy` are those of the returned
STRING under the policy at temperature 1 (``log pi(a | s)``, no clamp), computed by a second,
teacher-forced pass over the string's canonical tokenization: exactly what
:meth:`sequence_logprobs` gives for that string, whatever token path the sampler took.

Saved folder (:meth:`save`): ``model.safetensors`` (every trainable weight: T5, image encoder,
projections, copy head), ``t5_config.json``, the tokenizer files and ``digiq_policy.json``
(format, preset, the :class:`PolicyConfig`, image size, max lengths, tokenizer figures).
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import json
import logging
import math
import os
import random
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from android.actions import (
    Action,
    ActionType,
    parse_autoui,
    policy_input_text,
    to_autoui,
    to_autoui_decision,
)
from digiq.device_utils import Precision, select_precision

if TYPE_CHECKING:  # transformers is imported only when a model is built or loaded
    from digiq.models.autoui_grammar import AutoUIGrammar, AutoUIGrammarProcessor

log = logging.getLogger(__name__)

__all__ = [
    "POLICY_JSON",
    "POLICY_FORMAT",
    "PolicyConfig",
    "PolicyBatch",
    "PolicyModel",
    "ImageLike",
    "round_action",
    "policy_corpus",
    "build_policy_tokenizer",
    "autoui_added_tokens",
    "coordinate_tokens",
    "screen_pixels",
    "is_policy_dir",
    "span_match_lengths",
]

POLICY_JSON = "digiq_policy.json"
POLICY_FORMAT = "digiq-policy-1"
WEIGHTS_FILE = "model.safetensors"
T5_CONFIG_FILE = "t5_config.json"
IMAGE_MODES = ("grid-cnn", "frozen")
COPY_SOURCES = ("goal", "input")
ImageLike = Image.Image | np.ndarray

# Letter runs, digit runs and single punctuation characters, each with its leading space if
# any; other whitespace one character at a time. No contraction rule ('s, 't...).
# Coordinates at 2 decimals ("0.0000", "0.0100" ... "1.0000") are added tokens (see below).
PRE_TOKENIZER_PATTERN = r" ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]|\s"
# With ``copy_address``: the space before a web address ("Go to newegg.com") is its own token,
# so the address is the same glued tokens in the goal and in ``typed_text`` ("newegg.com").
ADDRESS_PRE_TOKENIZER_PATTERN = r" (?=\p{L}[\p{L}\p{N}-]*\.\p{L})|" + PRE_TOKENIZER_PATTERN
_PIXEL_MEAN = 0.5
_PIXEL_STD = 0.25


# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------


@dataclass
class PolicyConfig:
    """Everything needed to rebuild a :class:`PolicyModel` (stored in ``digiq_policy.json``).

    T5 sizes (``d_model`` ... ``num_heads``) are used when building from config; a loaded T5
    checkpoint (``t5_path``) brings its own. ``image_mode``: "grid-cnn" (trained CNN patch
    tokens) or "frozen" (``frozen_image`` = an ``ImageFeatureSpec`` as a dict, projected to
    ``image_tokens`` tokens). ``round_coordinates``: decimals of the coordinates in training
    targets and in the previous actions of the input text (None: keep 4).
    """

    preset: str = "tiny"
    d_model: int = 128
    d_ff: int = 256
    num_layers: int = 3
    num_decoder_layers: int = 3
    num_heads: int = 4
    d_kv: int = 32
    dropout: float = 0.0
    vocab_size: int = 1024
    t5_path: str | None = None
    image_mode: str = "grid-cnn"
    image_width: int = 96
    image_height: int = 192
    cnn_channels: tuple[int, ...] = (48, 96, 128)
    frozen_image: dict[str, Any] | None = None
    image_tokens: int = 4
    copy: bool = True
    # Longest span-match the copy head's bias looks at (0: none; see the module docstring).
    # Policies saved before it existed load with 0.
    copy_match: int = 6
    # Where the copy head may copy from: "input" (every text token, previous actions included:
    # their coordinates and typed texts) or "goal" (the text after the last "Goal:"; typed
    # text in AitW tasks is the goal's query or site). "goal" was tried in one quickstart run
    # (qs56) and is not the default (README, "Two previous actions: tried, not adopted").
    copy_source: str = "input"
    # The goal's CLOSING quote is copyable and writes the typed text's closing quote, with the
    # span-match bias of the span it ends (needs copy_match > 0; see the module docstring).
    # Off: the quote gets no bias and a gate term pushes towards generating the closing quote
    # (policies saved before the field load with it off).
    copy_close: bool = True
    # Web addresses in the goal ("Go to newegg.com") are copied like quoted queries: the
    # tokenizer splits the space off before an address, that space opens it for the span match
    # and the token after it closes it (writes '"'). Needs copy_close. Off: an address is
    # generated from the vocabulary (policies saved before the field load with it off).
    copy_address: bool = True
    max_input_tokens: int = 160
    max_target_tokens: int = 48
    round_coordinates: int | None = 2
    history: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        self.cnn_channels = tuple(int(c) for c in self.cnn_channels)
        if self.image_mode not in IMAGE_MODES:
            raise ValueError(
                f"PolicyConfig.image_mode must be one of {IMAGE_MODES}, got {self.image_mode!r}"
            )
        if self.image_mode == "frozen" and not self.frozen_image:
            raise ValueError("PolicyConfig.image_mode 'frozen' needs frozen_image (a spec dict)")
        stride = self.cnn_stride
        if self.image_mode == "grid-cnn" and (
            self.image_width % stride or self.image_height % stride
        ):
            raise ValueError(
                f"image {self.image_width}x{self.image_height} must be a multiple of {stride} "
                f"(the CNN's total stride with {len(self.cnn_channels)} stages)"
            )
        for name in ("d_model", "num_layers", "num_heads", "d_kv", "image_tokens", "history"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"PolicyConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.max_input_tokens < 8 or self.max_target_tokens < 8:
            raise ValueError("PolicyConfig.max_input_tokens / max_target_tokens must be >= 8")
        if self.copy_source not in COPY_SOURCES:
            raise ValueError(
                f"PolicyConfig.copy_source must be one of {COPY_SOURCES}, got {self.copy_source!r}"
            )
        if not 0 <= int(self.copy_match) <= 16:
            raise ValueError(f"PolicyConfig.copy_match must be 0..16, got {self.copy_match}")
        if self.round_coordinates is not None and not 1 <= self.round_coordinates <= 4:
            raise ValueError(
                f"PolicyConfig.round_coordinates must be 1..4 or None, got {self.round_coordinates}"
            )

    @property
    def span_match(self) -> int:
        """The copy head's span-match length in effect (0 without a copy head)."""
        return int(self.copy_match) if self.copy else 0

    @property
    def closes_by_copy(self) -> bool:
        """Whether the copy head ends a typed text by copying the goal's closing quote."""
        return bool(self.copy_close) and self.span_match > 0

    @property
    def copies_addresses(self) -> bool:
        """Whether goal web addresses are split off by the tokenizer and copied (and closed)."""
        return bool(self.copy_address) and self.closes_by_copy

    @property
    def cnn_stride(self) -> int:
        """Total stride of the grid CNN: 4 (patchify stage) x 2 per further stage."""
        return 4 * 2 ** (len(self.cnn_channels) - 1)

    @property
    def grid(self) -> tuple[int, int]:
        """(rows, columns) of the CNN patch grid."""
        stride = self.cnn_stride
        return self.image_height // stride, self.image_width // stride

    @property
    def num_image_tokens(self) -> int:
        if self.image_mode == "grid-cnn":
            rows, cols = self.grid
            return rows * cols
        return self.image_tokens

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["cnn_channels"] = list(self.cnn_channels)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PolicyConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown PolicyConfig fields {unknown}")
        # Saved before the fields existed: no match bias, copies from the whole input, ends a
        # typed text by generating its closing quote, generates web addresses.
        data = {
            "copy_match": 0,
            "copy_source": "input",
            "copy_close": False,
            "copy_address": False,
            **data,
        }
        return cls(**data)


def is_policy_dir(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` holds a saved policy (its ``digiq_policy.json``)."""
    return (Path(path) / POLICY_JSON).is_file()


# ---------------------------------------------------------------------------------------------
# Text: coordinates, corpus, tokenizer
# ---------------------------------------------------------------------------------------------


def round_action(action: Action, decimals: int | None) -> Action:
    """``action`` with its DUAL_POINT coordinates rounded to ``decimals`` (None: unchanged)."""
    if decimals is None or action.action_type is not ActionType.DUAL_POINT:
        return action
    assert action.touch_yx is not None and action.lift_yx is not None
    touch = (round(action.touch_yx[0], decimals), round(action.touch_yx[1], decimals))
    lift = (round(action.lift_yx[0], decimals), round(action.lift_yx[1], decimals))
    return Action.swipe(touch, lift)


_TYPE_NAMES = {
    ActionType.DUAL_POINT: "DUAL_POINT",
    ActionType.TYPE: "TYPE",
    ActionType.PRESS_BACK: "PRESS_BACK",
    ActionType.PRESS_HOME: "PRESS_HOME",
    ActionType.PRESS_ENTER: "PRESS_ENTER",
    ActionType.STATUS_TASK_COMPLETE: "STATUS_TASK_COMPLETE",
    ActionType.STATUS_TASK_IMPOSSIBLE: "TASK_IMPOSSIBLE",
}


_MARK = "QQMARKQQ"
#: The action types whose AutoUI string is one constant (no point, no text).
SINGLE_STRING_TYPES = (
    ActionType.PRESS_BACK,
    ActionType.PRESS_HOME,
    ActionType.PRESS_ENTER,
    ActionType.STATUS_TASK_COMPLETE,
    ActionType.STATUS_TASK_IMPOSSIBLE,
)


def autoui_added_tokens() -> list[str]:
    """The constant chunks of AutoUI strings that become single tokens (longest first).

    Derived from :func:`android.actions.to_autoui` itself (so they cannot drift from the
    format): for each action type the full string (or its constant prefix, for DUAL_POINT and
    TYPE), with and without the ``Action Plan`` part (previous actions are written without it),
    plus the two constant joints of a DUAL_POINT.
    """
    marker_y, marker_x = 0.1234, 0.5678
    tap = Action.tap(marker_y, marker_x)
    tap_full = to_autoui(tap)
    point = f"{marker_y:.4f}, {marker_x:.4f}"
    first = tap_full.index(point)
    second = tap_full.index(point, first + len(point))
    typed = to_autoui(Action.type(_MARK))
    chunks = {
        tap_full[:first],
        tap_full[first + len(point) : second],
        tap_full[second + len(point) :],
        typed[: typed.index(_MARK)],
    }
    decision = to_autoui_decision(tap)
    chunks.add(decision[: decision.index(point)])
    typed_decision = to_autoui_decision(Action.type(_MARK))
    chunks.add(typed_decision[: typed_decision.index(_MARK)])
    for kind in SINGLE_STRING_TYPES:
        action = Action(kind)
        chunks.add(to_autoui(action))
        chunks.add(to_autoui_decision(action))
    return sorted(chunks, key=lambda c: (-len(c), c))


def coordinate_tokens() -> list[str]:
    """The 101 coordinates at 2 decimals as AutoUI writes them ("0.0000" ... "1.0000"): one
    token each, so a point is two tokens and "where to tap" is a choice among 101 values per
    axis. Any other value (4 decimals) is still written digit run by digit run."""
    return [f"{k / 100:.4f}" for k in range(101)]


def _random_action(rng: random.Random, texts: Sequence[str], decimals: int | None) -> Action:
    kind = rng.random()
    if kind < 0.45:
        return round_action(Action.tap(rng.random(), rng.random()), decimals or 4)
    if kind < 0.55:
        a, b = (rng.random(), rng.random()), (rng.random(), rng.random())
        return round_action(Action.swipe(a, b), decimals or 4)
    if kind < 0.75:
        return Action.type(rng.choice(texts) if texts else "search")
    return Action(rng.choice(SINGLE_STRING_TYPES))


def _default_goals() -> list[str]:
    try:
        from eval.tasks import load_task_set
    except ImportError:  # pragma: no cover - eval is part of the project
        return []
    goals: list[str] = []
    for task_set in ("webshop", "general"):
        goals.extend(t.instruction for t in load_task_set(task_set, "train"))
    return goals


def policy_corpus(
    goals: Iterable[str] = (),
    actions: Iterable[str] = (),
    *,
    size: int = 4000,
    seed: int = 0,
    include_task_sets: bool = True,
) -> list[str]:
    """Texts the policy tokenizer is trained on: AutoUI strings and policy input texts.

    ``goals``: instructions of the data (the train task lists are added when
    ``include_task_sets``); ``actions``: AutoUI strings of the data (their coordinates and typed
    texts). Added: ``size`` random actions of every type (coordinates at 2 and 4 decimals,
    typed texts taken from the goals' quoted queries and sites) and input texts pairing them
    with goals. Deterministic for a given input and ``seed``.
    """
    goal_list = sorted(set(goals))
    if include_task_sets:
        goal_list = sorted(set(goal_list) | set(_default_goals()))
    typed: list[str] = []
    for goal in goal_list:
        for quote in ('"', "'"):
            parts = goal.split(quote)
            typed.extend(parts[1::2])
        typed.extend(w.strip(",.") for w in goal.split() if "." in w.strip(",."))
    typed = sorted(set(t for t in typed if t))
    rng = random.Random(seed)
    out = list(actions)
    for i in range(size):
        action = _random_action(rng, typed, 2 if i % 2 else 4)
        out.append(to_autoui(action))
        if goal_list:
            out.append(policy_input_text([action], rng.choice(goal_list)))
    out.extend(goal_list)
    return out


def build_policy_tokenizer(
    corpus: Sequence[str], vocab_size: int = 1024, *, split_addresses: bool = True
) -> Any:
    """A copy-friendly tokenizer for the policy (see the module docstring).

    Trained with :func:`digiq.models.train_tokenizer` on ``corpus``, then given the project's
    pre-tokenizer (letter runs, single digits, single punctuation characters, each with its
    leading space; no contraction rule; with ``split_addresses`` the space before a web
    address is a token of its own) and the AutoUI constant chunks as added tokens.
    """
    from tokenizers import AddedToken, Regex, pre_tokenizers

    from digiq.models.tokenizer import train_tokenizer

    tokenizer = train_tokenizer(list(corpus), vocab_size=vocab_size)
    pattern = ADDRESS_PRE_TOKENIZER_PATTERN if split_addresses else PRE_TOKENIZER_PATTERN
    tokenizer.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(pattern), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    chunks = autoui_added_tokens() + coordinate_tokens()
    tokenizer.add_tokens(
        [AddedToken(chunk, normalized=False, special=False, single_word=False) for chunk in chunks]
    )
    tokenizer.padding_side = "right"
    return tokenizer


# ---------------------------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------------------------


def screen_pixels(image: ImageLike, width: int, height: int) -> np.ndarray:
    """A screenshot resized to ``width`` x ``height`` (``(H, W, 3)`` uint8), the one resize
    used in training and at inference (PIL bilinear with a box pre-reduction: fast on
    full-resolution frames and free of aliasing)."""
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] < 3:
            raise ValueError(
                f"screenshots must be (H, W, 3) uint8 arrays, got {image.shape} {image.dtype}"
            )
        if image.shape[0] == height and image.shape[1] == width:
            return np.ascontiguousarray(image[:, :, :3])
        pil = Image.fromarray(np.ascontiguousarray(image[:, :, :3]))
    elif isinstance(image, Image.Image):
        pil = image.convert("RGB")
    else:
        raise ValueError(
            f"screenshots must be PIL images or (H, W, 3) uint8 arrays, got {type(image).__name__}"
        )
    if pil.size != (width, height):
        pil = pil.resize((width, height), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return np.asarray(pil, dtype=np.uint8)


class GridCNN(nn.Module):
    """Stride-2 conv stages over the resized screen -> ``[B, rows * cols, d_model]`` tokens with
    learned row / column embeddings (row-major order: top-left patch first)."""

    def __init__(self, channels: Sequence[int], d_model: int, grid: tuple[int, int]) -> None:
        super().__init__()
        # First stage: a 4x4 stride-4 patchify conv (as cheap as two stride-2 stages on the
        # full-resolution input, where a CNN spends most of its time); then stride-2 stages.
        layers: list[nn.Module] = [
            nn.Conv2d(3, channels[0], 4, stride=4),
            nn.GroupNorm(min(8, channels[0]), channels[0]),
            nn.GELU(),
        ]
        cin = channels[0]
        for cout in channels[1:]:
            layers += [
                nn.Conv2d(cin, cout, 3, stride=2, padding=1),
                nn.GroupNorm(min(8, cout), cout),
                nn.GELU(),
                nn.Conv2d(cout, cout, 3, padding=1),
                nn.GELU(),
            ]
            cin = cout
        self.features = nn.Sequential(*layers)
        self.proj = nn.Linear(cin, d_model)
        rows, cols = grid
        self.row_embed = nn.Parameter(torch.randn(rows, 1, d_model) * 0.5)
        self.col_embed = nn.Parameter(torch.randn(1, cols, d_model) * 0.5)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        feats = self.features(pixels)  # [B, C, rows, cols]
        tokens = self.proj(feats.permute(0, 2, 3, 1))  # [B, rows, cols, D]
        tokens = tokens + self.row_embed + self.col_embed
        return tokens.flatten(1, 2)


class FrozenImageTokens(nn.Module):
    """A frozen pooled image feature projected to ``num_tokens`` encoder tokens (AutoUI's
    BLIP-2 fusion); only the projection trains."""

    def __init__(self, feature_dim: int, d_model: int, num_tokens: int) -> None:
        super().__init__()
        self.num_tokens = num_tokens
        self.proj = nn.Linear(feature_dim, d_model * num_tokens)
        self.norm = nn.LayerNorm(feature_dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        out = self.proj(self.norm(features))
        return out.view(features.shape[0], self.num_tokens, -1)


# ---------------------------------------------------------------------------------------------
# T5 with a copy head
# ---------------------------------------------------------------------------------------------


def span_match_lengths(
    prefix_ids: torch.Tensor, token_ids: torch.Tensor, steps: int, max_length: int
) -> torch.Tensor:
    """``[B, steps, S]``: for each of the last ``steps`` decoder positions and each input
    position ``s``, how many of the tokens written so far, read backwards from the latest, equal
    the input tokens read backwards from ``s - 1`` (capped at ``max_length``).

    ``prefix_ids`` ``[B, T]``: the decoder inputs up to each position (start token first, as in
    teacher forcing), so position ``t``'s latest written token is ``prefix_ids[:, t]``;
    ``token_ids`` ``[B, S]``: the copyable input tokens, -1 where nothing may be copied (a -1
    never matches). A length ``L`` at ``s`` means: copying input token ``s`` continues a span of
    ``L`` tokens that were just copied in the input's order.
    """
    import torch.nn.functional as F

    t_total, s, k = prefix_ids.shape[1], token_ids.shape[1], max_length
    # written[b, t, i] = the token written i steps before position t's latest (-2: none)
    windows = F.pad(prefix_ids, (k - 1, 0), value=-2).unfold(1, k, 1)  # [B, T, K]
    written = windows[:, t_total - steps :, :].flip(-1)  # [B, steps, K]
    # before[b, s, i] = the input token i + 1 positions before s (-1: none, never matches)
    before = F.pad(token_ids, (k, 0), value=-1).unfold(1, k, 1)[:, :s, :].flip(-1)  # [B, S, K]
    equal = (written.unsqueeze(2) == before.unsqueeze(1)) & (before >= 0).unsqueeze(1)
    return equal.long().cumprod(dim=-1).sum(dim=-1)  # length of the unbroken run from i = 0


def _pointer_t5_class() -> type:
    """``T5ForConditionalGeneration`` with the pointer-generator head (built lazily: importing
    this module must not import transformers)."""
    from transformers import T5ForConditionalGeneration
    from transformers.modeling_outputs import BaseModelOutput, Seq2SeqLMOutput
    from transformers.models.t5.modeling_t5 import T5Stack

    # The decoder cache's name: ``cache`` from transformers 5.24, ``past_key_values`` before.
    stack_arguments = inspect.signature(T5Stack.forward).parameters
    cache_argument = "cache" if "cache" in stack_arguments else "past_key_values"
    output_fields = {f.name for f in dataclasses.fields(Seq2SeqLMOutput)}
    cache_field = "cache" if "cache" in output_fields else "past_key_values"

    class PointerT5(T5ForConditionalGeneration):
        """T5 whose ``forward`` may mix in a copy distribution (``copy_ids`` given)."""

        def __init__(self, config: Any) -> None:
            super().__init__(config)
            d = config.d_model
            self.copy_query = nn.Linear(d, d, bias=False)
            self.copy_key = nn.Linear(d, d, bias=False)
            # "Shifted-token" terms: the last OUTPUT token's embedding against the embedding of
            # the token BEFORE each input position, both initialised to the identity, so that
            # "copy the token that follows the one just written" is the starting behaviour.
            self.copy_prev_query = nn.Linear(d, d, bias=False)
            self.copy_prev_key = nn.Linear(d, d, bias=False)
            self.copy_gate = nn.Linear(2 * d, 1)
            # Bias of the copy scores per span-match length 0..K (module docstring).
            self.copy_match = int(getattr(config, "copy_match", 0) or 0)
            # The goal's closing quote is copied (as the typed text's closing quote) rather
            # than generated: copy_ids then carries a 4th channel marking those positions.
            self.copy_close = bool(getattr(config, "copy_close", False)) and self.copy_match > 0
            # The typed text's closing quote '"' (set by PolicyNet.set_copy_vocab): once it is
            # written no span continues (copy_close only).
            self.close_id: int | None = None
            if self.copy_match:
                self.copy_match_bias = nn.Parameter(
                    4.0 * torch.arange(self.copy_match + 1, dtype=torch.float32)
                )
            if self.copy_match and not self.copy_close:
                # Gate term for "the span just copied is followed by the goal's closing
                # quote": the query is complete, so generate (the typed text's closing quote).
                self.copy_end_gate = nn.Parameter(torch.tensor(4.0))
            # token id -> match class (identity but for quotes; set_copy_classes); not saved
            self.register_buffer(
                "copy_class", torch.arange(config.vocab_size + 1), persistent=False
            )
            # (encoder output, copy ids, shifted, keys) of the last call without gradients
            self._copy_key_cache: tuple[Any, ...] | None = None
            with torch.no_grad():
                self.copy_gate.bias.fill_(1.0)  # start mostly generating
                self.copy_prev_query.weight.copy_(torch.eye(d))
                self.copy_prev_key.weight.copy_(torch.eye(d))

        def set_copy_classes(self, quote_ids: Sequence[int], vocab_size: int) -> None:
            """Make every id in ``quote_ids`` one match class (``vocab_size``, no real token)."""
            table = torch.arange(vocab_size + 1, device=self.copy_class.device)
            if quote_ids:
                table[torch.as_tensor(list(quote_ids), device=table.device)] = vocab_size
            self.copy_class = table

        def prepare_inputs_for_generation(self, input_ids: torch.Tensor, *args: Any, **kwargs: Any):  # type: ignore[no-untyped-def]
            """Also hand ``forward`` the whole written prefix: with a cache, generation feeds
            only the last token, and the span-match bias needs the tokens before it."""
            inputs = super().prepare_inputs_for_generation(input_ids, *args, **kwargs)
            if self.copy_match and inputs.get("copy_ids") is not None:
                inputs["copy_prefix_ids"] = input_ids
            return inputs

        def forward(  # type: ignore[override]
            self,
            input_ids: torch.Tensor | None = None,
            attention_mask: torch.Tensor | None = None,
            decoder_input_ids: torch.Tensor | None = None,
            decoder_attention_mask: torch.Tensor | None = None,
            encoder_outputs: Any = None,
            past_key_values: Any = None,
            inputs_embeds: torch.Tensor | None = None,
            decoder_inputs_embeds: torch.Tensor | None = None,
            labels: torch.Tensor | None = None,
            use_cache: bool | None = None,
            copy_ids: torch.Tensor | None = None,
            copy_prefix_ids: torch.Tensor | None = None,
            **kwargs: Any,
        ) -> Any:
            if encoder_outputs is None:
                encoder_outputs = self.encoder(
                    input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds
                )
            elif not isinstance(encoder_outputs, BaseModelOutput):
                encoder_outputs = BaseModelOutput(last_hidden_state=encoder_outputs[0])
            enc = encoder_outputs.last_hidden_state
            if labels is not None and decoder_input_ids is None:
                decoder_input_ids = self._shift_right(labels)
            # transformers 5.24 renamed the decoder cache ``past_key_values`` -> ``cache`` in
            # forward arguments and outputs, and generate() hands it over as ``cache``: dropping
            # it into **kwargs made every step decode from an empty cache (CI, 2026-11-24).
            cache = kwargs.pop("cache", None)
            if cache is None:
                cache = past_key_values
            dec = self.decoder(
                input_ids=decoder_input_ids,
                attention_mask=decoder_attention_mask,
                inputs_embeds=decoder_inputs_embeds,
                encoder_hidden_states=enc,
                encoder_attention_mask=attention_mask,
                use_cache=use_cache,
                **{cache_argument: cache},
            )
            hidden = dec[0]
            out = hidden * (self.model_dim**-0.5) if self.config.scale_decoder_outputs else hidden
            logits = self.lm_head(out)
            if copy_ids is not None:
                prefix = copy_prefix_ids if copy_prefix_ids is not None else decoder_input_ids
                logits = self._mix_copy(logits, hidden, enc, copy_ids, decoder_input_ids, prefix)
            return Seq2SeqLMOutput(
                logits=logits,
                encoder_last_hidden_state=enc,
                **{cache_field: getattr(dec, cache_field)},
            )

        def _mix_copy(
            self,
            logits: torch.Tensor,
            hidden: torch.Tensor,
            enc: torch.Tensor,
            copy_ids: torch.Tensor,
            decoder_input_ids: torch.Tensor | None,
            prefix_ids: torch.Tensor | None = None,
        ) -> torch.Tensor:
            # copy_ids [B, S, C], C = 2, 3 or 4 channels: per encoder position the token id
            # (-1 where nothing may be copied: image tokens, padding; the closing quote's id at
            # the goal's closing quote with copy_close), the id of the token before it and,
            # with the span-match bias, its match class (-1 outside the goal) and, with
            # copy_close, 1 at the goal's closing quotes (0 elsewhere). Computed in fp32
            # (autocast off) for a stable log of a mixture.
            with torch.autocast(device_type=logits.device.type, enabled=False):
                return self._mix_copy_fp32(
                    logits, hidden, enc, copy_ids, decoder_input_ids, prefix_ids
                )

        def _copy_keys(
            self, enc: torch.Tensor, copy_ids: torch.Tensor, shifted: bool
        ) -> torch.Tensor:
            """``[B, S, d]`` copy keys of the encoder positions (with the shifted-token term).

            They depend on the encoder output and ``copy_ids`` only, which generation hands
            every decoding step unchanged: without gradients the keys of the last call are
            reused while it passes the same two tensors (identity; the cache holds them, so
            no new tensor can take their place), instead of being recomputed over every
            encoder position at every new token. With gradients they are always computed."""
            cached = self._copy_key_cache
            grad = torch.is_grad_enabled()
            if (
                not grad
                and cached is not None
                and cached[0] is enc
                and cached[1] is copy_ids
                and cached[2] == shifted
            ):
                return cached[3]
            k = self.copy_key(enc.float())
            if shifted:
                embed = self.get_input_embeddings()
                k = k + self.copy_prev_key(embed(copy_ids[..., 1].clamp(min=0)).float())
            self._copy_key_cache = None if grad else (enc, copy_ids, shifted, k)
            return k

        def _mix_copy_fp32(
            self,
            logits: torch.Tensor,
            hidden: torch.Tensor,
            enc: torch.Tensor,
            copy_ids: torch.Tensor,
            decoder_input_ids: torch.Tensor | None,
            prefix_ids: torch.Tensor | None = None,
        ) -> torch.Tensor:
            logits = logits.float()
            # the keys take the tensor generation passes (its identity is their cache key)
            k = self._copy_keys(enc, copy_ids, decoder_input_ids is not None)
            hidden, enc = hidden.float(), enc.float()
            token_ids = copy_ids[..., 0]
            q = self.copy_query(hidden)
            if decoder_input_ids is not None:
                embed = self.get_input_embeddings()
                q = q + self.copy_prev_query(embed(decoder_input_ids).float())
            scores = torch.einsum("btd,bsd->bts", q, k) / math.sqrt(q.shape[-1])
            span_end = None
            if self.copy_match and prefix_ids is not None and copy_ids.shape[-1] > 2:
                match_ids = copy_ids[..., 2]
                written = self.copy_class[prefix_ids.clamp(max=self.copy_class.shape[0] - 1)]
                lengths = span_match_lengths(written, match_ids, scores.shape[1], self.copy_match)
                quote = (match_ids == self.copy_class[-1]).unsqueeze(1)
                if self.copy_close and copy_ids.shape[-1] > 3:
                    # The goal's closing quote keeps the bias of the span it ends: where the
                    # whole query was just copied, copying it closes the typed text.
                    no_bias = quote & (copy_ids[..., 3] <= 0).unsqueeze(1)
                    if self.close_id is not None:
                        # Once the closing quote is written, the text is over: no span goes on
                        # (the goal's ", and select..." follows its closing quote), and the
                        # action ends (EOS, generated).
                        ended = prefix_ids[:, -scores.shape[1] :] == self.close_id
                        no_bias = no_bias | ended.unsqueeze(-1)
                else:
                    # [B, T, 1]: a span of >= 2 tokens continues into a quote (query ended)
                    span_end = ((lengths >= 2) & quote).any(dim=-1, keepdim=True).float()
                    no_bias = quote
                scores = scores + self.copy_match_bias[lengths.masked_fill(no_bias, 0)]
            allowed = (token_ids >= 0).unsqueeze(1)
            scores = scores.masked_fill(~allowed, float("-inf"))
            attn = torch.softmax(scores, dim=-1)
            attn = torch.nan_to_num(attn, nan=0.0)  # rows with nothing to copy
            context = torch.einsum("bts,bsd->btd", attn, enc)
            gate_logit = self.copy_gate(torch.cat([hidden, context], dim=-1))
            if span_end is not None:
                gate_logit = gate_logit + self.copy_end_gate * span_end
            gate = torch.sigmoid(gate_logit)
            has_copy = allowed.any(dim=-1, keepdim=True).float()  # [B, 1, 1]
            gate = gate * has_copy + (1.0 - has_copy)
            vocab = torch.softmax(logits, dim=-1)
            copy = torch.zeros_like(vocab)
            index = token_ids.clamp(min=0).unsqueeze(1).expand(-1, attn.shape[1], -1)
            copy.scatter_add_(-1, index, attn)
            mix = gate * vocab + (1.0 - gate) * copy
            return torch.log(mix.clamp(min=1e-12))

    return PointerT5


class PolicyNet(nn.Module):
    """The trainable modules of a policy (T5 + copy head, image tokens) and its forward pass.

    ``forward`` returns the per-token log-probabilities of target sequences by teacher
    forcing, so a trainer can wrap this module (``accelerate`` / DDP) and still call the whole
    computation through the wrapper.
    """

    def __init__(
        self,
        t5: nn.Module,
        image: nn.Module,
        *,
        copy: bool,
        pad_id: int,
        eos_id: int,
        copy_source: str = "input",
        copy_address: bool = False,
    ) -> None:
        super().__init__()
        self.t5 = t5
        self.image = image
        self.copy = copy
        self.copy_source = copy_source
        # Goal web addresses open and close like quoted queries (copy_close only; the
        # tokenizer must split the space off before them: build_policy_tokenizer).
        self.copy_address = copy_address
        # copy_address (set_copy_vocab): the lone space token's id and the id of '.'; per
        # token id, whether it may continue an address ('-' and glued letters/digits).
        self.space_id: int | None = None
        self.dot_id: int | None = None
        self.pad_id = pad_id
        self.eos_id = eos_id
        # (id of " Goal", id of ":"): where the span-match bias's goal starts (set_copy_vocab)
        self.goal_marker: tuple[int, int] | None = None
        # copy_close (set_copy_vocab): the id of the typed text's closing quote '"' and, per
        # token id, its quote character (0 none, 1 ', 2 "), whether it has no leading space,
        # and whether it is / ends with a letter or digit (to tell apostrophes from quotes).
        self.close_id: int | None = None
        for name in ("quote_char", "quote_glued", "word_piece", "word_end", "letter_piece", "dash"):
            self.register_buffer(name, torch.zeros(0, dtype=torch.long), persistent=False)

    def set_copy_vocab(self, tokenizer: Any) -> None:
        """Read the goal marker and the quote tokens from ``tokenizer`` (span-match bias)."""
        goal = tokenizer.convert_tokens_to_ids(["ĠGoal", ":"])
        unk = tokenizer.unk_token_id
        self.goal_marker = None if unk in goal or None in goal else (goal[0], goal[1])
        openings = [t for t in autoui_added_tokens() if t.endswith('"typed_text": "')]
        quotes = {tokenizer.convert_tokens_to_ids(t) for t in ["'", '"', 'Ġ"', "Ġ'", *openings]}
        if hasattr(self.t5, "set_copy_classes"):
            size = max(len(tokenizer), int(self.t5.get_input_embeddings().num_embeddings))
            self.t5.set_copy_classes(sorted(i for i in quotes if i is not None and i != unk), size)
            if getattr(self.t5, "copy_close", False):
                self._set_quote_tables(tokenizer, size)
                if self.copy_address:
                    self._set_address_ids(tokenizer)

    def _set_quote_tables(self, tokenizer: Any, size: int) -> None:
        """Per token id: quote character, glued (no leading space), word piece, word end."""
        close = tokenizer.convert_tokens_to_ids('"')
        if close is None or close == tokenizer.unk_token_id:
            raise ValueError("copy_close needs a tokenizer with a '\"' token")
        self.close_id = int(close)
        self.t5.close_id = self.close_id
        char, glued = torch.zeros(size, dtype=torch.long), torch.zeros(size, dtype=torch.bool)
        piece, end = torch.zeros(size, dtype=torch.bool), torch.zeros(size, dtype=torch.bool)
        letter, dash = torch.zeros(size, dtype=torch.bool), torch.zeros(size, dtype=torch.bool)
        for index, token in enumerate(tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))):
            if not token or index >= size:
                continue
            bare = token.lstrip("\u0120\u2581")  # byte-level BPE's and SentencePiece's spaces
            if bare in ("'", '"'):
                char[index] = 1 if bare == "'" else 2
                glued[index] = bare == token
            piece[index] = bare == token and bare.isalnum()
            end[index] = bool(bare) and bare[-1].isalnum()
            letter[index] = bool(piece[index]) and bare[0].isalpha()
            dash[index] = token == "-"
        device = self.quote_char.device
        self.quote_char, self.quote_glued = char.to(device), glued.to(device)
        self.word_piece, self.word_end = piece.to(device), end.to(device)
        self.letter_piece, self.dash = letter.to(device), dash.to(device)

    def _set_address_ids(self, tokenizer: Any) -> None:
        """The lone space and '.' token ids (none: a tokenizer of another kind, no addresses)."""
        unk = tokenizer.unk_token_id
        space, dot = tokenizer.convert_tokens_to_ids(["\u0120", "."])
        ok = None not in (space, dot) and unk not in (space, dot)
        self.space_id, self.dot_id = (int(space), int(dot)) if ok else (None, None)

    def _addresses(self, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """``([B, S], [B, S])``: True at the lone space that opens each web address of the goal
        and at the token right after the address (',', a word, EOS), which closes it. An
        address is a run of glued letter/digit pieces, '.' and '-' after a lone space, starting
        with a letter and holding a '.' followed by a letter ("newegg.com", not "gtx 1660");
        it ends at its last letter/digit piece. None without address ids."""
        if self.space_id is None or self.dot_id is None:
            return None
        ids = input_ids.clamp(0, self.word_piece.shape[0] - 1)
        next_letter = torch.nn.functional.pad(self.letter_piece[ids][:, 1:], (0, 1), value=False)
        candidate = (input_ids == self.space_id) & next_letter
        in_goal = self._in_goal(input_ids)
        if in_goal is not None:
            candidate = candidate & in_goal
        opening = torch.zeros_like(candidate)
        closing = torch.zeros_like(candidate)
        if not bool(candidate.any()):
            return opening, closing
        piece = self.word_piece[ids]
        dot = input_ids == self.dot_id
        part = piece | dot | self.dash[ids]
        letter = self.letter_piece[ids]
        width = input_ids.shape[1]
        for row, col in candidate.nonzero().tolist():
            row_part, row_piece = part[row].tolist(), piece[row].tolist()
            row_dot, row_letter = dot[row].tolist(), letter[row].tolist()
            last, domain, j = col, False, col + 1
            while j < width and row_part[j]:
                if row_piece[j]:
                    domain = domain or (row_letter[j] and row_dot[j - 1] and j - 1 > col)
                    last = j
                j += 1
            if domain and last + 1 < width:
                opening[row, col] = True
                closing[row, last + 1] = True
        return opening, closing

    def _closing_quotes(self, input_ids: torch.Tensor) -> torch.Tensor:
        """``[B, S]`` True at the goal's closing quotes: quote characters pair up in the goal
        (the first opens, the next of the same character closes), apostrophes skipped (a
        quote with no space before it between a word's end and a word piece: "levi's")."""
        ids = input_ids.clamp(0, self.quote_char.shape[0] - 1)
        char = self.quote_char[ids]
        prev_end = torch.nn.functional.pad(self.word_end[ids][:, :-1], (1, 0), value=False)
        next_piece = torch.nn.functional.pad(self.word_piece[ids][:, 1:], (0, 1), value=False)
        apostrophe = self.quote_glued[ids] & prev_end & next_piece
        candidate = (char > 0) & ~apostrophe
        in_goal = self._in_goal(input_ids)
        if in_goal is not None:
            candidate = candidate & in_goal
        closing = torch.zeros_like(candidate)
        opened: dict[int, int] = {}  # row -> the character of its open quote
        for row, col in candidate.nonzero().tolist():  # row-major: left to right per row
            c = int(char[row, col])
            if row not in opened:
                opened[row] = c
            elif opened[row] == c:
                closing[row, col] = True
                del opened[row]
        return closing

    def _in_goal(self, input_ids: torch.Tensor) -> torch.Tensor | None:
        """``[B, S]`` True after the last "Goal:" of each row (all False in a row without one);
        None when the tokenizer has no goal marker."""
        if self.goal_marker is None:
            return None
        g, colon = self.goal_marker
        marker = torch.zeros_like(input_ids, dtype=torch.bool)
        marker[:, 1:] = (input_ids[:, :-1] == g) & (input_ids[:, 1:] == colon)
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        last = torch.where(marker, positions, torch.full_like(positions, -1)).amax(dim=1)
        return (positions.unsqueeze(0) > last.unsqueeze(1)) & (last >= 0).unsqueeze(1)

    def _goal_ids(self, input_ids: torch.Tensor, text_ids: torch.Tensor) -> torch.Tensor:
        """``text_ids`` (match classes) where the position is in the goal, -1 elsewhere."""
        classes = self.t5.copy_class
        match = classes[input_ids.clamp(max=classes.shape[0] - 1)].masked_fill(text_ids < 0, -1)
        in_goal = self._in_goal(input_ids)
        return match if in_goal is None else match.masked_fill(~in_goal, -1)

    def encode(
        self, pixels: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[Any, torch.Tensor, torch.Tensor | None]:
        """(encoder outputs, encoder mask, copy ids): image tokens prepended to the text."""
        from transformers.modeling_outputs import BaseModelOutput

        text_embeds = self.t5.get_input_embeddings()(input_ids)
        image_tokens = self.image(pixels).to(text_embeds.dtype)
        embeds = torch.cat([image_tokens, text_embeds], dim=1)
        b, k = image_tokens.shape[:2]
        image_mask = torch.ones(b, k, dtype=attention_mask.dtype, device=attention_mask.device)
        mask = torch.cat([image_mask, attention_mask], dim=1)
        enc = self.t5.encoder(inputs_embeds=embeds, attention_mask=mask)
        copy_ids = None
        if self.copy:
            no_copy = torch.full((b, k), -1, dtype=torch.long, device=input_ids.device)
            text_ids = input_ids.masked_fill(attention_mask == 0, -1)
            text_ids = text_ids.masked_fill(text_ids == self.eos_id, -1)
            copyable = text_ids
            if self.copy_source == "goal":
                in_goal = self._in_goal(input_ids)
                if in_goal is not None:
                    # A row without a goal marker keeps its whole input (nothing else to copy).
                    in_goal = in_goal | ~in_goal.any(dim=1, keepdim=True)
                    copyable = text_ids.masked_fill(~in_goal, -1)
            closing, opening = None, None
            if getattr(self.t5, "copy_close", False) and self.close_id is not None:
                closing = self._closing_quotes(input_ids) & (text_ids >= 0)
                addresses = self._addresses(input_ids) if self.copy_address else None
                if addresses is not None:
                    # An address at the goal's end closes at EOS, which is otherwise not
                    # copyable.
                    opening = addresses[0]
                    closing = closing | (addresses[1] & (attention_mask > 0))
                copyable = copyable.masked_fill(closing, self.close_id)
            tokens = torch.cat([no_copy, copyable], dim=1)
            before = torch.full_like(input_ids[:, :1], self.pad_id)
            prev_text = torch.cat([before, input_ids[:, :-1]], dim=1)
            prev = torch.cat([torch.full_like(no_copy, self.pad_id), prev_text], dim=1)
            channels = [tokens, prev]
            if getattr(self.t5, "copy_match", 0):
                goal_ids = self._goal_ids(input_ids, text_ids)
                if opening is not None:
                    # The space before an address matches the typed text's opening like a
                    # quote does, so the address's first piece continues a 1-token span.
                    goal_ids = goal_ids.masked_fill(opening, int(self.t5.copy_class[-1]))
                channels.append(torch.cat([no_copy, goal_ids], dim=1))
            if closing is not None:
                channels.append(torch.cat([torch.zeros_like(no_copy), closing.long()], dim=1))
            copy_ids = torch.stack(channels, dim=-1)
        return BaseModelOutput(last_hidden_state=enc.last_hidden_state), mask, copy_ids

    def forward(
        self,
        pixels: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        labels: torch.Tensor,
    ) -> torch.Tensor:
        """``[B, T]`` log pi of each label token (0 on padding, i.e. where labels == pad)."""
        return self.label_logprobs(self.encode(pixels, input_ids, attention_mask), labels)

    def label_logprobs(
        self, encoded: tuple[Any, torch.Tensor, torch.Tensor | None], labels: torch.Tensor
    ) -> torch.Tensor:
        """:meth:`forward` from :meth:`encode`'s output: teacher-forced ``[B, T]`` log pi of
        each label token. Scoring n candidates per state encodes each state once (see
        :func:`repeat_encoded`) instead of once per candidate."""
        enc, enc_mask, copy_ids = encoded
        out = self.t5(
            encoder_outputs=enc,
            attention_mask=enc_mask,
            decoder_input_ids=self.t5._shift_right(labels),
            copy_ids=copy_ids,
            use_cache=False,
        )
        logp = torch.log_softmax(out.logits.float(), dim=-1)
        token_logp = logp.gather(-1, labels.unsqueeze(-1)).squeeze(-1)
        return token_logp * (labels != self.pad_id).to(token_logp.dtype)


# ---------------------------------------------------------------------------------------------
# The policy
# ---------------------------------------------------------------------------------------------


def repeat_encoded(
    encoded: tuple[Any, torch.Tensor, torch.Tensor | None], n: int
) -> tuple[Any, torch.Tensor, torch.Tensor | None]:
    """:meth:`PolicyNet.encode`'s output with each state ``n`` times in a row (state-major,
    as :meth:`PolicyBatch.repeat`): the encoder's work for n candidates of a state is done once."""
    from transformers.modeling_outputs import BaseModelOutput

    enc, mask, copy_ids = encoded
    if n == 1:
        return encoded
    hidden = enc.last_hidden_state.repeat_interleave(n, 0)
    return (
        BaseModelOutput(last_hidden_state=hidden),
        mask.repeat_interleave(n, 0),
        None if copy_ids is None else copy_ids.repeat_interleave(n, 0),
    )


@dataclass
class PolicyBatch:
    """Model inputs for a batch of states (see :meth:`PolicyModel.prepare`).

    ``pixels``: ``[B, 3, H, W]`` normalised screens (grid-cnn) or ``[B, F]`` frozen features;
    ``input_ids`` / ``attention_mask``: ``[B, S]`` text tokens (right-padded).
    """

    pixels: torch.Tensor
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    input_texts: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    def to(self, device: torch.device | str) -> PolicyBatch:
        return PolicyBatch(
            self.pixels.to(device),
            self.input_ids.to(device),
            self.attention_mask.to(device),
            self.input_texts,
        )

    def repeat(self, n: int) -> PolicyBatch:
        """Each state ``n`` times in a row (state-major), for scoring n candidates each."""
        return PolicyBatch(
            self.pixels.repeat_interleave(n, 0),
            self.input_ids.repeat_interleave(n, 0),
            self.attention_mask.repeat_interleave(n, 0),
            [t for t in self.input_texts for _ in range(n)],
        )


class PolicyModel:
    """An AutoUI-style policy (see the module docstring): build, train through :meth:`loss`,
    act through :meth:`sample` / :meth:`greedy`, persist with :meth:`save` / :meth:`load`."""

    def __init__(
        self,
        config: PolicyConfig,
        net: PolicyNet,
        tokenizer: Any,
        *,
        precision: Precision | None = None,
        frozen_encoder: Any = None,
        model_id: str | None = None,
        tokenizer_stats: dict[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.net = net
        self.tokenizer = tokenizer
        self.frozen_encoder = frozen_encoder
        num_params = sum(p.numel() for p in net.parameters())
        self.precision = (precision or select_precision()).for_model(num_params)
        self.net.to(self.precision.device)
        self.model_id = model_id or uuid.uuid4().hex
        self.tokenizer_stats = dict(tokenizer_stats or {})
        self.pad_id = int(tokenizer.pad_token_id)
        self.eos_id = int(tokenizer.eos_token_id)
        #: What :meth:`token_logprobs` calls: the net itself, or a trainer's wrapper of it
        #: (``accelerate`` / DDP), so training goes through the wrapper's forward.
        self.forward_module: nn.Module = self.net
        #: The :class:`~digiq.models.autoui_grammar.AutoUIGrammar` sampling is held to, or None:
        #: only a tokenizer with single coordinate tokens, on a model trained on two-decimal
        #: coordinates, can express it (real T5 checkpoints decode unconstrained).
        from digiq.models.autoui_grammar import AutoUIGrammar, AutoUIGrammarProcessor

        self.grammar: AutoUIGrammar | None = None
        self._grammar_processor: AutoUIGrammarProcessor | None = None
        if config.round_coordinates == 2:
            self.grammar = AutoUIGrammar.for_tokenizer(
                tokenizer, self.eos_id, self.pad_id, net.t5.config.vocab_size
            )
        if self.grammar is None:
            log.info("this policy's tokenizer cannot express the AutoUI grammar: unconstrained")
        else:
            self._grammar_processor = AutoUIGrammarProcessor(self.grammar)

    # -- construction --------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        config: PolicyConfig | None = None,
        *,
        corpus: Sequence[str] | None = None,
        tokenizer: Any = None,
        device: str | torch.device | None = None,
        precision: str = "auto",
        **overrides: Any,
    ) -> PolicyModel:
        """A new policy: T5 built from ``config`` (or loaded from ``config.t5_path``), a new
        image encoder and a tokenizer trained on ``corpus`` (default :func:`policy_corpus`)
        unless ``tokenizer`` is given (or the T5 checkpoint has one)."""
        from transformers import AutoTokenizer, T5Config

        config = dataclasses.replace(config or PolicyConfig(), **overrides)
        pointer_cls = _pointer_t5_class()
        stats: dict[str, Any] = {}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            if config.t5_path is not None:
                root = Path(config.t5_path)
                if not root.exists():
                    raise FileNotFoundError(
                        f"policy T5 checkpoint path {str(root)!r} does not exist"
                    )
                pretrained_config = T5Config.from_pretrained(root, local_files_only=True)
                pretrained_config.copy_match = config.span_match
                pretrained_config.copy_close = config.closes_by_copy
                t5 = pointer_cls.from_pretrained(
                    root, config=pretrained_config, local_files_only=True
                )
                if tokenizer is None:
                    tokenizer = AutoTokenizer.from_pretrained(root, local_files_only=True)
                config = dataclasses.replace(config, d_model=int(t5.config.d_model))
            else:
                if tokenizer is None:
                    texts = list(corpus) if corpus is not None else policy_corpus()
                    tokenizer = build_policy_tokenizer(
                        texts,
                        vocab_size=config.vocab_size,
                        split_addresses=config.copies_addresses,
                    )
                    stats = tokenizer_figures(tokenizer, texts)
                t5_config = T5Config(
                    vocab_size=len(tokenizer),
                    d_model=config.d_model,
                    d_ff=config.d_ff,
                    d_kv=config.d_kv,
                    num_layers=config.num_layers,
                    num_decoder_layers=config.num_decoder_layers,
                    num_heads=config.num_heads,
                    dropout_rate=config.dropout,
                    feed_forward_proj="relu",
                    tie_word_embeddings=True,
                    pad_token_id=int(tokenizer.pad_token_id),
                    eos_token_id=int(tokenizer.eos_token_id),
                    decoder_start_token_id=int(tokenizer.pad_token_id),
                )
                t5_config.copy_match = config.span_match
                t5_config.copy_close = config.closes_by_copy
                t5 = pointer_cls(t5_config)
            if len(tokenizer) > t5.config.vocab_size:
                t5.resize_token_embeddings(len(tokenizer))
            image, frozen = cls._image_module(config)
        net = PolicyNet(
            t5,
            image,
            copy=config.copy,
            pad_id=int(tokenizer.pad_token_id),
            eos_id=int(tokenizer.eos_token_id),
            copy_source=config.copy_source,
            copy_address=config.copies_addresses,
        )
        net.set_copy_vocab(tokenizer)
        return cls(
            config,
            net,
            tokenizer,
            precision=select_precision(device, precision),
            frozen_encoder=frozen,
            tokenizer_stats=stats,
        )

    @classmethod
    def from_preset(
        cls,
        preset: Any = "tiny",
        *,
        corpus: Sequence[str] | None = None,
        device: str | torch.device | None = None,
        precision: str = "auto",
        **overrides: Any,
    ) -> PolicyModel:
        """A new policy for a :mod:`digiq.models.presets` preset (name or ``ModelPreset``).

        ``tiny``: everything from config (sizes from the preset's ``TinyT5Config``). Real
        presets: T5 from ``policy.path`` (``--policy-path``, AutoUI-Base converted to a
        transformers T5 folder) with a frozen image encoder from the preset's
        ``image_features`` (``blip2`` as published, or ``small-cnn``); a missing path raises
        :class:`~digiq.models.presets.MissingCheckpointError`.
        """
        from digiq.models.presets import get_preset

        if isinstance(preset, str):
            preset = get_preset(preset, require=["policy"])
        else:
            preset.require(["policy"])
        spec = preset.policy
        if spec.family != "t5":
            raise ValueError(f"policy family {spec.family!r} is not supported (only 't5')")
        base: dict[str, Any] = {"preset": preset.name}
        if spec.path is not None:
            image_spec = dataclasses.asdict(preset.image_features)
            if image_spec["kind"] == "vlm-vision-tower":
                raise ValueError(
                    f"preset {preset.name!r}: the policy needs its own frozen image encoder; "
                    "set image_features_kind=blip2 (with image_features_path=...) or small-cnn"
                )
            base.update(
                t5_path=spec.path,
                image_mode="frozen",
                frozen_image=image_spec,
                round_coordinates=None,
                # frames cached at this size feed the frozen encoder (it resizes again)
                image_width=224,
                image_height=448,
                # a general-purpose T5 vocabulary spells AutoUI strings in ~60+ tokens
                max_target_tokens=128,
            )
        else:
            assert spec.tiny is not None
            tiny = spec.tiny
            for name in ("d_model", "d_ff", "num_layers", "num_heads", "d_kv", "vocab_size"):
                if hasattr(tiny, name):
                    base[name] = getattr(tiny, name)
            base["num_decoder_layers"] = getattr(tiny, "num_decoder_layers", tiny.num_layers)
            base["seed"] = tiny.seed
            for name in ("image_width", "image_height", "copy"):
                if hasattr(tiny, name):
                    base[name] = getattr(tiny, name)
        base.update(overrides)
        return cls.build(PolicyConfig(**base), corpus=corpus, device=device, precision=precision)

    @staticmethod
    def _image_module(config: PolicyConfig) -> tuple[nn.Module, Any]:
        if config.image_mode == "grid-cnn":
            return GridCNN(config.cnn_channels, config.d_model, config.grid), None
        from digiq.models.image_encoder import build_image_encoder
        from digiq.models.presets import ImageFeatureSpec

        spec = ImageFeatureSpec(**(config.frozen_image or {}))
        encoder = build_image_encoder(spec)
        return FrozenImageTokens(encoder.dim, config.d_model, config.image_tokens), encoder

    # -- persistence ---------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str], extra: dict[str, Any] | None = None) -> Path:
        """Write the policy folder (weights as safetensors, tokenizer, config JSON)."""
        from safetensors.torch import save_model

        root = Path(path)
        root.mkdir(parents=True, exist_ok=True)
        save_model(self.net, str(root / WEIGHTS_FILE))
        (root / T5_CONFIG_FILE).write_text(json.dumps(self.net.t5.config.to_dict(), indent=1))
        self.tokenizer.save_pretrained(root)
        meta = {
            "format": POLICY_FORMAT,
            "preset": self.config.preset,
            "config": self.config.to_dict(),
            "image_size": [self.config.image_width, self.config.image_height],
            "max_input_tokens": self.config.max_input_tokens,
            "max_target_tokens": self.config.max_target_tokens,
            "model_id": self.model_id,
            "tokenizer": self.tokenizer_stats,
            "num_parameters": self.num_parameters,
            "extra": dict(extra or {}),
        }
        (root / POLICY_JSON).write_text(json.dumps(meta, indent=1, default=str))
        return root

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        device: str | torch.device | None = None,
        precision: str = "auto",
    ) -> PolicyModel:
        """A policy saved by :meth:`save`. A missing folder or file raises FileNotFoundError
        naming it (never a fallback to another model)."""
        from safetensors.torch import load_model
        from transformers import AutoTokenizer, T5Config

        root = Path(path)
        if not root.exists():
            raise FileNotFoundError(f"policy path {str(root)!r} does not exist")
        meta_path = root / POLICY_JSON
        if not meta_path.is_file():
            raise FileNotFoundError(f"{str(root)!r} is not a saved policy (no {POLICY_JSON})")
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != POLICY_FORMAT:
            raise ValueError(f"{meta_path}: unknown policy format {meta.get('format')!r}")
        for name in (WEIGHTS_FILE, T5_CONFIG_FILE):
            if not (root / name).is_file():
                raise FileNotFoundError(f"policy folder {str(root)!r} has no {name}")
        config = PolicyConfig.from_dict(meta["config"])
        tokenizer = AutoTokenizer.from_pretrained(root, local_files_only=True)
        tokenizer.padding_side = "right"
        t5_config = T5Config.from_dict(json.loads((root / T5_CONFIG_FILE).read_text()))
        t5_config.copy_match = config.span_match
        t5_config.copy_close = config.closes_by_copy
        t5 = _pointer_t5_class()(t5_config)
        image, frozen = cls._image_module(config)
        net = PolicyNet(
            t5,
            image,
            copy=config.copy,
            pad_id=int(tokenizer.pad_token_id),
            eos_id=int(tokenizer.eos_token_id),
            copy_source=config.copy_source,
            copy_address=config.copies_addresses,
        )
        net.set_copy_vocab(tokenizer)
        missing, unexpected = load_model(net, str(root / WEIGHTS_FILE), strict=False)
        if missing or unexpected:
            raise ValueError(
                f"{root / WEIGHTS_FILE} does not fit the policy config: missing {missing[:5]}, "
                f"unexpected {unexpected[:5]}"
            )
        return cls(
            config,
            net,
            tokenizer,
            precision=select_precision(device, precision),
            frozen_encoder=frozen,
            model_id=meta.get("model_id"),
            tokenizer_stats=meta.get("tokenizer"),
        )

    # -- properties ----------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.precision.device

    @property
    def num_parameters(self) -> int:
        return int(sum(p.numel() for p in self.net.parameters()))

    def parameters(self) -> Iterable[nn.Parameter]:
        return (p for p in self.net.parameters() if p.requires_grad)

    def train(self, mode: bool = True) -> PolicyModel:
        self.net.train(mode)
        return self

    def eval(self) -> PolicyModel:
        return self.train(False)

    # -- text ----------------------------------------------------------------------------------
    def input_text(self, previous: Sequence[Action], goal: str, history: int | None = None) -> str:
        """The encoder text for a state: :func:`android.actions.policy_input_text` over the
        previous actions (coordinates rounded like the training targets)."""
        keep = self.config.history if history is None else history
        rounded = [round_action(a, self.config.round_coordinates) for a in previous]
        return policy_input_text(rounded, goal, keep_last=keep)

    def target_text(self, action: Action | str) -> str:
        """The training target for an action (its AutoUI string, coordinates rounded to
        ``round_coordinates``); unparseable strings are returned unchanged."""
        if isinstance(action, str):
            parsed = parse_autoui(action)
            if not parsed.is_valid:
                return action
            action = parsed
        if not action.is_valid:
            return action.raw
        return to_autoui(round_action(action, self.config.round_coordinates))

    def encode_texts(self, texts: Sequence[str], max_length: int) -> torch.Tensor:
        """Token ids ``[B, T]`` of ``texts`` + EOS, right-padded with the pad id (truncated to
        ``max_length`` tokens including EOS)."""
        rows = []
        for text in texts:
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"][: max_length - 1]
            rows.append(ids + [self.eos_id])
        width = max((len(r) for r in rows), default=1)
        out = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        for i, ids in enumerate(rows):
            out[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        return out

    def token_count(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    # -- inputs --------------------------------------------------------------------------------
    def pixels(self, images: Sequence[ImageLike]) -> torch.Tensor:
        """Normalised ``[B, 3, H, W]`` screens (grid-cnn) or ``[B, F]`` frozen features."""
        if self.config.image_mode == "frozen":
            feats = self.frozen_encoder.encode(list(images))
            return torch.from_numpy(np.asarray(feats, np.float32))
        arr = np.stack(
            [screen_pixels(i, self.config.image_width, self.config.image_height) for i in images]
        )
        return self.pixels_from_array(arr)

    def pixels_from_array(self, arr: np.ndarray) -> torch.Tensor:
        """Model image inputs from ``[B, H, W, 3]`` uint8 frames already resized to the policy's
        ``image_width`` x ``image_height`` (the trainers' frame cache): normalised
        ``[B, 3, H, W]`` pixels (grid-cnn), or the frozen encoder's ``[B, F]`` features."""
        if self.config.image_mode == "frozen":
            feats = self.frozen_encoder.encode(list(np.ascontiguousarray(arr)))
            return torch.from_numpy(np.asarray(feats, np.float32))
        tensor = torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2).float()
        return (tensor / 255.0 - _PIXEL_MEAN) / _PIXEL_STD

    def prepare(
        self, images: Sequence[ImageLike] | torch.Tensor, input_texts: Sequence[str]
    ) -> PolicyBatch:
        """Model inputs for states: screenshots (or pixels from :meth:`pixels`) and their
        input texts (from :meth:`input_text`)."""
        if len(images) != len(input_texts):
            raise ValueError(f"{len(images)} images but {len(input_texts)} input texts")
        pixels = images if isinstance(images, torch.Tensor) else self.pixels(images)
        ids = self.encode_texts(list(input_texts), self.config.max_input_tokens)
        mask = (ids != self.pad_id).long()
        return PolicyBatch(pixels, ids, mask, list(input_texts))

    @contextlib.contextmanager
    def _evaluating(self) -> Iterator[None]:
        """Eval mode, no gradients and the precision's autocast, restoring the mode after."""
        was_training = self.net.training
        self.net.eval()
        try:
            with torch.no_grad(), self.precision.autocast():
                yield
        finally:
            self.net.train(was_training)

    def _release_copy_keys(self) -> None:
        """Drop the copy keys a generation kept (``PointerT5._copy_keys``): they hold the
        batch's encoder output, n rows per state, which a large model would keep alive until
        its next call."""
        if getattr(self.net.t5, "_copy_key_cache", None) is not None:
            self.net.t5._copy_key_cache = None

    def _encode(self, batch: PolicyBatch) -> tuple[Any, torch.Tensor, torch.Tensor | None]:
        """(encoder outputs, encoder attention mask, copy ids) for a prepared batch."""
        batch = batch.to(self.device)
        return self.net.encode(batch.pixels, batch.input_ids, batch.attention_mask)

    # -- scoring and training ------------------------------------------------------------------
    def token_logprobs(
        self, batch: PolicyBatch, target_texts: Sequence[str]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(log pi of each target token [B, T], mask [B, T])`` by teacher forcing (targets
        get EOS appended; the mask is 1 on real tokens including EOS). Runs through
        :attr:`forward_module` (the net, or a trainer's wrapper of it)."""
        if len(batch) != len(target_texts):
            raise ValueError(f"{len(batch)} states but {len(target_texts)} targets")
        labels = self.encode_texts(list(target_texts), self.config.max_target_tokens)
        labels = labels.to(self.device)
        mask = (labels != self.pad_id).long()
        batch = batch.to(self.device)
        with self.precision.autocast():
            token_logp = self.forward_module(
                batch.pixels, batch.input_ids, batch.attention_mask, labels
            )
        return token_logp.float(), mask

    def sequence_logprobs(self, batch: PolicyBatch, target_texts: Sequence[str]) -> torch.Tensor:
        """``log pi(target | state)`` per row ``[B]`` (sum over tokens incl. EOS, no clamp)."""
        token_logp, mask = self.token_logprobs(batch, target_texts)
        return (token_logp * mask).sum(dim=-1)

    def loss(
        self,
        batch: PolicyBatch,
        target_texts: Sequence[str],
        weights: Sequence[float] | torch.Tensor,
        *,
        clamp: bool = True,
    ) -> torch.Tensor:
        """The weighted policy loss ``-mean(w * sum_t log clamp(pi_t, 0.001, 0.99))``
        (:func:`digiq.bestofn.policy_loss`); ``clamp=False``: plain weighted NLL (what a
        behaviour-cloning run from random init needs: at init every token has p < 0.001 under
        a 1000-token vocabulary, where the clamp would stop all gradient)."""
        from digiq.bestofn import policy_loss

        token_logp, mask = self.token_logprobs(batch, target_texts)
        w = torch.as_tensor(weights, dtype=torch.float32, device=self.device)
        if clamp:
            return policy_loss(token_logp, mask, w)
        return -(w * (token_logp * mask).sum(dim=-1)).mean()

    # -- acting --------------------------------------------------------------------------------
    @torch.no_grad()
    def _generate(
        self,
        batch: PolicyBatch,
        n: int,
        temperature: float | None,
        generator_seed: int | None,
        grammar: bool = True,
        use_cache: bool = True,
        encoded: tuple[Any, torch.Tensor, torch.Tensor | None] | None = None,
    ) -> list[list[str]]:
        """``use_cache=False`` re-decodes the whole prefix each step: slower, the same tokens
        (what the test of the cache plumbing compares against). ``encoded``: the batch's
        :meth:`_encode` output, when the caller already has it."""
        t5 = self.net.t5
        was_training = self.net.training
        self.net.eval()
        try:
            if encoded is None:
                with self.precision.autocast():
                    encoded = self._encode(batch)
            enc, enc_mask, copy_ids = encoded
            kwargs: dict[str, Any] = {
                # A new wrapper: generate() expands the one it gets in place, per return
                # sequence, and the caller may score with ``encoded`` after.
                "encoder_outputs": type(enc)(last_hidden_state=enc.last_hidden_state),
                "attention_mask": enc_mask,
                "max_new_tokens": self.config.max_target_tokens,
                "num_return_sequences": n,
                "decoder_start_token_id": t5.config.decoder_start_token_id,
                "eos_token_id": self.eos_id,
                "pad_token_id": self.pad_id,
                "use_cache": use_cache,
            }
            if copy_ids is not None:
                kwargs["copy_ids"] = copy_ids
            if grammar and self._grammar_processor is not None:
                from transformers import LogitsProcessorList

                kwargs["logits_processor"] = LogitsProcessorList([self._grammar_processor])
            if temperature is None:
                kwargs.update(do_sample=False, num_beams=1)
            else:
                kwargs.update(do_sample=True, temperature=float(temperature), top_k=0, top_p=1.0)
            if generator_seed is not None:
                torch.manual_seed(generator_seed)
            with self.precision.autocast():
                sequences = t5.generate(**kwargs)
        finally:
            self._release_copy_keys()
            self.net.train(was_training)
        texts = self.tokenizer.batch_decode(sequences, skip_special_tokens=True)
        return [texts[i * n : (i + 1) * n] for i in range(len(batch))]

    @torch.no_grad()
    def _score(
        self,
        batch: PolicyBatch,
        texts: list[list[str]],
        encoded: tuple[Any, torch.Tensor, torch.Tensor | None] | None = None,
    ) -> list[list[tuple[str, float]]]:
        """Teacher-forced ``log pi`` of n texts per state, each state encoded once (``encoded``:
        the batch's :meth:`_encode` output, when the caller already has it)."""
        n = len(texts[0]) if texts else 0
        flat = [t for row in texts for t in row]
        was_training = self.net.training
        self.net.eval()
        try:
            labels = self.encode_texts(flat, self.config.max_target_tokens).to(self.device)
            with self.precision.autocast():
                if encoded is None:
                    encoded = self._encode(batch)
                token_logp = self.net.label_logprobs(repeat_encoded(encoded, n), labels)
            mask = (labels != self.pad_id).to(token_logp.dtype)
            logps = (token_logp.float() * mask).sum(dim=-1).cpu().tolist()
        finally:
            self._release_copy_keys()
            self.net.train(was_training)
        return [
            [(flat[i * n + j], float(logps[i * n + j])) for j in range(n)]
            for i in range(len(texts))
        ]

    def _as_batch(
        self, images: Sequence[ImageLike] | PolicyBatch, input_texts: Sequence[str] | None
    ) -> PolicyBatch:
        if isinstance(images, PolicyBatch):
            return images
        if input_texts is None:
            raise ValueError("input_texts are needed with images")
        return self.prepare(images, input_texts)

    def sample(
        self,
        images: Sequence[ImageLike] | PolicyBatch,
        input_texts: Sequence[str] | None = None,
        n: int = 1,
        temperature: float = 1.0,
        *,
        seed: int | None = None,
        grammar: bool = True,
    ) -> list[list[tuple[str, float]]]:
        """``n`` sampled action strings per state with ``log pi`` (temperature 1, exact; see
        the module docstring): ``[[(text, logprob), ...n], ...B]``. ``temperature`` <= 0 means
        greedy (n identical strings). ``grammar``: hold the sampler to well-formed AutoUI
        strings where the tokenizer can express it (``grammar`` attribute,
        :mod:`digiq.models.autoui_grammar`); the returned ``log pi`` is the unconstrained
        policy's either way."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        batch = self._as_batch(images, input_texts)
        if not len(batch):
            return []
        temp = None if temperature is None or temperature <= 0 else temperature
        with self._evaluating():
            encoded = self._encode(batch)
            texts = self._generate(batch, n, temp, seed, grammar, encoded=encoded)
            return self._score(batch, texts, encoded)

    def generate(
        self,
        images: Sequence[ImageLike] | PolicyBatch,
        input_texts: Sequence[str] | None = None,
        n: int = 1,
        temperature: float = 1.0,
        *,
        seed: int | None = None,
        grammar: bool = True,
    ) -> list[list[str]]:
        """What :meth:`sample` draws, without the ``log pi`` scoring pass: ``[[text, ...n],
        ...B]``. For acting, where the log-probability is thrown away: scoring re-runs the
        encoder and a teacher-forced decoder pass (about 15% of a tiny policy's action time;
        benchmarks/RESULTS.md)."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        batch = self._as_batch(images, input_texts)
        if not len(batch):
            return []
        temp = None if temperature is None or temperature <= 0 else temperature
        return self._generate(batch, n, temp, seed, grammar)

    def greedy(
        self,
        images: Sequence[ImageLike] | PolicyBatch,
        input_texts: Sequence[str] | None = None,
        *,
        grammar: bool = True,
    ) -> list[tuple[str, float]]:
        """The greedy action string per state with its ``log pi`` (``grammar``: as in
        :meth:`sample`)."""
        batch = self._as_batch(images, input_texts)
        if not len(batch):
            return []
        with self._evaluating():
            encoded = self._encode(batch)
            texts = self._generate(batch, 1, None, None, grammar, encoded=encoded)
            return [row[0] for row in self._score(batch, texts, encoded)]


def tokenizer_figures(tokenizer: Any, corpus: Sequence[str] = ()) -> dict[str, Any]:
    """Vocabulary size and mean tokens per AutoUI string (per action type and over the AutoUI
    strings of ``corpus``): the figures the module docstring promises."""

    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    examples = {
        "tap": to_autoui(Action.tap(0.12, 0.56)),
        "tap_4_decimals": to_autoui(Action.tap(0.1234, 0.5678)),
        "swipe": to_autoui(Action.swipe((0.8, 0.5), (0.2, 0.5))),
        "type": to_autoui(Action.type("razer kraken")),
        "press_back": to_autoui(Action.back()),
        "status_complete": to_autoui(Action.complete()),
    }
    autoui = [t for t in corpus if t.startswith("Action Plan:")]
    figures: dict[str, Any] = {
        "vocab_size": len(tokenizer),
        "added_tokens": len(autoui_added_tokens()) + len(coordinate_tokens()),
        "tokens_per_action": {k: count(v) for k, v in examples.items()},
        "chars_per_action": {k: len(v) for k, v in examples.items()},
    }
    if autoui:
        counts = [count(t) for t in autoui[:5000]]
        figures["mean_tokens_per_action_string"] = float(np.mean(counts))
        figures["mean_chars_per_action_string"] = float(np.mean([len(t) for t in autoui[:5000]]))
    return figures
