"""benchmarks/usc_had_grid.py: cells run once, records append, a rerun skips what is done; and
benchmarks/usc_had_report.py turns the records into a table and plots."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from benchmarks.usc_had_grid import GridCell, load_records, parse_variant, run_grid
from benchmarks.usc_had_report import (
    dips_and_range,
    groups,
    headroom,
    plot,
    swings,
    table,
    versus,
    write_between_markers,
)

STAND_IN = """
name: grid_stand_in
data:
  source:
    kind: synthetic
    num_classes: 3
    samples: 200
    modalities:
      - {name: acc, channels: 3, steps: 16}
      - {name: gyro, channels: 3, steps: 16}
  partition: {kind: iid}
  proxy_fraction: 0.2
fleet: {phones: 3}
model: {conv_channels: [4], kernel_size: 3}
algorithm: {name: fedavg, local_epochs: 1}
rounds: {policy: deadline, rounds: 3, clients_per_round: 3, deadline_s: 600}
"""

SETTINGS = {"tiny": ("rounds.rounds=2",)}
VARIANTS = {
    "fedavg": ("fedavg", ()),
    "xmodal": ("fedmobile_xmodal", ("algorithm.fedmobile.clusters=2",)),
}


@pytest.fixture()
def scenario(tmp_path: Path) -> str:
    path = tmp_path / "stand_in.yaml"
    path.write_text(textwrap.dedent(STAND_IN))
    return str(path)


def cells(seeds: tuple[int, ...]) -> list[GridCell]:
    return [
        GridCell("tiny", name, VARIANTS[name][0], 0.8, seed) for name in VARIANTS for seed in seeds
    ]


def test_grid_appends_one_record_per_cell_and_a_rerun_skips_them(
    scenario: str, tmp_path: Path
) -> None:
    results = tmp_path / "results.json"
    assert run_grid(cells((0,)), results, scenario, "acc", VARIANTS, SETTINGS) == 2
    first = load_records(results)
    assert [(r["variant"], r["seed"], r["rounds"]) for r in first] == [
        ("fedavg", 0, 2),
        ("xmodal", 0, 2),
    ]
    record = first[1]
    assert 0 <= record["accuracy_missing"] <= 1 and 0 <= record["val_accuracy_missing"] <= 1
    assert len(record["curves"]["missing"]) == 2
    assert "algorithm.fedmobile.clusters=2" in record["overrides"]
    # A rerun with one more seed runs only the new cells and keeps the old records as they were.
    assert run_grid(cells((0, 1)), results, scenario, "acc", VARIANTS, SETTINGS) == 2
    again = load_records(results)
    assert again[:2] == first and len(again) == 4
    json.loads(results.read_text())  # still one valid JSON document


def cell_record(variant: str, seed: int = 0, rate: float = 0.8, **fields: object) -> dict:
    """A grid record of the "tiny" setting as the report reads it, with ``fields`` beside the
    cell's key."""
    return {"setting": "tiny", "variant": variant, "rate": rate, "seed": seed, **fields}


def test_report_table_and_plots_from_records(tmp_path: Path) -> None:
    def record(variant: str, seed: int, acc: float) -> dict[str, object]:
        return cell_record(
            variant,
            seed,
            accuracy_missing=acc,
            accuracy_full=acc + 0.1,
            last3_missing=acc - 0.05,
            val_accuracy_missing=acc,
            val_accuracy_full=None,
            round_to_round_std_missing=None,
            curves={"missing": [acc - 0.1, acc]},
        )

    records = [record("a", 0, 0.5), record("a", 1, 0.7), record("b", 0, 0.6)]
    by_cell = groups(records, "tiny")
    text = table(by_cell)
    assert "| a | 0.8 | 0,1 | 60.0 ± 10.0 | 70.0 ± 10.0 | 55.0 ± 10.0 | 60.0 ± 10.0 | - |" in text
    written = plot(by_cell, "tiny", tmp_path)
    assert [p.name for p in written] == ["usc_had_tiny_rate0.8.png"]
    doc = tmp_path / "doc.md"
    doc.write_text("before\n<!-- grid:tiny:begin -->\nold\n<!-- grid:tiny:end -->\nafter\n")
    write_between_markers(doc, "tiny", text)
    assert "old" not in doc.read_text() and text in doc.read_text()


def test_headroom_table_sets_each_missing_path_beside_the_one_modality_model(
    tmp_path: Path,
) -> None:
    def record(variant: str, rate: float, acc: float) -> dict[str, object]:
        return cell_record(
            variant,
            rate=rate,
            accuracy_missing=acc,
            val_accuracy_missing=acc - 0.01,
            accuracy_full=None,
            last3_missing=None,
            val_accuracy_full=None,
            round_to_round_std_missing=None,
        )

    records = [
        record("fedavg", 0.8, 0.69),
        record("fedavg_tested_without_acc", 0.8, 0.66),
        record("fedavg", 1.0, 0.67),
    ]
    by_cell = groups(records, "tiny")
    room = headroom(by_cell)
    # One seed is printed as one value: a "± 0.0" would read as a spread measured.
    assert "| every window (rate 1) | fedavg | 0 | 67.0 | 66.0 |" in room
    assert "| 0.8 | fedavg | 0 | 66.0 | 65.0 |" in room
    # The rows tested without acc are not in the main table; nothing to say without them.
    assert "tested_without_acc" not in table(by_cell)
    assert headroom(groups(records[:1], "tiny")) == ""
    doc = tmp_path / "doc.md"
    doc.write_text("<!-- grid:tiny:headroom:begin -->\nold\n<!-- grid:tiny:headroom:end -->\n")
    write_between_markers(doc, "tiny", room, "headroom")
    assert room in doc.read_text() and "old" not in doc.read_text()


def test_variant_spec_from_the_command_line() -> None:
    assert parse_variant("ema=fedmobile:a.b=1;c=2") == ("ema", ("fedmobile", ("a.b=1", "c=2")))


def test_a_cut_cell_resumes_in_its_run_directory(
    scenario: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With a runs directory a cell checkpoints; cut after round 1, the grid resumes it there
    instead of starting over, and its record has the curves an uncut run gives."""
    from benchmarks.usc_had_grid import cell_overrides
    from fedmobile_actors.orchestration.driver import run_scenario
    from fedmobile_actors.scenario import load_scenario

    (cell,) = cells((0,))[:1]
    overrides = cell_overrides(cell, SETTINGS["tiny"], VARIANTS["fedavg"][1], "acc")
    runs = tmp_path / "runs"
    managed = [*overrides, f"name={cell.name}", "output.checkpoint_every=1"]
    run_scenario(load_scenario(scenario, managed), quiet=True, output_dir=runs, stop_after=1)
    uncut = tmp_path / "uncut.json"
    run_grid([cell], uncut, scenario, "acc", VARIANTS, SETTINGS)
    resumed = tmp_path / "resumed.json"
    run_grid([cell], resumed, scenario, "acc", VARIANTS, SETTINGS, runs, checkpoint_every=1)
    assert "resuming" in capsys.readouterr().err
    (a,), (b,) = load_records(uncut), load_records(resumed)
    assert b["curves"] == a["curves"] and b["rounds"] == a["rounds"] == 2
    assert b["overrides"] == a["overrides"]  # run management is not part of the cell
    (run_dir,) = runs.glob(f"{cell.name}-*")
    assert not (run_dir / "checkpoints").exists()


def test_versus_pairs_each_variant_with_fedavg_by_seed() -> None:
    def record(variant: str, seed: int, acc: float, val: float | None) -> dict[str, object]:
        return cell_record(
            variant,
            seed,
            accuracy_missing=acc,
            accuracy_full=acc + 0.1,
            last3_missing=acc,
            val_accuracy_missing=val,
        )

    records = [
        record("fedavg", 0, 0.70, 0.7),
        record("fedavg", 1, 0.60, 0.6),
        record("fedavg", 2, 0.65, None),
        record("fill", 0, 0.72, 0.7),
        record("fill", 1, 0.58, 0.6),
        record("fill", 3, 0.99, 0.9),  # no FedAvg seed 3: left out of the pairs
        record("alone", 0, 0.5, 0.5),
    ]
    text = versus(groups(records, "tiny"))
    # Differences per seed +2 and -2 points: mean 0, spread 2; ahead on one of the two seeds.
    assert "| fill | 0.8 | 0,1 | +0.0 ± 2.0 | +0.0 ± 2.0 | +0.0 ± 2.0 | +0.0 ± 0.0 | 1/2 |" in text
    assert "| alone | 0.8 | 0 | -20.0 | -20.0 | -20.0 | -20.0 | 0/1 |" in text
    assert "| fedavg |" not in text
    # A difference that rounds to zero is "+0.0", never "-0.0".
    tiny_loss = [*records[:2], record("fill", 0, 0.6999, 0.7), record("fill", 1, 0.6, 0.6)]
    assert "| fill | 0.8 | 0,1 | +0.0 ± 0.0 |" in versus(groups(tiny_loss, "tiny"))
    # Without FedAvg at the rate there is nothing to pair.
    assert versus(groups(records[3:], "tiny")) == ""


def test_swings_count_dips_of_the_second_half_with_and_without_the_fill() -> None:
    # Second half of 10 rounds: 0.80 0.70 0.80 0.79 0.80: one dip of 10 points, range 10.
    steady = [0.5, 0.6, 0.7, 0.75, 0.78, 0.80, 0.70, 0.80, 0.79, 0.80]
    assert dips_and_range(steady) == (1, pytest.approx(10.0))
    assert dips_and_range([0.5, None, 0.6]) is None  # too short to have a neighbour on each side
    record = cell_record("fill", curves={"full": [0.8] * 10, "missing": steady})
    text = swings(groups([record], "tiny"))
    assert "| fill | 0.8 | 0 | 0.0 (0) | 1.0 (1) | 0.0 | 10.0 |" in text


def test_swing_analysis_reads_the_weighting_and_the_dips() -> None:
    from benchmarks.usc_had_swings import analyse, weighting

    rounds = 8
    full = [0.8, 0.8, 0.8, 0.8, 0.8, 0.6, 0.8, 0.8]  # round 6 dips 20 points
    record = {
        "curves": {"full": full, "missing": [0.7] * rounds},
        "fill_error": [0.5 + 0.01 * t for t in range(rounds)],
        "shapley_weights": [[0.5, 0.5]] * 4 + [[1.0, 0.0], [0.5, 0.5], [0.0, 1.0], [0.5, 0.5]],
        "cluster_sizes": [[1, 3]] * rounds,
    }
    single, tv = weighting(record)
    assert single[4] == 1.0 and tv[4] == pytest.approx(0.75)  # all weight on the lone phone
    result = analyse(record)
    # The dip at index 5 follows the round whose weight went wholly to the single phone.
    assert result["single_before_dips"] == [1.0]
    assert -1.0 <= result["r_single"] <= 1.0
