"""scenarios/usc_had_authors.yaml end to end: on a tiny release written by the test, and (slow)
on the real release when this machine has it."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
from test_usc_had import REAL, write_release  # type: ignore[import-not-found]

from fedmobile_actors.cli.main import main
from fedmobile_actors.orchestration.driver import run_scenario
from fedmobile_actors.scenario import load_scenario

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "usc_had_authors.yaml"


def small(release: Path, cache: Path, *extra: str) -> list[str]:
    """The bundled scenario shrunk to 3 subjects, windows of 8, 2 rounds, a 16-wide generator."""
    return [
        f"data.source.path={release}",
        f"data.source.cache_dir={cache}",
        "data.source.window=8",
        "data.source.stride=4",
        "data.source.subjects=[1, 2, 3]",
        "data.proxy_fraction=0.3",
        "fleet.phones=3",
        "rounds.rounds=2",
        "rounds.clients_per_round=3",
        "algorithm.fedmobile_authors.generator_hidden=16",
        "runtime.backend=inprocess",
        "output.plots=false",
        *extra,
    ]


def test_bundled_scenario_validates(capsys: pytest.CaptureFixture[str]) -> None:
    """`fedmobile validate` passes without the data (the data is read only by a run)."""
    assert main(["validate", str(SCENARIO)]) == 0
    assert "valid" in capsys.readouterr().out


@pytest.mark.parametrize("split", ["validation", "test_leaky"])
def test_runs_end_to_end_on_a_tiny_release(tmp_path: Path, split: str) -> None:
    release = write_release(tmp_path / "usc")
    overrides = small(
        release, tmp_path / "cache", f"algorithm.fedmobile_authors.selection_split={split}"
    )
    run = run_scenario(load_scenario(SCENARIO, overrides), quiet=True, output_dir=tmp_path / "runs")
    rows = run.read_metrics()
    assert [r["round"] for r in rows] == [1, 2]
    assert all(0.0 <= r["accuracy_per_phone"] <= 1.0 for r in rows)
    assert all(r["reported"] == 3 for r in rows)


def _real() -> Path | None:
    env = os.environ.get("FEDMOBILE_USC_HAD")
    if env and Path(env).is_dir():
        return Path(env)
    return REAL if REAL.is_dir() else None


@pytest.mark.slow
@pytest.mark.skipif(_real() is None, reason="USC-HAD not present (../shared or env var)")
def test_one_round_on_the_real_release(tmp_path: Path) -> None:
    """The scenario as shipped (the authors' 6336-wide generator) for one round on USC-HAD."""
    overrides = [
        f"data.source.path={_real()}",
        "rounds.rounds=1",
        "runtime.backend=inprocess",
        "output.plots=false",
        "output.checkpoint_every=0",
    ]
    run = run_scenario(load_scenario(SCENARIO, overrides), quiet=True, output_dir=tmp_path / "runs")
    (row,) = run.read_metrics()
    assert row["reported"] == 10
    assert not math.isnan(row["accuracy_per_phone"])
    # The payload holds the 161 MB generator for each of the 10 phones.
    assert row["bytes_down"] > 10 * 160_000_000
