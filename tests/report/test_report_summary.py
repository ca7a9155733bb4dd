"""summary.json: final and best accuracy, time-to-target in virtual time, totals."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import pytest

from fedmobile_actors.report.run_dir import RunDir
from fedmobile_actors.report.summary import load_summary, summarise, write_summary

NAN = math.nan


def rows(accuracies: list[float], step_s: float = 10.0) -> list[dict[str, Any]]:
    """Hand-made metrics rows: round r at virtual time r * step_s, one report each."""
    return [
        {
            "round": r,
            "virtual_time_s": r * step_s,
            "wall_time_s": r * 0.1,
            "accuracy_full": acc,
            "accuracy_missing": acc - 0.2 if not math.isnan(acc) else NAN,
            "loss": 1.0,
            "dispatched": 3,
            "reported": 1,
            "dropped_offline": 1,
            "dropped_failed": 0,
            "late": 1,
            "stale": 0,
            "rejected": 0,
            "bytes_down": 300,
            "bytes_up": 100,
        }
        for r, acc in enumerate(accuracies, start=1)
    ]


def test_time_to_target_is_the_first_evaluated_round_reaching_it() -> None:
    summary = summarise(rows([0.4, NAN, 0.65, 0.55, 0.82]), [])
    targets = summary["accuracy"]["full"]["targets"]
    assert targets["0.5"] == {"round": 3, "virtual_time_s": 30.0}
    assert targets["0.6"] == {"round": 3, "virtual_time_s": 30.0}
    assert targets["0.7"] == {"round": 5, "virtual_time_s": 50.0}
    assert targets["0.8"] == {"round": 5, "virtual_time_s": 50.0}
    assert targets["0.9"] is None
    assert summary["accuracy"]["missing"]["targets"]["0.6"] == {"round": 5, "virtual_time_s": 50.0}


def test_targets_are_configurable_and_tolerate_float_rounding() -> None:
    summary = summarise(rows([0.3 + 0.6]), [], targets=(0.9, 0.95))
    assert summary["targets"] == [0.9, 0.95]
    assert summary["accuracy"]["full"]["targets"] == {
        "0.9": {"round": 1, "virtual_time_s": 10.0},
        "0.95": None,
    }


def test_best_can_come_before_final_and_skips_unevaluated_rounds() -> None:
    full = summarise(rows([0.5, 0.9, 0.7, NAN]), [])["accuracy"]["full"]
    assert (full["final"], full["final_round"]) == (0.7, 3)
    assert (full["best"], full["best_round"], full["best_virtual_time_s"]) == (0.9, 2, 20.0)


def test_totals_sum_every_round() -> None:
    totals = summarise(rows([0.1, 0.2, 0.3, 0.4]), [])["totals"]
    assert totals["dispatched"] == 12 and totals["reported"] == 4
    assert totals["dropped_offline"] == 4 and totals["late"] == 4 and totals["stale"] == 0
    assert totals["bytes_down"] == 1200 and totals["bytes_up"] == 400


def test_a_run_without_evaluations_summarises_to_json_without_nan() -> None:
    summary = summarise(rows([NAN, NAN]), [])
    assert summary["accuracy"]["full"]["final"] is None
    assert all(v is None for v in summary["accuracy"]["full"]["targets"].values())
    json.dumps(summary, allow_nan=False)  # raises on any NaN left behind
    assert summarise([], [])["rounds"] == 0


def test_participation_comes_from_the_event_log(make_run: Callable[..., RunDir]) -> None:
    run = make_run(rounds=2)
    part = summarise(run.read_metrics(), run.read_events())["participation"]
    assert part["tasks"] == 12
    assert part["outcomes"]["reported"] == 4 and part["outcomes"]["stale"] == 2
    assert part["phones_dispatched"] == 6 and part["phones_reported"] == 2
    # reported phones 0 and 1 take 20 s and 30 s every round: median 25 s, p90 30 s
    assert part["reported_task_median_s"] == 25.0 and part["reported_task_p90_s"] == 30.0


def test_write_summary_stores_what_load_summary_returns(make_run: Callable[..., RunDir]) -> None:
    run = make_run(rounds=5, algorithm="fedmobile")
    written = write_summary(run)
    assert RunDir.open(run.path).read_summary() == written == load_summary(run)
    assert written["algorithm"] == "fedmobile" and written["run"] == run.name
    assert written["accuracy"]["full"]["targets"]["0.9"] == {"round": 5, "virtual_time_s": 500.0}
    assert written["virtual_time_s"] == 500.0 and written["wall_time_s"] == 2.5


def test_stability_reports_round_to_round_swings_and_last_rounds_mean() -> None:
    metrics = rows([0.3] * 8)
    for row, acc in zip(metrics, [0.2, 0.4, 0.6, 0.5, 0.7, 0.5, 0.7, 0.5], strict=True):
        row["accuracy_missing"] = acc
    stability = summarise(metrics, [])["stability"]
    # second half 0.7, 0.5, 0.7, 0.5: steps -0.2, +0.2, -0.2
    assert stability["missing"]["round_to_round_std"] == pytest.approx(0.188562, rel=1e-5)
    assert stability["missing"]["last3_mean"] == pytest.approx((0.5 + 0.7 + 0.5) / 3)
    assert stability["val_missing"] == {"round_to_round_std": None, "last3_mean": None}


def test_per_phone_accuracy_is_summarised_only_when_measured() -> None:
    """``accuracy_per_phone`` (rounds.eval_per_phone) gets final/best figures; runs without it
    keep the summary they had."""
    from fedmobile_actors.report.summary import TOTAL_COLUMNS

    base = {name: 0 for name in TOTAL_COLUMNS}
    rows = [
        {**base, "round": r, "virtual_time_s": 10.0 * r, "accuracy_per_phone": acc}
        for r, acc in ((1, 0.4), (2, 0.7), (3, 0.6))
    ]
    per_phone = summarise(rows, [])["accuracy"]["per_phone"]
    assert (per_phone["final"], per_phone["best"], per_phone["best_round"]) == (0.6, 0.7, 2)
    plain = [{**r, "accuracy_per_phone": None} for r in rows]
    assert "per_phone" not in summarise(plain, [])["accuracy"]
