"""Deadline rounds with over-commit (Bonawitz et al., 2019, "Towards Federated Learning at Scale").

Round r (producing version r + 1 from version r) starts when round r - 1 closed:

1. Selection: ceil(clients_per_round x overcommit) phones online at that instant, sampled
   uniformly by draws keyed (seed, SERVER, r, "select") (selection.py). If none
   is online the server tries again every ``idle_retry_s`` for at most ``deadline_s``; if still
   none, the round is an empty step closing ``deadline_s`` after its start. The deadline of a
   round counts from its dispatch instant (the retry that found phones online).
2. Each task's timing and fate come from the time model (timing.py); dropped tasks end at their
   drop instant.
3. Closing: the first ``clients_per_round`` uploads, in (end, phone id) order, that complete by
   the deadline (dispatch + deadline_s) are REPORTED, and the round closes when the last of
   them arrives. With fewer, the round closes at the deadline, except when every dispatched
   phone has reported: then nothing is outstanding and it closes at the last report. A dropped
   phone is silent (the server cannot tell it from a slow one), so drops never close a round
   early: a round whose tasks all drop closes at the deadline.
4. Every other completing upload is LATE (its end_s is when it would have arrived); late phones
   never train. A drop is a drop even if it would happen after the close.
5. ``late_phones``: "abandon" (default) frees a late phone when the round closes; "busy" keeps it
   out of selection until its late task would have ended.

A step lists all tasks of its round in (end, phone id) order, including late and dropped tasks
whose end lies after the close.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import replace

from fedmobile_actors.fleet.builder import Fleet
from fedmobile_actors.scenario.schema import RoundsConfig
from fedmobile_actors.seeding import SERVER, rng
from fedmobile_actors.sim.policy import RoundPolicy
from fedmobile_actors.sim.selection import select_online
from fedmobile_actors.sim.tasks import Outcome, Step, Task
from fedmobile_actors.sim.timing import TaskModel


def dispatch_count(rounds: RoundsConfig) -> int:
    """ceil(clients_per_round x overcommit), immune to float noise (10 x 1.1 is 11, not 12)."""
    return math.ceil(round(rounds.clients_per_round * rounds.overcommit, 9))


class DeadlinePolicy(RoundPolicy):
    """Synchronous rounds that close at a deadline or when enough reports are in."""

    def __init__(self, fleet: Fleet, model: TaskModel, rounds: RoundsConfig, seed: int) -> None:
        self.fleet = fleet
        self.model = model
        self.rounds = rounds
        self.seed = seed

    def steps(self) -> Iterator[Step]:
        close, next_task_id = 0.0, 0
        busy_until: dict[int, float] = {}  # late_phones="busy": phones still on a closed task
        for r in range(self.rounds.rounds):
            step = self._round(r, close, next_task_id, busy_until)
            next_task_id += step.dispatched
            close = step.end_s
            if self.rounds.late_phones == "busy":
                busy_until = {p: t for p, t in busy_until.items() if t > close}
                for task in step.tasks:
                    if task.outcome is Outcome.LATE:
                        busy_until[task.phone_id] = task.end_s
            yield step

    def _select(
        self, r: int, start: float, busy_until: dict[int, float]
    ) -> tuple[float, list[int]]:
        """(dispatch instant, chosen phones in ascending id) after waiting for phones online."""
        cfg = self.rounds
        want = dispatch_count(cfg)
        attempt = 0
        while True:
            t = start + attempt * cfg.idle_retry_s
            if attempt > 0 and t >= start + cfg.deadline_s:
                return t, []
            gen = rng(self.seed, SERVER, r, "select")  # same draws at every retry of a round
            busy = {p for p, until in busy_until.items() if until > t}
            chosen = select_online(self.fleet, gen, t, r, want, busy)
            if chosen:
                return t, sorted(chosen)
            attempt += 1

    def _round(
        self, r: int, start: float, first_task_id: int, busy_until: dict[int, float]
    ) -> Step:
        cfg = self.rounds
        dispatch, chosen = self._select(r, start, busy_until)
        if not chosen:
            return Step(r + 1, start, start + cfg.deadline_s, (), (), 0)
        deadline = dispatch + cfg.deadline_s
        c = self.model.costs
        dropped: list[Task] = []
        uploads: list[Task] = []  # tasks whose upload completes, outcome decided below
        for i, phone in enumerate(chosen):
            fate = self.model.fate(phone, first_task_id + i, dispatch, r)
            task = Task(
                task_id=first_task_id + i,
                phone_id=phone,
                base_version=r,
                dispatch_s=dispatch,
                end_s=fate.end_s,
                outcome=fate.dropped or Outcome.REPORTED,
                down_bytes=c.down_bytes,
                up_bytes=int(c.up_bytes[phone]),
            )
            (dropped if fate.dropped else uploads).append(task)
        uploads.sort(key=lambda t: (t.end_s, t.phone_id))
        in_time = [t for t in uploads if t.end_s <= deadline][: cfg.clients_per_round]
        if len(in_time) == cfg.clients_per_round or len(in_time) == len(chosen):
            close = in_time[-1].end_s
        else:
            close = deadline
        applied = tuple(in_time)
        late = [replace(t, outcome=Outcome.LATE) for t in uploads[len(in_time) :]]
        tasks = sorted([*applied, *late, *dropped], key=lambda t: (t.end_s, t.phone_id))
        return Step(r + 1, start, close, tuple(tasks), applied, len(chosen))
