"""Run every cell of a sweep into one sweep directory, resumably, and tabulate the results.

Layout::

    <output.dir>/<name>-sweep-<YYYYmmdd-HHMMSS>[-N]/
      sweep.yaml     the sweep scenario as resolved (grid and seeds included); resume reads it
      sweep.json     one row per cell (report.compare.sweep_row), rewritten after every cell
      sweep.csv      the same rows as CSV
      sweep_summary.csv  one row per setting, mean and std over seeds (report.sweep_summary)
      failures.txt   one line per failed cell and why (only if a cell failed)
      <cell id>/     one folder per cell, named by the hash of its resolved settings
        <run name>-<stamp>/   the cell's ordinary run directory
      plots/         report.plots.make_sweep_plots

A cell is identified by its resolved settings (scenario.sweep.cell_id), not by its order or name,
so a resumed sweep finds each cell's folder even if the grid lists its values in another order.
``run_cell`` is idempotent: it keeps a finished run, resumes an interrupted one from its latest
checkpoint, and otherwise starts the cell afresh. Resuming a sweep is running every cell again
through it; a sweep killed at any moment (the driver included) resumes to the same table,
because every draw is keyed by (seed, phone, round, purpose) and rounds after a checkpoint are
re-run, not appended.

Three ways of running the cells; results do not depend on the choice:

- ``runtime.backend: inprocess``: each cell is one process's work on one core, so up to
  ``sweep.parallel`` (default: the CPUs) run at once in a ``ProcessPoolExecutor`` (spawn: a
  forked child would inherit torch's thread pools and any lock held at fork time).
- ``runtime.backend: ray``: cells run concurrently as Ray tasks, each in a placement group
  reserving its hosts' CPUs, GPUs and memory (runtime/ray_sweep.py); Ray packs them on the
  cluster's nodes. ``sweep.parallel`` caps the cells in flight.
- ``sweep.parallel: 1``: one cell after another in this process, each using the whole machine
  or cluster, with its own round progress.

A cell that fails, for a user's mistake (a missing data file in one grid value) or a crash, is
recorded with its one-line error and the others go on; resuming keeps it failed unless asked to
retry failed cells.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from fedmobile_actors.errors import RunDirError, UserError
from fedmobile_actors.orchestration.driver import resume_run, run_scenario
from fedmobile_actors.report.compare import (
    SWEEP_CSV,
    SWEEP_JSON,
    load_sweep_rows,
    sweep_row,
    write_sweep_tables,
)
from fedmobile_actors.report.progress import SweepProgress
from fedmobile_actors.report.run_dir import RUN_INFO, SCENARIO, RunDir, claim_new_dir
from fedmobile_actors.report.summary import load_summary, summarise
from fedmobile_actors.report.sweep_summary import cell_row, report_sweep
from fedmobile_actors.scenario import Scenario, load_scenario, scenario_to_yaml
from fedmobile_actors.scenario.sweep import cell_id, expand_sweep

SWEEP_TABLE = SWEEP_CSV
SWEEP_SCENARIO = "sweep.yaml"
SWEEP_FAILURES = "failures.txt"

__all__ = [
    "SWEEP_CSV",
    "SWEEP_JSON",
    "Cell",
    "RunResult",
    "SweepError",
    "create_sweep_dir",
    "plan_cells",
    "resume_sweep",
    "run_cell",
    "run_sweep",
    "worker_count",
]


class SweepError(UserError):
    """Every cell of a sweep failed because of the user's input (the first reason is given)."""


@dataclass(frozen=True)
class Cell:
    """One cell of a sweep: a (grid point, seed), its settings' id and its resolved scenario."""

    index: int
    id: str
    params: dict[str, Any]
    scenario: Scenario


@dataclass(frozen=True)
class RunResult:
    """How one cell ended: its run directory (None if it failed before one existed)."""

    index: int
    run_dir: str | None
    error: str | None = None
    node: str = ""


def plan_cells(scenario: Scenario) -> list[Cell]:
    """The sweep's cells in grid order; two grid points with the same settings are one cell."""
    cells: list[Cell] = []
    seen: set[str] = set()
    for point in expand_sweep(scenario):
        ident = cell_id(point.scenario)
        if ident not in seen:
            seen.add(ident)
            cells.append(Cell(len(cells), ident, point.params, point.scenario))
    return cells


def run_sweep(scenario: Scenario, quiet: bool = False) -> Path:
    """Run every cell of ``scenario.sweep`` into a new sweep directory; returns it."""
    cells = plan_cells(scenario)
    sweep_dir = create_sweep_dir(Path(scenario.output.dir), scenario.name)
    (sweep_dir / SWEEP_SCENARIO).write_text(scenario_to_yaml(scenario), encoding="utf-8")
    return _run(scenario, cells, sweep_dir, quiet, retry_failed=False)


def resume_sweep(
    path: str | os.PathLike[str],
    quiet: bool = False,
    retry_failed: bool = False,
    overrides: Sequence[str] = (),
) -> Path:
    """Continue the sweep in ``path``: finished cells are kept, interrupted ones resume from
    their checkpoints, the rest run; a finished sweep only rewrites its table.

    ``overrides`` may only say where to run (runtime.address, runtime.num_cpus, sweep.parallel):
    a changed setting would make other cells, which is a new sweep.
    """
    sweep_dir = Path(path)
    if not (sweep_dir / SWEEP_SCENARIO).is_file():
        raise RunDirError(f"{sweep_dir}: not a sweep directory (no {SWEEP_SCENARIO})")
    allowed = ("runtime.address=", "runtime.num_cpus=", "sweep.parallel=")
    for override in overrides:
        if not override.startswith(allowed):
            raise RunDirError(
                f"{sweep_dir}: a resumed sweep keeps its settings; cannot apply {override!r} "
                f"(only {', '.join(a.rstrip('=') for a in allowed)})"
            )
    scenario = load_scenario(sweep_dir / SWEEP_SCENARIO, list(overrides))
    return _run(scenario, plan_cells(scenario), sweep_dir, quiet, retry_failed)


def worker_count(scenario: Scenario, runs: int) -> int:
    """Cells at once: ``sweep.parallel`` if set, else the CPUs in-process, else every cell on
    Ray (Ray starts each when its resources are free)."""
    if runs <= 1:
        return 1
    cap = scenario.sweep.parallel if scenario.sweep and scenario.sweep.parallel else None
    if scenario.runtime.backend == "ray":
        return min(runs, cap or runs)
    return max(1, min(runs, cap or os.cpu_count() or 1))


def create_sweep_dir(parent: Path, name: str, when: datetime | None = None) -> Path:
    """A fresh ``<parent>/<name>-sweep-<stamp>[-N]``; ``mkdir`` is the claim, so never reused."""
    return claim_new_dir(parent, f"{name}-sweep", when)


# --------------------------------------------------------------------------------------------
# One cell
# --------------------------------------------------------------------------------------------


def run_cell(index: int, scenario: Scenario, sweep_dir: str, quiet: bool) -> RunResult:
    """Bring one cell to its end in ``<sweep_dir>/<cell id>/``: keep a finished run, resume an
    interrupted one from its latest checkpoint, else start afresh (dropping a partial run that
    has no checkpoint: it holds nothing a fresh start would not redo).

    Any exception becomes the result's one-line error, so one cell cannot stop a sweep (a
    ``UserError`` says what the user got wrong; anything else is prefixed by its type).
    Module level (not a closure) so spawned workers and Ray tasks can unpickle it.
    """
    cell_dir = Path(sweep_dir) / cell_id(scenario)
    try:
        run = latest_run(cell_dir)
        if run is not None and _status(run) == "finished":
            return RunResult(index, str(run.path))
        if run is not None and run.latest_checkpoint() is not None:
            return RunResult(index, str(resume_run(run.path, quiet=quiet).path))
        if cell_dir.is_dir():
            for partial in cell_dir.iterdir():
                if partial.is_dir():
                    shutil.rmtree(partial)
        return RunResult(index, str(run_scenario(scenario, quiet=quiet, output_dir=cell_dir).path))
    except UserError as err:
        return RunResult(index, _path_of(latest_run(cell_dir)), _one_line(err))
    except Exception as err:  # a crash in one cell is that cell's result, not the sweep's end
        return RunResult(
            index, _path_of(latest_run(cell_dir)), f"{type(err).__name__}: {_one_line(err)}"
        )


def latest_run(cell_dir: Path) -> RunDir | None:
    """The cell's newest run directory that got as far as its run.json (None if none)."""
    if not cell_dir.is_dir():
        return None
    runs = [p for p in cell_dir.iterdir() if (p / RUN_INFO).is_file()]
    return RunDir(max(runs, key=_stamp_order)) if runs else None


def _stamp_order(path: Path) -> tuple[str, int]:
    """``name-YYYYmmdd-HHMMSS[-N]`` in creation order (``-10`` after ``-9``)."""
    head, _, tail = path.name.rpartition("-")
    if tail.isascii() and tail.isdigit() and len(tail) < 6:
        return (head, int(tail))
    return (path.name, 0)


def _status(run: RunDir) -> str:
    try:
        return run.read_run_info().status
    except RunDirError:
        return "unreadable"


def _path_of(run: RunDir | None) -> str | None:
    return None if run is None else str(run.path)


def _one_line(err: BaseException) -> str:
    return " | ".join(line for line in str(err).splitlines() if line) or type(err).__name__


# --------------------------------------------------------------------------------------------
# The sweep
# --------------------------------------------------------------------------------------------


def _run(
    scenario: Scenario, cells: list[Cell], sweep_dir: Path, quiet: bool, retry_failed: bool
) -> Path:
    previous = {str(row.get("cell")): row for row in load_sweep_rows(sweep_dir)}
    results: dict[int, RunResult] = {}
    todo: list[Cell] = []
    for cell in cells:
        kept = _kept(cell, sweep_dir, previous.get(cell.id), retry_failed)
        if kept is None:
            todo.append(cell)
        else:
            results[cell.index] = kept
    if not quiet and results:
        print(f"[sweep] {len(results)}/{len(cells)} cells already done; kept", file=sys.stderr)
    try:
        for result in _run_cells(scenario, todo, sweep_dir, quiet):
            results[result.index] = result
            write_table(sweep_dir, cells, results)
    finally:
        write_table(sweep_dir, cells, results)
    finished = [
        (cell.params, {"algorithm": cell.scenario.algorithm.name, **summary})
        for cell in cells
        if (summary := _finished_summary(results.get(cell.index))) is not None
    ]
    report_sweep(sweep_dir, _summary_cells(cells, results), quiet)
    if scenario.output.plots and finished:
        from fedmobile_actors.report.plots import make_sweep_plots

        make_sweep_plots(sweep_dir, finished)
    failed = [r for r in results.values() if r.error is not None]
    if cells and len(failed) == len(cells):
        first = failed[0].error or ""
        raise SweepError(f"{sweep_dir}: all {len(cells)} runs failed; first: {first}")
    return sweep_dir


def _kept(
    cell: Cell, sweep_dir: Path, row: dict[str, Any] | None, retry_failed: bool
) -> RunResult | None:
    """A cell a resumed sweep does not run again: finished on disk, or recorded as failed
    (unless failed cells are retried). None: the cell still has to run."""
    run = latest_run(sweep_dir / cell.id)
    node = str(row.get("node") or "") if row else ""
    if run is not None and _status(run) == "finished":
        return RunResult(cell.index, str(run.path), node=node)
    if row is not None and row.get("status") == "failed" and not retry_failed:
        return RunResult(cell.index, _path_of(run), str(row.get("error") or "failed"), node)
    return None


def _run_cells(
    scenario: Scenario, cells: Sequence[Cell], sweep_dir: Path, quiet: bool
) -> Iterator[RunResult]:
    workers = worker_count(scenario, len(cells))
    if workers <= 1:
        yield from _run_sequential(cells, sweep_dir, quiet)
    elif scenario.runtime.backend == "ray":
        yield from _run_on_ray(scenario, cells, sweep_dir, workers, quiet)
    else:
        yield from _run_parallel(cells, sweep_dir, workers, quiet)


def _run_sequential(cells: Sequence[Cell], sweep_dir: Path, quiet: bool) -> Iterator[RunResult]:
    for number, cell in enumerate(cells, start=1):
        if not quiet:
            print(f"[sweep] cell {number}/{len(cells)}: {cell.scenario.name}", flush=True)
        result = run_cell(cell.index, cell.scenario, str(sweep_dir), quiet)
        if not quiet:
            print(f"[sweep] {number}/{len(cells)} cells done | {_outcome(result)}", flush=True)
        yield result


def _run_on_ray(
    scenario: Scenario, cells: Sequence[Cell], sweep_dir: Path, workers: int, quiet: bool
) -> Iterator[RunResult]:
    from fedmobile_actors.runtime.ray_sweep import run_cells

    jobs = [(cell.index, cell.scenario) for cell in cells]
    by_index = {cell.index: cell for cell in cells}
    with SweepProgress(len(cells), quiet=quiet) as progress:
        for outcome in run_cells(jobs, run_cell, (str(sweep_dir), True), scenario.runtime, workers):
            result = outcome.result
            if not isinstance(result, RunResult):
                cell_dir = sweep_dir / by_index[outcome.index].id
                result = RunResult(outcome.index, _path_of(latest_run(cell_dir)), outcome.error)
            result = RunResult(result.index, result.run_dir, result.error, outcome.node)
            name = by_index[result.index].scenario.name
            progress.run_done(name, _summary(result), failed=result.error is not None)
            yield result


def _die_with_parent() -> None:
    """A pool worker's initializer: on Linux, ask to be killed when the sweep's process dies,
    so a killed sweep leaves no orphan still writing into a cell that a resume re-runs."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        pr_set_pdeathsig = 1
        ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGKILL)


def _run_parallel(
    cells: Sequence[Cell], sweep_dir: Path, workers: int, quiet: bool
) -> Iterator[RunResult]:
    pool = ProcessPoolExecutor(
        max_workers=workers, mp_context=get_context("spawn"), initializer=_die_with_parent
    )
    by_index = {cell.index: cell for cell in cells}
    try:
        with SweepProgress(len(cells), quiet=quiet) as progress:
            pending: set[Future[RunResult]] = {
                pool.submit(run_cell, c.index, c.scenario, str(sweep_dir), True) for c in cells
            }
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in sorted(done, key=lambda f: f.result().index):
                    result = future.result()
                    name = by_index[result.index].scenario.name
                    progress.run_done(name, _summary(result), failed=result.error is not None)
                    yield result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _outcome(result: RunResult) -> str:
    if result.error is not None:
        return f"failed: {result.error}"
    summary = _summary(result)
    final = None if summary is None else summary["accuracy"]["full"]["final"]
    return "finished" if final is None else f"final accuracy {100 * final:.1f}%"


# --------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------


def sweep_rows(
    cells: Sequence[Cell], results: dict[int, RunResult], sweep_dir: Path
) -> list[dict[str, Any]]:
    """One row per cell that has a result, in grid order (report.compare.sweep_row)."""
    rows = []
    for cell in cells:
        result = results.get(cell.index)
        if result is None:
            continue
        summary = _summary(result)
        if summary is not None:
            summary = {"algorithm": cell.scenario.algorithm.name, **summary}
        run = None if result.run_dir is None else os.path.relpath(result.run_dir, sweep_dir)
        rows.append(sweep_row(cell.id, run, cell.params, summary, result.error, result.node))
    return rows


def write_table(sweep_dir: Path, cells: Sequence[Cell], results: dict[int, RunResult]) -> Path:
    """(Re)write sweep.json, sweep.csv and, if any cell failed, failures.txt.

    Rewritten after every cell, so an interrupted sweep still leaves the table of what ran.
    """
    failures = [
        f"{cells[i].scenario.name}: {r.error}" for i, r in sorted(results.items()) if r.error
    ]
    if failures:
        (sweep_dir / SWEEP_FAILURES).write_text("\n".join(failures) + "\n", encoding="utf-8")
    return write_sweep_tables(sweep_dir, sweep_rows(cells, results, sweep_dir))


def _summary(result: RunResult) -> dict[str, Any] | None:
    """The run's summary (stored if finished, recomputed otherwise); None without a run."""
    if result.run_dir is None or not (Path(result.run_dir) / SCENARIO).is_file():
        return None
    try:
        return load_summary(RunDir.open(result.run_dir))
    except RunDirError as err:
        print(f"fedmobile: warning: {err}", file=sys.stderr)
        return None


def _summary_cells(cells: Sequence[Cell], results: dict[int, RunResult]) -> list[dict[str, Any]]:
    """The cells report.sweep_summary folds over seeds: every cell with a result, a failed one
    with an empty summary marked failed so the per-setting table counts it."""
    rows = []
    for cell in cells:
        result = results.get(cell.index)
        if result is None:
            continue
        summary = _finished_summary(result)
        if summary is None:
            summary = {**summarise([], []), "status": "failed"}
        rows.append(cell_row(cell.params, {"algorithm": cell.scenario.algorithm.name, **summary}))
    return rows


def _finished_summary(result: RunResult | None) -> dict[str, Any] | None:
    if result is None or result.error is not None:
        return None
    return _summary(result)
