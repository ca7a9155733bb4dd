"""Backends the driver runs a scenario on: in-process or Ray. Ray is imported only if chosen.

A backend is a handle on a running server: the driver asks for one round at a time (to write
metrics and show progress as they come) and for checkpoints.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

from fedmobile_actors.runtime.hosts import host_count
from fedmobile_actors.scenario.schema import Scenario

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


class InProcessBackend(Backend):
    """Server and hosts in this process, on a private event loop."""

    def __init__(self, scenario: Scenario, checkpoint: bytes | None = None) -> None:
        from fedmobile_actors.runtime.inprocess import InProcessHostPool
        from fedmobile_actors.runtime.server import Server
        from fedmobile_actors.runtime.world import World

        size = host_count(scenario.fleet.phones, scenario.runtime.hosts, None, 1)
        self._loop = asyncio.new_event_loop()
        world = World.build(scenario)  # built once, shared by the server and its hosts
        pool = InProcessHostPool(scenario, size, world.data)
        self.server = Server(scenario, pool, checkpoint, world)
        self._hosts = size

    def run_round(self) -> RoundOutput | None:
        return self._loop.run_until_complete(self.server.run_round())

    def checkpoint(self) -> bytes:
        return self.server.checkpoint()

    def describe(self) -> dict[str, Any]:
        return {"backend": "inprocess", "hosts": self._hosts, "nodes": 1}

    def shutdown(self) -> None:
        self._loop.close()


def make_backend(scenario: Scenario, checkpoint: bytes | None = None) -> Backend:
    if scenario.runtime.backend == "inprocess":
        return InProcessBackend(scenario, checkpoint)
    from fedmobile_actors.runtime.ray_backend import RayBackend

    return RayBackend(scenario, checkpoint)
