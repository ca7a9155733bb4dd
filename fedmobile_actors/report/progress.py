"""Progress of a run (round i/N) and of a sweep (runs done / total) on the terminal.

Why two modes: on a terminal a live rich bar is the most readable; in CI logs and ``nohup``
files a live bar is either invisible or hundreds of redraws, so when stdout is not a terminal the
same facts come out as one plain line at most every ``every_s`` seconds (and always for the first
and last round). ``quiet=True`` prints nothing, for tests and for runs inside a sweep.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Literal, TextIO, TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from fedmobile_actors.runtime.metrics import RoundMetrics

Mode = Literal["quiet", "live", "lines"]


def format_duration(seconds: float | None) -> str:
    """Compact duration: ``42.0s``, ``3m05s``, ``2h03m``; a dash when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


class _Display:
    """The shared mechanics: choose a mode, own the rich Progress, throttle plain lines."""

    def __init__(
        self,
        description: str,
        total: int,
        quiet: bool,
        stream: TextIO | None,
        every_s: float,
        clock: Callable[[], float],
    ) -> None:
        self.total = total
        self.stream = stream or sys.stdout
        self.every_s = every_s
        self.clock = clock
        console = Console(file=self.stream)
        self.mode: Mode = "quiet" if quiet else ("live" if console.is_terminal else "lines")
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._last_line = -math.inf
        self.started = clock()
        if self.mode == "live":
            # What a user needs most comes first, so an 80-column terminal, which cuts the
            # right end, still shows the round count, the ETA and the accuracy.
            self._progress = Progress(
                MofNCompleteColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[status]}"),
                BarColumn(bar_width=20),
                TimeElapsedColumn(),
                TextColumn("[bold]{task.description}"),
                console=console,
            )
            self._task = self._progress.add_task(description, total=total, status="")

    def start(self, done: int = 0) -> None:
        self.started = self.clock()
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=done)
            self._progress.start()

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()

    def show(self, done: int, status: str, line: str, force: bool = False) -> None:
        """Advance to ``done``; in lines mode print ``line`` if due (or ``force``)."""
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=done, status=status)
        elif self.mode == "lines":
            now = self.clock()
            if force or now - self._last_line >= self.every_s:
                self._last_line = now
                print(line, file=self.stream, flush=True)


_P = TypeVar("_P", bound="_Progress")


class _Progress:
    """The context-manager side shared by run and sweep progress: start and stop the display."""

    _display: _Display
    _done_at_start = 0

    @property
    def mode(self) -> Mode:
        return self._display.mode

    def __enter__(self: _P) -> _P:
        self._display.start(self._done_at_start)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._display.stop()


class RunProgress(_Progress):
    """Progress of one run: round i/N, virtual time, last accuracy, reports, ETA.

    Use as ``with RunProgress(rounds) as progress: ... progress.update(metrics)``. A resumed run
    passes ``first_round`` (the checkpoint's round) so the ETA counts only this session's rounds.
    """

    def __init__(
        self,
        total_rounds: int,
        quiet: bool = False,
        *,
        first_round: int = 0,
        label: str = "run",
        stream: TextIO | None = None,
        every_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total_rounds = total_rounds
        self.first_round = first_round
        self._done_at_start = first_round
        self.label = label
        self._display = _Display(label, total_rounds, quiet, stream, every_s, clock)
        self._accuracy_full: float | None = None
        self._accuracy_missing: float | None = None

    def eta_s(self, round_index: int) -> float | None:
        """Wall seconds left, from this session's pace (None before the first round)."""
        done = round_index - self.first_round
        if done <= 0:
            return None
        elapsed = self._display.clock() - self._display.started
        return elapsed / done * max(self.total_rounds - round_index, 0)

    def update(self, m: RoundMetrics) -> None:
        """Show one finished round; NaN accuracies (not evaluated) keep the last known ones."""
        if math.isfinite(m.accuracy_full):
            self._accuracy_full = m.accuracy_full
        if math.isfinite(m.accuracy_missing):
            self._accuracy_missing = m.accuracy_missing
        status = (
            f"acc {_percent(self._accuracy_full)} (missing {_percent(self._accuracy_missing)}) | "
            f"reports {m.reported}/{m.dispatched} | virtual {format_duration(m.virtual_time_s)}"
        )
        # Round count, ETA and accuracy first: a narrow terminal wraps or cuts the right end.
        line = (
            f"round {m.round}/{self.total_rounds} | eta {format_duration(self.eta_s(m.round))} | "
            f"{status} | [{self.label}]"
        )
        edge = m.round >= self.total_rounds or m.round == self.first_round + 1
        self._display.show(m.round, status, line, force=edge)


class SweepProgress(_Progress):
    """Progress of a sweep: runs done out of the total, with the last run's final accuracy."""

    def __init__(
        self,
        total_runs: int,
        quiet: bool = False,
        *,
        stream: TextIO | None = None,
        every_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total_runs = total_runs
        self.done = 0
        self.failed = 0
        self._display = _Display("sweep", total_runs, quiet, stream, every_s, clock)

    def run_done(
        self, name: str, summary: dict[str, Any] | None = None, failed: bool = False
    ) -> None:
        """Count one run as done (or failed) and show it."""
        self.done += 1
        self.failed += int(failed)
        final = None if summary is None else summary["accuracy"]["full"]["final"]
        result = "failed" if failed else f"final acc {_percent(final)}"
        status = f"last: {name} ({result})" + (f" | {self.failed} failed" if self.failed else "")
        line = f"[sweep] {self.done}/{self.total_runs} runs done | {status}"
        self._display.show(self.done, status, line, force=self.done >= self.total_runs)
