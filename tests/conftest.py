"""Shared fixtures. Ray is started once per session, and only by tests that ask for it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SCENARIOS = REPO / "scenarios"


@pytest.fixture(scope="session")
def ray_session() -> Iterator[Any]:
    """One local Ray for the whole session (starting Ray costs seconds here).

    ``address="local"`` always starts a fresh Ray, as the driver does: without it, ``ray.init``
    joins any Ray already running on the machine (another user's) and refuses ``num_cpus``.
    """
    import os

    import ray

    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # as ensure_ray does for a local Ray
    # address="local": a fresh Ray of our own, never one another process left on the machine.
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep ``slow`` tests out unless the ``-m`` expression names them, and keep every test that
    starts Ray marked ``integration``.

    Why not ``-m 'not slow'`` in addopts: a second ``-m`` (the fast loop's
    ``-m "not integration"``) replaces the first, and the slow runs would come back in.
    """
    unmarked_ray = [
        item.nodeid
        for item in items
        if "ray_session" in getattr(item, "fixturenames", ())
        and item.get_closest_marker("integration") is None
    ]
    if unmarked_ray:
        raise pytest.UsageError(f"tests that start Ray must be marked integration: {unmarked_ray}")
    if "slow" in (config.option.markexpr or ""):
        return
    slow = [item for item in items if item.get_closest_marker("slow") is not None]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if item.get_closest_marker("slow") is None]
