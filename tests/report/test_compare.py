"""compare: runs of different lengths aligned figure by figure; CSV and terminal output."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from fedmobile_actors.report.compare import (
    compare,
    compare_runs,
    sweep_table,
    write_csv,
    write_sweep_table,
)
from fedmobile_actors.report.run_dir import RunDir
from fedmobile_actors.report.summary import summarise_run, write_summary
from fedmobile_actors.scenario import Scenario, scenario_to_yaml


def test_runs_of_different_lengths_are_aligned_on_their_common_round(
    make_run: Callable[..., RunDir],
) -> None:
    long_run = make_run(rounds=5, algorithm="fedmobile")
    short_run = make_run(rounds=2, algorithm="fedavg", status="failed")
    table = compare([long_run, short_run])
    assert table.runs == (long_run.name, short_run.name)
    assert table.row("common_round") == (2, 2)
    assert table.row("accuracy_full_at_common_round") == (0.54, 0.54)
    assert table.row("rounds") == (5, 2)
    assert table.row("final_accuracy_full") == (0.9, 0.54)
    assert table.row("time_to_0.5_full_s") == (200.0, 200.0)
    assert table.row("time_to_0.9_full_s") == (500.0, None)
    assert table.column(short_run.name)["status"] == "failed"
    assert table.row("algorithm") == ("fedmobile", "fedavg")


def test_common_round_falls_back_to_the_last_evaluated_round(
    make_run: Callable[..., RunDir],
) -> None:
    table = compare([make_run(rounds=3), make_run(rounds=5)])  # round 3 is not evaluated
    assert table.row("common_round") == (3, 3)
    assert table.row("accuracy_full_at_common_round") == (0.54, 0.54)


def test_a_finished_run_is_compared_on_its_stored_summary(make_run: Callable[..., RunDir]) -> None:
    run = make_run(rounds=4)
    stored = write_summary(run)
    stored["totals"]["reported"] = 999  # a stored summary is trusted, not recomputed
    run.write_summary(stored)
    assert compare([run]).row("reported") == (999,)


def test_write_csv_keeps_figures_as_rows(tmp_path: Path, make_run: Callable[..., RunDir]) -> None:
    a, b = make_run(rounds=5), make_run(rounds=2)
    table = compare([a, b])
    with write_csv(table, tmp_path / "cmp.csv").open() as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["figure", a.name, b.name]
    assert ["time_to_0.9_full_s", "500.0", ""] in rows
    assert len(rows) == 1 + len(table.figures)


def test_compare_runs_prints_a_table_naming_each_run(make_run: Callable[..., RunDir]) -> None:
    a, b = make_run(rounds=3), make_run(rounds=4)
    out = io.StringIO()
    table = compare_runs([a.path, b.path], console=Console(file=out, width=200))
    text = out.getvalue()
    assert a.name in text and b.name in text
    assert "54.00%" in text and "final_accuracy_full" in text
    assert table.runs == (a.name, b.name)


def test_sweep_table_has_one_row_per_run(tmp_path: Path, make_run: Callable[..., RunDir]) -> None:
    rows = [({"rounds.overcommit": oc}, summarise_run(make_run(rounds=3))) for oc in (1.0, 2.0)]
    header, table = sweep_table(rows)
    assert header[:3] == ["run", "rounds.overcommit", "status"]
    assert [r[1] for r in table] == [1.0, 2.0]
    with write_sweep_table(tmp_path / "sweep.csv", rows).open() as handle:
        assert len(list(csv.reader(handle))) == 3


def _with_scenario(run: RunDir, **fleet: object) -> RunDir:
    scenario = Scenario.model_validate({"name": run.name, "fleet": fleet})
    run.scenario_path.write_text(scenario_to_yaml(scenario), encoding="utf-8")
    return run


def test_settings_that_differ_come_first(make_run: Callable[..., RunDir]) -> None:
    a = _with_scenario(make_run(), phones=12)
    b = _with_scenario(make_run(), phones=50, availability={"model": "markov"})
    table = compare([a, b])
    assert table.figures[:2] == ("setting fleet.phones", "setting fleet.availability")
    assert table.row("setting fleet.phones") == (12, 50)
    assert table.row("setting fleet.availability") == (
        "always",
        "markov(mean_on_s=600, mean_off_s=300)",
    )


def test_the_comparison_fits_80_columns(make_run: Callable[..., RunDir]) -> None:
    a = _with_scenario(make_run(), phones=12)
    b = _with_scenario(make_run(), phones=50)
    out = io.StringIO()
    compare_runs([a.path, b.path], console=Console(file=out, width=80))
    lines = out.getvalue().splitlines()
    assert max(len(line) for line in lines) <= 80
    assert lines[0].startswith("run 1: ") and "fleet.phones" in out.getvalue()


def test_an_old_run_with_a_removed_field_still_shows_its_differences(
    make_run: Callable[..., RunDir],
) -> None:
    a = _with_scenario(make_run(), phones=12)
    b = _with_scenario(make_run(), phones=50)
    # As an older version wrote it: a field this version no longer has.
    text = b.scenario_path.read_text(encoding="utf-8")
    b.scenario_path.write_text(text + "retired_field: 3\n", encoding="utf-8")
    table = compare([a, b])
    assert table.row("setting fleet.phones") == (12, 50)
    assert table.row("setting retired_field") == (None, 3)


def test_a_list_setting_is_printed_not_read_as_markup(make_run: Callable[..., RunDir]) -> None:
    a = _with_scenario(make_run(), phones=12)
    b = _with_scenario(make_run(), phones=12)
    text = b.scenario_path.read_text(encoding="utf-8")
    b.scenario_path.write_text(
        text.replace("  missing: []", "  missing:\n  - {modality: acc, rate: 0.8}"),
        encoding="utf-8",
    )
    out = io.StringIO()
    compare_runs([a.path, b.path], console=Console(file=out, width=200))
    assert "modality=acc" in out.getvalue()


def test_the_per_phone_evaluation_is_compared_when_a_run_measured_it(
    make_run: Callable[..., RunDir],
) -> None:
    plain, authors = make_run(rounds=3), make_run(rounds=3)
    stored = write_summary(authors)
    stored["accuracy"]["per_phone"] = {**stored["accuracy"]["full"], "final": 0.61, "best": 0.7}
    authors.write_summary(stored)
    table = compare([plain, authors])
    assert table.row("final_accuracy_per_phone") == (None, 0.61)
    assert table.row("best_accuracy_per_phone") == (None, 0.7)
