"""A virtual clock: SimPy's heap of (time, priority, sequence, event).

Why a sequence number: two events at the same instant and priority must come out in the order
they were scheduled, never in an order that depends on comparing the events themselves (which
may not be comparable) or on object identity.
"""

from __future__ import annotations

import heapq
import itertools
from typing import Generic, TypeVar

E = TypeVar("E")


class VirtualClock(Generic[E]):
    """Events ordered by (time, priority, scheduling order); ``now`` is the last popped time."""

    def __init__(self, start_s: float = 0.0) -> None:
        self.now = start_s
        self._heap: list[tuple[float, int, int, E]] = []
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def schedule(self, at_s: float, event: E, priority: int = 0) -> None:
        """Schedule ``event`` at virtual time ``at_s`` (lower ``priority`` first on ties)."""
        if at_s < self.now:
            raise ValueError(f"cannot schedule at {at_s} s: the clock is already at {self.now} s")
        heapq.heappush(self._heap, (at_s, priority, next(self._seq), event))

    def peek_s(self) -> float | None:
        """Time of the next event, or None if nothing is scheduled."""
        return self._heap[0][0] if self._heap else None

    def pop(self) -> tuple[float, E]:
        """Remove the next event, advance ``now`` to its time and return (time, event)."""
        if not self._heap:
            raise IndexError("no event scheduled")
        at_s, _, _, event = heapq.heappop(self._heap)
        self.now = at_s
        return at_s, event
