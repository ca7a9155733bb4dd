"""Aggregation rules as plain numpy functions, tested directly.

Sums run in float64 and in the order given, so the same updates in the same order always give the
same bits: the runtime sorts updates by (virtual arrival time, phone id) before calling these.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def weighted_average(
    arrays: Sequence[Mapping[str, np.ndarray]], weights: Sequence[float]
) -> dict[str, np.ndarray]:
    """Sum_k w_k x_k / sum_k w_k per array name; weights must be non-negative, not all zero."""
    if not arrays:
        raise ValueError("nothing to average")
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (len(arrays),) or (w < 0).any() or not np.isfinite(w).all() or w.sum() <= 0:
        raise ValueError(f"weights must be {len(arrays)} finite non-negative numbers, not all 0")
    w = w / w.sum()
    out = {}
    for name, first in arrays[0].items():
        acc = np.zeros(first.shape, dtype=np.float64)
        for wk, a in zip(w, arrays, strict=True):
            acc += wk * a[name]
        out[name] = acc.astype(first.dtype)
    return out
