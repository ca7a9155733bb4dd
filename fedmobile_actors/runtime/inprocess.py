"""The in-process backend: the same server and hosts, no Ray. For tests and debugging.

Results are bit-identical to the Ray backend's: the server code is the same, hosts build the same
world, and updates are applied in virtual-time order whatever order they were computed in.
"""

from __future__ import annotations

from fedmobile_actors.runtime.hosts import HostPool
from fedmobile_actors.runtime.phone_host import PhoneHost
from fedmobile_actors.runtime.world import SharedData
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
