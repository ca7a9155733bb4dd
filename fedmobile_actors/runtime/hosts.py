"""The host-pool interface the server talks to, and sticky phone placement.

The server never knows whether hosts are Ray actors or objects in its own process: it publishes
each model version once and reads ``train_many`` (or, for a stateful strategy,
``train_many_with_state``) results as they land. Placement is sticky and
static (phone p on host ``p % hosts``) so a phone's shard is loaded by one host only, once.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence

from fedmobile_actors.runtime.landing import Land, as_landed
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

    async def train_many_with_state(
        self,
        tasks: Sequence[Task],
        states: Mapping[int, bytes | None],
        new_states: dict[int, bytes | None],
    ) -> AsyncIterator[tuple[int, bytes]]:
        """``train_many`` for a stateful strategy: yield ``(index in tasks, encoded update)`` as
        each lands. ``states`` holds each phone's encoded state before the step; the tasks of
        one phone (async steps may apply two) run in order, each from the previous one's
        output state. A phone's state after its last task goes into ``new_states`` only once
        all of its tasks returned, so a failed call leaves the phone out (the server keeps the
        step all or nothing). By default one chain of ``train_with_state`` calls per phone,
        the phones at once; a pool may batch them (one call per host)."""
        by_phone: dict[int, list[int]] = {}
        for i, task in enumerate(tasks):
            by_phone.setdefault(task.phone_id, []).append(i)

        def chain(phone: int, indices: list[int]) -> Callable[[Land], Awaitable[None]]:
            async def train(land: Land) -> None:
                state = states.get(phone)
                for i in indices:
                    blob, out = await self.train_with_state(tasks[i], state)
                    land(i, blob)
                    state = out if out is not None else state
                new_states[phone] = state  # not reached when a call failed

            return train

        producers = [chain(p, idx) for p, idx in by_phone.items()]
        async for item in as_landed(len(tasks), producers):
            yield item

    def shutdown(self) -> None:
        """Release the hosts."""
