"""The vocabulary of the simulation: tasks, their outcomes, and aggregation steps.

A round policy turns the fleet and the task costs into a sequence of ``Step``s, each one
aggregation of the global model. Because every duration is known at dispatch, a step already says
which tasks report in time (``applied``, the only ones the runtime trains) and which dropped,
came late or went stale (never trained).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import overload

import numpy as np


class Outcome(str, Enum):
    REPORTED = "reported"  # arrived in time and is aggregated
    DROPPED_OFFLINE = "dropped_offline"  # the phone went offline before its upload ended
    DROPPED_FAILED = "dropped_failed"  # crash or app kill (per-task failure probability)
    LATE = "late"  # deadline policy: would finish after the round closed
    STALE = "stale"  # async policy: staler than max_staleness when it arrived


@dataclass(frozen=True)
class Task:
    """One dispatch of the global model (version ``base_version``) to one phone.

    ``end_s`` is the instant the upload completes (reported, late, stale) or the phone drops
    (dropped_*). ``weight`` is the staleness factor applied at aggregation (1.0 when fresh).
    ``task_id`` is unique within a run and deterministic: it keys the phone's training draws.
    """

    task_id: int
    phone_id: int
    base_version: int
    dispatch_s: float
    end_s: float
    outcome: Outcome
    staleness: int = 0
    weight: float = 1.0
    down_bytes: int = 0
    up_bytes: int = 0


@dataclass(frozen=True)
class Step:
    """One aggregation, producing global version ``version`` at virtual time ``end_s``.

    ``tasks`` are all tasks that ended during the step (for metrics and the event log);
    ``applied`` are those whose updates are aggregated, in application order (end time, then
    phone id); ``dispatched`` counts the tasks dispatched during the step.
    """

    version: int
    start_s: float
    end_s: float
    tasks: tuple[Task, ...]
    applied: tuple[Task, ...]
    dispatched: int


class PhoneInts(Sequence[int]):
    """One integer per phone over a numpy array, read like the list it replaces.

    Why: a list of a million Python ints costs ~36 MB and seconds to build; the array costs 8 MB
    and one numpy call, and ``costs.samples[p]`` still reads an ``int``.
    """

    def __init__(self, values: np.ndarray | Sequence[int]) -> None:
        self.values = np.asarray(values, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.values)

    @overload
    def __getitem__(self, index: int) -> int: ...
    @overload
    def __getitem__(self, index: slice) -> PhoneInts: ...
    def __getitem__(self, index: int | slice) -> int | PhoneInts:
        if isinstance(index, slice):
            return PhoneInts(self.values[index])
        return int(self.values[index])


@dataclass(frozen=True)
class TaskCosts:
    """What a task costs a given phone, known before anything is trained.

    ``samples[p]`` is phone p's shard size, ``up_bytes[p]`` the exact encoded size of its update,
    ``down_bytes`` the encoded size of the global payload.
    """

    samples: Sequence[int]
    epochs: int
    down_bytes: int
    up_bytes: Sequence[int]
