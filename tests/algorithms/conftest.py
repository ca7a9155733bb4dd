"""Shared fixtures of the algorithms tests: one torch thread, and the tiny synthetic setting."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from algo_setting import Setting, build_setting


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Phones train on one thread (the runtime's default); on a shared 2-core machine two threads
    per tiny conv step made the suite ~50x slower. Restored after these tests."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def setting() -> Setting:
    return build_setting()
