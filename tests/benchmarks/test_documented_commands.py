"""The benchmark commands the docs print are ones that run.

The benchmark scripts import each other as ``benchmarks.*``, so they run as modules from the
repository root (``python -m benchmarks.usc_had_grid``); ``python benchmarks/usc_had_grid.py``
stops at its first import. Fifteen documented commands had that form before this test existed.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: Where commands are written for users: the docs, the benchmarks' own docstrings, scenarios.
DOCUMENTED = [
    REPO / "README.md",
    *sorted((REPO / "docs").glob("*.md")),
    *sorted((REPO / "benchmarks").glob("*.py")),
    *sorted((REPO / "benchmarks").glob("*.md")),
    *sorted((REPO / "scenarios").glob("*.yaml")),
    *sorted((REPO / "examples").glob("*.py")),
]
SCRIPT_FORM = re.compile(r"python3? benchmarks/\w+\.py")
MODULE_FORM = re.compile(r"python3? -m benchmarks\.(\w+)")


def test_no_document_runs_a_benchmark_as_a_script() -> None:
    found = [
        f"{path.relative_to(REPO)}:{n}: {line.strip()}"
        for path in DOCUMENTED
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if SCRIPT_FORM.search(line)
    ]
    assert not found, "use `python -m benchmarks.NAME` instead of:\n" + "\n".join(found)


def test_every_documented_benchmark_module_exists() -> None:
    named = {
        (path.relative_to(REPO), name)
        for path in DOCUMENTED
        for name in MODULE_FORM.findall(path.read_text())
    }
    assert named, "no documented benchmark command found: the pattern is stale"
    missing = [
        f"{p}: benchmarks.{n}"
        for p, n in sorted(named)
        if not (REPO / "benchmarks" / f"{n}.py").exists()
    ]
    assert not missing, "documented but absent:\n" + "\n".join(missing)


def test_the_issue_11_grid_starts_as_documented() -> None:
    """The command the authors' scenario and results.md print gets past its imports."""
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.usc_had_authors", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "--rounds" in out.stdout
