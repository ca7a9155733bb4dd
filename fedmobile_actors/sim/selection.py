"""Which phones the server dispatches to: a seeded uniform sample of the eligible online phones.

Why not a pass over the fleet: with thousands of phones and a few dispatches per event, checking
every phone's availability (or even shuffling all ids) would dominate the simulation. Random ids
are drawn first and checked one by one, which costs about want / (eligible fraction) checks; only
when that keeps missing (few phones online) does the walk fall back to a full random order, so
"none online" is still answered exactly.
"""

from __future__ import annotations

import numpy as np

from fedmobile_actors.fleet.builder import Fleet


def select_online(
    fleet: Fleet,
    gen: np.random.Generator,
    t: float,
    round_index: int,
    want: int,
    busy: set[int] | frozenset[int] = frozenset(),
) -> list[int]:
    """Up to ``want`` distinct phones, not in ``busy`` and online at ``t``, in draw order."""
    n = len(fleet)
    chosen: list[int] = []
    seen: set[int] = set(busy)

    def take(candidates: list[int]) -> bool:
        """Add the unseen, online ones in order; True once ``want`` are chosen."""
        for phone in candidates:
            if phone in seen:
                continue
            seen.add(phone)
            if fleet.availability(phone).online_at(t, round_index):
                chosen.append(phone)
                if len(chosen) == want:
                    return True
        return False

    if take(gen.integers(0, n, size=4 * want + 16).tolist()):
        return chosen
    order = gen.permutation(n)
    for start in range(0, n, 256):  # convert lazily: the walk usually ends early
        if take(order[start : start + 256].tolist()):
            break
    return chosen
