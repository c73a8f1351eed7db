"""Best-of-N policy extraction: advantages, target selection, weights and the policy loss.

Digi-Q turns its critic into a policy without touching the environment: for every dataset
state the behaviour policy proposed N candidate actions (candidate 0 = the dataset action);
the critic scores them, and the policy imitates the best candidate when it is clearly better
than the state's value::

    A_k  = max(Q1, Q2)(s, a_k) - max(V1, V2)(s)        (per candidate k)
    k*   = argmax_k A_k
    w    = 1[A_k* > threshold]    threshold 0.10 (General) or 0.05 (Web Shopping)
    loss = -mean_batch(w * sum_t log pi(a*_t | s)),   token probabilities clamped to [0.001, 0.99]

Q and V are the critic's scores, which this project clips to the interval the data's returns
can lie in (``CriticConfig.value_range``, on by default; see ``digiq.critic.return_bounds``):
with 0/1 rewards a V below 0 is an error that would hand a spurious advantage to every action
whose Q is right at 0, such as a premature STATUS_TASK_COMPLETE.

The published code also has these alternatives, all here (``method``):

========== ======================== ==============================================
method     target action            weight
========== ======================== ==============================================
bestofn    argmax-advantage cand.   1[A > threshold]
sft        dataset action           1
filtered-  dataset action           1 for steps of successful trajectories, else 0
bc
awr        dataset action           min(exp(A / 0.01), 20)  (clip: see below)
pg         a sampled candidate      5 * A  (may be negative)
========== ======================== ==============================================

AWR clip: exp(A / 0.01) overflows float32 for A > 0.88 and a single transition with A = 0.1
already weighs 22,026 times an average one, so one batch would be dominated by one sample; the
weight is clipped at :data:`AWR_MAX_WEIGHT` = 20, the maximum weight of the AWR paper (Peng et
al., 2019). ``pg``: the "sampled action" is one candidate drawn uniformly per state (the
candidates are samples of the behaviour policy; with a single candidate it is the dataset
action).

Anchor (``anchor_weight``, this project's option, off by default): Best-of-N trains only the
states where some candidate clears the threshold (a sixth to a third of them on the
quickstart's data: 202 of 1,197 training states in qs73); the rest get no loss, and the
policy drifts there, pulled by what it learns at similar states (on qs70's data the Digi-Q
policy pressed ENTER after tapping a shop's search box, where the behaviour policy typed the
query and the critic, seeing A ~ 0 for typing, set no target).
With an anchor weight b, each such state imitates its dataset action, a sample of the
behaviour policy, with weight b: a sampled estimate of b * KL(behaviour || policy) there,
whose gradient is zero at the behaviour policy itself, so it keeps the policy where the critic
says nothing without pulling it anywhere new (the behaviour-regularised extraction of BRAC,
Wu et al. 2019, restricted to the untargeted states).

Everything here except :func:`policy_loss` is data-only (numpy): it prepares
``(transition_id, target AutoUI string, weight)`` triples for the policy trainer.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch

from android.actions import parse_autoui
from digiq.policy_losses import POLICY_LOSSES

log = logging.getLogger(__name__)

__all__ = [
    "METHODS",
    "THRESHOLDS",
    "DEFAULT_THRESHOLD",
    "AWR_TEMPERATURE",
    "AWR_MAX_WEIGHT",
    "PG_SCALE",
    "PROB_MIN",
    "PROB_MAX",
    "CriticScores",
    "PolicyTarget",
    "threshold_for",
    "advantages",
    "select_best",
    "policy_weights",
    "policy_loss",
    "build_policy_targets",
]

METHODS = POLICY_LOSSES
#: Best-of-N advantage thresholds of the published scripts, by task set.
THRESHOLDS = {"general": 0.10, "webshop": 0.05}
#: Used for task sets the paper did not train on (``custom``, unknown).
DEFAULT_THRESHOLD = 0.10
AWR_TEMPERATURE = 0.01
AWR_MAX_WEIGHT = 20.0
PG_SCALE = 5.0
PROB_MIN = 0.001
PROB_MAX = 0.99


@dataclass
class CriticScores:
    """Critic outputs for a set of states and their candidates.

    ``q1``, ``q2``: ``(N, C)`` twin Q values of each candidate (NaN where a candidate has no
    features); ``v1``, ``v2``: ``(N,)`` twin state values; ``transition_ids``: ``(N,)``.
    """

    transition_ids: np.ndarray
    q1: np.ndarray
    q2: np.ndarray
    v1: np.ndarray
    v2: np.ndarray

    def __post_init__(self) -> None:
        self.transition_ids = np.asarray(self.transition_ids, np.int64)
        self.q1, self.q2 = np.asarray(self.q1, np.float64), np.asarray(self.q2, np.float64)
        self.v1, self.v2 = np.asarray(self.v1, np.float64), np.asarray(self.v2, np.float64)
        n = len(self.transition_ids)
        if self.q1.ndim != 2 or self.q1.shape[0] != n or self.q2.shape != self.q1.shape:
            raise ValueError(
                f"q1/q2 must both be (N={n}, C), got {self.q1.shape} and {self.q2.shape}"
            )
        if self.v1.shape != (n,) or self.v2.shape != (n,):
            raise ValueError(f"v1/v2 must be (N={n},), got {self.v1.shape} and {self.v2.shape}")
        self._index = {int(t): i for i, t in enumerate(self.transition_ids)}
        if len(self._index) != n:
            raise ValueError("transition_ids of CriticScores must be unique")

    def __len__(self) -> int:
        return len(self.transition_ids)

    @property
    def num_candidates(self) -> int:
        return int(self.q1.shape[1])

    def advantages(self) -> np.ndarray:
        """``(N, C)`` Best-of-N advantages."""
        return np.asarray(advantages(self.q1, self.q2, self.v1, self.v2))

    def row(self, transition_id: int) -> int:
        try:
            return self._index[int(transition_id)]
        except KeyError:
            raise KeyError(f"transition {transition_id} has no critic scores") from None


class PolicyTarget(NamedTuple):
    """One policy example: imitate ``target`` at the state of ``transition_id``, x ``weight``."""

    transition_id: int
    target: str
    weight: float


def threshold_for(task_set: str) -> float:
    """The Best-of-N threshold for a task set (0.10 General, 0.05 Web Shopping, else 0.10)."""
    key = task_set.strip().lower().replace("_", "").replace("-", "").replace(" ", "")
    if key in ("webshop", "webshopping"):
        return THRESHOLDS["webshop"]
    return THRESHOLDS.get(key, DEFAULT_THRESHOLD)


def advantages(q1: Any, q2: Any, v1: Any, v2: Any) -> Any:
    """``max(q1, q2) - max(v1, v2)`` per candidate.

    ``q1``/``q2`` are ``(..., C)``, ``v1``/``v2`` ``(...)`` (one value per state, broadcast over
    the candidates) or already ``(..., C)``. Torch tensors in, tensor out; else numpy.
    """
    if isinstance(q1, torch.Tensor):
        q = torch.maximum(q1, torch.as_tensor(q2, dtype=q1.dtype, device=q1.device))
        v = torch.maximum(
            torch.as_tensor(v1, dtype=q1.dtype, device=q1.device),
            torch.as_tensor(v2, dtype=q1.dtype, device=q1.device),
        )
        if v.dim() == q.dim() - 1:
            v = v.unsqueeze(-1)
        return q - v
    q = np.maximum(np.asarray(q1, np.float64), np.asarray(q2, np.float64))
    v = np.maximum(np.asarray(v1, np.float64), np.asarray(v2, np.float64))
    if v.ndim == q.ndim - 1:
        v = v[..., None]
    return q - v


def select_best(candidates_A: Any) -> tuple[Any, Any]:
    """``(index, A_best)`` of the highest-advantage candidate along the last axis.

    NaN advantages (candidates without features, or excluded ones) are never chosen; ties go
    to the lowest index, so the dataset action (candidate 0) wins a tie. A state whose
    candidates are all NaN raises ValueError.
    """
    a = np.asarray(candidates_A, np.float64)
    if a.ndim == 0 or a.shape[-1] == 0:
        raise ValueError(f"select_best needs at least one candidate, got shape {a.shape}")
    nan = np.isnan(a)
    if nan.all(axis=-1).any():
        raise ValueError("select_best: a state has no candidate with a finite advantage")
    filled = np.where(nan, -np.inf, a)
    index = np.argmax(filled, axis=-1)
    best = np.take_along_axis(filled, np.expand_dims(index, -1), axis=-1)[..., 0]
    if a.ndim == 1:
        return int(index), float(best)
    return index, best


def policy_weights(
    A: Any,
    method: str = "bestofn",
    threshold: float | np.ndarray | None = None,
    *,
    success: Any = None,
) -> np.ndarray:
    """Per-example weights of the policy loss (see the module table).

    ``A`` is the advantage of each example's TARGET action (``A_best`` for bestofn, the
    dataset action's for awr, the sampled candidate's for pg; ignored by sft/filtered-bc).
    ``threshold`` (bestofn only, scalar or per example): weight 1 only for ``A > threshold``
    (strictly: an advantage exactly at the threshold gets 0). ``success`` (filtered-bc only):
    whether each example's trajectory succeeded.
    """
    a = np.asarray(A, np.float64)
    if method == "bestofn":
        if threshold is None:
            raise ValueError("policy_weights(method='bestofn') needs a threshold (0.10 or 0.05)")
        return (a > np.asarray(threshold, np.float64)).astype(np.float64)
    if method == "sft":
        return np.ones_like(a)
    if method == "filtered-bc":
        if success is None:
            raise ValueError("policy_weights(method='filtered-bc') needs success per example")
        s = np.asarray(success, bool)
        if s.shape != a.shape:
            raise ValueError(f"success shape {s.shape} != advantages shape {a.shape}")
        return s.astype(np.float64)
    if method == "awr":
        with np.errstate(over="ignore"):
            return np.minimum(np.exp(a / AWR_TEMPERATURE), AWR_MAX_WEIGHT)
    if method == "pg":
        return PG_SCALE * a
    raise ValueError(f"unknown policy extraction method {method!r}; choose one of {METHODS}")


def policy_loss(
    token_logprobs: torch.Tensor, token_mask: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """``-mean(w * sum_t log clamp(pi_t, 0.001, 0.99))`` over a batch of target sequences.

    ``token_logprobs`` ``(B, T)``: log pi of each target token; ``token_mask`` ``(B, T)``: 1 on
    real tokens, 0 on padding; ``weights`` ``(B,)``. The clamp is applied in probability space
    (as published): tokens the policy already gives > 0.99 stop contributing gradient (no
    over-sharpening), and tokens below 0.001 stop too, which bounds the loss of negative (pg)
    weights. The mean is over the whole batch, zero-weight examples included.
    """
    if token_logprobs.shape != token_mask.shape:
        raise ValueError(
            f"token_logprobs {tuple(token_logprobs.shape)} and token_mask "
            f"{tuple(token_mask.shape)} must have the same shape"
        )
    if token_logprobs.dim() != 2:
        raise ValueError(
            f"token_logprobs must be (batch, tokens), got {tuple(token_logprobs.shape)}"
        )
    weights = torch.as_tensor(weights, dtype=token_logprobs.dtype, device=token_logprobs.device)
    if weights.shape != token_logprobs.shape[:1]:
        raise ValueError(
            f"weights must be ({token_logprobs.shape[0]},), got {tuple(weights.shape)}"
        )
    clamped = torch.log(torch.clamp(torch.exp(token_logprobs), PROB_MIN, PROB_MAX))
    mask = token_mask.to(token_logprobs.dtype)
    per_sequence = (clamped * mask).sum(dim=-1)
    return -(weights * per_sequence).mean()


def _episode_lookup(buffer: Any) -> dict[str, Any]:
    return {ep.episode_id: ep for ep in buffer.episodes()}


def build_policy_targets(
    buffer: Any,
    candidate_table: Any,
    critic_scores: CriticScores | None,
    method: str = "bestofn",
    threshold: float | None = None,
    *,
    transition_ids: Sequence[int] | np.ndarray | None = None,
    skip_invalid: bool = True,
    drop_zero: bool = False,
    on_missing: str = "error",
    seed: int = 0,
    anchor_weight: float = 0.0,
) -> list[PolicyTarget]:
    """``(transition_id, target AutoUI string, weight)`` for every transition of ``buffer``.

    ``buffer``: a :class:`~trajectories.ReplayBuffer` (view); ``candidate_table``: a
    :class:`~trajectories.CandidateTable` (needed by bestofn and pg; candidate 0 is the
    dataset action); ``critic_scores``: :class:`CriticScores` (needed by bestofn, awr, pg).
    ``threshold`` None: per episode from its task set (:func:`threshold_for`).
    ``skip_invalid``: candidates that do not parse as AutoUI actions are never chosen as
    Best-of-N targets (the policy must not learn to emit garbage). ``drop_zero``: leave out
    zero-weight examples (the published loss averages over them, so the default keeps them).
    ``on_missing``: "error" (default) raises KeyError naming transitions without scores or
    candidates; "skip" leaves them out with a warning.
    ``anchor_weight`` (bestofn only; 0 = published): at a state whose best candidate is not
    above the threshold, imitate the dataset action with this weight instead of nothing (module
    docstring, "Anchor").
    """
    if method not in METHODS:
        raise ValueError(f"unknown policy extraction method {method!r}; choose one of {METHODS}")
    if on_missing not in ("error", "skip"):
        raise ValueError(f"on_missing must be 'error' or 'skip', got {on_missing!r}")
    if not (np.isfinite(anchor_weight) and anchor_weight >= 0):
        raise ValueError(f"anchor_weight must be a finite number >= 0, got {anchor_weight!r}")
    if anchor_weight and method != "bestofn":
        raise ValueError(f"anchor_weight applies to method 'bestofn' only, not {method!r}")
    needs_scores = method in ("bestofn", "awr", "pg")
    needs_candidates = method in ("bestofn", "pg")
    if needs_scores and critic_scores is None:
        raise ValueError(f"method {method!r} needs critic_scores")
    if needs_candidates and candidate_table is None:
        raise ValueError(f"method {method!r} needs a candidate_table")
    ids = np.asarray(buffer.transition_ids if transition_ids is None else transition_ids, np.int64)
    episodes = _episode_lookup(buffer)
    rng = np.random.default_rng(seed)
    all_adv = critic_scores.advantages() if critic_scores is not None else None
    targets: list[PolicyTarget] = []
    missing: list[int] = []
    invalid_skipped = 0
    for tid in ids.tolist():
        transition = buffer.transition(tid)
        episode = episodes[transition.episode_id]
        row = None
        if needs_scores:
            assert critic_scores is not None
            try:
                row = critic_scores.row(tid)
            except KeyError:
                missing.append(tid)
                continue
        actions: list[str] = [transition.action_text]
        if needs_candidates:
            try:
                actions = candidate_table.actions([tid])[0]
            except KeyError:
                missing.append(tid)
                continue
        if method == "sft":
            targets.append(PolicyTarget(tid, transition.action_text, 1.0))
            continue
        if method == "filtered-bc":
            w = float(policy_weights(0.0, "filtered-bc", success=bool(episode.success)))
            targets.append(PolicyTarget(tid, transition.action_text, w))
            continue
        assert critic_scores is not None and all_adv is not None and row is not None
        adv = all_adv[row]
        if method == "awr":
            w = float(policy_weights(adv[0], "awr"))
            targets.append(PolicyTarget(tid, transition.action_text, w))
            continue
        count = min(len(actions), critic_scores.num_candidates)
        adv = adv[:count].copy()
        if method == "pg":
            k = int(rng.integers(0, count))
            targets.append(PolicyTarget(tid, actions[k], float(policy_weights(adv[k], "pg"))))
            continue
        # bestofn
        if skip_invalid:
            for k in range(count):
                if not parse_autoui(actions[k]).is_valid:
                    adv[k] = np.nan
                    invalid_skipped += 1
        if np.isnan(adv).all():
            missing.append(tid)
            continue
        k, a_best = select_best(adv)
        thr = threshold_for(episode.task_set) if threshold is None else threshold
        w = float(policy_weights(a_best, "bestofn", thr))
        if w == 0.0 and anchor_weight:
            targets.append(PolicyTarget(tid, transition.action_text, float(anchor_weight)))
        else:
            targets.append(PolicyTarget(tid, actions[k], w))
    if missing:
        message = (
            f"{len(missing)} transitions have no critic scores / candidates (first: {missing[:5]})"
        )
        if on_missing == "error":
            raise KeyError(message)
        log.warning("%s; skipped", message)
    if invalid_skipped:
        log.info("best-of-N: %d unparseable candidates were not eligible", invalid_skipped)
    if drop_zero:
        targets = [t for t in targets if t.weight != 0.0]
    return targets
