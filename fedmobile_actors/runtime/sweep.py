"""Run every point of a sweep into one sweep directory and tabulate the results.

Layout::

    <output.dir>/<name>-sweep-<YYYYmmdd-HHMMSS>[-N]/
      sweep.yaml     the sweep scenario as resolved (grid and seeds included)
      sweep.csv      one row per run: params, seed, run dir, accuracies, time-to-target, totals
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

import csv
import io
import json
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
from fedmobile_actors.report.progress import SweepProgress
from fedmobile_actors.report.run_dir import RunDir
from fedmobile_actors.report.summary import DEFAULT_TARGETS, TOTAL_COLUMNS, target_key
from fedmobile_actors.runtime.driver import run_scenario
from fedmobile_actors.scenario import Scenario, scenario_to_yaml
from fedmobile_actors.scenario.sweep import SweepPoint, expand_sweep

SWEEP_TABLE = "sweep.csv"
SWEEP_SCENARIO = "sweep.yaml"


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
    keys = list(scenario.sweep.grid) if scenario.sweep is not None else []
    try:
        if workers > 1:
            runs = _run_parallel(points, sweep_dir, workers, quiet)
        else:
            runs = _run_sequential(points, sweep_dir, quiet)
        for result in runs:
            results[result.index] = result
            write_table(sweep_dir, keys, points, results)
    finally:
        write_table(sweep_dir, keys, points, results)
    rows = list(_plot_rows(points, results))
    if scenario.output.plots and rows:
        from fedmobile_actors.report import plots

        make = getattr(plots, "make_sweep_plots", None)
        if make is not None:
            make(sweep_dir, rows)
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
    parent.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "sweep"
    base = f"{safe}-sweep-{(when or datetime.now()).strftime('%Y%m%d-%H%M%S')}"
    for n in range(10_000):
        path = parent / (base if n == 0 else f"{base}-{n}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise RunDirError(f"{parent}: could not find a free directory name for {base!r}")


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


def table_columns(keys: Sequence[str]) -> list[str]:
    """Columns of sweep.csv: params, identity, accuracies, time-to-target, totals, error."""
    targets = [
        f"time_to_{target_key(t)}_{which}_s"
        for which in ("full", "missing")
        for t in DEFAULT_TARGETS
    ]
    return [
        "index",
        *keys,
        "seed",
        "status",
        "run_dir",
        "final_accuracy_full",
        "best_accuracy_full",
        "final_accuracy_missing",
        "best_accuracy_missing",
        *targets,
        "rounds",
        "virtual_time_s",
        "wall_time_s",
        "final_loss",
        *TOTAL_COLUMNS,
        "error",
    ]


def table_row(
    point: SweepPoint, index: int, result: RunResult | None, sweep_dir: Path
) -> dict[str, Any]:
    """One run's row; cells a run does not have (not reached, failed) are left empty."""
    row: dict[str, Any] = {"index": index, **{k: _cell(v) for k, v in point.params.items()}}
    if result is None:
        return {**row, "status": "not run"}
    summary = _summary(result)
    run_dir = Path(result.run_dir) if result.run_dir else None
    row["run_dir"] = "" if run_dir is None else os.path.relpath(run_dir, sweep_dir)
    row["status"] = _status(run_dir, result)
    row["error"] = result.error or ""
    if summary is None:
        return row
    for which in ("full", "missing"):
        figures = summary["accuracy"][which]
        row[f"final_accuracy_{which}"] = figures["final"]
        row[f"best_accuracy_{which}"] = figures["best"]
        for target in DEFAULT_TARGETS:
            hit = figures["targets"].get(target_key(target))
            row[f"time_to_{target_key(target)}_{which}_s"] = (
                None if not hit else hit["virtual_time_s"]
            )
    for name in ("rounds", "virtual_time_s", "wall_time_s", "final_loss"):
        row[name] = summary.get(name)
    row.update({name: summary["totals"].get(name) for name in TOTAL_COLUMNS})
    return row


def write_table(
    sweep_dir: Path,
    keys: Sequence[str],
    points: Sequence[SweepPoint],
    results: dict[int, RunResult],
) -> Path:
    """(Re)write sweep.csv atomically, one row per point in sweep order (after every run, so an
    interrupted sweep still leaves the table of what finished)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=table_columns(keys), extrasaction="ignore")
    writer.writeheader()
    for index, point in enumerate(points):
        row = table_row(point, index, results.get(index), sweep_dir)
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    path = sweep_dir / SWEEP_TABLE
    tmp = path.with_suffix(".csv.tmp")
    tmp.write_text(buffer.getvalue(), encoding="utf-8")
    tmp.replace(path)
    return path


def _cell(value: Any) -> Any:
    """A param as a CSV cell: scalars as they are, lists and mappings as compact JSON."""
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, separators=(",", ":"))
    return value


def _status(run_dir: Path | None, result: RunResult) -> str:
    if run_dir is None:
        return "failed"
    try:
        return RunDir(run_dir).read_run_info().status
    except RunDirError:
        return "failed" if result.error else "unknown"


def _summary(result: RunResult) -> dict[str, Any] | None:
    if result.error is not None or result.run_dir is None:
        return None
    run = RunDir(Path(result.run_dir))
    if not run.summary_path.is_file():
        return None
    try:
        return run.read_summary()
    except RunDirError as err:
        print(f"fedmobile: warning: {err}", file=sys.stderr)
        return None


def _plot_rows(
    points: Sequence[SweepPoint], results: dict[int, RunResult]
) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(params, summary) of each finished run, as report.plots.make_sweep_plots takes them."""
    for index, point in enumerate(points):
        result = results.get(index)
        summary = None if result is None else _summary(result)
        if summary is not None:
            yield point.params, {"algorithm": point.scenario.algorithm.name, **summary}
