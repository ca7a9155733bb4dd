"""When each phone is online: one on/off process per availability model of the scenario.

Every process is a pure function of (seed, phone id[, trace]): the same query always gives the
same answer whichever process asks and in whichever order, so the server's view of who is online
never depends on how a run is spread over machines. Online stretches are half-open intervals
``[from, until)``: a phone is online at ``from`` and offline again at ``until``.

Draws are keyed per phone (and per round or slot where the model says so), and generated in
blocks so that a policy's few queries per round cost microseconds, not a pass over the fleet.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fedmobile_actors.fleet.phone import AvailabilityProcess
from fedmobile_actors.scenario.schema import (
    AlwaysOn,
    BernoulliAvailability,
    DiurnalAvailability,
    MarkovAvailability,
    TraceAvailability,
)
from fedmobile_actors.scenario.traces import load_trace, resolve_trace
from fedmobile_actors.seeding import rng

AvailabilityConfig = (
    AlwaysOn | BernoulliAvailability | MarkovAvailability | DiurnalAvailability | TraceAvailability
)

#: Holding times (Markov) and slot draws (diurnal) are generated this many at a time.
BLOCK = 64

#: Diurnal ``next_offline`` gives up (answers "online for ever") after scanning this many blocks
#: of slots, which only a fleet whose online probability is ~1 at every slot can reach.
_DIURNAL_MAX_BLOCKS = 4096


class AlwaysOnline:
    """Online at every instant."""

    def online_at(self, t: float, round_index: int) -> bool:
        return True

    def next_offline(self, t: float, round_index: int) -> float:
        return math.inf


#: The one process of every always-on phone (it holds no state).
ALWAYS_ONLINE = AlwaysOnline()


class BernoulliOnline:
    """Online for a whole round with probability ``p_online``, drawn per (phone, round).

    Within a round the state never changes, so an online phone never drops offline mid-task;
    in the async policy the "round" is the model version a task was dispatched with.
    """

    def __init__(self, phone_id: int, seed: int, p_online: float) -> None:
        self.phone_id = phone_id
        self.seed = seed
        self.p_online = p_online
        self._last: tuple[int, bool] | None = None  # (round, online): queries come in pairs

    def _online(self, round_index: int) -> bool:
        if self._last is not None and self._last[0] == round_index:
            return self._last[1]
        gen = rng(self.seed, self.phone_id, round_index, "availability/bernoulli")
        online = bool(gen.random() < self.p_online)
        self._last = (round_index, online)
        return online

    def online_at(self, t: float, round_index: int) -> bool:
        return self._online(round_index)

    def next_offline(self, t: float, round_index: int) -> float:
        return math.inf if self._online(round_index) else t


class MarkovOnline:
    """Two-state continuous-time Markov chain with exponential on and off holding times.

    The initial state is drawn from the stationary distribution (online with probability
    mean_on / (mean_on + mean_off)); by memorylessness the first holding time is then a plain
    exponential of that state's mean, so the process is stationary from t = 0. Change points
    are drawn from the phone's own stream in fixed blocks, always in order, so the cached
    timeline is the same whatever order the queries come in.
    """

    def __init__(self, phone_id: int, seed: int, mean_on_s: float, mean_off_s: float) -> None:
        self._gen = rng(seed, phone_id, 0, "availability/markov")
        p_on = mean_on_s / (mean_on_s + mean_off_s)
        self._online0 = bool(self._gen.random() < p_on)
        self._means = (mean_on_s, mean_off_s) if self._online0 else (mean_off_s, mean_on_s)
        self._changes: list[float] = [0.0]  # interval k is [changes[k], changes[k+1])

    def _extend_past(self, t: float) -> None:
        while self._changes[-1] <= t:
            k0 = len(self._changes) - 1  # index of the first interval this block draws
            parity = (np.arange(k0, k0 + BLOCK) & 1).astype(bool)
            means = np.where(parity, self._means[1], self._means[0])
            ends = self._changes[-1] + np.cumsum(self._gen.standard_exponential(BLOCK) * means)
            self._changes.extend(ends.tolist())

    def _interval(self, t: float) -> int:
        t = max(t, 0.0)
        self._extend_past(t)
        return bisect_right(self._changes, t) - 1

    def online_at(self, t: float, round_index: int) -> bool:
        return self._online0 ^ bool(self._interval(t) & 1)

    def next_offline(self, t: float, round_index: int) -> float:
        k = self._interval(t)
        if not (self._online0 ^ bool(k & 1)):
            return t
        return self._changes[k + 1]


class DiurnalOnline:
    """A day cycle: the online probability of slot s is

        p(s) = trough + (peak - trough) * (1 + sin(2 pi (mid_s + phase) / period)) / 2

    with ``mid_s`` the slot's midpoint and ``phase`` a per-phone offset drawn uniformly in
    [0, period) (phones live in different time zones and habits). The state is held for a
    whole slot, drawn per (phone, slot); slot draws come in blocks of ``BLOCK`` slots, each block
    keyed by (phone, block index).
    """

    def __init__(self, phone_id: int, seed: int, config: DiurnalAvailability) -> None:
        self.phone_id = phone_id
        self.seed = seed
        self.config = config
        gen = rng(seed, phone_id, 0, "availability/diurnal-phase")
        self.phase_s = float(gen.random() * config.period_s)
        self._blocks: dict[int, np.ndarray] = {}

    def _online_block(self, block: int) -> np.ndarray:
        """Bool (BLOCK,): is the phone online in each slot of this block?"""
        cached = self._blocks.get(block)
        if cached is not None:
            return cached
        c = self.config
        slots = np.arange(block * BLOCK, (block + 1) * BLOCK)
        mid = (slots + 0.5) * c.slot_s
        wave = 0.5 * (1.0 + np.sin(2.0 * np.pi * (mid + self.phase_s) / c.period_s))
        p = c.trough_online + (c.peak_online - c.trough_online) * wave
        u = rng(self.seed, self.phone_id, block, "availability/diurnal").random(BLOCK)
        online = u < p
        self._blocks[block] = online
        return online

    def online_probability(self, t: float) -> float:
        """The online probability of the slot holding ``t`` (for tests and plots)."""
        c = self.config
        mid = (math.floor(t / c.slot_s) + 0.5) * c.slot_s
        wave = 0.5 * (1.0 + math.sin(2.0 * math.pi * (mid + self.phase_s) / c.period_s))
        return c.trough_online + (c.peak_online - c.trough_online) * wave

    def online_at(self, t: float, round_index: int) -> bool:
        slot = max(math.floor(t / self.config.slot_s), 0)
        return bool(self._online_block(slot // BLOCK)[slot % BLOCK])

    def next_offline(self, t: float, round_index: int) -> float:
        if not self.online_at(t, round_index):
            return t
        if min(self.config.peak_online, self.config.trough_online) >= 1.0:
            return math.inf
        slot = max(math.floor(t / self.config.slot_s), 0) + 1
        block, offset = divmod(slot, BLOCK)
        for b in range(block, block + _DIURNAL_MAX_BLOCKS):
            offline = np.flatnonzero(~self._online_block(b)[offset:])
            if offline.size:
                return (b * BLOCK + offset + int(offline[0])) * self.config.slot_s
            offset = 0
        return math.inf


class TraceOnline:
    """Replays one traced phone's online intervals, optionally repeated every ``loop_s``.

    With a loop, only the part of the trace before ``loop_s`` is replayed, and a stretch that
    runs to ``loop_s`` continues into the next cycle if the trace starts online at 0.
    """

    def __init__(self, intervals: tuple[tuple[float, float], ...], loop_s: float | None) -> None:
        if loop_s is not None:
            intervals = tuple(
                (start, min(end, loop_s)) for start, end in intervals if start < loop_s
            )
        self.loop_s = loop_s
        self._starts = [start for start, _ in intervals]
        self._ends = [end for _, end in intervals]

    def _local(self, t: float) -> tuple[float, float]:
        """(cycle start, time within the cycle)."""
        if self.loop_s is None:
            return 0.0, t
        cycle, within = divmod(t, self.loop_s)
        return cycle * self.loop_s, within

    def _stretch(self, within: float) -> int:
        """Index of the interval holding ``within``, or -1 when offline."""
        i = bisect_right(self._starts, within) - 1
        return i if i >= 0 and within < self._ends[i] else -1

    def online_at(self, t: float, round_index: int) -> bool:
        return self._stretch(self._local(t)[1]) >= 0

    def next_offline(self, t: float, round_index: int) -> float:
        base, within = self._local(t)
        i = self._stretch(within)
        if i < 0:
            return t
        end = self._ends[i]
        loop = self.loop_s
        if loop is None or end < loop or self._starts[0] > 0.0:
            return base + end
        if len(self._starts) == 1:
            return math.inf  # online over the whole cycle, every cycle
        return base + loop + self._ends[0]  # runs on into the next cycle's first stretch


#: Processes a fleet keeps at most: far more than one round queries (its selection draws, then
#: the fates of those it dispatched), far fewer than a million-phone fleet.
PROCESS_CACHE = 1 << 14


class ProcessCache(OrderedDict[int, AvailabilityProcess]):
    """Phone id -> its availability process, least recently used dropped beyond ``capacity``.

    Why dropping is safe: a process is a pure function of (seed, phone), so a rebuilt one gives
    the same answers; only its cached draws are redrawn. Why bounded: over a long run a large
    fleet's rounds touch ever more phones, and a Markov process holds a generator and a timeline.
    """

    def __init__(self, capacity: int = PROCESS_CACHE) -> None:
        super().__init__()
        self.capacity = capacity

    def get(self, phone_id: int, default: None = None) -> AvailabilityProcess | None:  # type: ignore[override]
        process = super().get(phone_id)
        if process is not None:
            self.move_to_end(phone_id)
        return process

    def put(self, phone_id: int, process: AvailabilityProcess) -> None:
        self[phone_id] = process
        if len(self) > self.capacity:
            self.popitem(last=False)


@dataclass(frozen=True)
class AvailabilityModel:
    """The fleet's availability model: builds each phone's process on demand.

    ``trace`` holds the traced phones' intervals in ascending traced-id order; fleet phone p
    replays traced phone number ``p % len(trace)`` (so a trace with ids 0..n-1 maps phone p < n
    to its own id, and larger fleets reuse the trace modulo n).
    """

    config: AvailabilityConfig = field(default_factory=AlwaysOn)
    seed: int = 0
    trace: tuple[tuple[tuple[float, float], ...], ...] = ()

    def for_phone(self, phone_id: int) -> AvailabilityProcess:
        """A fresh process for ``phone_id`` (callers cache it: processes cache their draws)."""
        c = self.config
        if isinstance(c, AlwaysOn):
            return ALWAYS_ONLINE
        if isinstance(c, BernoulliAvailability):
            return BernoulliOnline(phone_id, self.seed, c.p_online)
        if isinstance(c, MarkovAvailability):
            return MarkovOnline(phone_id, self.seed, c.mean_on_s, c.mean_off_s)
        if isinstance(c, DiurnalAvailability):
            return DiurnalOnline(phone_id, self.seed, c)
        return TraceOnline(self.trace[phone_id % len(self.trace)], c.loop_s)


def availability_model(
    config: AvailabilityConfig, seed: int, base_dir: str | Path = "."
) -> AvailabilityModel:
    """The model for a scenario's availability section; a trace is read (and checked) here,
    its relative path resolved against ``base_dir`` (the scenario file's directory)."""
    if not isinstance(config, TraceAvailability):
        return AvailabilityModel(config, seed)
    trace = load_trace(resolve_trace(config.file, base_dir))
    return AvailabilityModel(config, seed, tuple(tuple(iv) for iv in trace.values()))
