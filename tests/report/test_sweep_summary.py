"""sweep_summary: one row per setting, mean +- std over seeds, a table of 80 columns, a CSV."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from fedmobile_actors.report.summary import summarise
from fedmobile_actors.report.sweep_summary import (
    SWEEP_SUMMARY,
    WIDTH,
    cell_row,
    format_group_table,
    format_table,
    report_sweep,
    summarise_settings,
)


def _summary(final: float, reached_at: float | None, reported: int = 6) -> dict[str, Any]:
    """A summary of a two-round run (6 tasks dispatched, ``reported`` reported per round) whose
    accuracy ends at ``final`` at ``reached_at`` seconds."""
    rows = [
        {"round": 1, "virtual_time_s": 10.0, "accuracy_full": 0.5, "accuracy_missing": 0.5},
        {
            "round": 2,
            "virtual_time_s": reached_at or 20.0,
            "accuracy_full": final,
            "accuracy_missing": final,
        },
    ]
    for row in rows:
        row.update({name: 0 for name in ("dropped_offline", "dropped_failed", "late", "stale")})
        row.update(dispatched=6, reported=reported, rejected=0, bytes_down=0, bytes_up=0)
        row["groups"] = {
            "tier/budget": {"phones": 2, "accuracy": final - 0.1, "reported": 1},
            "tier/flagship": {"phones": 4, "accuracy": final, "reported": 2},
        }
    return {**summarise(rows, []), "status": "finished"}


def _cells() -> list[dict[str, Any]]:
    cells = []
    for seed, (a, b) in enumerate([(0.9, 0.6), (0.8, 0.7), (0.85, 0.65)]):
        cells.append(cell_row({"fleet.failure_prob": 0.0, "seed": seed}, _summary(a, 15.0 + seed)))
        cells.append(cell_row({"fleet.failure_prob": 0.5, "seed": seed}, _summary(b, None, 3)))
    return cells


def test_one_row_per_setting_with_mean_and_std_over_seeds() -> None:
    rows = summarise_settings(_cells())
    assert [r.params for r in rows] == [{"fleet.failure_prob": 0.0}, {"fleet.failure_prob": 0.5}]
    assert rows[0].runs == rows[0].finished == 3
    assert rows[0].final_accuracy_full.mean == pytest.approx(0.85)
    assert rows[0].final_accuracy_full.std == pytest.approx(0.05)
    assert rows[1].reported_share.mean == pytest.approx(0.5)


def test_time_to_target_counts_the_seeds_that_never_reach_it() -> None:
    """0.8 is reached by half the runs, so it is the common target; failure 0.5 never gets there."""
    rows = summarise_settings(_cells())
    assert rows[0].target == 0.8
    assert rows[0].time_to_target_s.mean == pytest.approx(16.0)
    assert rows[0].time_to_target_s.n == 3
    assert rows[1].time_to_target_s.n == 0
    assert "never (0/3)" in format_table(rows)[-1]


def test_tables_fit_80_columns_and_name_the_swept_values() -> None:
    rows = summarise_settings(_cells())
    lines = format_table(rows) + format_group_table(rows)
    assert max(len(line) for line in lines) <= WIDTH
    assert lines[2].startswith("failure_prob=0")
    assert any("tier/budget" in line for line in lines)


def test_report_sweep_writes_the_csv_and_prints_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report_sweep(tmp_path, _cells())
    with (tmp_path / SWEEP_SUMMARY).open() as handle:
        table = list(csv.DictReader(handle))
    assert [row["fleet.failure_prob"] for row in table] == ["0.0", "0.5"]
    assert float(table[0]["final_accuracy_full_mean"]) == pytest.approx(0.85)
    assert "mean ± std over seeds" in capsys.readouterr().out


def test_labels_too_long_for_the_table_are_numbered_and_listed_in_full() -> None:
    long = {"algorithm.name": "noise_padding", "modalities": {"missing": [{"rate": 0.5}]}}
    cells = [cell_row({**long, "seed": s}, _summary(0.9, 10.0)) for s in range(2)]
    other = {"algorithm.name": "fedmobile", "modalities": {"missing": [{"rate": 0.9}]}}
    cells += [cell_row({**other, "seed": s}, _summary(0.8, 12.0)) for s in range(2)]
    lines = format_table(summarise_settings(cells))
    assert lines[1].startswith("#1 = algorithm=noise_padding")
    assert lines[-1].startswith("#2 ")
    assert max(len(line) for line in lines) <= WIDTH
