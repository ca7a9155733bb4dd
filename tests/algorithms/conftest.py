"""Shared fixture of the algorithms tests: the tiny synthetic setting, built once per session."""

from __future__ import annotations

import pytest
from algo_setting import Setting, build_setting


@pytest.fixture(scope="session")
def setting() -> Setting:
    return build_setting()
