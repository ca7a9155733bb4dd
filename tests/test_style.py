"""The code stays as clean as it was written: ruff and mypy pass on the package."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff is a dev dependency")
def test_ruff_finds_nothing() -> None:
    """`ruff check` is clean on the package, the tests and the benchmarks."""
    out = subprocess.run(
        ["ruff", "check", "fedmobile_actors", "tests", "benchmarks"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout[-3000:]


def test_mypy_finds_nothing() -> None:
    """`mypy fedmobile_actors` is clean (the settings are in pyproject.toml)."""
    pytest.importorskip("mypy")
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "fedmobile_actors"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout[-3000:]
