"""benchmarks/usc_had_authors.py: the grid resumes from its results file; the report is made
from that file alone."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks.usc_had_authors import (
    SCENARIO,
    Cell,
    append_result,
    grid,
    main,
    overrides,
    read_results,
    report_markdown,
    run_wall_s,
    summary_rows,
    to_record,
    write_report,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from test_usc_had import write_release  # type: ignore[import-not-found]


def test_grid_runs_fedavg_first_then_every_rate_and_seed() -> None:
    cells = grid(50)
    assert len(cells) == 4 * 2 * 3
    assert [c.algorithm for c in cells[:6]] == ["fedavg"] * 6
    assert {(c.rate, c.seed) for c in cells[:6]} == {(r, s) for r in (0.8, 0.9) for s in (0, 1, 2)}


def test_a_record_has_final_and_best_round() -> None:
    rows = [
        {"accuracy_per_phone": a, "accuracy_full": a - 0.1, "bytes_down": 9, "wall_time_s": w}
        for a, w in ((0.5, 1.0), (0.7, 2.0), (0.6, 3.0))
    ]
    record = to_record(Cell("fedavg", 0.8, 0, 3), rows, run_wall_s(rows))
    assert record["final_accuracy"] == 0.6
    assert (record["best_accuracy"], record["best_round"]) == (0.7, 2)
    assert record["accuracy_per_round"] == [0.5, 0.7, 0.6]
    assert record["wall_s"] == 3.0


def test_wall_time_of_a_resumed_run_sums_its_segments() -> None:
    """The driver's clock restarts on resume: 10, 20 then (resumed) 5, 9 is 29 s in all."""
    rows = [{"wall_time_s": w} for w in (10.0, 20.0, 5.0, 9.0)]
    assert run_wall_s(rows) == 29.0


def test_appending_replaces_a_cell_and_keeps_the_others(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    base = {"algorithm": "fedavg", "rate": 0.8, "rounds": 50, "final_accuracy": 0.1}
    append_result({**base, "seed": 0}, path)
    append_result({**base, "seed": 1}, path)
    append_result({**base, "seed": 0, "final_accuracy": 0.2}, path)
    records = read_results(path)
    assert sorted((r["seed"], r["final_accuracy"]) for r in records) == [(0, 0.2), (1, 0.1)]
    assert not list(tmp_path.glob("*.tmp"))


def test_grid_continues_where_it_stopped(tmp_path: Path, capsys: Any) -> None:
    """Cells already in the file are skipped: a stopped grid resumes with the next cell."""
    release = write_release(tmp_path / "usc")
    results = tmp_path / "results.json"
    common = [
        "--rounds", "1", "--algorithms", "fedavg", "--rates", "0.8", "--seeds", "0", "1",
        "--results", str(results), "--runs-dir", str(tmp_path / "runs"),
    ]  # fmt: skip
    for o in _tiny(release, tmp_path):
        common += ["--override", o]
    main([*common, "--max-cells", "1"])
    assert [r["seed"] for r in read_results(results)] == [0]
    main(common)
    assert [r["seed"] for r in read_results(results)] == [0, 1]
    main(common)
    assert "2 of 2 cells already" in capsys.readouterr().err
    # Each record names the machine it was measured on (bits repeat only there).
    from fedmobile_actors.orchestration.arithmetic import arithmetic_platform

    assert all(r["platform"] == arithmetic_platform() for r in read_results(results))


def _record(
    algorithm: str,
    seed: int,
    final: float,
    best: float | None = None,
    per_round: list[float] | None = None,
    wall_s: float = 1.0,
) -> dict[str, Any]:
    """A 3-round record at rate 0.8 with what the report reads (pooled = final)."""
    record = {
        "algorithm": algorithm,
        "rate": 0.8,
        "seed": seed,
        "rounds": 3,
        "final_accuracy": final,
        "best_accuracy": final if best is None else best,
        "pooled_final_accuracy": final,
        "wall_s": wall_s,
    }
    if per_round is not None:
        record["accuracy_per_round"] = per_round
    return record


def test_report_is_written_from_the_file(tmp_path: Path) -> None:
    records = [
        _record(a, s, acc, best=acc + 0.01, per_round=[acc - 0.1, acc + 0.01, acc], wall_s=5.0)
        for a, acc in (("fedavg", 0.6), ("fedmobile_authors", 0.7))
        for s in (0, 1)
    ]
    results = tmp_path / "r.json"
    results.write_text(json.dumps(records))
    md, plot = tmp_path / "results.md", tmp_path / "plot.png"
    md.write_text("# Results\n")
    write_report(3, md, plot, results)
    text = md.read_text()
    assert "| 0.8 | fedavg | 0,1 | 60.00 ± 0.00 | 61.00 ± 0.00 |" in text
    assert plot.stat().st_size > 0
    write_report(3, md, plot, results)  # a second report replaces the section, never appends it
    assert md.read_text() == text
    assert "no cell at this round count yet" in report_markdown(records, 50)
    assert "Machines (cells): 4 from before the machine was recorded." in text
    facts = {"cpu": "EPYC", "cpu_capability": "AVX2", "torch": "2.13.0"}
    assert "Machines (cells): 1 on EPYC (AVX2, torch 2.13.0); 3 from before" in report_markdown(
        [{**records[0], "platform": facts}, *records[1:]], 3
    )
    # One seed is its value alone: a "± 0.00" would read as a spread measured.
    assert "| 0.8 | fedavg | 0 | 60.00 | 61.00 | 60.00 |" in report_markdown(records[:1], 3)


def test_the_gap_to_fedavg_is_paired_by_seed() -> None:
    """Seed by seed, over the seeds both have: FedAvg 0.80/0.70, the other 0.79/0.72/0.99 ->
    -1 and +2 points (seed 2 has no FedAvg partner), one of two ahead."""
    finals = {("fedavg", 0): 0.80, ("fedavg", 1): 0.70}
    finals |= {("fedmobile_authors", 0): 0.79, ("fedmobile_authors", 1): 0.72}
    finals[("fedmobile_authors", 2)] = 0.99
    records = [_record(a, s, acc) for (a, s), acc in finals.items()]
    rows = {r["algorithm"]: r for r in summary_rows(records, 3)}
    assert rows["fedmobile_authors"]["vs_fedavg"] == "+0.50 ± 1.50 (1/2 ahead)"
    assert rows["fedavg"]["vs_fedavg"] == ""
    alone = summary_rows([r for r in records if r["algorithm"] != "fedavg"], 3)
    assert alone[0]["vs_fedavg"] == "-"


def test_the_tail_gap_averages_the_last_rounds_per_seed() -> None:
    """The same pairing over the mean of the last rounds (all 3 of a 3-round record): the final
    rounds tie at seed 0, but the other method is 4 points behind over its tail. A record
    without a per-round curve has no tail and is left out of the pairing."""
    records = [
        _record("fedavg", 0, 0.80, per_round=[0.80, 0.80, 0.80]),
        _record("fedavg", 1, 0.70, per_round=[0.70, 0.70, 0.70]),
        _record("fedmobile_authors", 0, 0.80, per_round=[0.74, 0.74, 0.80]),
        _record("fedmobile_authors", 1, 0.71),
    ]
    rows = {r["algorithm"]: r for r in summary_rows(records, 3)}
    assert rows["fedmobile_authors"]["vs_fedavg"] == "+0.50 ± 0.50 (1/2 ahead)"
    assert rows["fedmobile_authors"]["vs_fedavg_tail"] == "-4.00 (0/1 ahead)"
    assert "last 10, paired" in report_markdown(records, 3)


def test_an_interrupted_cell_resumes_from_its_checkpoint(tmp_path: Path, capsys: Any) -> None:
    """A cell cut after round 1 is resumed in its run directory, not started again, and gives
    the rows a whole run gives."""
    from benchmarks.usc_had_authors import SCENARIO, overrides
    from fedmobile_actors.orchestration.driver import run_scenario
    from fedmobile_actors.scenario import load_scenario

    release = write_release(tmp_path / "usc")
    extra = _tiny(release, tmp_path)
    cell = Cell("fedavg", 0.8, 0, 2)
    scenario = load_scenario(SCENARIO, [*overrides(cell, 1), *extra])
    run_scenario(scenario, quiet=True, output_dir=tmp_path / "runs", stop_after=1)
    whole = run_scenario(scenario, quiet=True, output_dir=tmp_path / "whole")
    results = tmp_path / "results.json"
    args = [
        "--rounds", "2", "--algorithms", "fedavg", "--rates", "0.8", "--seeds", "0",
        "--results", str(results), "--runs-dir", str(tmp_path / "runs"),
        "--checkpoint-every", "1",
    ]  # fmt: skip
    main([*args, *(x for o in extra for x in ("--override", o))])
    assert "resuming" in capsys.readouterr().err
    (record,) = read_results(results)
    assert record["accuracy_per_round"] == [r["accuracy_per_phone"] for r in whole.read_metrics()]


def _tiny(release: Path, tmp_path: Path) -> list[str]:
    """Overrides that shrink the authors' scenario to the tiny release the tests write."""
    return [
        f"data.source.path={release}",
        f"data.source.cache_dir={tmp_path / 'cache'}",
        "data.source.window=8",
        "data.source.stride=4",
        "data.source.subjects=[1, 2, 3]",
        "fleet.phones=3",
        "rounds.clients_per_round=3",
    ]


def test_the_grid_sweep_file_runs_the_scripts_cells() -> None:
    """scenarios/usc_had_authors_grid.yaml promises the script's 24 cells: each of its points
    resolves to the scenario the script runs for that (algorithm, rate, seed), name and
    output settings aside."""
    from fedmobile_actors.scenario import load_scenario
    from fedmobile_actors.scenario.sweep import expand_sweep

    grid_file = Path(__file__).resolve().parents[2] / "scenarios" / "usc_had_authors_grid.yaml"
    points = expand_sweep(load_scenario(grid_file))

    def settings(scenario: Any) -> dict[str, Any]:
        data = scenario.model_dump(mode="json")
        for key in ("name", "output", "base_dir"):
            data.pop(key, None)
        return data

    by_cell = {
        (p.params["variant"], p.params["modalities.training_dropout.0.rate"], p.params["seed"]): p
        for p in points
    }
    assert sorted(by_cell) == sorted((c.algorithm, c.rate, c.seed) for c in grid(50))
    for cell in grid(50):
        script = load_scenario(SCENARIO, overrides(cell, 10))
        assert settings(by_cell[cell.algorithm, cell.rate, cell.seed].scenario) == settings(
            script
        ), cell.name


def test_a_sweep_of_the_grid_file_gives_the_scripts_records(tmp_path: Path) -> None:
    """The grid file swept (FedAvg at rate 0.8, seed 0, one round, on the tiny release) and
    imported with --from-sweep gives the record the script's own run gives, bit for bit;
    importing again adds nothing."""
    from fedmobile_actors.orchestration.sweep import run_sweep
    from fedmobile_actors.scenario import load_scenario

    release = write_release(tmp_path / "usc")
    tiny = _tiny(release, tmp_path)
    grid_file = Path(__file__).resolve().parents[2] / "scenarios" / "usc_had_authors_grid.yaml"
    sweep = load_scenario(
        grid_file,
        [
            *tiny,
            "rounds.rounds=1",
            "sweep.variants={fedavg: {algorithm.name: fedavg}}",
            "sweep.grid={modalities.training_dropout.0.rate: [0.8]}",
            "sweep.seeds=[0]",
            f"output.dir={tmp_path / 'sweeps'}",
            "output.plots=false",
        ],
    )
    sweep_dir = run_sweep(sweep, quiet=True)
    imported = tmp_path / "imported.json"
    main(["--from-sweep", str(sweep_dir), "--results", str(imported)])
    main(["--from-sweep", str(sweep_dir), "--results", str(imported)])
    script = tmp_path / "script.json"
    args = ["--rounds", "1", "--algorithms", "fedavg", "--rates", "0.8", "--seeds", "0"]
    args += ["--results", str(script), "--runs-dir", str(tmp_path / "runs")]
    main([*args, *(x for o in tiny for x in ("--override", o))])
    (mine,) = read_results(imported)
    (theirs,) = read_results(script)
    assert {k: v for k, v in mine.items() if k != "wall_s"} == {
        k: v for k, v in theirs.items() if k != "wall_s"
    }


def test_importing_something_else_names_the_problem(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"no sweep\.json"):
        main(["--from-sweep", str(tmp_path), "--results", str(tmp_path / "r.json")])
