"""The paper's USC-HAD table (issue 6): FedMobile and every baseline at several missing rates.

Each cell is one full run of the project's own driver (``run_scenario``, in-process backend) on
``scenarios/usc_had_paper.yaml`` with the algorithm, the missing rate (training and test), the seed
and the shrinking knobs overridden; the final round's accuracy with all modalities and with the
missing pattern is read from the run's metrics. Cells run in ``--jobs`` processes (one torch
thread each); results are identical whatever ``--jobs`` is, because every draw is keyed.

    FEDMOBILE_USC_HAD=/work/shared/data/USC-HAD python -m benchmarks.usc_had_table \\
        --rounds 15 --stride 100 --channels 16 32 --jobs 2 --json results/usc_had.json

The table prints mean ± std over seeds (population std, ``ddof=0``) of each cell.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PAPER_SCENARIO = REPO / "scenarios" / "usc_had_paper.yaml"
ALGORITHMS = (
    "fedavg",
    "fedprox",
    "noise_padding",
    "fedmobile",
    "fedmobile_no_shapley",
    "fedmobile_no_alpha",
)
MISSING_RATES = (0.5, 0.8, 0.9)
SEEDS = (0, 1, 2)


@dataclass(frozen=True)
class TableSetting:
    """What every cell shares: the scenario and the knobs that shrink it (None: the file's)."""

    scenario: str = str(PAPER_SCENARIO)
    missing_modality: str = "acc"
    rounds: int | None = None
    stride: int | None = None
    conv_channels: tuple[int, ...] | None = None
    local_epochs: int | None = None
    algorithms: tuple[str, ...] = ALGORITHMS
    missing_rates: tuple[float, ...] = MISSING_RATES
    seeds: tuple[int, ...] = SEEDS
    extra_overrides: tuple[str, ...] = ()


@dataclass(frozen=True)
class Cell:
    """One run of the grid."""

    algorithm: str
    missing_rate: float
    seed: int


@dataclass(frozen=True)
class CellResult:
    """A cell's final-round accuracies, its rounds and the wall time of the whole run."""

    cell: Cell
    accuracy_full: float
    accuracy_missing: float
    rounds: int
    wall_s: float
    curve_missing: list[float] = field(default_factory=list)


def cells(setting: TableSetting) -> list[Cell]:
    """The grid in a fixed order (algorithm, rate, seed)."""
    return [
        Cell(a, r, s)
        for a in setting.algorithms
        for r in setting.missing_rates
        for s in setting.seeds
    ]


def overrides_for(setting: TableSetting, cell: Cell) -> list[str]:
    """``dotted.path=value`` overrides that turn the scenario file into this cell's run."""
    m = setting.missing_modality
    out = [
        f"algorithm.name={cell.algorithm}",
        f"seed={cell.seed}",
        f"modalities.missing=[{{modality: {m}, rate: {cell.missing_rate}}}]",
        f"modalities.test_missing={{{m}: {cell.missing_rate}}}",
        "runtime.backend=inprocess",
        "output.plots=false",
        "output.checkpoint_every=0",
        "output.event_log=false",
    ]
    if setting.rounds is not None:
        out.append(f"rounds.rounds={setting.rounds}")
    if setting.stride is not None:
        out.append(f"data.source.stride={setting.stride}")
    if setting.conv_channels is not None:
        out.append(f"model.conv_channels=[{', '.join(map(str, setting.conv_channels))}]")
    if setting.local_epochs is not None:
        out.append(f"algorithm.local_epochs={setting.local_epochs}")
    return out + list(setting.extra_overrides)


def run_cell(setting: TableSetting, cell: Cell, output_dir: str) -> CellResult:
    """Run one cell through the project's driver and read its last metrics row."""
    import torch

    from fedmobile_actors.orchestration.driver import run_scenario
    from fedmobile_actors.scenario import load_scenario

    torch.set_num_threads(1)
    scenario = load_scenario(setting.scenario, overrides_for(setting, cell))
    started = time.perf_counter()
    run_dir = run_scenario(scenario, quiet=True, output_dir=output_dir)
    wall = time.perf_counter() - started
    rows = run_dir.read_metrics()
    last = rows[-1]
    return CellResult(
        cell=cell,
        accuracy_full=float(last["accuracy_full"]),
        accuracy_missing=float(last["accuracy_missing"]),
        rounds=int(last["round"]),
        wall_s=wall,
        curve_missing=[float(r["accuracy_missing"]) for r in rows],
    )


def run_table(
    setting: TableSetting, jobs: int = 1, output_dir: str | None = None, verbose: bool = False
) -> list[CellResult]:
    """Every cell of the grid, in grid order; ``jobs`` worker processes when above 1."""
    grid = cells(setting)
    with tempfile.TemporaryDirectory(prefix="usc_had_table-") as tmp:
        out = output_dir or tmp
        if jobs <= 1:
            results = []
            for c in grid:
                results.append(run_cell(setting, c, out))
                if verbose:
                    _log(results[-1])
            return results
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(run_cell, setting, c, out) for c in grid]
            results = []
            for f in futures:
                results.append(f.result())
                if verbose:
                    _log(results[-1])
            return results


def _log(r: CellResult) -> None:
    c = r.cell
    print(
        f"  {c.algorithm:<22} rate {c.missing_rate:.1f} seed {c.seed}: "
        f"full {r.accuracy_full:.4f} missing {r.accuracy_missing:.4f} ({r.wall_s:.0f} s)",
        file=sys.stderr,
        flush=True,
    )


@dataclass(frozen=True)
class SummaryRow:
    """One (algorithm, rate) line of the table: mean and std over seeds of both accuracies."""

    algorithm: str
    missing_rate: float
    seeds: tuple[int, ...]
    missing_mean: float
    missing_std: float
    full_mean: float
    full_std: float


def summarise(results: Sequence[CellResult]) -> list[SummaryRow]:
    """One row per (algorithm, rate), in grid order."""
    groups: dict[tuple[str, float], list[CellResult]] = {}
    for r in results:
        groups.setdefault((r.cell.algorithm, r.cell.missing_rate), []).append(r)
    rows = []
    for (algorithm, rate), rs in groups.items():
        full = np.array([r.accuracy_full for r in rs])
        missing = np.array([r.accuracy_missing for r in rs])
        rows.append(
            SummaryRow(
                algorithm=algorithm,
                missing_rate=rate,
                seeds=tuple(r.cell.seed for r in rs),
                missing_mean=float(missing.mean()),
                missing_std=float(missing.std()),
                full_mean=float(full.mean()),
                full_std=float(full.std()),
            )
        )
    return rows


def format_table(rows: Sequence[SummaryRow]) -> str:
    """Markdown, in percent: per rate 'missing-pattern mean ± std / all-modalities mean ± std'."""
    rates = sorted({r.missing_rate for r in rows})
    algorithms = list(dict.fromkeys(r.algorithm for r in rows))
    by_key = {(r.algorithm, r.missing_rate): r for r in rows}
    head = "| algorithm | " + " | ".join(f"rate {x:.1f}: missing / full" for x in rates) + " |"
    lines = [head, "|---|" + "---|" * len(rates)]
    for a in algorithms:
        parts = []
        for x in rates:
            r = by_key.get((a, x))
            parts.append(
                "-"
                if r is None
                else f"{100 * r.missing_mean:.1f} ± {100 * r.missing_std:.1f} / "
                f"{100 * r.full_mean:.1f} ± {100 * r.full_std:.1f}"
            )
        lines.append(f"| {a} | " + " | ".join(parts) + " |")
    return "\n".join(lines)


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--scenario", default=str(PAPER_SCENARIO))
    p.add_argument("--data", help="USC-HAD directory (default: scenario's, $FEDMOBILE_USC_HAD)")
    p.add_argument("--rounds", type=int)
    p.add_argument("--stride", type=int, help="window stride in samples (the file's: 50)")
    p.add_argument("--channels", type=int, nargs="+", help="Conv1d channels, e.g. 16 32")
    p.add_argument("--local-epochs", type=int)
    p.add_argument("--algorithms", nargs="+", default=list(ALGORITHMS))
    p.add_argument("--rates", type=float, nargs="+", default=list(MISSING_RATES))
    p.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    p.add_argument("--override", action="append", default=[], help="extra dotted.path=value")
    p.add_argument("--jobs", type=int, default=1, help="parallel worker processes")
    p.add_argument("--json", help="write the cells, the summary and the setting here")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    extra = list(args.override)
    if args.data:
        extra.append(f"data.source.path={args.data}")
    setting = TableSetting(
        scenario=args.scenario,
        rounds=args.rounds,
        stride=args.stride,
        conv_channels=tuple(args.channels) if args.channels else None,
        local_epochs=args.local_epochs,
        algorithms=tuple(args.algorithms),
        missing_rates=tuple(args.rates),
        seeds=tuple(args.seeds),
        extra_overrides=tuple(extra),
    )
    started = time.perf_counter()
    results = run_table(setting, jobs=args.jobs, verbose=True)
    wall = time.perf_counter() - started
    rows = summarise(results)
    print(format_table(rows))
    print(f"\n{len(results)} runs in {wall / 60:.1f} min with {args.jobs} job(s)")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "setting": asdict(setting),
            "jobs": args.jobs,
            "wall_s": wall,
            "cpus": os.cpu_count(),
            "summary": [asdict(r) for r in rows],
            "cells": [asdict(r) for r in results],
        }
        Path(args.json).write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
