"""Per-phone state of stateful strategies: deterministic everywhere, never charged, sparse.

The reference stateful strategy is ``fedavg_local_momentum`` (FedAvg whose local momentum buffers
persist on each phone across its tasks).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest_helpers import (  # type: ignore[import-not-found]
    comparable,
    dies_once_plugin,
    metrics_of,
)

from fedmobile_actors.cli.main import main
from fedmobile_actors.orchestration.driver import run_scenario
from fedmobile_actors.report.run_dir import RunDir
from fedmobile_actors.runtime.inprocess import InProcessBackend, InProcessHostPool
from fedmobile_actors.runtime.server import Server
from fedmobile_actors.scenario import Scenario, load_scenario
from fedmobile_actors.sim.tasks import Outcome, Task

STATEFUL = {"name": "fedavg_local_momentum", "momentum": 0.9}
ROUNDS = {"rounds": 4}
#: Async rounds in which some steps apply two tasks of one phone (checked below).
ASYNC = {"policy": "async", "concurrency": 6, "buffer": 6, "max_staleness": 3, "rounds": 6}


def stateful(make: Callable[..., Scenario], **sections: Any) -> Scenario:
    return make(algorithm=STATEFUL, **{"rounds": ROUNDS, **sections})


class RecordingPool(InProcessHostPool):
    """Records each stateful task's update size and whether it came with a state."""

    def __init__(self, scenario: Scenario) -> None:
        super().__init__(scenario)
        self.sent: list[tuple[Task, int, bool]] = []
        self.states: dict[int, tuple[bytes | None, bytes | None]] = {}  # task id -> (in, out)

    async def train_with_state(
        self, task: Task, phone_state: bytes | None
    ) -> tuple[bytes, bytes | None]:
        blob, state = await super().train_with_state(task, phone_state)
        self.sent.append((task, len(blob), phone_state is not None))
        self.states[task.task_id] = (phone_state, state)
        return blob, state


def test_phone_state_changes_training(make_tiny: Callable[..., Scenario]) -> None:
    """Carried momentum changes a phone's later updates: the metrics differ from FedAvg's with
    the same momentum, which restarts its buffers every task."""
    plain = metrics_of(InProcessBackend(make_tiny(algorithm={"momentum": 0.9}, rounds=ROUNDS)))
    carried = metrics_of(InProcessBackend(stateful(make_tiny)))
    assert [r["accuracy_full"] for r in plain] != [r["accuracy_full"] for r in carried]


def test_store_holds_only_phones_that_trained(make_tiny: Callable[..., Scenario]) -> None:
    """After each round the store has an entry for exactly the phones whose tasks ran."""
    scenario = stateful(make_tiny)
    pool = RecordingPool(scenario)
    server = Server(scenario, pool)
    trained: set[int] = set()
    for _ in range(ROUNDS["rounds"]):
        asyncio.run(server.run_round())
        trained |= {task.phone_id for task, _, _ in pool.sent}
        assert server.phone_states.phones() == sorted(trained)
    assert 0 < len(trained) < scenario.fleet.phones  # some phones never trained: no memory
    untrained = min(set(range(scenario.fleet.phones)) - trained)
    assert server.phone_states.get(untrained) is None
    assert server.phone_states.arrays(untrained) is None
    assert server.phone_states.arrays(min(trained)) is not None
    # A phone's first task starts without state, a later one with it.
    seen: set[int] = set()
    for task, _, had_state in pool.sent:
        assert had_state == (task.phone_id in seen)
        seen.add(task.phone_id)


def test_two_tasks_of_one_phone_in_a_step_run_in_order(
    make_tiny: Callable[..., Scenario],
) -> None:
    """When an async step applies two tasks of one phone, the second starts from the state the
    first returned, and the store ends with the second's."""
    scenario = stateful(make_tiny, rounds=ASYNC)
    pool = RecordingPool(scenario)
    server = Server(scenario, pool)
    doubled = 0
    while True:
        start = len(pool.sent)
        if asyncio.run(server.run_round()) is None:
            break
        phones = [task.phone_id for task, _, _ in pool.sent[start:]]
        doubled += len(phones) - len(set(phones))
    assert doubled > 0  # the case under test happened
    by_phone: dict[int, list[Task]] = {}
    for task, _, _ in pool.sent:  # a phone's tasks appear in the order they ran
        by_phone.setdefault(task.phone_id, []).append(task)
    for tasks in by_phone.values():
        for earlier, later in itertools.pairwise(tasks):
            assert pool.states[later.task_id][0] == pool.states[earlier.task_id][1]
        assert server.phone_states.get(tasks[-1].phone_id) == pool.states[tasks[-1].task_id][1]


def test_state_is_not_charged_in_bytes(make_tiny: Callable[..., Scenario]) -> None:
    """Each task is charged its update's real size, and the per-round byte counts equal
    FedAvg's: the momentum buffers (as large as the model) travel free."""
    scenario = stateful(make_tiny)
    pool = RecordingPool(scenario)
    server = Server(scenario, pool)
    rows = [asyncio.run(server.run_round()) for _ in range(ROUNDS["rounds"])]
    for task, size, _ in pool.sent:
        assert task.up_bytes == size
    assert server.phone_states.nbytes() > 0
    plain = metrics_of(InProcessBackend(make_tiny(algorithm={"momentum": 0.9}, rounds=ROUNDS)))
    charged = [(r.metrics.bytes_up, r.metrics.bytes_down) for r in rows if r is not None]
    assert charged == [(r["bytes_up"], r["bytes_down"]) for r in plain]


def test_stateless_strategies_keep_no_store(make_tiny: Callable[..., Scenario]) -> None:
    """FedAvg (conv1d model, no local arrays) is stateless: no store, no checkpoint field."""
    backend = InProcessBackend(make_tiny(rounds={"rounds": 2}))
    metrics_of(backend)
    assert not backend.server.stateful and len(backend.server.phone_states) == 0
    from fedmobile_actors.wire import unpack

    assert "phone_state" not in unpack(backend.checkpoint())


def test_resume_restores_phone_state(tmp_path: Path) -> None:
    """A run stopped after 2 rounds and resumed ends with the uninterrupted run's metrics."""
    raw = {
        "name": "stateful",
        "seed": 7,
        "data": {"source": {"kind": "synthetic", "samples": 600, "num_classes": 4}},
        "fleet": {"phones": 6, "failure_prob": 0.1},
        "modalities": {"missing": [{"modality": "acc", "rate": 0.5}]},
        "model": {"conv_channels": [8]},
        "algorithm": STATEFUL,
        "rounds": {"rounds": 5, "clients_per_round": 3, "overcommit": 1.5},
        "runtime": {"backend": "inprocess"},
        "output": {"checkpoint_every": 1, "plots": False},
    }
    path = tmp_path / "stateful.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    reference = run_scenario(load_scenario(path), quiet=True, output_dir=tmp_path / "ref")
    run = run_scenario(load_scenario(path), quiet=True, output_dir=tmp_path / "cut", stop_after=2)
    assert main(["resume", str(run.path), "-q"]) == 0

    def rows(r: RunDir) -> list[dict[str, Any]]:
        return [{k: v for k, v in m.items() if k != "wall_time_s"} for m in r.read_metrics()]

    assert rows(RunDir.open(run.path)) == rows(reference)


@pytest.mark.integration
@pytest.mark.parametrize("hosts", [1, 2])
def test_ray_matches_in_process(
    ray_session: Any, make_tiny: Callable[..., Scenario], hosts: int
) -> None:
    """1 and 2 Ray hosts give the in-process metrics bit for bit with phone state."""
    from fedmobile_actors.runtime.ray_backend import RayBackend

    expected = metrics_of(InProcessBackend(stateful(make_tiny)))
    ray_run = RayBackend(stateful(make_tiny, runtime={"backend": "ray", "hosts": hosts}))
    assert metrics_of(ray_run) == expected


@pytest.mark.integration
def test_async_ray_matches_in_process(ray_session: Any, make_tiny: Callable[..., Scenario]) -> None:
    """Async steps (stale updates, a phone's tasks chained) match on 2 Ray hosts."""
    from fedmobile_actors.runtime.ray_backend import RayBackend

    expected = metrics_of(InProcessBackend(stateful(make_tiny, rounds=ASYNC)))
    ray_run = RayBackend(stateful(make_tiny, rounds=ASYNC, runtime={"backend": "ray", "hosts": 2}))
    assert metrics_of(ray_run) == expected


@pytest.mark.integration
def test_a_killed_host_loses_no_phone_state(
    ray_session: Any, make_tiny: Callable[..., Scenario]
) -> None:
    """Ray restarts a host killed mid-round and re-runs its tasks from the same input states."""
    import time

    from fedmobile_actors.runtime.ray_backend import RayBackend

    ray = ray_session
    expected = metrics_of(InProcessBackend(stateful(make_tiny)))
    backend = RayBackend(stateful(make_tiny, runtime={"backend": "ray", "hosts": 2}))
    hosts = backend.host_handles()
    first = backend.run_round()
    assert first is not None
    pending = backend.actor.run_round.remote()
    time.sleep(0.05)
    ray.kill(hosts[0], no_restart=False)
    second = ray.get(pending)
    rest = metrics_of(backend)
    assert [comparable(first.metrics), comparable(second.metrics), *rest] == expected


@pytest.mark.integration
def test_local_batchnorm_on_ray_matches_in_process(
    ray_session: Any, make_tiny: Callable[..., Scenario]
) -> None:
    """FedAvg on the authors' model (local BatchNorm statistics, keyed dropout): 2 Ray hosts give
    the in-process metrics bit for bit."""
    from fedmobile_actors.runtime.ray_backend import RayBackend

    model = {"kind": "authors_conv2d"}
    expected = metrics_of(InProcessBackend(make_tiny(model=model, rounds={"rounds": 2})))
    ray_run = RayBackend(
        make_tiny(model=model, rounds={"rounds": 2}, runtime={"backend": "ray", "hosts": 2})
    )
    assert metrics_of(ray_run) == expected


@pytest.mark.integration
def test_a_stateful_host_dying_mid_batch_reruns_it_from_the_same_states(
    ray_session: Any,
    make_tiny: Callable[..., Scenario],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A host's stateful batch is one streaming call: killed after it streamed an update of
    round 2, Ray re-runs the batch from the same input states and every metric (the later
    rounds' too, which train from the states) equals the in-process run's."""
    from fedmobile_actors.runtime.ray_backend import RayBackend

    name, marker = dies_once_plugin(
        tmp_path, "fedmobile_actors.algorithms.fedavg_local_momentum", "FedAvgLocalMomentum"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    shape = {
        "fleet": {"phones": 8, "failure_prob": 0.0},
        "rounds": {"rounds": 3, "clients_per_round": 8, "overcommit": 1.0},
    }
    expected = metrics_of(InProcessBackend(stateful(make_tiny, **shape)))
    algorithm = {
        **STATEFUL,
        "name": name,
        "options": {"marker": str(marker)},
    }
    scenario = make_tiny(**shape, algorithm=algorithm, runtime={"backend": "ray", "hosts": 2})
    assert metrics_of(RayBackend(scenario)) == expected
    assert marker.exists()  # a host really died


class _Stream:
    """A stand-in for a Ray actor method called with ``num_returns="streaming"``: records each
    call and streams what the host would yield, as awaitable chunks."""

    def __init__(self, calls: list[tuple[list[tuple[int, int, int]], dict[int, Any]]]) -> None:
        self.calls = calls

    def options(self, **_: Any) -> _Stream:
        return self

    def remote(
        self, batch: list[tuple[int, int, int]], states: dict[int, Any], box: Any, chunk: int
    ) -> Any:
        self.calls.append((batch, dict(states)))
        last = {phone: j for j, (_t, phone, _v) in enumerate(batch)}

        async def chunks() -> Any:
            for j, (task_id, phone, _v) in enumerate(batch):
                # The phone's state after its last task: its input plus this task's id.
                state = (states[phone] or b"") + bytes([task_id]) if last[phone] == j else None

                async def ready(item: Any = (j, b"update", state)) -> list[Any]:
                    return [item]

                yield ready()

        return chunks()


def test_ray_pool_sends_a_stateful_step_as_one_call_per_host() -> None:
    """Six tasks of four phones on two hosts: two calls, each with its phones' states only;
    a phone's final state (after its second task) is the one kept."""
    from fedmobile_actors.runtime.ray_backend import RayHostPool

    calls: list[tuple[list[tuple[int, int, int]], dict[int, Any]]] = []
    host = type("Host", (), {"train_batch_with_state": _Stream(calls)})()
    pool = RayHostPool([host, host])
    pool._refs = {0: "payload"}
    phones = [0, 1, 2, 3, 0, 2]
    tasks = [Task(i, p, 0, 0.0, 1.0, Outcome.REPORTED) for i, p in enumerate(phones)]
    states = {0: b"a", 1: None, 2: b"c", 3: b"d"}
    new_states: dict[int, bytes | None] = {}

    async def run() -> list[int]:
        return [i async for i, _ in pool.train_many_with_state(tasks, states, new_states)]

    assert sorted(asyncio.run(run())) == list(range(6))
    assert [[(t, p) for t, p, _v in batch] for batch, _ in calls] == [
        [(0, 0), (2, 2), (4, 0), (5, 2)],
        [(1, 1), (3, 3)],
    ]
    assert [given for _, given in calls] == [{0: b"a", 2: b"c"}, {1: None, 3: b"d"}]
    assert new_states == {0: b"a\x04", 1: b"\x01", 2: b"c\x05", 3: b"d\x03"}
