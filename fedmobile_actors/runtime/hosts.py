"""The host-pool interface the server talks to, and sticky phone placement.

The server never knows whether hosts are Ray actors or objects in its own process: it publishes
each model version once and reads ``train_many`` results as they land. Placement is sticky and
static (phone p on host ``p % hosts``) so a phone's shard is loaded by one host only, once.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence

from fedmobile_actors.sim.tasks import Task


def host_count(phones: int, hosts: int | None, phones_per_host: int | None, cpus: float) -> int:
    """Hosts for a run: ``hosts`` if set, else enough for ``phones_per_host``, else one per CPU."""
    if hosts is not None:
        return max(1, min(hosts, phones))
    if phones_per_host is not None:
        return max(1, -(-phones // phones_per_host))
    return max(1, min(int(cpus), phones))


class HostPool(ABC):
    """A fixed set of phone hosts."""

    size: int
    #: Whether hosts train while the server's own code runs (their own processes). Only then
    #: does the server start the next step before it evaluates the last one.
    trains_in_parallel: bool = False

    def host_of(self, phone_id: int) -> int:
        return phone_id % self.size

    @abstractmethod
    def publish(self, version: int, payload: bytes) -> None:
        """Make global payload ``version`` available to every host (once, not once per phone)."""

    @abstractmethod
    def forget(self, version: int) -> None:
        """Release a version no task can still be dispatched with."""

    @abstractmethod
    async def train(self, task: Task) -> bytes:
        """Run ``task`` on its phone's host; the encoded update."""

    async def train_many(self, tasks: Sequence[Task]) -> AsyncIterator[tuple[int, bytes]]:
        """Run ``tasks`` and yield ``(index in tasks, encoded update)`` as each one finishes, so
        the server can decode and aggregate while the rest still train. By default one
        ``train`` per task; a pool may batch them (one call per host)."""

        async def indexed(i: int, task: Task) -> tuple[int, bytes]:
            return i, await self.train(task)

        # Started in the round's order (as_completed alone would start them in set order).
        started = [asyncio.ensure_future(indexed(i, t)) for i, t in enumerate(tasks)]
        for done in asyncio.as_completed(started):
            yield await done

    async def train_with_state(
        self, task: Task, phone_state: bytes | None
    ) -> tuple[bytes, bytes | None]:
        """Run ``task`` of a stateful strategy from the phone's encoded state; the encoded
        update and the phone's new encoded state (None when the strategy kept none)."""
        raise NotImplementedError(f"{type(self).__name__} does not run stateful strategies")

    def shutdown(self) -> None:
        """Release the hosts."""
