"""The in-process backend: the same server and hosts in one process, no Ray. For tests,
debugging and sweeps of one-core runs.

Results are bit-identical to the Ray backend's: the server code is the same, hosts build the same
world, and updates are applied in virtual-time order whatever order they were computed in.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fedmobile_actors.runtime.backend import Backend
from fedmobile_actors.runtime.hosts import HostPool, host_count
from fedmobile_actors.runtime.phone_host import PhoneHost
from fedmobile_actors.runtime.server import RoundOutput, Server
from fedmobile_actors.runtime.world import SharedData, World
from fedmobile_actors.scenario.schema import Scenario
from fedmobile_actors.sim.tasks import Task


class InProcessHostPool(HostPool):
    """``size`` PhoneHost objects living in this process."""

    def __init__(self, scenario: Scenario, size: int = 1, shared: SharedData | None = None) -> None:
        self.size = size
        self.hosts = [PhoneHost(scenario, shared) for _ in range(size)]
        self._payloads: dict[int, bytes] = {}

    def publish(self, version: int, payload: bytes) -> None:
        self._payloads[version] = payload

    def forget(self, version: int) -> None:
        self._payloads.pop(version, None)

    async def train(self, task: Task) -> bytes:
        host = self.hosts[self.host_of(task.phone_id)]
        payload = None if host.has_payload(task.base_version) else self._payloads[task.base_version]
        return host.train(task.task_id, task.phone_id, task.base_version, payload)

    async def train_with_state(
        self, task: Task, phone_state: bytes | None
    ) -> tuple[bytes, bytes | None]:
        host = self.hosts[self.host_of(task.phone_id)]
        payload = None if host.has_payload(task.base_version) else self._payloads[task.base_version]
        return host.train_with_state(
            task.task_id, task.phone_id, task.base_version, payload, phone_state
        )


class InProcessBackend(Backend):
    """Server and hosts in this process, on a private event loop."""

    def __init__(self, scenario: Scenario, checkpoint: bytes | None = None) -> None:
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
