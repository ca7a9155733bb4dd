"""Checkpoints and resume: a run killed mid-way and resumed ends with the uninterrupted metrics."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from fedmobile_actors.cli.main import main
from fedmobile_actors.orchestration.driver import run_scenario
from fedmobile_actors.report.run_dir import RunDir
from fedmobile_actors.scenario import load_scenario

TINY = {
    "name": "resumable",
    "seed": 11,
    "data": {"source": {"kind": "synthetic", "samples": 600, "num_classes": 4}},
    "fleet": {"phones": 6, "failure_prob": 0.1},
    "modalities": {"missing": [{"modality": "acc", "rate": 0.5}]},
    "model": {"conv_channels": [8]},
    "algorithm": {"lr": 0.05, "momentum": 0.9},
    "rounds": {"rounds": 12, "clients_per_round": 3, "overcommit": 1.5},
    "runtime": {"backend": "inprocess"},
    "output": {"checkpoint_every": 2, "plots": False},
}


def comparable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "wall_time_s"} for r in rows]


@pytest.fixture
def scenario_file(tmp_path: Path) -> Path:
    path = tmp_path / "resumable.yaml"
    path.write_text(yaml.safe_dump(TINY), encoding="utf-8")
    return path


@pytest.mark.integration
def test_killed_and_resumed_run_equals_uninterrupted_run(
    scenario_file: Path, tmp_path: Path
) -> None:
    """SIGKILL a real `fedmobile run` after a few rounds, resume it, compare every metric."""
    reference = run_scenario(load_scenario(scenario_file), quiet=True, output_dir=tmp_path / "ref")
    out = tmp_path / "killed"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fedmobile_actors.cli",
            "run",
            str(scenario_file),
            "-q",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    rows = 0
    while time.monotonic() < deadline and proc.poll() is None:
        metrics = list(out.glob("*/metrics.jsonl"))
        rows = len(metrics[0].read_text().splitlines()) if metrics else 0
        if rows >= 5:
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 5 <= rows < 12, f"the run was not caught mid-way ({rows} rounds)"
    (run_path,) = out.iterdir()
    assert json.loads((run_path / "run.json").read_text())["status"] == "running"

    assert main(["resume", str(run_path), "-q"]) == 0
    resumed = RunDir.open(run_path)
    assert resumed.read_run_info().status == "finished"
    assert comparable(resumed.read_metrics()) == comparable(reference.read_metrics())
    assert len(resumed.read_events()) == len(reference.read_events())


def test_resume_refuses_a_finished_run(scenario_file: Path, tmp_path: Path, capsys: Any) -> None:
    """A finished run is not resumed: one line, exit 2."""
    run = run_scenario(
        load_scenario(scenario_file, ["rounds.rounds=2"]), quiet=True, output_dir=tmp_path
    )
    assert main(["resume", str(run.path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already finished" in err[0]


def test_resume_names_a_corrupt_checkpoint(
    scenario_file: Path, tmp_path: Path, capsys: Any
) -> None:
    """A damaged checkpoint is named in a one-line error and nothing is written."""
    run = run_scenario(load_scenario(scenario_file), quiet=True, output_dir=tmp_path, stop_after=4)
    ckpt = run.latest_checkpoint()
    assert ckpt is not None
    ckpt[1].write_bytes(b"\x93not a checkpoint")
    before = run.metrics_jsonl.read_bytes()
    assert main(["resume", str(run.path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "checkpoint" in err[0]
    assert run.metrics_jsonl.read_bytes() == before


def test_resume_of_a_directory_that_is_not_a_run(tmp_path: Path, capsys: Any) -> None:
    """A plain directory gets a one-line error naming what is missing."""
    assert main(["resume", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(tmp_path) in err[0]


def test_run_json_records_the_arithmetic_and_resume_names_a_change(
    scenario_file: Path, tmp_path: Path, capsys: Any
) -> None:
    """run.json holds the CPU and builds the run started on; resuming on other ones still
    continues (same metrics here, the facts are only relabelled) but says in one line which
    facts changed; on the same ones it says nothing."""
    from fedmobile_actors.orchestration.arithmetic import KEYS, arithmetic_platform
    from fedmobile_actors.orchestration.driver import resume_run

    run = run_scenario(load_scenario(scenario_file), quiet=True, output_dir=tmp_path, stop_after=4)
    info = json.loads(run.run_info_path.read_text())
    assert info["platform"] == arithmetic_platform()
    assert list(info["platform"]) == list(KEYS)
    capsys.readouterr()
    info["platform"] = {**info["platform"], "cpu_capability": "AVX512", "torch": "0.0.1"}
    run.run_info_path.write_text(json.dumps(info))
    resumed = resume_run(run.path, quiet=True)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "cpu_capability: AVX512 -> " in err[0] and "torch: 0.0.1 -> " in err[0]
    assert "rounds after 4 may differ" in err[0] and "cpu:" not in err[0]
    # The run keeps the facts it started with.
    assert resumed.read_run_info().platform == info["platform"]

    again = run_scenario(load_scenario(scenario_file), quiet=True, output_dir=tmp_path / "b",
                         stop_after=4)  # fmt: skip
    capsys.readouterr()
    resume_run(again.path, quiet=True)
    assert capsys.readouterr().err == ""
