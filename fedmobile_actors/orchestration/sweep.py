"""Run every point of a sweep into one sweep directory and tabulate the results.

Layout::

    <output.dir>/<name>-sweep-<YYYYmmdd-HHMMSS>[-N]/
      sweep.yaml     the sweep scenario as resolved (grid and seeds included)
      sweep.csv      one row per run: run dir, params, seed, accuracies, time-to-target, totals
      sweep_summary.csv  one row per setting, mean and std over seeds (report.sweep_summary)
      failures.txt   one line per failed run and why (only if a run failed)
      <run dirs>/    one ordinary run directory per (grid point, seed)
      plots/         report.plots.make_sweep_plots

Why two ways of running the points (``sweep.parallel`` caps both):

- ``runtime.backend: inprocess``: each run is one process's work on one core, so several run at
  once in a small ``ProcessPoolExecutor`` (spawn context: a forked child would inherit torch's
  thread pools and any locks held at fork time). Each worker runs ``run_scenario`` quietly; this
  process shows runs done / total.
- ``runtime.backend: ray``: one run already spreads its phones over every CPU Ray was given, so
  runs in parallel would only contend for the same cores (and each would start or join Ray).
  Points run one after another, each showing its own round progress.

Results do not depend on the choice: every draw is keyed by (seed, phone, round, purpose).
A user's mistake in one point (a missing data path in one grid value) is recorded in its row
and the sweep goes on; a bug stops the sweep with its traceback, after the table is written.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from fedmobile_actors.errors import RunDirError, UserError
from fedmobile_actors.orchestration.driver import run_scenario
from fedmobile_actors.report.compare import write_sweep_table
from fedmobile_actors.report.progress import SweepProgress
from fedmobile_actors.report.run_dir import RunDir, claim_new_dir
from fedmobile_actors.report.summary import load_summary, summarise
from fedmobile_actors.report.sweep_summary import cell_row, report_sweep
from fedmobile_actors.scenario import Scenario, scenario_to_yaml
from fedmobile_actors.scenario.sweep import SweepPoint, expand_sweep

SWEEP_TABLE = "sweep.csv"
SWEEP_SCENARIO = "sweep.yaml"
SWEEP_FAILURES = "failures.txt"


class SweepError(UserError):
    """Every run of a sweep failed because of the user's input (the first reason is given)."""


@dataclass(frozen=True)
class RunResult:
    """How one point ended: its run directory (None if it failed before one existed)."""

    index: int
    run_dir: str | None
    error: str | None = None


def run_sweep(scenario: Scenario, quiet: bool = False) -> Path:
    """Run every (grid point, seed) of ``scenario.sweep``; returns the sweep directory."""
    points = expand_sweep(scenario)
    sweep_dir = create_sweep_dir(Path(scenario.output.dir), scenario.name)
    (sweep_dir / SWEEP_SCENARIO).write_text(scenario_to_yaml(scenario), encoding="utf-8")
    workers = worker_count(scenario, len(points))
    results: dict[int, RunResult] = {}
    try:
        if workers > 1:
            runs = _run_parallel(points, sweep_dir, workers, quiet)
        else:
            runs = _run_sequential(points, sweep_dir, quiet)
        for result in runs:
            results[result.index] = result
            write_table(sweep_dir, points, results)
    finally:
        write_table(sweep_dir, points, results)
    report_sweep(sweep_dir, [cell_row(*row) for row in sweep_rows(points, results)], quiet)
    rows = [row for row in sweep_rows(points, results) if row[1]["status"] == "finished"]
    if scenario.output.plots and rows:
        from fedmobile_actors.report.plots import make_sweep_plots

        make_sweep_plots(sweep_dir, rows)
    failed = [r for r in results.values() if r.error is not None]
    if points and len(failed) == len(points):
        first = failed[0].error or ""
        raise SweepError(f"{sweep_dir}: all {len(points)} runs failed; first: {first}")
    return sweep_dir


def worker_count(scenario: Scenario, runs: int) -> int:
    """Runs at once: 1 on Ray (one run uses every core), else ``sweep.parallel`` or the CPUs."""
    if scenario.runtime.backend != "inprocess" or runs <= 1:
        return 1
    cap = scenario.sweep.parallel if scenario.sweep and scenario.sweep.parallel else None
    return max(1, min(runs, cap or os.cpu_count() or 1))


def create_sweep_dir(parent: Path, name: str, when: datetime | None = None) -> Path:
    """A fresh ``<parent>/<name>-sweep-<stamp>[-N]``; ``mkdir`` is the claim, so never reused."""
    return claim_new_dir(parent, f"{name}-sweep", when)


# --------------------------------------------------------------------------------------------
# Running the points
# --------------------------------------------------------------------------------------------


def run_point(scenario: Scenario, sweep_dir: str, index: int, quiet: bool) -> RunResult:
    """Run one point; a ``UserError`` becomes the row's error, anything else propagates.

    Module level (not a closure) so a spawned worker can unpickle it.
    """
    try:
        run = run_scenario(scenario, quiet=quiet, output_dir=sweep_dir)
    except UserError as err:
        return RunResult(index, _run_dir_of(Path(sweep_dir), scenario.name), _one_line(err))
    return RunResult(index, str(run.path))


def _run_sequential(
    points: Sequence[SweepPoint], sweep_dir: Path, quiet: bool
) -> Iterator[RunResult]:
    total = len(points)
    for index, point in enumerate(points):
        if not quiet:
            print(f"[sweep] run {index + 1}/{total}: {point.scenario.name}", flush=True)
        result = run_point(point.scenario, str(sweep_dir), index, quiet)
        if not quiet:
            print(f"[sweep] {index + 1}/{total} runs done | {_outcome(result)}", flush=True)
        yield result


def _run_parallel(
    points: Sequence[SweepPoint], sweep_dir: Path, workers: int, quiet: bool
) -> Iterator[RunResult]:
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"))
    try:
        with SweepProgress(len(points), quiet=quiet) as progress:
            pending: set[Future[RunResult]] = {
                pool.submit(run_point, p.scenario, str(sweep_dir), i, True)
                for i, p in enumerate(points)
            }
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in sorted(done, key=lambda f: f.result().index):
                    result = future.result()
                    name = points[result.index].scenario.name
                    progress.run_done(name, _summary(result), failed=result.error is not None)
                    yield result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _run_dir_of(sweep_dir: Path, name: str) -> str | None:
    """The run directory a failed run left behind, if it got that far (newest match)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")
    own = re.compile(re.escape(safe) + r"-\d{8}-\d{6}(-\d+)?")
    found = sorted(
        p for p in sweep_dir.iterdir() if own.fullmatch(p.name) and (p / "run.json").is_file()
    )
    return str(found[-1]) if found else None


def _outcome(result: RunResult) -> str:
    if result.error is not None:
        return f"failed: {result.error}"
    summary = _summary(result)
    final = None if summary is None else summary["accuracy"]["full"]["final"]
    return "finished" if final is None else f"final accuracy {100 * final:.1f}%"


def _one_line(err: BaseException) -> str:
    return " | ".join(line for line in str(err).splitlines() if line) or type(err).__name__


# --------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------


def sweep_rows(
    points: Sequence[SweepPoint], results: dict[int, RunResult]
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(params, summary) of every point that ran, in sweep order, for sweep.csv and the plots.

    A finished run brings its stored summary.json, a failed one a summary recomputed from the
    rows it wrote (``load_summary``); one that failed before writing anything an empty summary
    marked failed, so every run of the sweep has its row.
    """
    rows = []
    for index, point in enumerate(points):
        result = results.get(index)
        if result is None:
            continue
        summary = _summary(result)
        if summary is None:
            summary = {**summarise([], []), "run": "", "status": "failed"}
        rows.append((point.params, {"algorithm": point.scenario.algorithm.name, **summary}))
    return rows


def write_table(
    sweep_dir: Path, points: Sequence[SweepPoint], results: dict[int, RunResult]
) -> Path:
    """(Re)write sweep.csv (report.compare's format) and, if any run failed, failures.txt.

    Rewritten after every run, so an interrupted sweep still leaves the table of what ran.
    """
    failures = [
        f"{points[i].scenario.name}: {r.error}" for i, r in sorted(results.items()) if r.error
    ]
    if failures:
        (sweep_dir / SWEEP_FAILURES).write_text("\n".join(failures) + "\n", encoding="utf-8")
    return write_sweep_table(sweep_dir / SWEEP_TABLE, sweep_rows(points, results))


def _summary(result: RunResult) -> dict[str, Any] | None:
    """The run's summary (stored if finished, recomputed otherwise); None without a run."""
    if result.run_dir is None:
        return None
    try:
        return load_summary(RunDir.open(result.run_dir))
    except RunDirError as err:
        print(f"fedmobile: warning: {err}", file=sys.stderr)
        return None
