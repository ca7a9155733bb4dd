"""Where held-out windows came from, and a proxy (validation) split that shares no raw sample
with the test split.

Why: windows cut with overlap (stride < window) from one recording share raw samples. A proxy
set drawn window by window at random from the held-out windows then sits between test windows
that contain half of its samples, so every choice "made on validation" (model selection, the
Shapley utility, hyperparameters) partly sees the test set. ``blocked`` takes a contiguous block
of each held-out recording as proxy and drops the windows that would overlap it, so validation
and test are disjoint at the sample level, not only at the window level.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fedmobile_actors.seeding import SERVER, rng

#: Stream of the block positions (one draw per held-out recording, in recording-id order).
BLOCK_PURPOSE = "proxy/blocked"


@dataclass(frozen=True)
class WindowPositions:
    """Origin of each window: its recording and the offset (in samples) of its first sample.

    ``recording`` and ``start`` are int64 (N,); every window spans ``window`` samples, so two
    windows share a sample exactly when they have the same recording and their starts differ by
    less than ``window``.
    """

    recording: np.ndarray
    start: np.ndarray
    window: int

    def __len__(self) -> int:
        return len(self.recording)

    def subset(self, index: np.ndarray) -> WindowPositions:
        return WindowPositions(self.recording[index], self.start[index], self.window)


def shares_samples(windows: WindowPositions, others: WindowPositions) -> np.ndarray:
    """(len(windows),) bool: True where the window shares at least one sample with some window
    of ``others`` (the nearest start of the same recording is closer than ``window``)."""
    if windows.window != others.window:
        raise ValueError(f"windows of {windows.window} and {others.window} samples compared")
    out = np.zeros(len(windows), dtype=bool)
    for recording in np.intersect1d(np.unique(windows.recording), np.unique(others.recording)):
        mine = np.flatnonzero(windows.recording == recording)
        theirs = np.sort(others.start[others.recording == recording])
        starts = windows.start[mine]
        far = np.int64(2**62)  # sentinels: no neighbour before the first or after the last
        padded = np.concatenate([[-far], theirs, [far]])
        after = np.searchsorted(padded, starts)  # padded[after] >= start > padded[after - 1]
        near = np.minimum(padded[after] - starts, starts - padded[after - 1])
        out[mine] = near < windows.window
    return out


def block_size(windows: int, fraction: float) -> int:
    """Proxy windows taken from a recording of ``windows`` windows: ``fraction`` of it, rounded
    half up (a recording of 1 or 2 windows gives none at fraction 0.2)."""
    return min(windows, int(np.floor(windows * fraction + 0.5)))


def blocked_indices(
    positions: WindowPositions, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(proxy, test) indices (sorted int64) into the held-out windows; the rest are dropped.

    Per recording (in recording-id order), its windows sorted by start: a block of
    ``block_size(n, fraction)`` consecutive windows, its first position drawn uniformly from the
    stream ``(seed, SERVER, 0, "proxy/blocked")``, becomes proxy. Why a drawn position and not
    always the start: a recording's first seconds are often the transition into the activity,
    and a proxy made only of those would be a biased validation set. The windows of the same
    recording that share a sample with the block (``ceil(window / stride) - 1`` on each side of
    it for a regular stride) are dropped, the others stay in the test split.
    """
    gen = rng(seed, SERVER, 0, BLOCK_PURPOSE)
    proxy_parts, test_parts = [], []
    for recording in np.unique(positions.recording):
        members = np.flatnonzero(positions.recording == recording)
        members = members[np.argsort(positions.start[members], kind="stable")]
        n = len(members)
        k = block_size(n, fraction)
        first = int(gen.integers(0, n - k + 1))
        block = members[first : first + k]
        rest = np.concatenate([members[:first], members[first + k :]])
        if k:
            starts = positions.start[rest]
            lo, hi = positions.start[block[0]], positions.start[block[-1]]
            clear = (starts <= lo - positions.window) | (starts >= hi + positions.window)
            rest = rest[clear]
        proxy_parts.append(block)
        test_parts.append(rest)
    empty = np.empty(0, dtype=np.int64)
    proxy = np.sort(np.concatenate(proxy_parts)) if proxy_parts else empty
    test = np.sort(np.concatenate(test_parts)) if test_parts else empty
    return proxy.astype(np.int64), test.astype(np.int64)


def whole_group_indices(
    groups: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(proxy, test) indices: whole groups, in a seeded order, until ``fraction`` of the windows.

    For .npz sources, whose ``groups`` name recordings but whose window and stride are unknown:
    without them the overlap between neighbouring windows cannot be computed, so no block with
    a safe gap can be cut inside a group; whole groups share no sample by construction. The last
    group in the order always stays in the test split.
    """
    ids = np.unique(groups)
    order = rng(seed, SERVER, 0, BLOCK_PURPOSE + "/groups").permutation(ids)
    want = max(1, round(len(groups) * fraction))
    taken = np.zeros(len(groups), dtype=bool)
    for group in order[:-1]:
        if taken.sum() >= want:
            break
        taken |= groups == group
    return np.flatnonzero(taken).astype(np.int64), np.flatnonzero(~taken).astype(np.int64)
