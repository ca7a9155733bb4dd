"""The network is charged the real encoded sizes: the server's estimate equals what phones send."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from fedmobile_actors.runtime.inprocess import InProcessHostPool
from fedmobile_actors.runtime.server import Server
from fedmobile_actors.scenario import Scenario
from fedmobile_actors.sim.tasks import Task


class MeasuringPool(InProcessHostPool):
    """Records the size of every update a host returns, and every published payload."""

    def __init__(self, scenario: Scenario) -> None:
        super().__init__(scenario)
        self.sent: list[tuple[Task, int]] = []
        self.published: dict[int, int] = {}

    def publish(self, version: int, payload: bytes) -> None:
        super().publish(version, payload)
        self.published[version] = len(payload)

    async def train(self, task: Task) -> bytes:
        blob = await super().train(task)
        self.sent.append((task, len(blob)))
        return blob


@pytest.mark.parametrize(
    "algorithm", ["fedavg", "fedprox", "noise_padding", "fedmobile", "fedmobile_no_alpha"]
)
def test_charged_bytes_equal_encoded_bytes(
    make_tiny: Callable[..., Scenario], algorithm: str
) -> None:
    """For every strategy, each task's up_bytes and down_bytes are its real payload sizes."""
    scenario = make_tiny(algorithm={"name": algorithm}, rounds={"rounds": 2})
    pool = MeasuringPool(scenario)
    server = Server(scenario, pool)
    for _ in range(2):
        asyncio.run(server.run_round())
    assert pool.sent
    for task, size in pool.sent:
        assert task.up_bytes == size
        assert task.down_bytes == pool.published[task.base_version]
