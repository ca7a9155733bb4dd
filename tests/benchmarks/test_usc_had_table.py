"""benchmarks/usc_had_table.py on a tiny synthetic stand-in, and the paper scenario on real data."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from benchmarks.usc_had_table import (
    Cell,
    TableSetting,
    format_table,
    overrides_for,
    run_table,
    summarise,
)

REPO = Path(__file__).resolve().parents[2]

#: The paper scenario's shape (natural partition, one modality missing at a rate, FedMobile's
#: proxy set) on the embedded synthetic data, small enough for a unit test.
STAND_IN = """
name: usc_had_stand_in
seed: 0
data:
  source:
    kind: synthetic
    num_classes: 3
    samples: 240
    modalities:
      - {name: acc, channels: 3, steps: 16}
      - {name: gyro, channels: 3, steps: 16}
  partition: {kind: iid}
  proxy_fraction: 0.2
fleet: {phones: 3}
modalities:
  missing:
    - {modality: acc, rate: 0.8}
  test_missing: {acc: 0.8}
model: {conv_channels: [4], kernel_size: 3}
algorithm:
  name: fedmobile
  local_epochs: 1
  fedmobile: {probe_size: 12, generator_steps: 2, clusters: 2}
rounds: {policy: deadline, rounds: 5, clients_per_round: 3, deadline_s: 600}
runtime: {backend: ray}
"""


@pytest.fixture()
def stand_in(tmp_path: Path) -> TableSetting:
    path = tmp_path / "stand_in.yaml"
    path.write_text(textwrap.dedent(STAND_IN))
    return TableSetting(
        scenario=str(path),
        rounds=1,
        algorithms=("fedavg", "fedmobile"),
        missing_rates=(0.5, 0.9),
        seeds=(0, 1),
    )


def test_overrides_set_the_cells_algorithm_rate_seed_and_the_shrinking_knobs() -> None:
    setting = TableSetting(rounds=4, stride=100, conv_channels=(16, 32), local_epochs=1)
    out = overrides_for(setting, Cell("fedprox", 0.9, 2))
    assert "algorithm.name=fedprox" in out and "seed=2" in out
    assert "modalities.missing=[{modality: acc, rate: 0.9}]" in out
    assert "modalities.test_missing={acc: 0.9}" in out
    assert "runtime.backend=inprocess" in out and "rounds.rounds=4" in out
    assert "data.source.stride=100" in out and "model.conv_channels=[16, 32]" in out


def test_grid_runs_through_the_driver_and_the_table_summarises_every_cell(
    stand_in: TableSetting, tmp_path: Path
) -> None:
    results = run_table(stand_in, jobs=1, output_dir=str(tmp_path / "runs"))
    assert [(r.cell.algorithm, r.cell.missing_rate, r.cell.seed) for r in results] == [
        (a, x, s) for a in ("fedavg", "fedmobile") for x in (0.5, 0.9) for s in (0, 1)
    ]
    assert all(r.rounds == 1 and 0 <= r.accuracy_missing <= 1 for r in results)
    assert all(0 <= r.accuracy_full <= 1 for r in results)
    # Seeds differ, so the two runs of a cell are not copies of one another.
    assert results[0].accuracy_full != results[1].accuracy_full or (
        results[0].accuracy_missing != results[1].accuracy_missing
    )
    rows = summarise(results)
    assert len(rows) == 4 and all(r.seeds == (0, 1) for r in rows)
    assert rows[0].full_mean == pytest.approx(
        (results[0].accuracy_full + results[1].accuracy_full) / 2
    )
    table = format_table(rows)
    assert "| fedmobile |" in table and "rate 0.9: missing / full" in table


def _real_data() -> Path | None:
    env = os.environ.get("FEDMOBILE_USC_HAD")
    for candidate in (Path(env) if env else None, REPO.parent / "shared" / "data" / "USC-HAD"):
        if candidate is not None and candidate.is_dir():
            return candidate
    return None


@pytest.mark.slow
@pytest.mark.skipif(_real_data() is None, reason="USC-HAD not present (set FEDMOBILE_USC_HAD)")
def test_paper_scenario_runs_one_round_in_process_on_the_real_data(tmp_path: Path) -> None:
    """scenarios/usc_had_paper.yaml end to end (one round): data, fleet, FedMobile, metrics."""
    from fedmobile_actors.orchestration.driver import run_scenario
    from fedmobile_actors.scenario import load_scenario

    scenario = load_scenario(
        REPO / "scenarios" / "usc_had_paper.yaml",
        [
            f"data.source.path={_real_data()}",
            "runtime.backend=inprocess",
            "rounds.rounds=1",
            "output.plots=false",
        ],
    )
    rows = run_scenario(scenario, quiet=True, output_dir=tmp_path).read_metrics()
    assert len(rows) == 1 and rows[0]["reported"] == 10
    # Twelve activities: one round of FedMobile is already well above chance (1/12).
    assert rows[0]["accuracy_full"] > 0.2 and rows[0]["accuracy_missing"] > 0.2
    assert rows[0]["clusters"] >= 1
