"""The fast loop and the full suite select what the README says (tests/conftest.py's hook)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = Path(__file__).resolve().parent / "conftest.py"
INI = "[pytest]\nmarkers =\n    slow: long\n    integration: Ray and friends\n"
MARKED = """
import pytest

@pytest.mark.slow
def test_slow(): pass

@pytest.mark.integration
def test_integration(): pass

def test_unit(): pass
"""


@pytest.fixture
def marked(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A tiny project with this suite's conftest; third-party plugins stay unloaded (speed)."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makeconftest(CONFTEST.read_text(encoding="utf-8"))
    pytester.makeini(INI)
    pytester.makepyfile(test_marked=MARKED)
    return pytester


@pytest.mark.parametrize(
    ("args", "passed"),
    [
        ((), 2),
        (("-m", "not integration"), 1),
        (("-m", "slow"), 1),
        (("-m", "slow or integration"), 2),
    ],
    ids=["full-suite", "fast-loop", "slow-only", "slow-or-integration"],
)
def test_slow_runs_only_when_the_marker_expression_names_it(
    marked: pytest.Pytester, args: tuple[str, ...], passed: int
) -> None:
    marked.runpytest(*args).assert_outcomes(passed=passed)


def test_a_ray_test_without_the_integration_marker_is_refused(marked: pytest.Pytester) -> None:
    marked.makepyfile(test_ray="def test_uses_ray(ray_session): pass\n")
    result = marked.runpytest("-m", "not integration")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*tests that start Ray must be marked integration*test_uses_ray*"])
