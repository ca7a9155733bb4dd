"""Aggregation rules as plain numpy functions, tested directly.

Sums run in float64 and in the order given, so the same updates in the same order always give the
same bits: the runtime sorts updates by (virtual arrival time, phone id) before calling these.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

#: Elements per block of the blocked sums below (2 MiB of float64). Whole-array temporaries of
#: a large model (the authors' 6336 x 6336 generator layer is 320 MB in float64) are allocated
#: by the C library with a fresh mmap each time, so every use pays page faults that zero the
#: memory again; blocks this size are reused from the heap. A block changes no bits: each
#: element goes through the same operations in the same order whatever block it falls in.
BLOCK = 1 << 18


def weighted_average(
    arrays: Sequence[Mapping[str, np.ndarray]],
    weights: Sequence[float],
    out: Mapping[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Sum_k w_k x_k / sum_k w_k per array name; weights must be non-negative, not all zero.

    Per element: start at 0.0 in float64, add ``w_k * x_k`` for k in order, cast to the first
    array's dtype; computed block by block (``BLOCK``) so no whole-size temporary is made.
    ``out`` (arrays of the first member's names, shapes and dtypes) receives the result, for
    callers that average large arrays again and again and would otherwise pay fresh memory's
    page faults for every result.
    """
    if not arrays:
        raise ValueError("nothing to average")
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (len(arrays),) or (w < 0).any() or not np.isfinite(w).all() or w.sum() <= 0:
        raise ValueError(f"weights must be {len(arrays)} finite non-negative numbers, not all 0")
    w = w / w.sum()
    acc = np.empty(BLOCK, dtype=np.float64)
    scratch = np.empty(BLOCK, dtype=np.float64)
    averaged = {}
    for name, first in arrays[0].items():
        members = [_flat(a[name], first.shape, name) for a in arrays]
        result = np.empty(first.shape, dtype=first.dtype) if out is None else out[name]
        if (
            result.shape != first.shape
            or result.dtype != first.dtype
            or not result.flags.c_contiguous
        ):
            raise ValueError(
                f"out[{name!r}] must be a C-contiguous {first.dtype} {first.shape} array"
            )
        flat = result.reshape(-1)
        for start in range(0, flat.size, BLOCK):
            stop = min(start + BLOCK, flat.size)
            block = acc[: stop - start]
            block.fill(0.0)
            for wk, member in zip(w, members, strict=True):
                _add_scaled(block, wk, member[start:stop], scratch)
            np.copyto(flat[start:stop], block, casting="unsafe")
        averaged[name] = result
    return averaged


def _flat(array: np.ndarray, shape: tuple[int, ...], name: str) -> np.ndarray:
    """The array as one C-order row (a view when it can be), after checking its shape."""
    if array.shape != shape:
        raise ValueError(f"array {name!r} has shape {array.shape}, the first has {shape}")
    return np.ravel(array)


def _add_scaled(acc: np.ndarray, wk: np.float64, values: np.ndarray, scratch: np.ndarray) -> None:
    """``acc += wk * values`` through a reused scratch block: the same ufunc loop and casts as
    the expression (the product's dtype comes from the operands, not from ``out``)."""
    product = scratch[: acc.size]
    np.multiply(wk, values, out=product)
    np.add(acc, product, out=acc)


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
        scratch = np.empty(BLOCK, dtype=np.float64)
        for name, acc in self._acc.items():
            flat, values = acc.reshape(-1), _flat(arrays[name], acc.shape, name)
            for start in range(0, flat.size, BLOCK):
                stop = min(start + BLOCK, flat.size)
                _add_scaled(flat[start:stop], wk, values[start:stop], scratch)

    @property
    def complete(self) -> bool:
        """Every planned position arrived with its planned weight and has been summed."""
        return self._valid and self._next == len(self._order)

    def result(self) -> dict[str, np.ndarray] | None:
        """The average when every planned position arrived with its planned weight, else None."""
        if not self.complete:
            return None
        return {n: acc.astype(self._dtypes[n]) for n, acc in self._acc.items()}
