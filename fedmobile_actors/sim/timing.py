"""How long a task takes a phone, and whether it survives: the time model of DESIGN.md.

    total = down_bytes * 8 / down_bps + latency
          + samples * epochs / samples_per_second * slowdown
          + up_bytes * 8 / up_bps + latency

The slowdown is drawn per task from ``fleet.slowdown`` keyed (seed, phone, task id, "slowdown"),
so a re-run task takes exactly as long. A task then drops if the phone crashes (a per-task
failure draw, keyed (seed, phone, task id, "failure"), at an instant drawn uniformly within the
task) or if the phone goes offline before its upload ends (at that instant); the earlier wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fedmobile_actors.fleet.builder import Fleet
from fedmobile_actors.fleet.distributions import draw_one
from fedmobile_actors.scenario.schema import Constant, LogNormal, Uniform
from fedmobile_actors.seeding import rng
from fedmobile_actors.sim.tasks import Outcome, TaskCosts


@dataclass(frozen=True)
class TaskTiming:
    """The parts of one task's duration, in virtual seconds (latency is one way)."""

    dispatch_s: float
    download_s: float
    latency_s: float
    compute_s: float
    upload_s: float
    slowdown: float
    upload_end_s: float  # the instant the update is fully received by the server

    @property
    def total_s(self) -> float:
        return self.upload_end_s - self.dispatch_s


def task_timing(
    fleet: Fleet,
    phone_id: int,
    samples: int,
    epochs: int,
    down_bytes: int,
    up_bytes: int,
    slowdown: float,
    dispatch_s: float,
) -> TaskTiming:
    """The time model applied to one phone (read from the fleet's columns) and one task."""
    latency = float(fleet.latency_s[phone_id])
    download = down_bytes * 8.0 / float(fleet.down_bps[phone_id])
    compute = samples * epochs / float(fleet.samples_per_second[phone_id]) * slowdown
    upload = up_bytes * 8.0 / float(fleet.up_bps[phone_id])
    end = dispatch_s + download + latency + compute + upload + latency
    return TaskTiming(dispatch_s, download, latency, compute, upload, slowdown, end)


@dataclass(frozen=True)
class TaskFate:
    """What happens to a task: ``dropped`` is None if its upload completes at ``end_s``,
    otherwise the drop outcome, and ``end_s`` the instant of the drop."""

    timing: TaskTiming
    dropped: Outcome | None
    end_s: float


class TaskModel:
    """Timings and fates of tasks on a fleet, given the task costs, the slowdown and the seed."""

    def __init__(
        self,
        fleet: Fleet,
        costs: TaskCosts,
        slowdown: Constant | Uniform | LogNormal,
        seed: int,
    ) -> None:
        for name, values in (("samples", costs.samples), ("up_bytes", costs.up_bytes)):
            _check_per_phone(name, values, len(fleet))
        self.fleet = fleet
        self.costs = costs
        self.slowdown = slowdown
        self.seed = seed

    def timing(self, phone_id: int, task_id: int, dispatch_s: float) -> TaskTiming:
        """The duration parts of task ``task_id`` sent to ``phone_id`` at ``dispatch_s``."""
        if isinstance(self.slowdown, Constant):
            slowdown = float(self.slowdown.value)
        else:
            slowdown = draw_one(self.slowdown, rng(self.seed, phone_id, task_id, "slowdown"))
        c = self.costs
        return task_timing(
            self.fleet,
            phone_id,
            int(c.samples[phone_id]),
            c.epochs,
            c.down_bytes,
            int(c.up_bytes[phone_id]),
            slowdown,
            dispatch_s,
        )

    def fate(self, phone_id: int, task_id: int, dispatch_s: float, round_index: int) -> TaskFate:
        """Timing plus the dropout rule: a crash at a drawn instant, or going offline before
        the upload ends (at that instant); the earlier of the two, offline first on a tie."""
        timing = self.timing(phone_id, task_id, dispatch_s)
        end = timing.upload_end_s
        offline = self.fleet.availability(phone_id).next_offline(dispatch_s, round_index)
        crash = end
        failure_prob = self.fleet.failure_prob_of(phone_id)
        if failure_prob > 0:
            gen = rng(self.seed, phone_id, task_id, "failure")
            if gen.random() < failure_prob:
                crash = dispatch_s + gen.random() * (end - dispatch_s)
        if offline < end and offline <= crash:
            return TaskFate(timing, Outcome.DROPPED_OFFLINE, offline)
        if crash < end:
            return TaskFate(timing, Outcome.DROPPED_FAILED, crash)
        return TaskFate(timing, None, end)


def _check_per_phone(name: str, values: Sequence[int], phones: int) -> None:
    if len(values) != phones:
        raise ValueError(f"TaskCosts.{name} has {len(values)} entries for a fleet of {phones}")
