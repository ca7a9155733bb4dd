"""Backends the driver runs a scenario on: in-process or Ray. Ray is imported only if chosen.

A backend is a handle on a running server: the driver asks for one round at a time (to write
metrics and show progress as they come) and for checkpoints.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fedmobile_actors.scenario.schema import RuntimeConfig, Scenario

if TYPE_CHECKING:  # torch is imported only where training happens, not by the Ray driver
    from fedmobile_actors.runtime.server import RoundOutput


class Backend(ABC):
    @abstractmethod
    def run_round(self) -> RoundOutput | None:
        """Run the next round; None when the scenario is done."""

    @abstractmethod
    def checkpoint(self) -> bytes:
        """The server's state, to resume from."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Where it runs (for run.json): backend, hosts, nodes."""

    def shutdown(self) -> None:
        """Release processes (the in-process backend holds none)."""


def make_backend(scenario: Scenario, checkpoint: bytes | None = None) -> Backend:
    if scenario.runtime.backend == "inprocess":
        from fedmobile_actors.runtime.inprocess import InProcessBackend

        return InProcessBackend(scenario, checkpoint)
    from fedmobile_actors.runtime.ray_backend import RayBackend

    return RayBackend(scenario, checkpoint)


class EarlyRay:
    """Ray's start (``import ray`` and ``ray.init``: seconds, mostly spent waiting for Ray's own
    processes) begun in a thread, so the driver prepares the run meanwhile: its checks, the run
    directory, loading a dataset from disk to report a bad one early.

    Why a thread and not a process: ``ray.init`` must run in the driver's own process. It does
    not need the main thread; off it, Ray leaves SIGTERM to the CLI's handler, which records
    the run as interrupted.

    The thread that started Ray stays parked until Ray is shut down (or the process ends):
    Ray's own processes are started with ``PR_SET_PDEATHSIG``, which Linux fires when the
    *thread* that forked them ends, so a finished thread would take Ray down with it.
    """

    def __init__(self, runtime: RuntimeConfig, py_modules: Sequence[str]) -> None:
        self.runtime = runtime
        self.py_modules = tuple(py_modules)
        self._started: bool = False
        self._error: BaseException | None = None
        self._done = threading.Event()
        self._release = threading.Event()
        thread = threading.Thread(target=self._start, name="fedmobile-ray-start", daemon=True)
        thread.start()

    def _start(self) -> None:
        try:
            from fedmobile_actors.runtime.ray_backend import init_ray

            self._started = init_ray(self.runtime, self.py_modules)
        except BaseException as err:  # re-raised in the driver's thread by ``result``
            self._error = err
        self._done.set()
        if self._started:
            self._release.wait()  # parked: Ray's processes live as long as this thread

    def result(self) -> bool:
        """Wait for Ray; True when this start began it (``ensure_ray``'s answer)."""
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._started

    def abandon(self) -> None:
        """The run failed before using Ray: wait for the start, then stop what it started."""
        self._done.wait()
        if self._started:
            import ray

            ray.shutdown()
        self._release.set()


_early: EarlyRay | None = None


def start_ray_early(scenario: Scenario) -> None:
    """Begin starting Ray for a Ray run now (no-op for the in-process backend, or when a start
    is already under way); ``RayBackend`` then waits for it instead of starting Ray itself."""
    global _early
    if scenario.runtime.backend != "ray" or _early is not None:
        return
    from fedmobile_actors.algorithms.plugins import plugin_references, shipped_paths

    modules = shipped_paths(plugin_references(scenario.algorithm.name, scenario.model.kind))
    _early = EarlyRay(scenario.runtime, modules)


def take_early_ray(runtime: RuntimeConfig, py_modules: Sequence[str]) -> bool | None:
    """The result of an early start for this runtime and these modules (None when there was
    none); a start for anything else is abandoned."""
    global _early
    early, _early = _early, None
    if early is None:
        return None
    if early.runtime != runtime or early.py_modules != tuple(py_modules):
        early.abandon()
        return None
    return early.result()


def abandon_early_ray() -> None:
    """Stop an early start whose run failed before reaching ``RayBackend`` (a bad plug-in, an
    unwritable run directory, a missing dataset): no Ray is left running for nothing."""
    global _early
    early, _early = _early, None
    if early is not None:
        early.abandon()
