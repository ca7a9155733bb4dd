"""Buffered asynchronous aggregation, FedBuff-style (Nguyen et al., 2022).

The server keeps ``concurrency`` phones busy. Each task is dispatched with the current global
version as its base; whenever a task ends (any outcome) a new one is dispatched to an idle
online phone, sampled uniformly by draws keyed (seed, SERVER, next task id, "select")
(selection.py); a phone never holds two tasks. Uploads arrive in (end, phone id) order; an arrival
with staleness s = version - base_version > ``max_staleness`` is STALE (dropped), any other is
buffered with weight w(s) (staleness.py). Every ``buffer`` buffered arrivals the server
aggregates: version + 1, one step. Drops follow the time model (timing.py), with the model
version as the availability "round" (Bernoulli availability is drawn per version).

When fewer than ``concurrency`` phones could be dispatched, the server tries again every
``idle_retry_s``. If nothing is in flight and no phone has come online for ``deadline_s``, it
aggregates whatever its buffer holds (possibly nothing) so that a run on a fleet that never
comes back online still ends.

A step lists the tasks that ended since the previous step, in (end, phone id) order; tasks still
in flight when the last step is produced appear in no step.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

from fedmobile_actors.fleet.builder import Fleet
from fedmobile_actors.scenario.schema import RoundsConfig
from fedmobile_actors.seeding import SERVER, rng
from fedmobile_actors.sim.clock import VirtualClock
from fedmobile_actors.sim.policy import RoundPolicy
from fedmobile_actors.sim.selection import select_online
from fedmobile_actors.sim.staleness import StalenessWeight
from fedmobile_actors.sim.tasks import Outcome, Step, Task
from fedmobile_actors.sim.timing import TaskModel


@dataclass(frozen=True)
class _Retry:
    """Wake up and try to dispatch again."""


class AsyncPolicy(RoundPolicy):
    """FedBuff: ``concurrency`` phones in flight, aggregate every ``buffer`` arrivals."""

    def __init__(self, fleet: Fleet, model: TaskModel, rounds: RoundsConfig, seed: int) -> None:
        self.fleet = fleet
        self.model = model
        self.rounds = rounds
        self.seed = seed
        self.weight = StalenessWeight.from_rounds(rounds)

    def steps(self) -> Iterator[Step]:
        return _AsyncRun(self).run()


class _AsyncRun:
    """The mutable state of one pass over the run (``steps()`` makes a fresh one each time)."""

    def __init__(self, policy: AsyncPolicy) -> None:
        self.p = policy
        self.cfg = policy.rounds
        self.clock: VirtualClock[Task | _Retry] = VirtualClock()
        self.version = 0
        self.next_task_id = 0
        self.busy: set[int] = set()
        self.ended: list[Task] = []  # tasks ended since the last step
        self.buffer: list[Task] = []  # reported tasks waiting for aggregation
        self.dispatched = 0  # since the last step
        self.step_start = 0.0
        self.retry_at: float | None = None
        self.starved_since: float | None = None  # nothing in flight since then

    def run(self) -> Iterator[Step]:
        self._fill(0.0)
        while self.version < self.cfg.rounds:
            now, event = self.clock.pop()
            if isinstance(event, _Retry):
                self.retry_at = None
            else:
                self._arrive(now, event)
                if len(self.buffer) == self.cfg.buffer:
                    yield self._aggregate(now)
                    if self.version == self.cfg.rounds:
                        return
            self._fill(now)
            if self._starved(now):
                yield self._aggregate(now)

    def _arrive(self, now: float, task: Task) -> None:
        """Free the phone; classify an upload as buffered (REPORTED) or STALE."""
        self.busy.discard(task.phone_id)
        if task.outcome is Outcome.REPORTED:
            staleness = self.version - task.base_version
            if staleness > self.cfg.max_staleness:
                task = replace(task, outcome=Outcome.STALE, staleness=staleness, weight=0.0)
            else:
                task = replace(task, staleness=staleness, weight=self.p.weight(staleness))
                self.buffer.append(task)
        self.ended.append(task)

    def _aggregate(self, now: float) -> Step:
        self.version += 1
        step = Step(
            version=self.version,
            start_s=self.step_start,
            end_s=now,
            tasks=tuple(self.ended),
            applied=tuple(self.buffer),
            dispatched=self.dispatched,
        )
        self.ended, self.buffer, self.dispatched, self.step_start = [], [], 0, now
        return step

    def _fill(self, now: float) -> None:
        """Dispatch to idle online phones until ``concurrency`` are busy; else retry later."""
        want = self.cfg.concurrency - len(self.busy)
        if want <= 0:
            return
        fleet = self.p.fleet
        gen = rng(self.p.seed, SERVER, self.next_task_id, "select")
        for phone in select_online(fleet, gen, now, self.version, want, self.busy):
            self._dispatch(now, phone)
        if len(self.busy) < self.cfg.concurrency and self.retry_at is None:
            self.retry_at = now + self.cfg.idle_retry_s
            self.clock.schedule(self.retry_at, _Retry(), priority=len(fleet))
        if self.busy:
            self.starved_since = None
        elif self.starved_since is None:
            self.starved_since = now

    def _dispatch(self, now: float, phone: int) -> None:
        task_id = self.next_task_id
        self.next_task_id += 1
        fate = self.p.model.fate(phone, task_id, now, self.version)
        costs = self.p.model.costs
        task = Task(
            task_id=task_id,
            phone_id=phone,
            base_version=self.version,
            dispatch_s=now,
            end_s=fate.end_s,
            outcome=fate.dropped or Outcome.REPORTED,
            down_bytes=costs.down_bytes,
            up_bytes=int(costs.up_bytes[phone]),
        )
        self.busy.add(phone)
        self.dispatched += 1
        self.clock.schedule(fate.end_s, task, priority=phone)

    def _starved(self, now: float) -> bool:
        """Nothing in flight and no phone online for ``deadline_s``: time to give up waiting."""
        if self.starved_since is None or now - self.starved_since < self.cfg.deadline_s:
            return False
        self.starved_since = now
        return True
