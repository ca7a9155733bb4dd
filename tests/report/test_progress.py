"""Progress: plain periodic lines when not on a terminal, nothing when quiet."""

from __future__ import annotations

import io
import math

import pytest

from fedmobile_actors.report.progress import RunProgress, SweepProgress, format_duration
from fedmobile_actors.runtime.metrics import RoundMetrics


def metrics(round_index: int, accuracy: float = 0.5) -> RoundMetrics:
    return RoundMetrics(
        round=round_index,
        virtual_time_s=90.0 * round_index,
        wall_time_s=float(round_index),
        accuracy_full=accuracy,
        accuracy_missing=accuracy - 0.1,
        loss=1.0,
        train_loss=1.0,
        dispatched=10,
        reported=7,
        dropped_offline=1,
        dropped_failed=1,
        late=1,
        stale=0,
        rejected=0,
        bytes_down=1,
        bytes_up=1,
    )


class FakeClock:
    """A wall clock the test advances by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_not_a_terminal_prints_one_line_per_round_with_the_facts() -> None:
    out, clock = io.StringIO(), FakeClock()
    with RunProgress(3, stream=out, every_s=0, clock=clock, label="demo") as progress:
        assert progress.mode == "lines"
        for r in (1, 2, 3):
            clock.now += 2.0
            progress.update(metrics(r, accuracy=0.5 + 0.1 * r))
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("round 1/3 | eta 4.0s | acc 60.0% (missing 50.0%)")
    assert "reports 7/10" in lines[1] and "eta 2.0s" in lines[1] and "[demo]" in lines[1]


def test_round_eta_and_accuracy_fit_the_first_80_columns() -> None:
    """A terminal 80 columns wide cuts the right end; what matters most comes first."""
    out, clock = io.StringIO(), FakeClock()
    with RunProgress(300, stream=out, every_s=0, clock=clock, label="x" * 60) as progress:
        clock.now += 2.0
        progress.update(metrics(100, accuracy=0.9))
    first80 = out.getvalue().splitlines()[0][:80]
    assert "round 100/300" in first80 and "eta" in first80 and "acc 90.0%" in first80
    assert "\x1b[" not in out.getvalue()  # no terminal escapes in CI logs


def test_lines_are_throttled_but_first_and_last_rounds_always_show() -> None:
    out, clock = io.StringIO(), FakeClock()
    with RunProgress(10, stream=out, every_s=5.0, clock=clock) as progress:
        for r in range(1, 11):
            clock.now += 1.0
            progress.update(metrics(r))
    shown = [line.split(" | ")[0] for line in out.getvalue().splitlines()]
    assert shown == ["round 1/10", "round 6/10", "round 10/10"]


def test_unevaluated_rounds_keep_the_last_known_accuracy() -> None:
    out = io.StringIO()
    with RunProgress(2, stream=out, every_s=0) as progress:
        progress.update(metrics(1, accuracy=0.7))
        progress.update(metrics(2, accuracy=math.nan))
    assert "acc 70.0%" in out.getvalue().splitlines()[1]


def test_a_resumed_run_counts_eta_from_its_checkpoint() -> None:
    out, clock = io.StringIO(), FakeClock()
    with RunProgress(10, stream=out, every_s=0, first_round=6, clock=clock) as progress:
        clock.now += 4.0
        progress.update(metrics(7))
        assert progress.eta_s(7) == pytest.approx(12.0)
    assert "round 7/10" in out.getvalue()


def test_quiet_prints_nothing() -> None:
    out = io.StringIO()
    with RunProgress(2, quiet=True, stream=out, every_s=0) as progress:
        progress.update(metrics(1))
        progress.update(metrics(2))
    with SweepProgress(1, quiet=True, stream=out, every_s=0) as sweep:
        sweep.run_done("a")
    assert progress.mode == "quiet" and out.getvalue() == ""


def test_sweep_lines_count_runs_and_failures() -> None:
    out = io.StringIO()
    summary = {"accuracy": {"full": {"final": 0.812}}}
    with SweepProgress(2, stream=out, every_s=0) as sweep:
        sweep.run_done("a-1", summary)
        sweep.run_done("a-2", failed=True)
    lines = out.getvalue().splitlines()
    assert lines[0] == "[sweep] 1/2 runs done | last: a-1 (final acc 81.2%)"
    assert lines[1] == "[sweep] 2/2 runs done | last: a-2 (failed) | 1 failed"


def test_a_terminal_gets_the_live_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    out = io.StringIO()
    with RunProgress(2, stream=out) as progress:
        assert progress.mode == "live"
        progress.update(metrics(1))
        progress.update(metrics(2))
    assert "2/2" in out.getvalue() and "reports 7/10" in out.getvalue()


def test_durations_read_at_a_glance() -> None:
    assert [format_duration(s) for s in (4.25, 185, 7380, None)] == ["4.2s", "3m05s", "2h03m", "-"]
