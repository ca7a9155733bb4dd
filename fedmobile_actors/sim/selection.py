"""Which phones the server dispatches to: a seeded uniform sample of the eligible online phones.

Why not a pass over the fleet: with up to a million phones and a few dispatches per event,
checking every phone's availability (or even shuffling all ids) would dominate the simulation.
Random ids are drawn first and checked one by one, which costs about want / (eligible fraction)
checks; only when that keeps missing (few phones online) does the walk fall back to a full
random order, so "none online" is still answered exactly.

The fallback order: up to ``EXACT_ORDER_MAX`` phones it is ``gen.permutation(n)``, as it always
was, so every fleet that ran before keeps its draws (and a permutation of that size costs about a
millisecond). Above, a permutation would cost O(fleet) per round (about 50 ms at a million phones
on a loaded 2-core machine), so the order is drawn lazily instead (``lazy_order``): a forward
Fisher-Yates shuffle that draws only the positions it hands out, O(phones walked). Both are pure
functions of the generator, so every backend draws the same phones.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from fedmobile_actors.fleet.builder import Fleet

#: Largest fleet whose fallback walks ``gen.permutation(n)`` (today's draws); above, ``lazy_order``.
EXACT_ORDER_MAX = 1 << 16

#: Phones converted and checked per step of the fallback walk (it usually ends early).
_CHUNK = 256


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
    for chunk in fallback_order(gen, n):
        if take(chunk):
            break
    return chosen


def fallback_order(gen: np.random.Generator, n: int) -> Iterator[list[int]]:
    """Every phone id once, in a uniformly random order, ``_CHUNK`` at a time."""
    if n > EXACT_ORDER_MAX:
        yield from lazy_order(gen, n)
        return
    order = gen.permutation(n)
    for start in range(0, n, _CHUNK):  # convert lazily: the walk usually ends early
        yield order[start : start + _CHUNK].tolist()


def lazy_order(gen: np.random.Generator, n: int) -> Iterator[list[int]]:
    """A uniform random permutation of range(n), drawn ``_CHUNK`` positions at a time.

    Forward Fisher-Yates over a virtual array ``a = range(n)``: position i swaps with a uniform
    j in [i, n) and is then final. Only the entries moved away from their own index are stored
    (a dict), so handing out k phones costs O(k) time and memory whatever n is.
    """
    moved: dict[int, int] = {}  # position -> the id now there, where it is not the position
    for start in range(0, n, _CHUNK):
        stop = min(start + _CHUNK, n)
        picks = gen.integers(np.arange(start, stop), n).tolist()  # j uniform in [i, n)
        out = []
        for i, j in enumerate(picks, start):
            there = moved.get(j, j)  # the id handed out at position i
            here = moved.pop(i, i)  # position i is final from now on
            if j != i:
                moved[j] = here
            out.append(there)
        yield out
