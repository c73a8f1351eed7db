"""Grammar-constrained decoding of AutoUI action strings for the copy-friendly tokenizer.

Why: the tiny policy (trained from scratch on a few thousand steps) writes the AutoUI format
well on screens it has seen often, but on rare screens its copy head leaks goal words into
coordinate slots (``"touch_point": "[ond, 0.5100]"``). Measured on the m1 quickstart data
(240 offline episodes): at the 18 states where the scripted expert would open the first search
result, 13 of the behaviour policy's actions were such unparseable strings, and the offline
data held no select-first-result success at all, so no offline method could learn those tasks
from reward (README, Quickstart, "Structured decoding"). AutoUI, a pretrained 1B model, does
not garble its format like that; a real deployment constrains the output format anyway.

What: a finite-state grammar over token ids, derived from :func:`android.actions.to_autoui`
through the tokenizer itself (so it cannot drift from the format):

* first token: one of the full-string tokens (a complete PRESS_BACK / HOME / ENTER /
  STATUS_TASK_COMPLETE / STATUS_TASK_IMPOSSIBLE string), or the DUAL_POINT or TYPE prefix;
* DUAL_POINT: the tokenized tap template, with each coordinate slot restricted to the 101
  two-decimal coordinate tokens and each constant joint fixed, then EOS;
* TYPE: free text (any token but the format's added multi-character chunks: the prefixes,
  complete strings and joints), ended by EOS only right after a token that closes the quote
  (a token ending in ``"``). Single characters of the point pattern (``,`` and the space
  token) stay allowed: queries need them (``gtx 1660`` is ``gtx``, space, ``1``, ...);
* a complete string: EOS.

Only the tokenizer built by :func:`digiq.models.policy.build_policy_tokenizer` with
two-decimal coordinates has these single tokens; for any other tokenizer (a real T5
checkpoint) :meth:`AutoUIGrammar.for_tokenizer` returns None and decoding is unconstrained.

The grammar changes what the SAMPLER may write (each step renormalises the policy over the
allowed tokens); log-probabilities reported elsewhere stay ``log pi(a | s)`` of the
unconstrained policy, and training is unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import LogitsProcessor

from android.actions import Action, to_autoui

__all__ = ["AutoUIGrammar", "AutoUIGrammarProcessor", "FREE_TEXT", "FREE_TEXT_OR_END"]

#: :meth:`AutoUIGrammar.allowed` results for typed text: any non-structural token, without or
#: with EOS.
FREE_TEXT = "free-text"
FREE_TEXT_OR_END = "free-text-or-end"


def _single_id(tokenizer: Any, text: str) -> int | None:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return ids[0] if len(ids) == 1 else None


@dataclass(frozen=True)
class AutoUIGrammar:
    """Token-level grammar of AutoUI strings (see the module docstring).

    ``point_pattern``: for each token after the DUAL_POINT prefix, either a fixed token id or
    None for "one of ``coordinate_ids``". ``quote_end_ids``: tokens whose text ends with the
    quote that closes ``typed_text``.
    """

    vocab_size: int
    eos_id: int
    pad_id: int
    dual_point_prefix: int
    type_prefix: int
    complete_ids: tuple[int, ...]
    coordinate_ids: tuple[int, ...]
    point_pattern: tuple[int | None, ...]
    quote_end_ids: frozenset[int]
    #: Tokens only the grammar's fixed parts may write (never inside typed text): the format's
    #: added multi-character chunks, not the ordinary characters among its joints.
    structural_ids: tuple[int, ...]

    @classmethod
    def for_tokenizer(
        cls, tokenizer: Any, eos_id: int, pad_id: int, vocab_size: int
    ) -> AutoUIGrammar | None:
        """The grammar for ``tokenizer``, or None when its vocabulary cannot express it."""
        # the format's single-token pieces are defined with the tokenizer (import cycle)
        from digiq.models.policy import (
            _MARK,
            SINGLE_STRING_TYPES,
            autoui_added_tokens,
            coordinate_tokens,
        )

        coordinates = [_single_id(tokenizer, c) for c in coordinate_tokens()]
        if any(c is None for c in coordinates):
            return None
        coordinate_ids = tuple(c for c in coordinates if c is not None)
        completes = [_single_id(tokenizer, to_autoui(Action(kind))) for kind in SINGLE_STRING_TYPES]
        if any(c is None for c in completes):
            return None
        typed = to_autoui(Action.type(_MARK))
        type_prefix = _single_id(tokenizer, typed[: typed.index(_MARK)])
        # Two taps whose coordinates all differ: the positions that differ are the slots.
        taps = [
            tokenizer(to_autoui(Action.tap(y, x)), add_special_tokens=False)["input_ids"]
            for y, x in ((0.12, 0.56), (0.34, 0.78))
        ]
        if type_prefix is None or len(taps[0]) != len(taps[1]) or len(taps[0]) < 2:
            return None
        pattern: list[int | None] = []
        for a, b in zip(taps[0][1:], taps[1][1:], strict=True):
            if a == b:
                pattern.append(a)
            elif a in coordinate_ids and b in coordinate_ids:
                pattern.append(None)
            else:
                return None
        if taps[0][0] != taps[1][0] or pattern.count(None) != 4:
            return None
        # Every added chunk of the format (with and without the "Action Plan" part: previous
        # actions are written without it), but not the ordinary characters among the joints.
        chunks = {_single_id(tokenizer, chunk) for chunk in autoui_added_tokens()}
        completes_ids = tuple(c for c in completes if c is not None)
        others = sorted(c for c in chunks if c is not None)
        return cls(
            vocab_size=vocab_size,
            eos_id=eos_id,
            pad_id=pad_id,
            dual_point_prefix=taps[0][0],
            type_prefix=type_prefix,
            complete_ids=completes_ids,
            coordinate_ids=coordinate_ids,
            point_pattern=tuple(pattern),
            quote_end_ids=frozenset(
                i for i in range(len(tokenizer)) if tokenizer.decode([i]).endswith('"')
            ),
            structural_ids=tuple(dict.fromkeys((taps[0][0], type_prefix, *completes_ids, *others))),
        )

    def allowed(self, generated: Sequence[int]) -> list[int] | str:
        """Token ids allowed after ``generated`` (the decoder's output so far, without the
        start token), or :data:`FREE_TEXT` / :data:`FREE_TEXT_OR_END` inside typed text."""
        if not generated:
            return [self.dual_point_prefix, self.type_prefix, *self.complete_ids]
        first, done = generated[0], len(generated) - 1
        if first == self.dual_point_prefix and done < len(self.point_pattern):
            slot = self.point_pattern[done]
            return list(self.coordinate_ids) if slot is None else [slot]
        if first == self.type_prefix and self.eos_id not in generated[1:]:
            closed = len(generated) > 1 and generated[-1] in self.quote_end_ids
            return FREE_TEXT_OR_END if closed else FREE_TEXT
        # After a finished string (or any unexpected prefix): only the end.
        return [self.eos_id]


class AutoUIGrammarProcessor(LogitsProcessor):
    """A ``transformers`` logits processor that masks tokens the grammar does not allow.

    ``prompt_length``: decoder positions before the output (1: T5's decoder start token).
    """

    def __init__(self, grammar: AutoUIGrammar, prompt_length: int = 1) -> None:
        self.grammar = grammar
        self.prompt_length = prompt_length
        free = torch.ones(grammar.vocab_size, dtype=torch.bool)
        free[list(grammar.structural_ids)] = False
        free[grammar.pad_id] = False
        free_or_end = free.clone()
        free[grammar.eos_id] = False
        free_or_end[grammar.eos_id] = True
        self._free = {FREE_TEXT: free, FREE_TEXT_OR_END: free_or_end}
        self._masks: dict[tuple[Any, int], torch.Tensor] = {}

    def _mask(self, allowed: list[int] | str, width: int) -> torch.Tensor:
        """The allowed-token mask, ``width`` wide (the output layer may be padded past the
        vocabulary); built once per (allowed set, width)."""
        key = (allowed if isinstance(allowed, str) else tuple(allowed), width)
        mask = self._masks.get(key)
        if mask is None:
            base = self._free[allowed] if isinstance(allowed, str) else None
            mask = torch.zeros(width, dtype=torch.bool)
            if base is None:
                mask[[i for i in allowed if i < width]] = True
            else:
                n = min(width, base.numel())
                mask[:n] = base[:n]
            self._masks[key] = mask
        return mask

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        rows = input_ids[:, self.prompt_length :].tolist()
        masks = torch.stack([self._mask(self.grammar.allowed(r), scores.shape[-1]) for r in rows])
        return scores.masked_fill(~masks.to(scores.device), float("-inf"))
