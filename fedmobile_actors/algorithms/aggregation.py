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


class OrderedWeightedSum:
    """``weighted_average`` computed as the arrays arrive, with the same bits.

    ``weighted_average`` normalises the weights first and then adds ``w_k x_k`` in order, so a
    streaming sum must know every weight up front and add in the same order. The caller gives
    the planned weights of the positions it expects (known at dispatch); arrays that arrive out
    of order wait until their predecessors are in. ``result`` returns None when what arrived
    differs from the plan (a position missing, another weight): the caller then averages the
    kept arrays with ``weighted_average`` (same bits, just not hidden behind training).
    """

    def __init__(self, planned: Mapping[int, float]) -> None:
        self._order = sorted(planned)
        self._planned = dict(planned)
        w = np.asarray([planned[p] for p in self._order], dtype=np.float64)
        self._valid = bool(w.size and np.isfinite(w).all() and (w >= 0).all() and w.sum() > 0)
        self._norm = w / w.sum() if self._valid else w
        self._waiting: dict[int, Mapping[str, np.ndarray]] = {}
        self._next = 0  # index into _order of the next position to add
        self._acc: dict[str, np.ndarray] = {}
        self._dtypes: dict[str, np.dtype] = {}

    def add(self, position: int, arrays: Mapping[str, np.ndarray], weight: float) -> None:
        if position not in self._planned or weight != self._planned[position]:
            self._valid = False
        if not self._valid:
            self._waiting.clear()
            return
        self._waiting[position] = arrays
        while self._next < len(self._order) and self._order[self._next] in self._waiting:
            self._fold(self._norm[self._next], self._waiting.pop(self._order[self._next]))
            self._next += 1

    def _fold(self, wk: np.float64, arrays: Mapping[str, np.ndarray]) -> None:
        if not self._acc:  # the first array fixes names, order and dtypes, as in weighted_average
            self._acc = {n: np.zeros(a.shape, dtype=np.float64) for n, a in arrays.items()}
            self._dtypes = {n: a.dtype for n, a in arrays.items()}
        for name, acc in self._acc.items():
            acc += wk * arrays[name]

    @property
    def complete(self) -> bool:
        """Every planned position arrived with its planned weight and has been summed."""
        return self._valid and self._next == len(self._order)

    def result(self) -> dict[str, np.ndarray] | None:
        """The average when every planned position arrived with its planned weight, else None."""
        if not self.complete:
            return None
        return {n: acc.astype(self._dtypes[n]) for n, acc in self._acc.items()}
