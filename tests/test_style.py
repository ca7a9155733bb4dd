"""The code stays as clean as it was written: ruff (lint and format) and mypy pass."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _assert_ruff_clean(*args: str) -> None:
    """Run ``python -m ruff <args>`` in the repository and fail with its output unless clean.

    Ruff is part of the dev install, so a missing ruff fails here rather than passing silently;
    it runs as ``python -m ruff`` so it is the interpreter's own, not whichever is on PATH.
    """
    out = subprocess.run(
        [sys.executable, "-m", "ruff", *args], cwd=REPO, capture_output=True, text=True
    )
    assert "No module named ruff" not in out.stderr, "ruff is missing: pip install -e '.[dev]'"
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-1000:]


def test_ruff_finds_nothing() -> None:
    """`ruff check` is clean on the package, the tests and the benchmarks."""
    _assert_ruff_clean("check", "fedmobile_actors", "tests", "benchmarks")


def test_ruff_format_changes_nothing() -> None:
    """`ruff format --check .` is clean: the Python sources and the Python blocks of the
    markdown files (README, docs), so an example a user copies is formatted as the code is.
    The dev install pins ruff's minor version, since the formatter's style may change between
    minor versions."""
    _assert_ruff_clean("format", "--check", ".")


@pytest.mark.integration  # a whole-package type check: tens of seconds
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
