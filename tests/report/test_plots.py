"""Plots: every run plot and sweep plot is a non-empty PNG, written where the layout says."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fedmobile_actors.errors import RunDirError
from fedmobile_actors.report.plots import (
    make_run_plots,
    make_sweep_plots,
    plot_fedmobile_diagnostics,
    report_runs,
    swept_parameters,
    timeline_figure,
)
from fedmobile_actors.report.run_dir import RunDir
from fedmobile_actors.report.summary import summarise_run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def is_png(path: Path) -> bool:
    return path.stat().st_size > 1000 and path.read_bytes()[:8] == PNG_MAGIC


def test_run_plots_are_written_as_pngs(make_run: Callable[..., RunDir]) -> None:
    run = make_run(rounds=5, shapley=True)
    written = make_run_plots(run)
    names = [p.name for p in written]
    assert names == ["accuracy.png", "participation.png", "timeline.png", "shapley.png"]
    assert all(p.parent == run.plots_dir and is_png(p) for p in written)
    assert run.plot_files() == sorted(written)


def test_shapley_plot_only_when_weights_are_present(make_run: Callable[..., RunDir]) -> None:
    names = [p.name for p in make_run_plots(make_run(rounds=3))]
    assert "shapley.png" not in names and "accuracy.png" in names


def test_timeline_without_event_log_is_skipped(make_run: Callable[..., RunDir]) -> None:
    run = make_run(rounds=2)
    run.events_jsonl.unlink()
    assert "timeline.png" not in [p.name for p in make_run_plots(run)]


def test_timeline_shows_the_chosen_rounds_and_caps_phones(make_run: Callable[..., RunDir]) -> None:
    run = make_run(rounds=5)
    fig = timeline_figure(run.read_events(), run.read_metrics(), rounds=(2, 4), max_phones=4)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0", "1", "2", "3"]
    assert "rounds 2-4, 4 of 6 phones" in ax.get_title()
    # 3 rounds x 4 phones shown = 12 bars, and one dashed line per aggregation in the window
    assert sum(len(c) for c in ax.containers) == 12
    assert len(ax.get_lines()) == 3


def sweep_rows(
    tmp_path: Path, make_run: Callable[..., RunDir]
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Two algorithms x three overcommit values x two seeds; fewer rounds at higher overcommit."""
    rows = []
    for algorithm in ("fedavg", "fedmobile"):
        for overcommit, rounds in ((1.0, 5), (1.5, 4), (2.0, 2)):
            for seed in (0, 1):
                run = make_run(rounds=rounds, algorithm=algorithm)
                params = {
                    "algorithm.name": algorithm,
                    "rounds.overcommit": overcommit,
                    "seed": seed,
                }
                rows.append((params, summarise_run(run)))
    return rows


def test_sweep_plots_one_file_per_swept_parameter(
    tmp_path: Path, make_run: Callable[..., RunDir]
) -> None:
    rows = sweep_rows(tmp_path, make_run)
    assert swept_parameters(rows) == ["rounds.overcommit"]
    written = make_sweep_plots(tmp_path / "sweep", rows)
    assert [p.name for p in written] == ["sweep-rounds.overcommit.png"]
    assert is_png(written[0])


def test_a_sweep_variant_names_its_curves(tmp_path: Path, make_run: Callable[..., RunDir]) -> None:
    """With named variants a curve is the variant (it names the method and its settings), not
    "fedavg, variant=plain"; over the variants themselves the other swept settings label the
    curves."""
    from fedmobile_actors.report.plots import _series

    name = {"fedavg": "plain", "fedmobile": "filled"}
    rows = [
        ({"variant": name[params["algorithm.name"]], **params}, summary)
        for params, summary in sweep_rows(tmp_path, make_run)
    ]
    by_overcommit = _series(rows, "rounds.overcommit", lambda s: 0.5)
    assert set(by_overcommit) == {"plain", "filled"}
    by_variant = _series(rows, "variant", lambda s: 0.5)
    assert set(by_variant) == {f"overcommit={o}" for o in ("1.0", "1.5", "2.0")}
    assert "variant" in swept_parameters(rows)


def test_sweep_over_a_categorical_parameter_and_over_algorithms_only(
    tmp_path: Path, make_run: Callable[..., RunDir]
) -> None:
    rows = [
        ({"rounds.policy": policy, "algorithm.name": alg}, summarise_run(make_run(algorithm=alg)))
        for policy in ("deadline", "async")
        for alg in ("fedavg", "fedprox")
    ]
    assert [p.name for p in make_sweep_plots(tmp_path / "a", rows)] == ["sweep-rounds.policy.png"]
    only_algorithms = [r for r in rows if r[0]["rounds.policy"] == "deadline"]
    for params, _ in only_algorithms:
        del params["rounds.policy"]
    written = make_sweep_plots(tmp_path / "b", only_algorithms)
    assert [p.name for p in written] == ["sweep-algorithm.name.png"] and is_png(written[0])


def test_report_runs_writes_summary_and_plots_of_each_run(make_run: Callable[..., RunDir]) -> None:
    first, second = make_run(rounds=3), make_run(rounds=4)
    written = report_runs([first.path, str(second.path)])
    assert first.summary_path in written and second.summary_path in written
    assert len([p for p in written if p.suffix == ".png"]) == 6


def test_report_runs_checks_every_path_before_writing(
    tmp_path: Path, make_run: Callable[..., RunDir]
) -> None:
    good = make_run(rounds=2)
    with pytest.raises(RunDirError, match="no such run directory"):
        report_runs([good.path, tmp_path / "typo"])
    assert not good.summary_path.exists() and not good.plots_dir.exists()


def test_sweep_plots_accept_a_swept_section(tmp_path: Path) -> None:
    """A sweep over a whole section (fleet.availability: a mapping) still plots, one category
    per mapping."""
    from fedmobile_actors.report.plots import make_sweep_plots

    summary = {
        "algorithm": "fedavg",
        "accuracy": {"full": {"final": 0.5, "targets": {}}, "missing": {"final": 0.4}},
        "virtual_time_s": 10.0,
    }
    rows = [
        ({"fleet.availability": {"model": "always"}, "seed": 0}, summary),
        ({"fleet.availability": {"model": "markov", "mean_on_s": 600}, "seed": 0}, summary),
    ]
    paths = make_sweep_plots(tmp_path, rows)
    assert paths and all(p.stat().st_size > 0 for p in paths)


def test_group_plot_is_drawn_only_for_runs_with_groups(tmp_path: Path) -> None:
    """One row of panels per grouping; a run without group figures gets no file."""
    from fedmobile_actors.report.plots import plot_groups

    group = {"phones": 2, "accuracy": 0.5, "reported": 1}
    rows = [
        {
            "round": r,
            "groups": {"tier/budget": group, "tier/flagship": group, "availability/x": group},
        }
        for r in (1, 2)
    ]
    assert is_png(plot_groups(rows, tmp_path / "groups.png") or tmp_path / "none")
    assert plot_groups([{"round": 1, "groups": {}}], tmp_path / "empty.png") is None


def test_fedmobile_diagnostics_plot_needs_its_columns(tmp_path: Path) -> None:
    rows = [
        {
            "round": r,
            "accuracy_missing": 0.5 + 0.01 * r,
            "accuracy_val_missing": 0.52,
            "accuracy_val_full": math.nan,
            "fill_error": 1.2 - 0.1 * r,
            "cluster_sizes": [3, 1],
            "shapley_weights": [0.9, 0.1],
            "shapley_values": [0.02, -0.01],
            "model_weight_max": 0.3 if r > 1 else None,  # a round without it is a gap
        }
        for r in range(1, 5)
    ]
    written = plot_fedmobile_diagnostics(rows, tmp_path / "d.png")
    assert written is not None and is_png(written)
    plain = [{"round": 1, "accuracy_missing": 0.5, "fill_error": math.nan, "cluster_sizes": []}]
    assert plot_fedmobile_diagnostics(plain, tmp_path / "none.png") is None


def test_sweep_with_availability_classes_gets_a_per_class_plot(tmp_path: Path) -> None:
    """Two availability classes -> a second file per swept parameter; one class -> none."""

    def summary(rare: float) -> dict[str, Any]:
        return {
            "algorithm": "fedavg",
            "accuracy": {"full": {"final": 0.9, "targets": {}}, "missing": {"final": 0.9}},
            "groups": {
                "availability/always-on": {"final_accuracy": 0.9},
                "availability/rarely-online": {"final_accuracy": rare},
            },
        }

    rows = [
        ({"fleet.correlation.strength": strength, "seed": seed}, summary(rare))
        for strength, rare in ((0.0, 0.9), (1.0, 0.4))
        for seed in (0, 1)
    ]
    written = make_sweep_plots(tmp_path / "two", rows)
    assert [p.name for p in written] == [
        "sweep-fleet.correlation.strength.png",
        "sweep-fleet.correlation.strength-availability.png",
    ]
    assert is_png(written[1])
    for _, s in rows:
        del s["groups"]["availability/rarely-online"]
    assert len(make_sweep_plots(tmp_path / "one", rows)) == 1
