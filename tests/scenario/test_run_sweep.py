"""run_sweep end to end, in-process and tiny: a sweep directory, its runs, its table."""

from __future__ import annotations

import csv
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from fedmobile_actors.cli.main import main
from fedmobile_actors.orchestration.sweep import create_sweep_dir, run_sweep, worker_count
from fedmobile_actors.scenario import load_scenario

TINY = """
name: tiny
data: {{source: {{kind: synthetic, samples: 240}}}}
fleet: {{phones: 4}}
algorithm: {{local_epochs: 1, lr: 0.05, momentum: 0.9}}
rounds: {{rounds: 2, clients_per_round: 2}}
runtime: {{backend: inprocess}}
output: {{dir: {out}, checkpoint_every: 0, plots: {plots}}}
sweep:
  grid:
{grid}
  seeds: {seeds}
  parallel: {parallel}
"""


def tiny(out: Path, grid: str, seeds: str = "[0]", parallel: int = 1, plots: bool = False) -> str:
    return TINY.format(out=out, grid=grid, seeds=seeds, parallel=parallel, plots=str(plots).lower())


def read_table(sweep_dir: Path) -> list[dict[str, str]]:
    with (sweep_dir / "sweep.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.integration
def test_two_parameters_by_two_seeds_run_and_tabulate(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    """2 x 2 grid x 2 seeds: 8 finished runs in one sweep dir, 8 rows, plots per parameter."""
    grid = "    algorithm.lr: [0.01, 0.05]\n    fleet.failure_prob: [0.0, 0.3]"
    scenario = load_scenario(write(tiny(tmp_path / "out", grid, "[0, 1]", plots=True)))
    sweep_dir = run_sweep(scenario, quiet=True)
    assert sweep_dir.parent == tmp_path / "out" and sweep_dir.name.startswith("tiny-sweep-")
    rows = read_table(sweep_dir)
    assert len(rows) == 8
    assert [(r["algorithm.lr"], r["fleet.failure_prob"]) for r in rows[::2]] == [
        ("0.01", "0.0"),
        ("0.01", "0.3"),
        ("0.05", "0.0"),
        ("0.05", "0.3"),
    ]
    assert {r["status"] for r in rows} == {"finished"}
    assert len({r["run"] for r in rows}) == 8
    assert all((sweep_dir / r["run"] / "summary.json").is_file() for r in rows)
    assert all(r["run"].startswith(r["cell"] + "/") for r in rows)  # <cell id>/<run dir>
    assert all(0.0 <= float(r["final_accuracy_full"]) <= 1.0 for r in rows)
    assert (sweep_dir / "sweep.yaml").is_file()
    assert sorted(p.name for p in (sweep_dir / "plots").iterdir()) == [
        "sweep-algorithm.lr.png",
        "sweep-fleet.failure_prob.png",
    ]


@pytest.mark.slow  # spawns two workers, each importing torch (~15 s on 2 cores)
@pytest.mark.integration
def test_parallel_workers_give_the_same_numbers_as_one_process(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    """Two spawned workers and a sequential sweep of the same points agree exactly."""
    grid = "    algorithm.lr: [0.02, 0.05]"
    tables = []
    for parallel in (1, 2):
        path = write(tiny(tmp_path / f"p{parallel}", grid, parallel=parallel), f"p{parallel}.yaml")
        scenario = load_scenario(path)
        assert worker_count(scenario, 2) == parallel
        tables.append(read_table(run_sweep(scenario, quiet=True)))
    figures = ("final_accuracy_full", "final_accuracy_missing", "virtual_time_s", "bytes_up")
    assert [[r[f] for f in figures] for r in tables[0]] == [
        [r[f] for f in figures] for r in tables[1]
    ]


def test_a_failing_point_is_recorded_and_the_sweep_goes_on(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    """One grid value points at a missing .npz: that row fails, says why; the other finishes."""
    grid = "    data.source: [{kind: synthetic, samples: 240}, {kind: npz, path: gone.npz}]"
    sweep_dir = run_sweep(load_scenario(write(tiny(tmp_path / "out", grid))), quiet=True)
    rows = read_table(sweep_dir)
    assert [r["status"] for r in rows] == ["finished", "failed"]
    failures = (sweep_dir / "failures.txt").read_text()
    assert "gone.npz" in failures and len(failures.splitlines()) == 1


@pytest.mark.integration
def test_cli_sweep_where_every_run_fails_exits_2(
    write: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """All points fail on user input: one error line naming the sweep dir, exit code 2."""
    grid = "    data.source: [{kind: npz, path: a.npz}, {kind: npz, path: b.npz}]"
    code = main(["sweep", str(write(tiny(tmp_path / "out", grid))), "-q"])
    err = capsys.readouterr().err
    assert code == 2
    assert "all 2 runs failed" in err and "Traceback" not in err


def test_sweep_directories_are_never_reused(tmp_path: Path) -> None:
    """Two sweeps started in the same second get two directories."""
    when = datetime(2025, 1, 2, 3, 4, 5)
    first = create_sweep_dir(tmp_path, "s", when)
    second = create_sweep_dir(tmp_path, "s", when)
    assert first != second and first.name == "s-sweep-20250102-030405"
    assert second.name == "s-sweep-20250102-030405-1"


def test_ray_sweeps_run_cells_concurrently_up_to_parallel(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    """With the Ray backend, sweep.parallel caps the cells in flight (unset: every cell)."""
    text = tiny(tmp_path, "    algorithm.lr: [0.01, 0.02, 0.05]", parallel=2)
    scenario = load_scenario(write(text), ["runtime.backend=ray"])
    assert worker_count(scenario, 3) == 2
    unset = load_scenario(write(text), ["runtime.backend=ray", "sweep.parallel=null"])
    assert worker_count(unset, 3) == 3


@pytest.mark.integration
def test_variants_run_tabulate_and_plot_by_name(write: Callable[..., Path], tmp_path: Path) -> None:
    """Two named variants (FedAvg, and FedProx with its own mu) x one grid value: four rows
    whose `variant` column names each, one summary row per variant and grid value, and a
    plot per swept parameter, the variant included."""
    text = tiny(tmp_path / "out", "    algorithm.lr: [0.05]", "[0, 1]", plots=True).replace(
        "sweep:\n",
        "sweep:\n  variants:\n    avg: {algorithm.name: fedavg}\n"
        "    prox: {algorithm.name: fedprox, algorithm.mu: 0.1}\n",
    )
    sweep_dir = run_sweep(load_scenario(write(text)), quiet=True)
    rows = read_table(sweep_dir)
    assert [(r["variant"], r["seed"], r["status"]) for r in rows] == [
        ("avg", "0", "finished"),
        ("avg", "1", "finished"),
        ("prox", "0", "finished"),
        ("prox", "1", "finished"),
    ]
    with (sweep_dir / "sweep_summary.csv").open(encoding="utf-8") as handle:
        summary = list(csv.DictReader(handle))
    assert [r["variant"] for r in summary] == ["avg", "prox"]
    assert (sweep_dir / "plots" / "sweep-variant.png").is_file()
