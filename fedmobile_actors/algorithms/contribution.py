"""Contribution-aware model weights (FedMobile's alpha_k) and the public code's filter rule.

The paper weighs each phone's model by how much it knows and how much it learned this round: its
local accuracy and its relative loss reduction. Phones are stateless between tasks, so both come
from one task: the phone scores the *received* global model on its data before training and its
own model after, and reports ``accuracy_after`` and ``loss_reduction`` =
(loss_before - loss_after) / loss_before. The server turns them into

    score_k = balance * accuracy_after_k + (1 - balance) * clip(loss_reduction_k, 0, 1)
    alpha_k ∝ num_samples_k * staleness_k * score_k

so a large shard still counts for more, as in FedAvg, but a phone that neither fits its data nor
improves on the global model counts for little.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

#: Names of the per-update metrics the phone reports (ClientUpdate.metrics).
ACC_BEFORE = "accuracy_before"
ACC_AFTER = "accuracy_after"
LOSS_BEFORE = "loss_before"
LOSS_AFTER = "loss_after"
LOSS_REDUCTION = "loss_reduction"


def relative_loss_reduction(loss_before: float, loss_after: float) -> float:
    """(before - after) / before; 0 when undefined (no data, zero or non-finite loss)."""
    if not (np.isfinite(loss_before) and np.isfinite(loss_after)) or loss_before <= 0:
        return 0.0
    return float((loss_before - loss_after) / loss_before)


def _metric(metrics: Sequence[Mapping[str, float]], name: str) -> np.ndarray:
    """One metric across updates; missing or non-finite values read as 0 (no evidence)."""
    out = np.array([float(m.get(name, 0.0)) for m in metrics], dtype=np.float64)
    return np.where(np.isfinite(out), out, 0.0)


def contribution_scores(metrics: Sequence[Mapping[str, float]], balance: float) -> np.ndarray:
    """score_k in [0, 1] from local accuracy and clipped relative loss reduction; (n,)."""
    accuracy = np.clip(_metric(metrics, ACC_AFTER), 0.0, 1.0)
    reduction = np.clip(_metric(metrics, LOSS_REDUCTION), 0.0, 1.0)
    return balance * accuracy + (1.0 - balance) * reduction


def contribution_weights(
    num_samples: Sequence[int], staleness: Sequence[float] | np.ndarray, scores: np.ndarray
) -> np.ndarray:
    """Unnormalised alpha_k = n_k * s_k * score_k; plain n_k * s_k if every score is zero."""
    base = np.asarray(num_samples, dtype=np.float64) * np.asarray(staleness, dtype=np.float64)
    alpha = base * scores
    return alpha if alpha.sum() > 0 else base


def filter_keep(metrics: Sequence[Mapping[str, float]], reference: float) -> np.ndarray:
    """The public code's filter: keep a phone whose local accuracy plus its marginal gain over the
    global model (accuracy_after - accuracy_before) beats last round's reference accuracy.

    If nobody passes, everybody is kept: a round must never stall on its own filter.
    """
    before, after = _metric(metrics, ACC_BEFORE), _metric(metrics, ACC_AFTER)
    keep = after + (after - before) > reference
    return keep if keep.any() else np.ones(len(metrics), dtype=bool)


def reference_accuracy(metrics: Sequence[Mapping[str, float]], num_samples: Sequence[int]) -> float:
    """The global model's accuracy as the phones measured it (sample-weighted accuracy_before):
    the bar the next round's filter uses."""
    n = np.asarray(num_samples, dtype=np.float64)
    if n.sum() <= 0:
        return 0.0
    return float(np.sum(n * _metric(metrics, ACC_BEFORE)) / n.sum())
