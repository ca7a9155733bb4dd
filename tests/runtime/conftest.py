"""Fixtures for runtime tests: tiny scenarios (see conftest_helpers)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest_helpers import tiny_scenario

from fedmobile_actors.scenario import Scenario


@pytest.fixture
def tiny() -> Scenario:
    return tiny_scenario()


@pytest.fixture
def make_tiny() -> Callable[..., Scenario]:
    """The factory itself, for tests that vary a section."""
    return tiny_scenario
