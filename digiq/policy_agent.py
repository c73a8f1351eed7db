"""The trained-policy agent: an :class:`eval.agents.base.Agent` backed by a saved policy.

``digiq-eval --agent RUN`` and ``digiq-collect --agent RUN`` drive a policy trained by
``digiq-train`` through this agent: ``eval`` never imports the learner; :func:`register` (called
by ``digiq.cli``) plugs a path loader into ``eval.agents.base``.

Which folder a spec names (:func:`resolve_policy_dir`, first match wins):

1. ``SPEC`` itself holds ``digiq_policy.json`` (a policy folder, e.g. ``RUN/bc``);
2. ``SPEC/policy`` (the ``policy`` stage's result of a training run);
3. ``SPEC/bc`` (a run that has only the behaviour-cloning stage).

Sampling settings: the defaults are the published evaluation setting (temperature 0.8). A spec
may carry settings after ``?``: ``RUN?greedy``, ``RUN?temperature=1.0``,
``RUN?temperature=0.8&history=1``, ``RUN?grammar=0`` (what ``digiq-eval --agent`` can pass,
since it has no sampling options of its own); ``load_agent(RUN, temperature=..., greedy=...)``
works too. The evaluator's ``--agent-seed`` becomes ``seed``; ``--noise`` is refused (a trained
policy's randomness is its temperature).

Acting: the input text is :meth:`PolicyModel.input_text` (the last ``history`` executed actions
+ the goal; by default the policy's own ``PolicyConfig.history``, what it was trained on), the
screen is the observation's screenshot; the sampled string is parsed with
:func:`android.actions.parse_autoui`; an unparseable one is returned as the INVALID action it
parses to (the environment counts it as an invalid step, nothing is executed). By default the
sampler is held to well-formed AutoUI strings where the policy's tokenizer can express that
(:mod:`digiq.models.autoui_grammar`; the tiny preset); ``grammar=0`` samples unconstrained.
Sampling is reproducible: each step's draw is seeded from (seed, episode seed, task id, step),
under a process-wide lock because generation uses torch's global generator (the evaluator runs one
agent per worker thread).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from android.actions import Action, parse_autoui
from android.observation import Observation
from eval.agents.base import AgentStep, CandidateAction, register_path_loader
from eval.tasks import Task

if TYPE_CHECKING:  # the model (torch, transformers) is imported when an agent is built, so
    # registering the loader keeps `digiq --help` fast
    from digiq.models.policy import PolicyModel

log = logging.getLogger(__name__)

__all__ = [
    "PolicyAgent",
    "resolve_policy_dir",
    "find_policy_dir",
    "register",
    "EVAL_TEMPERATURE",
]

EVAL_TEMPERATURE = 0.8
POLICY_JSON = "digiq_policy.json"  # == digiq.models.policy.POLICY_JSON (not imported: torch)
_GENERATE_LOCK = threading.Lock()
_REGISTERED = False
_SPEC_KEYS = {"temperature": float, "greedy": None, "history": int, "seed": int, "grammar": None}
_FLAG_KEYS = ("greedy", "grammar")


def find_policy_dir(spec: str | Path, order: Sequence[str] = ("", "policy", "bc")) -> Path | None:
    """The policy folder ``spec`` names (see the module docstring), or None."""
    root = Path(spec)
    for sub in order:
        candidate = root / sub if sub else root
        if (candidate / POLICY_JSON).is_file():
            return candidate
    return None


def resolve_policy_dir(spec: str | Path, order: Sequence[str] = ("", "policy", "bc")) -> Path:
    """Like :func:`find_policy_dir` but raises FileNotFoundError naming what was looked for."""
    found = find_policy_dir(spec, order)
    if found is None:
        root = Path(spec)
        if not root.exists():
            raise FileNotFoundError(f"policy path {str(root)!r} does not exist")
        looked = ", ".join(str((root / s) if s else root) for s in order)
        raise FileNotFoundError(f"no trained policy ({POLICY_JSON}) in any of: {looked}")
    return found


def _split_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``PATH?key=value&flag`` -> (PATH, options)."""
    if "?" not in spec:
        return spec, {}
    path, _, query = spec.partition("?")
    options: dict[str, Any] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key not in _SPEC_KEYS:
            raise ValueError(
                f"unknown policy agent setting {key!r} in {spec!r}; valid: {sorted(_SPEC_KEYS)}"
            )
        if key in _FLAG_KEYS:
            options[key] = value.lower() not in ("0", "false", "no")
        else:
            try:
                options[key] = _SPEC_KEYS[key](value)
            except ValueError:
                raise ValueError(f"policy agent setting {key}={value!r} is not a number") from None
    return path, options


def _stable_seed(*parts: object) -> int:
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:4], "little")


class PolicyAgent:
    """A trained policy as an agent (see the module docstring)."""

    name = "policy"

    def __init__(
        self,
        run_dir: str | Path,
        temperature: float = EVAL_TEMPERATURE,
        greedy: bool = False,
        seed: int = 0,
        history: int | None = None,
        device: str | None = None,
        model: PolicyModel | None = None,
        grammar: bool = True,
    ) -> None:
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        if history is not None and history < 0:
            raise ValueError(f"history must be >= 0, got {history}")
        from digiq.models.policy import PolicyModel

        self.spec = str(run_dir)
        self.policy_dir = resolve_policy_dir(run_dir) if model is None else Path(run_dir)
        self.model = (
            model if model is not None else PolicyModel.load(self.policy_dir, device=device)
        )
        self.model.eval()
        self.temperature = float(temperature)
        self.greedy = bool(greedy) or self.temperature == 0.0
        self.seed = int(seed)
        # By default the policy acts on as many previous actions as it was trained on.
        self.history = self.model.config.history if history is None else int(history)
        self.grammar = bool(grammar)
        self._episode_seed: int | None = None

    def reset(self, task: Task, seed: int | None = None) -> None:
        self._episode_seed = seed

    def config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "policy_dir": str(self.policy_dir),
            "model_id": self.model.model_id,
            "preset": self.model.config.preset,
            "temperature": None if self.greedy else self.temperature,
            "greedy": self.greedy,
            "seed": self.seed,
            "history": self.history,
            # whether sampling is actually held to the AutoUI grammar (False where asked for
            # but the tokenizer cannot express it)
            "grammar": self.grammar and self.model.grammar is not None,
        }

    def _input_text(self, task: Task, history: Sequence[AgentStep]) -> str:
        return self.model.input_text([s.action for s in history], task.instruction, self.history)

    def _draw_seed(self, task: Task, history: Sequence[AgentStep], stream: str) -> int:
        return _stable_seed(self.seed, self._episode_seed, task.task_id, len(history), stream)

    def act(self, observation: Observation, task: Task, history: Sequence[AgentStep]) -> Action:
        text = self._input_text(task, history)
        # ``generate``, not ``sample``/``greedy``: acting needs no log-probability
        with _GENERATE_LOCK:
            rows = self.model.generate(
                [observation.screenshot],
                [text],
                n=1,
                temperature=0.0 if self.greedy else self.temperature,
                seed=None if self.greedy else self._draw_seed(task, history, "act"),
                grammar=self.grammar,
            )
        output = rows[0][0]
        action = parse_autoui(output)
        if not action.is_valid:
            log.debug("policy output is not an action (%s): %r", action.invalid_reason, output)
        return action

    def sample(
        self, observation: Observation, task: Task, history: Sequence[AgentStep], n: int
    ) -> list[CandidateAction]:
        """``n`` candidates at the agent's temperature (1.0 when greedy) with ``log pi``."""
        text = self._input_text(task, history)
        temperature = 1.0 if self.greedy else self.temperature
        with _GENERATE_LOCK:
            rows = self.model.sample(
                [observation.screenshot],
                [text],
                n=n,
                temperature=temperature,
                seed=self._draw_seed(task, history, "sample"),
                grammar=self.grammar,
            )
        return [CandidateAction(parse_autoui(s), logprob) for s, logprob in rows[0]]


def _load(spec: str, **options: Any) -> PolicyAgent:
    path, from_spec = _split_spec(spec)
    if "noise" in options:
        raise ValueError(
            "a trained policy has no --noise (its randomness is the sampling temperature: "
            "add ?temperature=T or ?greedy to the agent path)"
        )
    merged = {**from_spec, **options}
    return PolicyAgent(path, **merged)


def _matches(spec: str) -> bool:
    path = spec.partition("?")[0]
    return find_policy_dir(path) is not None


def register() -> None:
    """Let ``eval.agents.base.load_agent(RUN)`` load trained policies (see the module doc).

    Idempotent. Cheap: nothing heavy is imported until a policy is actually loaded.
    """
    global _REGISTERED
    if _REGISTERED:
        return
    register_path_loader(_matches, _load)
    _REGISTERED = True
