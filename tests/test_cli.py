"""The `fedmobile` command end to end: run, report, compare, and the quickstart on Ray."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fedmobile_actors.cli.main import main
from fedmobile_actors.report.run_dir import RunDir

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "scenarios" / "quickstart.yaml"


def only_run_dir(parent: Path) -> RunDir:
    (path,) = [p for p in parent.iterdir() if p.is_dir()]
    return RunDir.open(path)


@pytest.mark.integration
def test_run_report_and_compare_in_process(tmp_path: Path, capsys: Any) -> None:
    """`run` writes a complete run directory; `report` redraws it; `compare` tabulates two runs."""
    args = ["run", str(QUICKSTART), "--backend", "inprocess", "-q", "--output", str(tmp_path)]
    assert main([*args, "-o", "rounds.rounds=2", "-o", "fleet.phones=6"]) == 0
    out = capsys.readouterr().out
    assert "final accuracy (all modalities)" in out and "run directory" in out
    run = only_run_dir(tmp_path)
    assert run.read_run_info().status == "finished"
    assert [r["round"] for r in run.read_metrics()] == [1, 2]
    assert (run.plots_dir / "accuracy.png").stat().st_size > 0
    assert main(["report", str(run.path)]) == 0
    assert main(["compare", str(run.path), str(run.path)]) == 0


def test_validate_prints_every_default(capsys: Any) -> None:
    """`validate` prints the resolved scenario, defaults included."""
    assert main(["validate", str(QUICKSTART)]) == 0
    out = capsys.readouterr().out
    assert "samples_per_second" in out and "max_staleness" in out


def test_a_missing_scenario_is_one_line_and_exit_2(tmp_path: Path, capsys: Any) -> None:
    """A file that does not exist: one line naming it, exit code 2."""
    assert main(["run", str(tmp_path / "nope.yaml")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope.yaml" in err[0] and "not found" in err[0]


def test_an_impossible_shard_partition_is_one_line_and_exit_2(tmp_path: Path, capsys: Any) -> None:
    """More shards than training windows: one line naming the setting to change, exit code 2."""
    args = ["run", str(QUICKSTART), "--backend", "inprocess", "-q", "--output", str(tmp_path)]
    overrides = ["-o", "data.partition.kind=shards", "-o", "data.partition.shards_per_phone=5000"]
    assert main([*args, *overrides]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "shards_per_phone" in err[0]


@pytest.mark.integration
def test_quickstart_on_ray_learns_and_repeats_itself(
    ray_session: Any, tmp_path: Path, capsys: Any
) -> None:
    """The quickstart through Ray (shortened to 6 rounds): above chance, and identical twice."""
    rows = []
    for attempt in ("a", "b"):
        out = tmp_path / attempt
        args = ["run", str(QUICKSTART), "-q", "--output", str(out), "-o", "rounds.rounds=6"]
        assert main([*args, "-o", "output.plots=false"]) == 0
        run = only_run_dir(out)
        assert run.read_run_info().backend == "ray"
        rows.append(
            [{k: v for k, v in r.items() if k != "wall_time_s"} for r in run.read_metrics()]
        )
    assert rows[0] == rows[1]
    assert rows[0][-1]["accuracy_full"] > 2 / 6  # six classes: chance is 1/6


@pytest.mark.slow
@pytest.mark.integration
def test_full_quickstart_reaches_clearly_above_chance(tmp_path: Path) -> None:
    """The full 20-round quickstart (about a minute): final accuracy well above chance."""
    assert main(["run", str(QUICKSTART), "-q", "--output", str(tmp_path)]) == 0
    summary = json.loads((only_run_dir(tmp_path).summary_path).read_text())
    assert summary["accuracy"]["full"]["final"] > 0.6
