"""Resumable sweeps and isolated failures, in-process and tiny (no Ray)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import fedmobile_actors.orchestration.sweep as sweep_module
from fedmobile_actors.cli.main import main
from fedmobile_actors.orchestration.driver import run_scenario
from fedmobile_actors.orchestration.sweep import (
    SWEEP_SCENARIO,
    plan_cells,
    resume_sweep,
    run_sweep,
)
from fedmobile_actors.report.compare import compare_runs, load_sweep_rows
from fedmobile_actors.report.run_dir import RunDir
from fedmobile_actors.scenario import Scenario, load_scenario, scenario_to_yaml

REPO = Path(__file__).resolve().parents[2]

TINY = """
name: tiny
data: {{source: {{kind: synthetic, samples: 240}}}}
fleet: {{phones: 4}}
algorithm: {{local_epochs: 1, lr: 0.05, momentum: 0.9}}
rounds: {{rounds: {rounds}, clients_per_round: 2}}
runtime: {{backend: inprocess}}
output: {{dir: {out}, checkpoint_every: 1, plots: false, event_log: false}}
sweep:
  grid:
    algorithm.lr: [0.01, 0.05]
  seeds: [0, 1]
  parallel: 1
"""

#: Columns that say when or where a cell ran, not what it computed.
NOT_RESULTS = ("run", "wall_time_s", "node")


def results(sweep_dir: Path) -> list[dict[str, Any]]:
    """The sweep table without the columns that may differ between two runs of one cell."""
    return [
        {k: v for k, v in row.items() if k not in NOT_RESULTS} for row in load_sweep_rows(sweep_dir)
    ]


def tiny(write: Callable[..., Path], out: Path, rounds: int = 3) -> Scenario:
    return load_scenario(write(TINY.format(out=out, rounds=rounds), f"{out.name}.yaml"))


def mid_run(run_json: Path) -> bool:
    """A run two or more rounds in and not finished (its run.json, read as it is rewritten)."""
    try:
        info = json.loads(run_json.read_text(encoding="utf-8"))
    except ValueError:
        return False
    return bool(info["status"] == "running" and info["rounds_done"] >= 2)


def second_cell_mid_run(parent: Path) -> Path | None:
    """The sweep directory under ``parent`` once one cell is in its table and another is two
    rounds in (None before)."""
    found = list(parent.glob("tiny-sweep-*"))
    if not found or len(load_sweep_rows(found[0])) != 1:
        return None
    return found[0] if any(mid_run(r) for r in found[0].glob("*/*/run.json")) else None


def run_dirs(sweep_dir: Path) -> list[Path]:
    return sorted(p for cell in sweep_dir.iterdir() if cell.is_dir() for p in cell.iterdir())


def test_resuming_a_finished_sweep_does_nothing(write: Callable[..., Path], tmp_path: Path) -> None:
    """Same table, same run directories, untouched metrics: nothing ran again."""
    sweep_dir = run_sweep(tiny(write, tmp_path / "out"), quiet=True)
    before = load_sweep_rows(sweep_dir)
    dirs = run_dirs(sweep_dir)
    stamps = [(d / "metrics.csv").stat().st_mtime_ns for d in dirs]
    assert resume_sweep(sweep_dir, quiet=True) == sweep_dir
    assert load_sweep_rows(sweep_dir) == before
    assert run_dirs(sweep_dir) == dirs
    assert [(d / "metrics.csv").stat().st_mtime_ns for d in dirs] == stamps


def test_an_interrupted_cell_resumes_from_its_checkpoint_to_the_same_table(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    """A sweep stopped inside its second cell (after 2 of 4 rounds) resumes that cell in its own
    run directory and runs the rest; the table equals an uninterrupted sweep's."""
    whole = run_sweep(tiny(write, tmp_path / "whole", rounds=4), quiet=True)
    scenario = tiny(write, tmp_path / "cut", rounds=4)
    cells = plan_cells(scenario)
    cut = sweep_module.create_sweep_dir(tmp_path / "cut", scenario.name)
    (cut / SWEEP_SCENARIO).write_text(scenario_to_yaml(scenario), encoding="utf-8")
    sweep_module.run_cell(0, cells[0].scenario, str(cut), True)
    stopped = run_scenario(
        cells[1].scenario, quiet=True, output_dir=cut / cells[1].id, stop_after=2
    )
    resume_sweep(cut, quiet=True)
    assert results(cut) == results(whole)
    assert [row["status"] for row in load_sweep_rows(cut)] == ["finished"] * 4
    info = RunDir.open(stopped.path).read_run_info()
    assert info.status == "finished" and len(info.resumed) == 1


def test_cli_sweep_on_a_sweep_directory_resumes_it(
    write: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`fedmobile sweep DIR` and `--resume DIR` continue; changing a setting is refused."""
    sweep_dir = run_sweep(tiny(write, tmp_path / "out"), quiet=True)
    capsys.readouterr()
    assert main(["sweep", str(sweep_dir), "-q"]) == 0
    assert main(["sweep", "--resume", str(sweep_dir), "-q", "--parallel", "2"]) == 0
    assert capsys.readouterr().out.split() == [str(sweep_dir)] * 2
    assert main(["sweep", "--resume", str(sweep_dir), "-o", "algorithm.lr=0.3"]) == 2
    err = capsys.readouterr().err
    assert "keeps its settings" in err and "Traceback" not in err


def test_a_crashing_cell_is_isolated_kept_failed_and_retried_on_request(
    write: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug (not a user error) in the lr=0.01 cells: their rows fail with the exception's type
    and message, the others finish; a resume keeps them failed; --retry-failed re-runs them."""
    real = sweep_module.run_scenario

    def crashing(scenario: Scenario, **kwargs: Any) -> RunDir:
        if scenario.algorithm.lr == 0.01:
            raise ZeroDivisionError("simulated crash")
        return real(scenario, **kwargs)

    monkeypatch.setattr(sweep_module, "run_scenario", crashing)
    sweep_dir = run_sweep(tiny(write, tmp_path / "out"), quiet=True)
    rows = load_sweep_rows(sweep_dir)
    assert [r["status"] for r in rows] == ["failed", "failed", "finished", "finished"]
    assert rows[0]["error"] == "ZeroDivisionError: simulated crash"
    assert len((sweep_dir / "failures.txt").read_text().splitlines()) == 2
    monkeypatch.setattr(sweep_module, "run_scenario", real)
    resume_sweep(sweep_dir, quiet=True)
    assert load_sweep_rows(sweep_dir) == rows
    resume_sweep(sweep_dir, quiet=True, retry_failed=True)
    assert [r["status"] for r in load_sweep_rows(sweep_dir)] == ["finished"] * 4


def test_rows_are_plain_dicts_and_compare_reads_a_sweep_directory(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    """sweep.json holds one dict per cell with the documented keys; `compare SWEEP_DIR` shows
    one column per cell; sweep.csv has the same rows."""
    sweep_dir = run_sweep(tiny(write, tmp_path / "out"), quiet=True)
    rows = load_sweep_rows(sweep_dir)
    assert list(rows[0])[:6] == ["cell", "run", "algorithm.lr", "seed", "status", "error"]
    for key in ("final_accuracy_full", "best_accuracy_missing", "bytes_up", "node"):
        assert key in rows[0]
    comparison = compare_runs([sweep_dir])
    assert len(comparison.runs) == 4
    csv_lines = (sweep_dir / "sweep.csv").read_text().splitlines()
    assert len(csv_lines) == 5 and csv_lines[0].startswith("cell,run,algorithm.lr,seed,")


@pytest.mark.integration
def test_a_sweep_whose_driver_is_killed_resumes_to_the_identical_table(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    """`fedmobile sweep` in a subprocess, SIGKILLed while its second cell is mid-run; resuming
    the directory gives the table of an uninterrupted sweep."""
    rounds = 6
    whole = run_sweep(tiny(write, tmp_path / "whole", rounds=rounds), quiet=True)
    path = write(TINY.format(out=tmp_path / "cut", rounds=rounds), "cut.yaml")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [sys.executable, "-m", "fedmobile_actors.cli", "sweep", str(path), "-q"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while (sweep_dir := second_cell_mid_run(tmp_path / "cut")) is None:
            assert time.monotonic() < deadline, "the sweep never reached its second cell"
            time.sleep(0.02)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=60)
    assert len(load_sweep_rows(sweep_dir)) < 4  # killed mid-way
    assert main(["sweep", str(sweep_dir), "-q"]) == 0
    assert results(sweep_dir) == results(whole)
