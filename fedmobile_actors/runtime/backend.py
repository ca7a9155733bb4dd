"""Backends the driver runs a scenario on: in-process or Ray. Ray is imported only if chosen.

A backend is a handle on a running server: the driver asks for one round at a time (to write
metrics and show progress as they come) and for checkpoints.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

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


def make_backend(scenario: Scenario, checkpoint: bytes | None = None) -> Backend:
    if scenario.runtime.backend == "inprocess":
        from fedmobile_actors.runtime.inprocess import InProcessBackend

        return InProcessBackend(scenario, checkpoint)
    from fedmobile_actors.runtime.ray_backend import RayBackend

    return RayBackend(scenario, checkpoint)
