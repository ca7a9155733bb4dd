"""The server: steps through the round policy, dispatches training, aggregates as updates land.

Plain Python with async methods, so the same code runs inside a Ray async actor (where it must
never block on ``ray.get``) and in-process. Per step it: publishes the model version(s) tasks
train on, sends the step's applied tasks to their hosts, and, as each result lands (in any
order), decodes and validates it and adds it to the strategy's accumulator at its position in the
policy's virtual-time order, so the result does not depend on arrival order. With hosts in other
processes the next step is dispatched as soon as its model versions are published.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from fedmobile_actors.algorithms.registry import make_strategy
from fedmobile_actors.algorithms.strategy import ClientUpdate, GlobalState, Slot, Strategy
from fedmobile_actors.data import LocalData
from fedmobile_actors.errors import RunDirError, WireError
from fedmobile_actors.runtime.allocator import keep_freed_memory
from fedmobile_actors.runtime.groups import GroupIndex
from fedmobile_actors.runtime.hosts import HostPool
from fedmobile_actors.runtime.metrics import RoundMetrics, event_rows
from fedmobile_actors.runtime.phone_state import PhoneStateStore
from fedmobile_actors.runtime.world import World
from fedmobile_actors.scenario.schema import Scenario
from fedmobile_actors.sim import make_policy
from fedmobile_actors.sim.tasks import Outcome, PhoneInts, Step, Task, TaskCosts
from fedmobile_actors.wire import decode_update, encode_arrays, encode_update, pack, unpack

CHECKPOINT_FORMAT = 1


@dataclass(frozen=True)
class RoundOutput:
    """What one round hands back to the driver: its metrics row and its event-log rows."""

    metrics: RoundMetrics
    events: list[dict[str, Any]] = field(default_factory=list)
    aggregation: dict[str, Any] = field(default_factory=dict)


class _Started:
    """A step whose training has been dispatched, in one part or two (the tasks that train on
    an already published model version can go first): results wait in one queue, by position,
    until the round that owns the step reads them."""

    def __init__(self, step: Step) -> None:
        self.step = step
        #: Positions dispatched so far.
        self.dispatched: set[int] = set()
        #: Stateful strategies: each phone's state after the step, filled as its tasks return
        #: and written to the store by the round that reads the step (not before: a checkpoint
        #: taken while the step trains ahead must not hold its states).
        self.new_states: dict[int, bytes | None] = {}
        self._landed: asyncio.Queue[tuple[int, bytes] | BaseException | None] = asyncio.Queue()
        self._parts: list[asyncio.Future[None]] = []

    def feed(self, results: AsyncIterator[tuple[int, bytes]], positions: list[int]) -> None:
        """Read ``results`` (indices into ``positions``) into the queue as they land."""
        self.dispatched.update(positions)
        self._parts.append(asyncio.ensure_future(self._pump(results, positions)))

    async def _pump(self, results: AsyncIterator[tuple[int, bytes]], positions: list[int]) -> None:
        try:
            async for j, blob in results:
                self._landed.put_nowait((positions[j], blob))
        except Exception as err:  # raised where the round reads its results
            self._landed.put_nowait(err)
        self._landed.put_nowait(None)

    async def __aiter__(self) -> AsyncIterator[tuple[int, bytes]]:
        """Every dispatched part's results, as they land; call once all parts are fed."""
        ended = 0
        while ended < len(self._parts):
            item = await self._landed.get()
            if item is None:
                ended += 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield item


class Server:
    """Owns the global state and the policy's step iterator; hosts do the training."""

    #: The next step (hosts in other processes only), dispatched as early as its tasks' model
    #: versions allow: tasks on an already published version (async policies) while this step
    #: still runs, the rest as soon as this step's version is published. Hosts then train
    #: through the server's aggregation (FedMobile's server step), evaluation and the driver's
    #: file writing instead of waiting for the next ``run_round``.
    _ahead: _Started | None = None

    def __init__(
        self,
        scenario: Scenario,
        pool: HostPool,
        checkpoint: bytes | None = None,
        world: World | None = None,
    ) -> None:
        # Evaluation and FedMobile's server step run here, beside the hosts: one thread each
        # keeps the cores for training instead of oversubscribing them.
        torch.set_num_threads(scenario.runtime.torch_threads)
        # Its evaluations allocate the same large activations batch after batch (allocator.py).
        keep_freed_memory()
        self.scenario = scenario
        self.pool = pool
        self.world = world if world is not None else World.build(scenario)
        self.strategy: Strategy = make_strategy(self.world.context())
        self.state: GlobalState = self.strategy.initial_state()
        self.virtual_time_s = 0.0
        self.stateful = self.strategy.is_stateful()
        self.phone_states = PhoneStateStore()
        if checkpoint is not None:
            self._restore(checkpoint)
        self._payload_bytes = encode_arrays(self.strategy.payload(self.state))
        self._expected = self.strategy.update_shapes(self.strategy.payload(self.state))
        costs = TaskCosts(
            samples=PhoneInts(self.world.shard_sizes),
            epochs=scenario.algorithm.local_epochs,
            down_bytes=len(self._payload_bytes),
            up_bytes=self._update_sizes(),
        )
        self._steps: Iterator[Step] = iter(make_policy(scenario, self.world.fleet, costs).steps())
        self._skip_to(self.state.version)
        self._published: dict[int, bytes] = {}
        self._publish(self.state.version, self._payload_bytes)
        self._test_full = self.world.test_presence(missing=False)
        self._test_missing = self.world.test_presence(missing=True)
        self._groups = GroupIndex.of(self.world)
        self._own_tests: list[LocalData] | None = None  # rounds.eval_per_phone, built on first use
        self._val_full = self.world.proxy_presence(missing=False)
        self._val_missing = self.world.proxy_presence(missing=True)

    # -- set-up ---------------------------------------------------------------------------------

    def _update_sizes(self) -> PhoneInts:
        """Exact encoded size of each phone's update, known before anything trains.

        The wire encodes ids at fixed width and metrics as float64, so the size depends only on
        the array shapes and the metric names; one probe update on two samples gives the names.
        """
        data = self.world.local_data(0)
        probe = LocalData(data.dataset.subset(np.arange(min(2, len(data)))), data.present)
        probe = LocalData(probe.dataset, {m: p[: len(probe)] for m, p in data.present.items()})
        update = self.strategy.local_update(
            self.strategy.payload(self.state), probe, 0, self.state.version, -1
        )
        size = len(encode_update(update))
        return PhoneInts(np.full(self.scenario.fleet.phones, size, dtype=np.int64))

    def _skip_to(self, version: int) -> None:
        """Fast-forward the (deterministic) policy past the steps a checkpoint already holds."""
        for _ in range(version):
            next(self._steps)

    def _publish(self, version: int, payload: bytes) -> None:
        self.pool.publish(version, payload)
        self._published[version] = payload
        keep = self.scenario.rounds.max_staleness + 2
        for old in [v for v in self._published if v < version - keep]:
            self.pool.forget(old)
            del self._published[old]

    # -- one round ------------------------------------------------------------------------------

    async def run_round(self) -> RoundOutput | None:
        """Run the next step; None when the scenario's rounds are done."""
        wall_start = time.perf_counter()
        if self._ahead is not None:
            started, self._ahead = self._ahead, None
        else:
            next_step = next(self._steps, None)
            if next_step is None:
                return None
            started = _Started(next_step)
            self._dispatch(started, lambda task: True)
        step, tasks = started.step, started.step.applied
        if self.pool.trains_in_parallel:
            following = next(self._steps, None)
            if following is not None:
                self._ahead = _Started(following)
                if not self.stateful:  # a stateful step needs this step's phone states first
                    self._dispatch(self._ahead, lambda task: task.base_version in self._published)
        sizes = self.world.shard_sizes
        slots = [Slot(t.phone_id, sizes[t.phone_id], t.weight) for t in tasks]
        accumulator = self.strategy.begin_round(self.state, slots)
        # Per position, what the round's metrics need of an update once it is aggregated.
        reported: dict[int, dict[str, float]] = {}
        rejected = 0
        async for i, blob in started:  # as each update lands, while the others still train
            update = self._decode(tasks[i], blob)
            if update is None:
                rejected += 1
                continue
            reported[i] = update.metrics
            accumulator.add(i, update, tasks[i].weight)
        for phone in sorted(started.new_states):
            self.phone_states.put(phone, started.new_states[phone])
        updates = [reported[i] for i in sorted(reported)]
        result = accumulator.finish()
        self.state = result.state
        self.virtual_time_s = step.end_s
        self._payload_bytes = encode_arrays(self.strategy.payload(self.state))
        self._publish(self.state.version, self._payload_bytes)
        if self._ahead is not None:
            self._dispatch(self._ahead, lambda task: True)
        metrics = self._metrics(step, updates, rejected + int(result.metrics.get("rejected", 0)))
        metrics_row = self._with_aggregation(metrics, result.metrics, wall_start)
        return RoundOutput(
            metrics=metrics_row,
            events=event_rows(step.version, step.tasks),
            aggregation=dict(result.metrics),
        )

    def _dispatch(self, started: _Started, ready: Callable[[Task], bool]) -> None:
        """Dispatch the step's tasks not dispatched yet for which ``ready`` holds."""
        tasks = started.step.applied
        positions = [i for i, t in enumerate(tasks) if i not in started.dispatched and ready(t)]
        if not positions:
            return
        part = tuple(tasks[i] for i in positions)
        if self.stateful:
            # The store changes only when the round that reads this step writes ``new_states``:
            # a host killed mid-step re-runs its tasks from these same input states.
            states = {t.phone_id: self.phone_states.get(t.phone_id) for t in part}
            started.feed(
                self.pool.train_many_with_state(part, states, started.new_states), positions
            )
        else:
            started.feed(self.pool.train_many(part), positions)

    def _decode(self, task: Task, blob: bytes) -> ClientUpdate | None:
        """The task's update, or None when the wire rejects it or it names another task."""
        try:
            update = decode_update(blob, self._expected)
        except WireError:
            return None
        if update.phone_id != task.phone_id or update.base_version != task.base_version:
            return None
        return update

    def _metrics(self, step: Step, updates: list[dict[str, float]], rejected: int) -> RoundMetrics:
        """The round's row; ``updates`` holds the metrics of each aggregated update, in order."""
        counts = {o: 0 for o in Outcome}
        for task in step.tasks:
            counts[task.outcome] += 1
        evaluate = step.version % self.scenario.rounds.eval_every == 0 or (
            step.version == self.scenario.rounds.rounds
        )
        acc_full = acc_missing = loss = math.nan
        correct = None
        if evaluate:
            test = self.world.split.test
            pooled = (
                self.strategy.pooled_phone_state(self.phone_states.decoded())
                if self.stateful
                else None
            )
            full = self.strategy.evaluate(self.state, test, self._test_full, pooled)
            miss = self.strategy.evaluate(self.state, test, self._test_missing, pooled)
            acc_full, loss, acc_missing = full.accuracy, full.loss, miss.accuracy
            correct = full.correct
        val_full = val_missing = math.nan
        proxy = self.world.split.proxy
        if evaluate and proxy is not None and self._val_full and self._val_missing:
            val_full = self.strategy.evaluate(self.state, proxy, self._val_full, pooled).accuracy
            val_missing = self.strategy.evaluate(
                self.state, proxy, self._val_missing, pooled
            ).accuracy
        acc_phones = self._per_phone_accuracy(step) if evaluate else None
        train_losses = [u["train_loss"] for u in updates if "train_loss" in u]
        uploaded = (Outcome.REPORTED, Outcome.LATE, Outcome.STALE)
        return RoundMetrics(
            round=step.version,
            virtual_time_s=step.end_s,
            wall_time_s=0.0,
            accuracy_full=acc_full,
            accuracy_missing=acc_missing,
            loss=loss,
            accuracy_per_phone=acc_phones,
            train_loss=float(np.mean(train_losses)) if train_losses else math.nan,
            dispatched=step.dispatched,
            reported=len(updates),
            dropped_offline=counts[Outcome.DROPPED_OFFLINE],
            dropped_failed=counts[Outcome.DROPPED_FAILED],
            late=counts[Outcome.LATE],
            stale=counts[Outcome.STALE],
            rejected=rejected,
            bytes_down=sum(t.down_bytes for t in step.tasks),
            bytes_up=sum(t.up_bytes for t in step.tasks if t.outcome in uploaded),
            groups=self._groups.figures(step, correct),
            accuracy_val_full=val_full,
            accuracy_val_missing=val_missing,
        )

    def _per_phone_accuracy(self, step: Step) -> float | None:
        """The authors' evaluation (when ``rounds.eval_per_phone``): each phone's model (global
        weights with its own state, e.g. BatchNorm statistics; the initial values before it has
        trained) on its own held-out windows, averaged uniformly over phones that have any.

        Which phones: every phone of the fleet with dealt data; with on-demand data the phones
        whose updates this step applied (a million phones' test sets cannot be evaluated each
        round; these are the phones the round is about, and their number is bounded)."""
        if not self.scenario.rounds.eval_per_phone:
            return None
        if self.world.on_demand is not None:
            phones = sorted({task.phone_id for task in step.applied})
            own_tests = [(p, self.world.phone_test(p)) for p in phones]
        else:
            if self._own_tests is None:  # built once: the same windows every evaluated round
                self._own_tests = [self.world.phone_test(p) for p in range(len(self.world.fleet))]
            own_tests = list(enumerate(self._own_tests))
        accuracies = []
        for phone, own in own_tests:
            if len(own) == 0:
                continue
            state = self.phone_states.arrays(phone) if self.stateful else None
            result = self.strategy.evaluate(self.state, own.dataset, own.present, state)
            accuracies.append(result.accuracy)
        return float(np.mean(accuracies)) if accuracies else None

    @staticmethod
    def _with_aggregation(
        metrics: RoundMetrics, extra: dict[str, Any], wall_start: float
    ) -> RoundMetrics:
        from dataclasses import replace

        weights = tuple(float(w) for w in extra.get("shapley_weights", ()))
        return replace(
            metrics,
            wall_time_s=time.perf_counter() - wall_start,
            clusters=int(extra.get("clusters", 0)),
            shapley_weights=weights,
            filtered=int(extra.get("filtered", 0)),
            cluster_sizes=tuple(int(c) for c in extra.get("cluster_sizes", ())),
            shapley_values=tuple(float(v) for v in extra.get("shapley_values", ())),
            fill_error=float(extra.get("fill_error", math.nan)),
            model_weight_max=float(extra.get("model_weight_max", math.nan)),
        )

    # -- checkpoints ----------------------------------------------------------------------------

    def checkpoint(self) -> bytes:
        """The server's whole state with the phones' state store; the policy replays from the
        seed. Stateless strategies write no ``phone_state`` field (checkpoints as before)."""
        data: dict[str, Any] = {
            "format": CHECKPOINT_FORMAT,
            "version": self.state.version,
            "arrays": self.state.arrays,
            "info": self.state.info,
            "virtual_time_s": self.virtual_time_s,
        }
        if self.stateful:
            data["phone_state"] = self.phone_states.to_checkpoint()
        return pack(data)

    def _restore(self, blob: bytes) -> None:
        try:
            data = unpack(blob)
            if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
                raise WireError("unknown checkpoint format")
            expected = {n: (str(a.dtype), tuple(a.shape)) for n, a in self.state.arrays.items()}
            arrays = data["arrays"]
            if set(arrays) != set(expected) or any(
                (arrays[n].dtype.name, tuple(arrays[n].shape)) != expected[n] for n in expected
            ):
                raise WireError("checkpoint arrays do not match this scenario's model")
            self.state = GlobalState(
                version=int(data["version"]),
                arrays={n: np.array(a) for n, a in arrays.items()},
                info={str(k): float(v) for k, v in data["info"].items()},
            )
            self.virtual_time_s = float(data["virtual_time_s"])
            if self.stateful:
                self.phone_states = PhoneStateStore.from_checkpoint(data.get("phone_state", {}))
        except (WireError, KeyError, TypeError, ValueError) as err:
            raise RunDirError(
                f"checkpoint is corrupt or does not match the scenario: {err}"
            ) from None

    @property
    def version(self) -> int:
        return self.state.version
