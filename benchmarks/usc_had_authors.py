"""FedMobile as its authors ran it (issue 11): a resumable grid on scenarios/usc_had_authors.yaml.

Cells: four algorithms x training-time dropout rates 0.8, 0.9 x seeds 0, 1, 2, at ``--rounds``.
Every cell is one run of the project's own driver (in-process backend, one torch thread); when it
finishes, one JSON record is appended to ``benchmarks/results/usc_had_authors.json`` (written
atomically, and committed with ``--commit``). A cell already in that file (same algorithm, rate,
seed and rounds) is skipped, so the grid continues where it stopped:

    FEDMOBILE_USC_HAD=/work/shared/data/USC-HAD python -m benchmarks.usc_had_authors --rounds 50

A cell interrupted mid-run resumes from its last checkpoint (every ``--checkpoint-every``
rounds) in ``--runs-dir``, through the driver's own ``resume``. The report (a section of
docs/results.md between markers, and docs/images/usc_had_authors.png) is written from the file:

    python -m benchmarks.usc_had_authors --report --rounds 50

The same 24 cells run as one sweep (on a Ray cluster, say) with ``fedmobile sweep
scenarios/usc_had_authors_grid.yaml``; ``--from-sweep SWEEP_DIR`` adds its finished cells to
the results file.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.usc_had_grid import run_wall_s, unfinished_run
from benchmarks.usc_had_report import mean_std

REPO = Path(__file__).resolve().parents[1]
SCENARIO = REPO / "scenarios" / "usc_had_authors.yaml"
RESULTS = REPO / "benchmarks" / "results" / "usc_had_authors.json"
RESULTS_MD = REPO / "docs" / "results.md"
PLOT = REPO / "docs" / "images" / "usc_had_authors.png"
BEGIN, END = "<!-- usc_had_authors:begin -->", "<!-- usc_had_authors:end -->"

#: Grid algorithms, cheapest first (FedAvg has no generator), with their overrides.
ALGORITHMS: dict[str, tuple[str, ...]] = {
    "fedavg": ("algorithm.name=fedavg",),
    "fedmobile_authors": (
        "algorithm.name=fedmobile_authors",
        "algorithm.fedmobile_authors.selection_split=validation",
    ),
    "fedmobile_authors_leaky": (
        "algorithm.name=fedmobile_authors",
        "algorithm.fedmobile_authors.selection_split=test_leaky",
    ),
    "fedmobile": ("algorithm.name=fedmobile",),
}
#: Our FedMobile fills missing features from its generator, so it must be told which rows lost
#: the accelerometer: the dropped rows are marked absent instead of zeroed (same rows, same rate).
DROPOUT_MODE = {"fedmobile": "absent"}
RATES = (0.8, 0.9)
SEEDS = (0, 1, 2)


@dataclass(frozen=True)
class Cell:
    algorithm: str
    rate: float
    seed: int
    rounds: int

    @property
    def name(self) -> str:
        return f"uha-{self.algorithm}-r{self.rate}-s{self.seed}-n{self.rounds}"

    @property
    def protocol(self) -> str:
        mode = DROPOUT_MODE.get(self.algorithm, "zero_input")
        return f"per-step acc dropout ({mode}), per-phone test splits, blocked validation split"

    def key(self) -> tuple[str, float, int, int]:
        return (self.algorithm, self.rate, self.seed, self.rounds)


def grid(
    rounds: int,
    algorithms: Sequence[str] = tuple(ALGORITHMS),
    rates: Sequence[float] = RATES,
    seeds: Sequence[int] = SEEDS,
) -> list[Cell]:
    """Cells in run order: algorithm (cheapest first), then rate, then seed."""
    return [Cell(a, r, s, rounds) for a in algorithms for r in rates for s in seeds]


def overrides(cell: Cell, checkpoint_every: int) -> list[str]:
    mode = DROPOUT_MODE.get(cell.algorithm, "zero_input")
    return [
        *ALGORITHMS[cell.algorithm],
        f"name={cell.name}",
        f"seed={cell.seed}",
        f"rounds.rounds={cell.rounds}",
        f"modalities.training_dropout=[{{modality: acc, rate: {cell.rate}, mode: {mode}}}]",
        "runtime.backend=inprocess",
        "output.plots=false",
        "output.event_log=false",
        f"output.checkpoint_every={checkpoint_every}",
    ]


# ---- the results file ----------------------------------------------------------------------


def read_results(path: Path = RESULTS) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    records = json.loads(path.read_text())
    if not isinstance(records, list):
        raise SystemExit(f"{path}: expected a JSON list of records")
    return records


def record_key(record: dict[str, Any]) -> tuple[str, float, int, int]:
    return (
        str(record["algorithm"]),
        float(record["rate"]),
        int(record["seed"]),
        int(record["rounds"]),
    )


def append_result(record: dict[str, Any], path: Path = RESULTS) -> None:
    """Append one record, writing a temporary file and renaming it (never half a file); a lock
    file serialises two grid processes writing different cells into one file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        records = [r for r in read_results(path) if record_key(r) != record_key(record)]
        records.append(record)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as tmp:
            json.dump(records, tmp, indent=1)
            tmp.write("\n")
        os.replace(tmp.name, path)


def to_record(cell: Cell, rows: list[dict[str, Any]], wall_s: float) -> dict[str, Any]:
    """What the table needs of one finished run: the authors' evaluation (mean over phones of
    each phone's model on its own test split) per round, its final and best round, and the
    pooled test set's accuracy beside it."""
    per_phone = [_num(r.get("accuracy_per_phone")) for r in rows]
    pooled = [_num(r.get("accuracy_full")) for r in rows]
    best = int(np.nanargmax(per_phone)) if per_phone else 0
    return {
        "algorithm": cell.algorithm,
        "protocol": cell.protocol,
        "rate": cell.rate,
        "seed": cell.seed,
        "rounds": cell.rounds,
        "final_accuracy": per_phone[-1],
        "best_accuracy": per_phone[best],
        "best_round": best + 1,
        "accuracy_per_round": per_phone,
        "pooled_final_accuracy": pooled[-1],
        "pooled_accuracy_per_round": pooled,
        "bytes_down_per_round": int(rows[0]["bytes_down"]) if rows else 0,
        "wall_s": round(wall_s, 1),
    }


def _num(value: Any) -> float:
    return float("nan") if value is None else float(value)


# ---- running cells ---------------------------------------------------------------------------


def run_cell(
    cell: Cell,
    runs_dir: Path,
    checkpoint_every: int,
    quiet: bool,
    scenario_path: Path = SCENARIO,
    extra: Sequence[str] = (),
) -> dict[str, Any]:
    """Run (or resume) one cell through the project's driver and return its record."""
    import torch

    from fedmobile_actors.orchestration.driver import resume_run, run_scenario
    from fedmobile_actors.report.run_dir import RunDir
    from fedmobile_actors.scenario import load_scenario

    torch.set_num_threads(1)
    unfinished = unfinished_run(cell.name, runs_dir)
    if unfinished is not None:
        print(f"  resuming {unfinished}", file=sys.stderr, flush=True)
        run_dir = resume_run(unfinished, quiet=quiet)
    else:
        scenario = load_scenario(scenario_path, [*overrides(cell, checkpoint_every), *extra])
        run_dir = run_scenario(scenario, quiet=quiet, output_dir=runs_dir)
    info = RunDir.open(run_dir.path).read_run_info()
    if info.status != "finished":
        raise SystemExit(f"{run_dir.path}: run ended {info.status}; not recorded")
    rows = run_dir.read_metrics()
    # The record holds what the table needs; the checkpoints (161 MB each with the authors'
    # generator) are only for resuming an unfinished cell.
    shutil.rmtree(run_dir.path / "checkpoints", ignore_errors=True)
    return with_platform(to_record(cell, rows, run_wall_s(rows)), info.platform)


def with_platform(record: dict[str, Any], platform: dict[str, str] | None) -> dict[str, Any]:
    """The record with the CPU and builds its run started on (from run.json), when known: the
    same cell measured on another machine differs in the last bits (docs/results.md)."""
    return record if platform is None else {**record, "platform": platform}


def import_sweep(sweep_dir: Path, results: Path) -> int:
    """Records for the finished cells of a ``fedmobile sweep scenarios/usc_had_authors_grid.yaml``
    run (on a cluster, say), appended to ``results``; cells already there are kept. Returns how
    many were added. The sweep's cells are the script's (a test checks that the scenarios are
    the same), so a cell measured either way gives the same record."""
    from fedmobile_actors.report.run_dir import RunDir

    table = sweep_dir / "sweep.json"
    if not table.is_file():
        raise SystemExit(f"{sweep_dir}: no sweep.json; is it a sweep directory?")
    done = {record_key(r) for r in read_results(results)}
    added = 0
    for row in json.loads(table.read_text()):
        if row.get("status") != "finished":
            continue
        algorithm = str(row.get("variant"))
        if algorithm not in ALGORITHMS:
            raise SystemExit(
                f"{sweep_dir}: cell {row.get('cell')}: variant {algorithm!r} is not one of "
                f"{', '.join(ALGORITHMS)}; is it a sweep of usc_had_authors_grid.yaml?"
            )
        run = RunDir.open(sweep_dir / row["run"])
        rows = run.read_metrics()
        rate = float(row["modalities.training_dropout.0.rate"])
        cell = Cell(algorithm, rate, int(row["seed"]), len(rows))
        if cell.key() in done:
            continue
        record = to_record(cell, rows, run_wall_s(rows))
        append_result(with_platform(record, run.read_run_info().platform), results)
        done.add(cell.key())
        added += 1
    return added


def run_grid(args: argparse.Namespace) -> None:
    results = Path(args.results)
    done = {record_key(r) for r in read_results(results)}
    cells = grid(args.rounds, args.algorithms, args.rates, args.seeds)
    todo = [c for c in cells if c.key() not in done]
    print(
        f"{len(cells) - len(todo)} of {len(cells)} cells already in {results.name}; "
        f"{len(todo)} to run",
        file=sys.stderr,
        flush=True,
    )
    for i, cell in enumerate(todo[: args.max_cells], start=1):
        print(f"[{i}/{len(todo)}] {cell.name}", file=sys.stderr, flush=True)
        record = run_cell(
            cell,
            Path(args.runs_dir),
            args.checkpoint_every,
            not args.verbose,
            Path(args.scenario),
            args.override,
        )
        append_result(record, results)
        print(
            f"  final {record['final_accuracy']:.4f} best {record['best_accuracy']:.4f} "
            f"(round {record['best_round']}), {record['wall_s']:.0f} s",
            file=sys.stderr,
            flush=True,
        )
        if args.commit:
            subprocess.run(["git", "-C", str(REPO), "add", str(results)], check=True)
            subprocess.run(
                ["git", "-C", str(REPO), "commit", "-q", "-m", f"usc_had_authors: {cell.name}"],
                check=True,
            )


def time_rounds(algorithms: Sequence[str], rounds: int, rate: float) -> list[dict[str, Any]]:
    """Wall and CPU seconds of each of the first ``rounds`` rounds of each algorithm (seed 0),
    in this process (in-process backend, one torch thread). CPU time is what the grid costs on
    an idle core; wall time also shows what the machine's other load added."""
    import torch

    from fedmobile_actors.runtime.inprocess import InProcessBackend
    from fedmobile_actors.scenario import load_scenario

    torch.set_num_threads(1)
    out = []
    for algorithm in algorithms:
        cell = Cell(algorithm, rate, 0, rounds)
        started_wall, started_cpu = time.perf_counter(), time.process_time()
        backend = InProcessBackend(load_scenario(SCENARIO, overrides(cell, 0)))
        setup = (time.perf_counter() - started_wall, time.process_time() - started_cpu)
        for _ in range(rounds):
            wall, cpu = time.perf_counter(), time.process_time()
            result = backend.run_round()
            assert result is not None
            row = {
                "algorithm": algorithm,
                "round": result.metrics.round,
                "wall_s": round(time.perf_counter() - wall, 1),
                "cpu_s": round(time.process_time() - cpu, 1),
                "setup_wall_s": round(setup[0], 1),
                "setup_cpu_s": round(setup[1], 1),
                "bytes_down": result.metrics.bytes_down,
                "bytes_up": result.metrics.bytes_up,
                "virtual_time_s": round(result.metrics.virtual_time_s, 1),
            }
            print(json.dumps(row), flush=True)
            out.append(row)
        backend.shutdown()
    return out


# ---- the report ------------------------------------------------------------------------------


def summary_rows(records: list[dict[str, Any]], rounds: int) -> list[dict[str, Any]]:
    """Per (rate, algorithm): the seeds, ``mean ± std`` (population, ddof=0) over them of the
    final, best-round and pooled accuracies (one seed: its value alone), and the mean wall."""
    groups: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for r in records:
        if int(r["rounds"]) == rounds:
            groups.setdefault((r["algorithm"], float(r["rate"])), []).append(r)
    order = {a: i for i, a in enumerate(ALGORITHMS)}
    ordered = sorted(groups.items(), key=lambda kv: (kv[0][1], order.get(kv[0][0], 99)))
    return [
        {
            "algorithm": algorithm,
            "rate": rate,
            "seeds": sorted(int(r["seed"]) for r in rs),
            **{
                column: mean_std([r[key] for r in rs], digits=2)
                for column, key in (
                    ("final", "final_accuracy"),
                    ("best", "best_accuracy"),
                    ("pooled", "pooled_final_accuracy"),
                )
            },
            "wall_s": float(np.mean([r["wall_s"] for r in rs])),
            **{
                column: ""
                if algorithm == "fedavg"
                else paired_gap(rs, groups.get(("fedavg", rate), []), value)
                for column, value in (("vs_fedavg", final_accuracy), ("vs_fedavg_tail", tail_mean))
            },
        }
        for (algorithm, rate), rs in ordered
    ]


#: Rounds at the end averaged by ``tail_mean``.
TAIL_ROUNDS = 10


def final_accuracy(record: dict[str, Any]) -> float | None:
    return float(record["final_accuracy"])


def tail_mean(record: dict[str, Any]) -> float | None:
    """Mean accuracy over the last ``TAIL_ROUNDS`` rounds: one round's accuracy moves by a
    point or more from round to round under per-step dropout, so the final round alone can
    rank two methods by noise; None when the record has no per-round curve."""
    curve = record.get("accuracy_per_round")
    if not curve:
        return None
    return float(np.mean(curve[-TAIL_ROUNDS:]))


def paired_gap(
    cells: list[dict[str, Any]],
    fedavg: list[dict[str, Any]],
    value: Callable[[dict[str, Any]], float | None] = final_accuracy,
) -> str:
    """``value`` (final-round accuracy by default) minus FedAvg's at the same rate and seed,
    ``mean ± std`` over the seeds both have, and how many of them are ahead: seeds differ more
    than the algorithms do (FedAvg's own seeds spread by half a point), so the gap is read per
    seed."""
    by_seed = {int(r["seed"]): value(r) for r in fedavg}
    pairs = [
        (mine, theirs)
        for r in cells
        if (mine := value(r)) is not None and (theirs := by_seed.get(int(r["seed"]))) is not None
    ]
    if not pairs:
        return "-"
    ahead = sum(a > b for a, b in pairs)
    gap = mean_std([a - b for a, b in pairs], signed=True, digits=2)
    return f"{gap} ({ahead}/{len(pairs)} ahead)"


def report_markdown(records: list[dict[str, Any]], rounds: int) -> str:
    rows = summary_rows(records, rounds)
    lines = [
        BEGIN,
        "",
        f"Generated by `python -m benchmarks.usc_had_authors --report --rounds {rounds}` from "
        "`benchmarks/results/usc_had_authors.json`. Accuracy is the authors' evaluation: the "
        "mean over the 10 phones of each phone's model (global weights, its own BatchNorm "
        "statistics) on its own complete test split; 'pooled' is the pooled test set with the "
        "phones' mean statistics. Mean ± std (ddof=0) over the seeds listed; one seed: its value. "
        "'vs FedAvg': final round minus FedAvg's at the same rate and seed, over the seeds both "
        f"have; 'last {TAIL_ROUNDS}': the same for the mean of the last {TAIL_ROUNDS} rounds, "
        "which one round's noise moves less.",
        "",
        "| rate | algorithm | seeds | final round | best round | pooled (final) | vs FedAvg "
        f"(final, paired) | vs FedAvg (last {TAIL_ROUNDS}, paired) | wall s/cell |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['rate']:.1f} | {r['algorithm']} | {','.join(map(str, r['seeds']))} | "
            f"{r['final']} | {r['best']} | {r['pooled']} | {r['vs_fedavg']} | "
            f"{r['vs_fedavg_tail']} | {r['wall_s']:.0f} |"
        )
    if not rows:
        lines += ["| - | no cell at this round count yet | | | | | | | |", "", END]
        return "\n".join(lines)
    lines += ["", platform_line(records), "", f"![accuracy vs round](images/{PLOT.name})", ""]
    lines.append(END)
    return "\n".join(lines)


def platform_line(records: list[dict[str, Any]]) -> str:
    """Which machines the cells were measured on: a cell repeats bit for bit only on the same
    CPU and builds, so a reader checking one against their own run needs to know."""
    machines: dict[str, int] = {}
    unknown = 0
    for r in records:
        facts = r.get("platform")
        if facts is None:
            unknown += 1
            continue
        cpu, isa, torch = (facts.get(k, "?") for k in ("cpu", "cpu_capability", "torch"))
        name = f"{cpu} ({isa}, torch {torch})"
        machines[name] = machines.get(name, 0) + 1
    parts = [f"{n} on {name}" for name, n in sorted(machines.items())]
    if unknown:
        parts.append(f"{unknown} from before the machine was recorded")
    return (
        "Machines (cells): " + "; ".join(parts) + ". A cell repeats bit for bit on the same CPU "
        'and builds, not across machines ("Same code, another machine" above).'
    )


def write_plot(records: list[dict[str, Any]], rounds: int, path: Path = PLOT) -> None:
    """Accuracy vs round per (algorithm, rate): mean over seeds, band = min..max of seeds."""
    from matplotlib.figure import Figure

    rates = sorted({float(r["rate"]) for r in records if int(r["rounds"]) == rounds})
    fig = Figure(figsize=(5.5 * max(1, len(rates)), 4))
    axes = fig.subplots(1, max(1, len(rates)), squeeze=False)[0]
    # One colour per algorithm in every panel, so a line means the same method across rates.
    colours = {a: f"C{i}" for i, a in enumerate(ALGORITHMS)}
    for ax, rate in zip(axes, rates or [0.0], strict=False):
        for algorithm in ALGORITHMS:
            curves = [
                r["accuracy_per_round"]
                for r in records
                if r["algorithm"] == algorithm
                and float(r["rate"]) == rate
                and int(r["rounds"]) == rounds
            ]
            if not curves:
                continue
            c = 100 * np.array(curves, dtype=float)
            x = np.arange(1, c.shape[1] + 1)
            seeds = f"{len(curves)} seed" + ("s" if len(curves) > 1 else "")
            colour = colours[algorithm]
            ax.plot(x, c.mean(axis=0), color=colour, label=f"{algorithm} ({seeds})")
            ax.fill_between(x, c.min(axis=0), c.max(axis=0), color=colour, alpha=0.2)
        ax.set_title(f"USC-HAD, authors' protocol, acc dropout {rate}")
        ax.set_xlabel("round")
        ax.set_ylabel("mean per-phone test accuracy (%)")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def write_report(
    rounds: int, results_md: Path = RESULTS_MD, plot: Path = PLOT, results: Path = RESULTS
) -> None:
    records = read_results(results)
    section = report_markdown(records, rounds)
    text = results_md.read_text() if results_md.is_file() else ""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + section + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n## FedMobile as its authors ran it (issue 11)\n\n"
        text += section + "\n"
    results_md.write_text(text)
    if any(int(r["rounds"]) == rounds for r in records):
        write_plot(records, rounds, plot)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--algorithms", nargs="+", default=list(ALGORITHMS), choices=ALGORITHMS)
    parser.add_argument("--rates", nargs="+", type=float, default=list(RATES))
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument("--max-cells", type=int, default=None, help="stop after this many cells")
    parser.add_argument("--runs-dir", default=str(Path(tempfile.gettempdir()) / "usc_had_authors"))
    parser.add_argument("--checkpoint-every", type=int, default=10)
    parser.add_argument("--scenario", default=str(SCENARIO))
    parser.add_argument("--results", default=str(RESULTS), help="the JSON file of records")
    parser.add_argument(
        "--override", action="append", default=[], help="extra dotted=value for every cell"
    )
    parser.add_argument("--commit", action="store_true", help="git-commit the JSON per cell")
    parser.add_argument("--report", action="store_true", help="write the docs section and plot")
    parser.add_argument(
        "--from-sweep",
        metavar="SWEEP_DIR",
        default=None,
        help="add the finished cells of a sweep of scenarios/usc_had_authors_grid.yaml",
    )
    parser.add_argument("--verbose", action="store_true", help="show each run's progress")
    parser.add_argument(
        "--time-rounds", type=int, default=0, help="only time this many rounds per algorithm"
    )
    args = parser.parse_args(argv)
    if args.time_rounds:
        time_rounds(args.algorithms, args.time_rounds, args.rates[0])
        return
    if args.report:
        write_report(args.rounds, results=Path(args.results))
        return
    if args.from_sweep:
        added = import_sweep(Path(args.from_sweep), Path(args.results))
        print(f"{added} cell(s) added to {args.results}", file=sys.stderr)
        return
    run_grid(args)


if __name__ == "__main__":
    main()
