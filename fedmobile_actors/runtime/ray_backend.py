"""The Ray backend: an async server actor and phone-host actors, each hosting many phones.

- Hosts: ``ray.remote(RayPhoneHost)`` with ``cpus_per_host``/``gpus_per_host`` (fractions allowed)
  and SPREAD scheduling, so a cluster's nodes share the hosts (in a sweep's cell: one bundle of
  the cell's placement group each); ``max_restarts=-1`` and
  ``max_task_retries=-1`` let Ray restart a dead host and re-run its lost tasks, which give the
  same bytes because every draw is keyed by (seed, phone, task).
- Each model version is ``ray.put`` once; tasks carry the reference boxed in a list so Ray does
  not resolve it per call, and a host fetches a version only when it has not decoded it yet.
- The server actor is async: it awaits task references and never blocks on ``ray.get``.
- A plug-in strategy or model (``algorithm.name``/``model.kind`` as ``package.module:Name``, or
  an entry point) whose module is not installed in site-packages reaches the actors through
  Ray's ``runtime_env``: job-level ``py_modules`` when this run starts or joins Ray (any node of
  a cluster), the module's directory on ``PYTHONPATH`` when the caller started Ray
  (``plugin_runtime_env``).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import threading
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import ray
from ray.util.placement_group import get_current_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from fedmobile_actors.algorithms.plugins import plugin_references, shipped_paths
from fedmobile_actors.errors import BackendError, UserError
from fedmobile_actors.runtime.backend import Backend, take_early_ray
from fedmobile_actors.runtime.hosts import HostPool, host_count
from fedmobile_actors.runtime.landing import Land, as_landed
from fedmobile_actors.scenario.schema import RuntimeConfig, Scenario
from fedmobile_actors.sim.tasks import Task
from fedmobile_actors.startup_trace import mark

_T = TypeVar("_T")

if TYPE_CHECKING:
    from fedmobile_actors.runtime.server import RoundOutput
    from fedmobile_actors.runtime.world import World


def ensure_ray(runtime: RuntimeConfig, py_modules: Sequence[str] = ()) -> bool:
    """Start a local Ray (or join ``runtime.address``) unless the caller already did; True when
    this call did (or the driver's early start, ``backend.start_ray_early``, did). ``py_modules``
    (plug-in files or package directories) then go into the job's ``runtime_env``, so Ray
    uploads them to every node."""
    early = take_early_ray(runtime, py_modules)
    if early is not None:
        return early
    return init_ray(runtime, py_modules)


class _NotMainThread(logging.Filter):
    """Drops Ray's warning that it set no SIGTERM handler off the main thread: on purpose
    (``EarlyRay``), the CLI's own handler stays."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "SIGTERM handler is not set" not in record.getMessage()


def init_ray(runtime: RuntimeConfig, py_modules: Sequence[str] = ()) -> bool:
    """``ensure_ray`` without the early start: start or join Ray now, unless already done."""
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    # Hosts reserve GPUs explicitly (gpus_per_host); keep Ray from warning about CPU-only hosts.
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True}
    if py_modules:
        kwargs["runtime_env"] = {"py_modules": list(py_modules)}
    mark("ray.init start")
    quiet = _NotMainThread()
    worker_log = logging.getLogger("ray._private.worker")
    worker_log.addFilter(quiet)
    try:
        if runtime.address is not None:
            ray.init(address=runtime.address, **kwargs)
        else:
            # A Ray started for this run alone, on this machine, for its lifetime: token
            # authentication would only print a warning and write ~/.ray/auth_token on every
            # run. setdefault: a user who sets RAY_AUTH_MODE=token keeps it (docs/outputs.md).
            os.environ.setdefault("RAY_AUTH_MODE", "disabled")
            # address="local": always start a fresh Ray for this run, never silently join
            # another instance found on the machine (RAY_ADDRESS or a running `ray start`).
            ray.init(address="local", num_cpus=runtime.num_cpus, **kwargs)
    finally:
        worker_log.removeFilter(quiet)
    mark("ray.init done")
    return True


def _get(ref: Any) -> Any:
    """``ray.get`` that re-raises a user's mistake (e.g. a missing dataset found inside an actor)
    as the project's one-line ``UserError`` instead of Ray's wrapped traceback."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayError as err:
        cause = _user_error(err)
        if cause is not None:
            raise cause from None
        if isinstance(err, ray.exceptions.RayActorError | ray.exceptions.RaySystemError):
            # A dead server actor or a lost cluster: one line, not Ray's whole trace.
            first = str(err).strip().splitlines()[0] if str(err).strip() else ""
            raise BackendError(
                f"the simulation's Ray processes failed ({type(err).__name__}: {first[:200]})"
            ) from None
        raise


def _user_error(err: BaseException | None, depth: int = 0) -> UserError | None:
    """The UserError inside a Ray error (task errors carry ``cause``, dead actors their
    creation error), if there is one."""
    if err is None or depth > 5:
        return None
    if isinstance(err, UserError):
        return err
    for attr in ("cause", "creation_task_error", "__cause__"):
        found = _user_error(getattr(err, attr, None), depth + 1)
        if found is not None:
            return found
    return None


class RayPhoneHost:
    """The actor around a PhoneHost; its payload arrives as a boxed object reference.

    A wrapper rather than a subclass so that the driver, which only names this class, never
    imports torch: the host's modules load inside the actor process.
    """

    def __init__(self, scenario: Scenario) -> None:
        mark("host process started")
        # Importing the host's modules (torch) here overlaps with the server building the data.
        from fedmobile_actors.runtime.phone_host import PhoneHost

        self.scenario = scenario
        self._host_class = PhoneHost
        self.host: Any = None
        mark("host imported torch")

    def _ensure(self, split_ref: Any) -> Any:
        """Build the host from the server's shared split on first use, and again after a
        restart (Ray re-runs only ``__init__``; the split then comes with the next task)."""
        if self.host is None:
            self.host = self._host_class(self.scenario, ray.get(split_ref))
        return self.host

    def warm(self, box: list[Any]) -> bool:
        ready: bool = self._ensure(box[0]).ready()
        mark("host built its phones")
        return ready

    def train_ref(self, task_id: int, phone_id: int, base_version: int, box: list[Any]) -> bytes:
        payload_ref, split_ref = box
        host = self._ensure(split_ref)
        payload = None if host.has_payload(base_version) else ray.get(payload_ref)
        return host.train(task_id, phone_id, base_version, payload)

    def train_batch(
        self, tasks: list[tuple[int, int, int]], box: list[Any], chunk: int
    ) -> Iterator[list[tuple[int, bytes]]]:
        """Run a round's tasks of this host, ``(task_id, phone_id, base_version)`` each, in
        order, yielding ``(index, encoded update)`` pairs every ``chunk`` tasks: one Ray call per
        host per round instead of one per phone, results still streamed (a Ray generator), and
        a few yields per round rather than one per phone (each costs the server a Ray object).
        A host killed mid-batch is restarted and the generator re-run from its first task; the
        tasks give the same bytes and the chunks are the same, so Ray's replay matches.
        ``box`` holds ``{version: payload ref}`` and the split's reference, unresolved by Ray."""
        payload_refs, split_ref = box
        host = self._ensure(split_ref)
        results = (
            (index, host.train(task_id, phone_id, v, _payload(host, v, payload_refs)))
            for index, (task_id, phone_id, v) in enumerate(tasks)
        )
        yield from _in_chunks(results, chunk)

    def train_batch_with_state(
        self,
        tasks: list[tuple[int, int, int]],
        states: dict[int, bytes | None],
        box: list[Any],
        chunk: int,
    ) -> Iterator[list[tuple[int, bytes, bytes | None]]]:
        """``train_batch`` for a stateful strategy: ``states`` holds the step's input state of
        each of these tasks' phones; a phone's tasks run in order, each from the previous one's
        output state (kept here, within the call). Each result is ``(index, update, state)``
        where ``state`` is the phone's new state after its last task of the batch and None
        before it (only the last one is needed, and a state can be as large as the model).
        The host keeps nothing after the call, so a restarted host's re-run gives the same
        chunks from the same inputs."""
        payload_refs, split_ref = box
        host = self._ensure(split_ref)
        last = {phone_id: index for index, (_t, phone_id, _v) in enumerate(tasks)}
        current = dict(states)

        def results() -> Iterator[tuple[int, bytes, bytes | None]]:
            for index, (task_id, phone_id, v) in enumerate(tasks):
                blob, out = host.train_with_state(
                    task_id, phone_id, v, _payload(host, v, payload_refs), current.get(phone_id)
                )
                if out is not None:
                    current[phone_id] = out
                yield index, blob, current.get(phone_id) if last[phone_id] == index else None

        yield from _in_chunks(results(), chunk)

    def train_state_ref(
        self,
        task_id: int,
        phone_id: int,
        base_version: int,
        box: list[Any],
        phone_state: bytes | None,
    ) -> tuple[bytes, bytes | None]:
        """``train_ref`` for a stateful strategy: the phone's state goes with the task (small,
        by value) and its new state comes back beside the update."""
        payload_ref, split_ref = box
        host = self._ensure(split_ref)
        payload = None if host.has_payload(base_version) else ray.get(payload_ref)
        result: tuple[bytes, bytes | None] = host.train_with_state(
            task_id, phone_id, base_version, payload, phone_state
        )
        return result

    def node_id(self) -> str:
        return ray.get_runtime_context().get_node_id()

    def pid(self) -> int:
        """This host's process id: a host killed and restarted by Ray comes back with another."""
        return os.getpid()


def host_options(runtime: RuntimeConfig) -> dict[str, Any]:
    """What each host reserves: its CPUs, GPUs and (if set) memory. A sweep cell's placement
    group has one bundle of exactly this per host (runtime/ray_sweep.py)."""
    options: dict[str, Any] = {"num_cpus": runtime.cpus_per_host, "num_gpus": runtime.gpus_per_host}
    if runtime.memory_per_host_mb is not None:
        options["memory"] = runtime.memory_per_host_mb * 1024 * 1024
    return options


def plugin_runtime_env(scenario: Scenario) -> dict[str, Any] | None:
    """The ``runtime_env`` that lets the server and host actors import the scenario's plug-in
    modules, for a Ray this run did not start (a notebook's, the test session's): their
    directories put before ``PYTHONPATH``. None when every module is built in or installed.

    Why two ways (see ``ensure_ray`` for the other): Ray uploads ``py_modules`` given as local
    paths only in ``ray.init``; an actor's own ``runtime_env`` takes already uploaded URIs. So a
    Ray started or joined here carries the modules as job-level ``py_modules`` (to any node of a
    cluster), and a Ray the caller started gets the directories on ``PYTHONPATH``, which every
    node sharing this file system (a local Ray always) can read.
    """
    paths = shipped_paths(plugin_references(scenario.algorithm.name, scenario.model.kind))
    if not paths:
        return None
    dirs = sorted({str(Path(p).parent) for p in paths})
    # "${PYTHONPATH}": Ray expands it to the node's value, so the project stays importable.
    return {"env_vars": {"PYTHONPATH": os.pathsep.join([*dirs, "${PYTHONPATH}"])}}


def _with_env(options: dict[str, Any], runtime_env: dict[str, Any] | None) -> dict[str, Any]:
    return options if runtime_env is None else {**options, "runtime_env": runtime_env}


def start_hosts(
    scenario: Scenario, size: int, runtime_env: dict[str, Any] | None = None
) -> list[Any]:
    """Create the host actors. The driver does it, beside the server actor rather than from
    inside it, so the hosts' processes start (and import torch) while the server's does.

    Inside a placement group (a sweep's cell), host i takes bundle i, reserved for it by the
    sweep; otherwise SPREAD lets a cluster's nodes share the hosts.
    """
    group = get_current_placement_group()
    actor = ray.remote(RayPhoneHost)
    options = {**host_options(scenario.runtime), "max_restarts": -1, "max_task_retries": -1}
    if group is None:
        spread = actor.options(
            **_with_env({**options, "scheduling_strategy": "SPREAD"}, runtime_env)
        )
        return [spread.remote(scenario) for _ in range(size)]
    return [
        actor.options(
            **_with_env(
                {**options, "scheduling_strategy": PlacementGroupSchedulingStrategy(group, i)},
                runtime_env,
            )
        ).remote(scenario)
        for i in range(size)
    ]


#: How many times a host's batch yields per round at most: 200 phones on 2 hosts stream in
#: chunks of 25 (about half a second of training each), so the server decodes and sums while
#: hosts train, at a quarter of the per-object cost of 16 chunks (measured: 0.07-0.09 CPU s
#: less per round in the server and about as much in Ray's own processes, docs/performance.md).
YIELDS_PER_BATCH = 4


def _payload(host: Any, version: int, refs: Mapping[int, Any]) -> bytes | None:
    """The encoded model ``version`` for a host that has not decoded it yet, else None."""
    return None if host.has_payload(version) else ray.get(refs[version])


def _in_chunks(results: Iterable[_T], chunk: int) -> Iterator[list[_T]]:
    """``results`` in lists of ``chunk`` (the last may be shorter): a host batch's yields. The
    chunks depend only on the batch's length, so a re-run after a restart yields the same."""
    done: list[_T] = []
    for item in results:
        done.append(item)
        if len(done) == chunk:
            yield done
            done = []
    if done:
        yield done


@dataclass(frozen=True)
class _HostBatch:
    """One host's share of a step: its actor, the tasks' positions in the step and the tasks,
    the ``box`` (model version refs, the split's ref) and the stream's chunk size."""

    host: Any
    indices: list[int]
    tasks: list[Task]
    box: list[Any]
    chunk: int

    @property
    def triples(self) -> list[tuple[int, int, int]]:
        """``(task_id, phone_id, base_version)`` per task: what the host's call takes."""
        return [(t.task_id, t.phone_id, t.base_version) for t in self.tasks]


class RayHostPool(HostPool):
    trains_in_parallel = True

    def __init__(self, hosts: list[Any]) -> None:
        self.size = len(hosts)
        self.hosts = hosts
        self._refs: dict[int, Any] = {}
        self._split_ref: Any = None
        self._warming: list[Any] = []

    def share(self, world: World) -> None:
        """Put the world's data in the object store once and let hosts start reading it
        (zero-copy) while the server finishes its own set-up."""
        self._split_ref = ray.put(world.data)
        self._warming = [h.warm.remote([self._split_ref]) for h in self.hosts]

    async def shared_view(self, world: World) -> World:
        """``world`` over the stored copy of its data, so the server's own copy can be freed:
        one copy of the data per machine."""
        return replace(world, data=await self._split_ref)

    def publish(self, version: int, payload: bytes) -> None:
        self._refs[version] = ray.put(payload)

    def forget(self, version: int) -> None:
        self._refs.pop(version, None)

    async def train(self, task: Task) -> bytes:
        host = self.hosts[self.host_of(task.phone_id)]
        box = [self._refs[task.base_version], self._split_ref]
        return await host.train_ref.remote(task.task_id, task.phone_id, task.base_version, box)

    def _host_batches(self, tasks: Sequence[Task]) -> list[_HostBatch]:
        """The step's tasks grouped by host, in the round's order within each host, with the
        model versions they train on and the chunk size of their stream."""
        by_host: dict[int, list[int]] = {}
        for i, task in enumerate(tasks):
            by_host.setdefault(self.host_of(task.phone_id), []).append(i)
        batches = []
        for host, indices in sorted(by_host.items()):
            mine = [tasks[i] for i in indices]
            versions = {t.base_version for t in mine}
            batches.append(
                _HostBatch(
                    host=self.hosts[host],
                    indices=indices,
                    tasks=mine,
                    box=[{v: self._refs[v] for v in versions}, self._split_ref],
                    chunk=max(1, -(-len(mine) // YIELDS_PER_BATCH)),
                )
            )
        return batches

    async def train_many(self, tasks: Sequence[Task]) -> AsyncIterator[tuple[int, bytes]]:
        """One streaming call per host carrying all of its tasks (in the round's order), merged
        as results land; Ray's per-call cost is paid per host, not per phone."""

        def drain(b: _HostBatch) -> Callable[[Land], Awaitable[None]]:
            async def stream(land: Land) -> None:
                method = b.host.train_batch.options(num_returns="streaming")
                async for ref in method.remote(b.triples, b.box, b.chunk):
                    for j, blob in await ref:
                        land(b.indices[j], blob)

            return stream

        producers = [drain(b) for b in self._host_batches(tasks)]
        async for item in as_landed(len(tasks), producers):
            yield item

    async def train_many_with_state(
        self,
        tasks: Sequence[Task],
        states: Mapping[int, bytes | None],
        new_states: dict[int, bytes | None],
    ) -> AsyncIterator[tuple[int, bytes]]:
        """One streaming call per host for a stateful strategy too: each host gets its tasks
        and their phones' states, chains a phone's tasks itself, and streams the updates back
        with each phone's final state. The states reach ``new_states`` only when the host's
        whole batch has returned (the server keeps a step all or nothing)."""

        def drain(b: _HostBatch) -> Callable[[Land], Awaitable[None]]:
            async def stream(land: Land) -> None:
                given = {t.phone_id: states.get(t.phone_id) for t in b.tasks}
                final = dict(given)
                method = b.host.train_batch_with_state.options(num_returns="streaming")
                async for ref in method.remote(b.triples, given, b.box, b.chunk):
                    for j, blob, state in await ref:
                        if state is not None:
                            final[b.tasks[j].phone_id] = state
                        land(b.indices[j], blob)
                new_states.update(final)  # not reached when the call failed

            return stream

        producers = [drain(b) for b in self._host_batches(tasks)]
        async for item in as_landed(len(tasks), producers):
            yield item

    async def train_with_state(
        self, task: Task, phone_state: bytes | None
    ) -> tuple[bytes, bytes | None]:
        host = self.hosts[self.host_of(task.phone_id)]
        box = [self._refs[task.base_version], self._split_ref]
        blob, state = await host.train_state_ref.remote(
            task.task_id, task.phone_id, task.base_version, box, phone_state
        )
        return blob, state

    async def ready(self) -> list[str]:
        await asyncio.gather(*self._warming)
        return list(await asyncio.gather(*(h.node_id.remote() for h in self.hosts)))

    def shutdown(self) -> None:
        for host in self.hosts:
            ray.kill(host)


class ServerActor:
    """The async actor around ``Server``, talking to the hosts the driver started."""

    def __init__(self, scenario: Scenario, hosts: list[Any], checkpoint: bytes | None) -> None:
        mark("server process started")
        from fedmobile_actors.runtime.world import World

        self.pool = RayHostPool(hosts)
        # A user's mistake found here (a checkpoint that does not fit the model) is kept and
        # raised by ``ready``: Ray keeps a method's exception as an object, but flattens an
        # __init__ failure into text, and the CLI needs the object to print one line.
        self._init_error: UserError | None = None
        # The server's modules (torch) are imported in a thread while this one builds the data
        # (numpy, which releases the GIL in its large operations): the two overlap where the
        # machine has a core to spare. The world needs no torch, so the data is shared as soon
        # as it is built: hosts find it ready when their own import of torch ends, and build
        # their phones while the server builds its strategy and replays the policy.
        importer = threading.Thread(
            target=importlib.import_module, args=("fedmobile_actors.runtime.server",)
        )
        importer.start()
        try:
            world = World.build(scenario)
            mark("server built the data")
            self.pool.share(world)
            importer.join()
            from fedmobile_actors.runtime.server import Server

            mark("server imported torch")
            self.server = Server(scenario, self.pool, checkpoint, world)
            mark("server set up")
        except UserError as err:
            self._init_error = err

    async def ready(self) -> list[str]:
        if self._init_error is not None:
            self.pool.shutdown()
            raise self._init_error
        self.server.world = await self.pool.shared_view(self.server.world)
        nodes = await self.pool.ready()
        mark("hosts ready")
        return nodes

    async def run_round(self) -> RoundOutput | None:
        return await self.server.run_round()

    async def checkpoint(self) -> bytes:
        return self.server.checkpoint()

    async def host_handles(self) -> list[Any]:
        return list(self.pool.hosts)

    async def shutdown(self) -> None:
        self.pool.shutdown()


class RayBackend(Backend):
    def __init__(self, scenario: Scenario, checkpoint: bytes | None = None) -> None:
        rt = scenario.runtime
        shipped = shipped_paths(plugin_references(scenario.algorithm.name, scenario.model.kind))
        runtime_env = None if ensure_ray(rt, shipped) else plugin_runtime_env(scenario)
        resources = ray.cluster_resources()
        cpus = float(resources.get("CPU", 1))
        group = get_current_placement_group()
        if group is not None:
            # A sweep's cell: its placement group holds one bundle per host, sized for it.
            size = group.bundle_count
        else:
            size = host_count(
                scenario.fleet.phones, rt.hosts, rt.phones_per_host, cpus / rt.cpus_per_host
            )
        if size * rt.cpus_per_host > cpus + 1e-9:
            # Ray would wait for ever for CPUs that do not exist; say so instead.
            raise UserError(
                f"runtime: {size} hosts x {rt.cpus_per_host:g} CPU need "
                f"{size * rt.cpus_per_host:g} CPUs but the cluster has {cpus:g}; lower "
                f"runtime.cpus_per_host (fractions allowed) or runtime.hosts/phones_per_host"
            )
        gpus = float(resources.get("GPU", 0))
        if size * rt.gpus_per_host > gpus + 1e-9:
            # The same wait for ever, for GPUs; runtime.device: cuda names itself.
            what = "runtime.device: cuda with " if rt.device == "cuda" else ""
            raise UserError(
                f"{what}runtime.gpus_per_host: {size} hosts x {rt.gpus_per_host:g} GPU need "
                f"{size * rt.gpus_per_host:g} GPUs but the cluster has {gpus:g}; lower "
                f"runtime.gpus_per_host (fractions allowed), or train on the CPU "
                f"(gpus_per_host: 0, device: auto or cpu)"
            )
        self.size = size
        server: Any = ray.remote(ServerActor)
        options = _with_env({"num_cpus": 0, "max_concurrency": 1000}, runtime_env)
        self.actor: Any = server.options(**options).remote(
            scenario, start_hosts(scenario, size, runtime_env), checkpoint
        )
        mark("actors requested")
        self.nodes: list[str] = _get(self.actor.ready.remote())

    def run_round(self) -> RoundOutput | None:
        return _get(self.actor.run_round.remote())

    def checkpoint(self) -> bytes:
        return _get(self.actor.checkpoint.remote())

    def host_handles(self) -> list[Any]:
        return ray.get(self.actor.host_handles.remote())

    def describe(self) -> dict[str, Any]:
        return {"backend": "ray", "hosts": self.size, "nodes": len(set(self.nodes))}

    def shutdown(self) -> None:
        try:
            ray.get(self.actor.shutdown.remote())
            ray.kill(self.actor)
        except Exception:  # a dying cluster must not hide the run's result
            pass
