"""Each small bundled scenario runs two rounds in-process through the CLI and writes its run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from scenario_helpers import SCENARIOS, SMALL_SCENARIOS

from fedmobile_actors.cli.main import main


def _run_two_rounds(name: str, out: Path, *overrides: str) -> Path:
    code = main(
        [
            "run",
            str(SCENARIOS / f"{name}.yaml"),
            "-q",
            "--backend",
            "inprocess",
            "-o",
            "rounds.rounds=2",
            "-o",
            "output.plots=false",
            *(arg for o in overrides for arg in ("-o", o)),
            "--output",
            str(out),
        ]
    )
    assert code == 0
    [run_dir] = [p for p in out.iterdir() if p.is_dir()]
    return run_dir


@pytest.mark.filterwarnings("ignore:.*missing on every phone")
@pytest.mark.parametrize("name", SMALL_SCENARIOS)
def test_small_scenario_runs_two_rounds_in_process(name: str, tmp_path: Path) -> None:
    """fedmobile run <scenario> --backend inprocess -o rounds.rounds=2: a finished run dir."""
    run_dir = _run_two_rounds(name, tmp_path)
    assert json.loads((run_dir / "run.json").read_text())["status"] == "finished"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["rounds"] == 2
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 2


@pytest.mark.skipif(
    not os.environ.get("FEDMOBILE_USC_HAD"), reason="needs the USC-HAD dataset (FEDMOBILE_USC_HAD)"
)
def test_usc_had_paper_runs_two_rounds(tmp_path: Path) -> None:
    """With the dataset present, the paper's scenario runs two rounds in-process."""
    run_dir = _run_two_rounds("usc_had_paper", tmp_path)
    assert json.loads((run_dir / "summary.json").read_text())["rounds"] == 2


@pytest.mark.integration
def test_fleet_500_runs_two_rounds(tmp_path: Path) -> None:
    """500 phones, two rounds, in-process (its Dirichlet partition of 30000 windows succeeds)."""
    run_dir = _run_two_rounds("fleet_500", tmp_path)
    assert json.loads((run_dir / "summary.json").read_text())["rounds"] == 2


def test_modality_absent_says_gyro_cannot_be_learned(tmp_path: Path) -> None:
    """The scenario's promise: a run warns that gyro is missing everywhere and is zero-filled."""
    with pytest.warns(Warning, match="gyro.*missing on every phone"):
        _run_two_rounds("modality_absent", tmp_path)


def test_modality_absent_under_fedavg_speaks_of_no_generator(tmp_path: Path) -> None:
    """FedAvg has no generator: the one warning says what the data lacks, nothing about
    generators or fills (it once said "no generator can learn it" whatever the strategy)."""
    with pytest.warns(Warning) as caught:
        _run_two_rounds("modality_absent", tmp_path, "algorithm.name=fedavg")
    # Distinct messages: each world in the process computes it, and Python shows a repeated
    # warning once outside pytest.warns.
    said = {str(w.message) for w in caught if "missing on every phone" in str(w.message)}
    assert said == {"modality 'gyro' is missing on every phone: no phone has real data for it"}
