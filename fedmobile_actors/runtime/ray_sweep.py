"""A sweep's cells as concurrent Ray tasks, each in a placement group sized for its hosts.

Why tasks in placement groups (and not Ray Tune): a cell is one ``run_scenario`` call that
already writes its own run directory, checkpoints and summary, and the sweep's resume works from
those files, so Tune's trial bookkeeping, result syncing and its own resume would duplicate ours.
What we need from Ray is exactly what a placement group gives: reserve a cell's resources (one
bundle per phone host: its CPUs, GPUs, memory) atomically, start the cell when all of them are
free, and let Ray's scheduler pack the cells on the cluster's nodes. The cell's task reserves
nothing itself (``num_cpus=0``) and captures its group, so the server actor it starts lands in
the group and the hosts take one bundle each (runtime/ray_backend.py).

No queue of our own: every cell's group is requested up to ``parallel`` at once and Ray starts
a cell as soon as its group is placed. A cell asking for more than any node or the whole cluster
has would wait for ever, so it is reported as that cell's error instead.

The cell function comes from the caller (orchestration/sweep.py's ``run_cell``, which this
layer may not import); Ray pickles it by reference, so workers import the same module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import ray
from ray.util.placement_group import PlacementGroup, placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from fedmobile_actors.runtime.hosts import host_count
from fedmobile_actors.runtime.ray_backend import ensure_ray
from fedmobile_actors.scenario.schema import RuntimeConfig, Scenario

R = TypeVar("R")

#: A cell whose worker process dies (a node lost, the OOM killer) is run again this many times;
#: the cell function resumes from the cell's own checkpoints, so a retry repeats little.
CELL_RETRIES = 2


@dataclass(frozen=True)
class CellOutcome(Generic[R]):
    """What came back from one cell: the function's result, or why there is none."""

    index: int
    result: R | None
    error: str | None
    node: str


def cell_bundles(scenario: Scenario) -> list[dict[str, float]]:
    """The placement-group bundles of one cell: one per phone host, each what that host
    reserves. Without ``runtime.hosts`` or ``phones_per_host`` a cell gets one host: in a
    sweep, the cells, not one cell's phones, are what fills the cluster."""
    rt = scenario.runtime
    if rt.backend == "inprocess":
        return [{"CPU": 1.0}]
    hosts = host_count(scenario.fleet.phones, rt.hosts, rt.phones_per_host, 1.0)
    return [_bundle(rt) for _ in range(hosts)]


def _bundle(rt: RuntimeConfig) -> dict[str, float]:
    bundle = {"CPU": rt.cpus_per_host}
    if rt.gpus_per_host > 0:
        bundle["GPU"] = rt.gpus_per_host
    if rt.memory_per_host_mb is not None:
        bundle["memory"] = float(rt.memory_per_host_mb * 1024 * 1024)
    return bundle


def unplaceable(
    bundles: Sequence[dict[str, float]], nodes: Sequence[dict[str, float]]
) -> str | None:
    """Why these bundles can never be placed on nodes with these resources (None if they can)."""
    for key in sorted({k for b in bundles for k in b}):
        need = max(b.get(key, 0.0) for b in bundles)
        largest = max((n.get(key, 0.0) for n in nodes), default=0.0)
        if need > largest + 1e-9:
            return f"a host needs {need:g} {key} but the largest node has {largest:g}"
        total_need = sum(b.get(key, 0.0) for b in bundles)
        total = sum(n.get(key, 0.0) for n in nodes)
        if total_need > total + 1e-9:
            return f"the cell's hosts need {total_need:g} {key} but the cluster has {total:g}"
    return None


def _node_resources() -> list[dict[str, float]]:
    return [dict(node["Resources"]) for node in ray.nodes() if node.get("Alive")]


def _run_cell_task(
    fn: Callable[..., Any], index: int, scenario: Scenario, args: tuple[Any, ...]
) -> tuple[Any, str]:
    """Inside the cell's task: run it, and say on which node it ran."""
    return fn(index, scenario, *args), ray.get_runtime_context().get_node_id()


def run_cells(
    cells: Sequence[tuple[int, Scenario]],
    fn: Callable[..., R],
    args: tuple[Any, ...],
    runtime: RuntimeConfig,
    parallel: int | None = None,
) -> Iterator[CellOutcome[R]]:
    """Run ``fn(index, scenario, *args)`` for every cell as a Ray task, up to ``parallel`` at
    once (None: all requested at once, Ray starts them as resources free up); yields outcomes
    in the order the cells finish. A cell's failure is its outcome's error, never raised."""
    ensure_ray(runtime)
    nodes = _node_resources()
    task = ray.remote(_run_cell_task)
    waiting = list(cells)
    running: dict[Any, tuple[int, PlacementGroup]] = {}
    cap = parallel or len(cells) or 1
    try:
        while waiting or running:
            while waiting and len(running) < cap:
                index, scenario = waiting.pop(0)
                bundles = cell_bundles(scenario)
                why = unplaceable(bundles, nodes)
                if why is not None:
                    yield CellOutcome(index, None, f"cannot be placed: {why}", "")
                    continue
                group = placement_group(bundles, strategy="PACK")
                strategy = PlacementGroupSchedulingStrategy(
                    group, placement_group_capture_child_tasks=True
                )
                ref = task.options(
                    num_cpus=0, max_retries=CELL_RETRIES, scheduling_strategy=strategy
                ).remote(fn, index, scenario, args)
                running[ref] = (index, group)
            if not running:
                continue
            done, _ = ray.wait(list(running), num_returns=1)
            for ref in done:
                index, group = running.pop(ref)
                try:
                    result, node = ray.get(ref)
                    yield CellOutcome(index, result, None, node)
                except ray.exceptions.RayError as err:
                    yield CellOutcome(index, None, _one_line(err), "")
                finally:
                    remove_placement_group(group)
    finally:
        for ref, (_, group) in running.items():
            ray.cancel(ref, force=True)
            remove_placement_group(group)


def _one_line(err: BaseException) -> str:
    """A Ray error as one line: the cause's type and message where Ray kept one."""
    cause = getattr(err, "cause", None)
    if isinstance(cause, BaseException):
        err = cause
    text = " | ".join(line.strip() for line in str(err).splitlines() if line.strip())
    return f"{type(err).__name__}: {text[:300]}" if text else type(err).__name__
