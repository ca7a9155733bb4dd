"""docs/results.md's tables and accuracy-vs-round plots, made from the grid's results file.

Reads the records ``benchmarks/usc_had_grid.py`` appended (one per finished cell), groups them by
(setting, variant, rate), and prints mean ± std over seeds (population std) of: final test
accuracy with the missing pattern and with all modalities, the last-3-round mean of the missing
one, final validation (proxy) accuracy with the missing pattern, and the round-to-round std. Plots
(one PNG per setting and rate) show the test accuracy with the missing pattern per round, the
line the seeds' mean and the band their min-max.

    python -m benchmarks.usc_had_report --setting reduced --plots docs/images

With ``--write docs/results.md`` the tables replace the text between the markers
``<!-- grid:<setting>:begin -->`` and ``<!-- grid:<setting>:end -->`` of that file, and the
headroom table (the missing path's own accuracy, when the grid has ``*_tested_without_acc``
cells) the text between ``<!-- grid:<setting>:headroom:begin -->`` and its end marker, and the
paired comparison with FedAvg (per-seed differences) that between ``grid:<setting>:versus``,
and the dips table between ``grid:<setting>:swings``; each of these three only where the file
has its markers.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks.usc_had_grid import DEFAULT_RESULTS, load_records, round_to_round_std

Group = list[dict[str, Any]]


def groups(records: Sequence[Mapping[str, Any]], setting: str) -> dict[tuple[str, float], Group]:
    """Records of one setting by (variant, rate), in first-seen order, seeds sorted."""
    out: dict[tuple[str, float], Group] = {}
    for r in records:
        if r["setting"] == setting:
            out.setdefault((str(r["variant"]), float(r["rate"])), []).append(dict(r))
    return {k: sorted(v, key=lambda r: int(r["seed"])) for k, v in out.items()}


def mean_std(values: Sequence[float | None], signed: bool = False, digits: int = 1) -> str:
    """``mean ± std`` (population std) in percent over the finite values; one value alone,
    without a "± 0.0" that would read as a spread measured; "-" if none. ``signed`` prints a +
    on gains."""
    finite = [100 * float(v) for v in values if v is not None]
    if not finite:
        return "-"
    average = statistics.fmean(finite)
    average = 0.0 if round(average, digits) == 0 else average  # never "-0.0"
    mean = f"{average:{'+' if signed else ''}.{digits}f}"
    return mean if len(finite) == 1 else f"{mean} ± {statistics.pstdev(finite):.{digits}f}"


#: Variants tested with the missing modality absent on every window (``usc_had_grid``): their
#: rows go to the headroom table, not the main one.
WITHOUT = "_tested_without_acc"


def headroom(by_cell: Mapping[tuple[str, float], Group]) -> str:
    """How good the missing-modality path is: per training rate, each ``*_tested_without_acc``
    variant's accuracy with acc absent on every test (and validation) window, beside FedAvg
    trained on gyro alone (rate 1.0, where every window lacks acc). Empty without such rows."""
    paths = sorted({(v, r) for v, r in by_cell if v.endswith(WITHOUT)}, key=lambda k: (k[1], k[0]))
    if not paths:
        return ""
    lines = [
        "| trained with acc missing on | path of | seeds | test, acc absent everywhere | "
        "val, acc absent everywhere |",
        "|---|---|---|---|---|",
    ]
    gyro_only = by_cell.get(("fedavg", 1.0))
    if gyro_only:
        seeds = ",".join(str(r["seed"]) for r in gyro_only)
        lines.append(
            f"| every window (rate 1) | fedavg | {seeds} "
            f"| {mean_std([r['accuracy_missing'] for r in gyro_only])} "
            f"| {mean_std([r['val_accuracy_missing'] for r in gyro_only])} |"
        )
    for variant, rate in paths:
        rs = by_cell[(variant, rate)]
        seeds = ",".join(str(r["seed"]) for r in rs)
        lines.append(
            f"| {rate:g} | {variant.removesuffix(WITHOUT)} | {seeds} "
            f"| {mean_std([r['accuracy_missing'] for r in rs])} "
            f"| {mean_std([r['val_accuracy_missing'] for r in rs])} |"
        )
    return "\n".join(lines)


#: The baseline the issue's target is stated against.
BASELINE = "fedavg"


def versus(by_cell: Mapping[tuple[str, float], Group], baseline: str = BASELINE) -> str:
    """Each variant against ``baseline`` at the same rate, paired by seed (the seed fixes the
    data split, the missing pattern and the fleet, so the per-seed difference removes what the
    two runs share): mean ± std of the differences in points over the seeds both have, and on
    how many of them the variant is ahead. Empty when no variant shares a seed with it."""
    lines = [
        f"| variant | rate | paired seeds | Δ test missing | Δ test full | Δ test missing, last 3 "
        f"| Δ val missing | ahead of {baseline} (test missing) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (variant, rate), rs in sorted(by_cell.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        base = {int(r["seed"]): r for r in by_cell.get((baseline, rate), [])}
        pairs = [(r, base[int(r["seed"])]) for r in rs if int(r["seed"]) in base]
        if variant == baseline or variant.endswith(WITHOUT) or not pairs:
            continue
        ahead = sum(a["accuracy_missing"] > b["accuracy_missing"] for a, b in pairs)
        seeds = ",".join(str(a["seed"]) for a, _ in pairs)
        lines.append(
            f"| {variant} | {rate:g} | {seeds} | {_delta(pairs, 'accuracy_missing')} "
            f"| {_delta(pairs, 'accuracy_full')} | {_delta(pairs, 'last3_missing')} "
            f"| {_delta(pairs, 'val_accuracy_missing')} | {ahead}/{len(pairs)} |"
        )
    return "\n".join(lines) if len(lines) > 2 else ""


def _delta(pairs: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]], key: str) -> str:
    """Mean ± std of variant minus baseline in ``key`` over the pairs that both measured."""
    return mean_std(
        [None if a.get(key) is None or b.get(key) is None else a[key] - b[key] for a, b in pairs],
        signed=True,
    )


#: A dip: a round at least this many points below both of its neighbours.
DIP_POINTS = 5.0


def dip_rounds(points: Sequence[float], first: int = 1) -> list[int]:
    """Indices from ``first`` on (each needs a neighbour on both sides) whose value, in points,
    is ``DIP_POINTS`` or more below both neighbours."""
    return [
        i
        for i in range(max(1, first), len(points) - 1)
        if points[i] <= min(points[i - 1], points[i + 1]) - DIP_POINTS
    ]


def dips_and_range(curve: Sequence[float | None]) -> tuple[int, float] | None:
    """Over the second half of the run (past the first climb, as the round-to-round std): how
    many rounds dip ``DIP_POINTS`` below both neighbours, and max - min, in points."""
    finite = [100 * float(v) for v in curve if v is not None]
    half = finite[len(finite) // 2 :]
    if len(half) < 3:
        return None
    return len(dip_rounds(half)), max(half) - min(half)


def swings(by_cell: Mapping[tuple[str, float], Group]) -> str:
    """Where a variant's accuracy swings: dips and range with all modalities (the model's own
    swing: no fill is used) beside those with the missing pattern (the model with its fill)."""
    lines = [
        "| variant | rate | seeds | dips, all modalities (per seed) | dips, missing pattern "
        "(per seed) | range, all modalities | range, missing pattern |",
        "|---|---|---|---|---|---|---|",
    ]
    for (variant, rate), rs in sorted(by_cell.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        if variant.endswith(WITHOUT) or not 0 < rate < 1:
            continue
        cells = []
        for key in ("full", "missing"):
            measured = [m for r in rs if (m := dips_and_range(r.get("curves", {}).get(key, [])))]
            if len(measured) != len(rs):
                break
            counts = [d for d, _ in measured]
            cells.append(f"{statistics.fmean(counts):.1f} ({', '.join(map(str, counts))})")
            cells.append(f"{statistics.fmean(span for _, span in measured):.1f}")
        if len(cells) == 4:
            seeds = ",".join(str(r["seed"]) for r in rs)
            lines.append(
                f"| {variant} | {rate:g} | {seeds} | {cells[0]} | {cells[2]} | {cells[1]} "
                f"| {cells[3]} |"
            )
    return "\n".join(lines) if len(lines) > 2 else ""


def _full_swing(record: Mapping[str, Any]) -> float | None:
    """The round-to-round std of the complete-modality test accuracy (from its curve; records
    keep only the missing pattern's): a swing there is the model's, not the fill's."""
    curve = record.get("curves", {}).get("full")
    return round_to_round_std(curve) if curve else None


def table(by_cell: Mapping[tuple[str, float], Group]) -> str:
    """The markdown table: one line per (variant, rate), but the headroom table's rows."""
    lines = [
        "| variant | rate | seeds | test missing | test full | test missing, last 3 | "
        "val missing | val full | round-to-round std (test missing) | round-to-round std "
        "(test full) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (variant, rate), rs in sorted(by_cell.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        if variant.endswith(WITHOUT):
            continue
        seeds = ",".join(str(r["seed"]) for r in rs)
        lines.append(
            f"| {variant} | {rate:g} | {seeds} | {mean_std([r['accuracy_missing'] for r in rs])} "
            f"| {mean_std([r['accuracy_full'] for r in rs])} "
            f"| {mean_std([r['last3_missing'] for r in rs])} "
            f"| {mean_std([r['val_accuracy_missing'] for r in rs])} "
            f"| {mean_std([r['val_accuracy_full'] for r in rs])} "
            f"| {mean_std([r['round_to_round_std_missing'] for r in rs])} "
            f"| {mean_std([_full_swing(r) for r in rs])} |"
        )
    return "\n".join(lines)


def plot(
    by_cell: Mapping[tuple[str, float], Group], setting: str, out: Path, min_seeds: int = 2
) -> list[Path]:
    """One PNG per rate: test accuracy with the missing pattern per round, seeds' mean and
    min-max band, for every variant with at least ``min_seeds`` seeds (not the headroom
    table's, whose test has no missing pattern). Rates 0 and 1 (reference cells: nothing
    missing, or one modality only) get no plot: nothing in them is a missing pattern."""
    from matplotlib.figure import Figure

    written = []
    for rate in sorted({rate for _, rate in by_cell}):
        shown = {
            (v, r): rs
            for (v, r), rs in by_cell.items()
            if r == rate and len(rs) >= min_seeds and not v.endswith(WITHOUT)
        }
        if not shown or not 0 < rate < 1:
            continue
        fig = Figure(figsize=(8, 4.5))
        ax = fig.subplots()
        for (variant, _r), rs in shown.items():
            curves = [
                [v if v is not None else float("nan") for v in x["curves"]["missing"]] for x in rs
            ]
            length = min(len(c) for c in curves)
            rounds = list(range(1, length + 1))
            columns = [[100 * c[i] for c in curves] for i in range(length)]
            mean = [statistics.fmean(col) for col in columns]
            line = ax.plot(rounds, mean, "-", label=f"{variant} ({len(rs)} seeds)")[0]
            ax.fill_between(
                rounds,
                [min(col) for col in columns],
                [max(col) for col in columns],
                color=line.get_color(),
                alpha=0.2,
            )
        ax.set(
            xlabel="round (global version)",
            ylabel="test accuracy, missing pattern (%)",
            title=f"USC-HAD, {setting} setting, acc missing at rate {rate:g} "
            "(line: seed mean, band: min-max)",
        )
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
        path = out / f"usc_had_{setting}_rate{rate:g}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110, bbox_inches="tight")
        written.append(path)
    return written


def diagnostics(
    by_cell: Mapping[tuple[str, float], Group], setting: str, variant: str, out: Path
) -> list[Path]:
    """FedMobile's diagnostics plot (report/plots.py) of each rate's first seed of ``variant``,
    rebuilt from the per-round lists its records keep."""
    from fedmobile_actors.report.plots import plot_fedmobile_diagnostics

    written = []
    for (name, rate), rs in by_cell.items():
        if name != variant:
            continue
        r = rs[0]
        rows = [
            {
                "round": i + 1,
                "accuracy_missing": r["curves"]["missing"][i],
                "accuracy_val_missing": r["curves"]["val_missing"][i],
                "accuracy_val_full": r["curves"]["val_full"][i],
                "fill_error": r["fill_error"][i],
                "shapley_weights": r["shapley_weights"][i],
                "shapley_values": r["shapley_values"][i],
                "cluster_sizes": r["cluster_sizes"][i],
            }
            for i in range(len(r["curves"]["missing"]))
        ]
        rows = [{k: (float("nan") if v is None else v) for k, v in row.items()} for row in rows]
        title = f"{variant}, {setting}, rate {rate:g}, seed {r['seed']}"
        path = out / f"diagnostics_{variant}_{setting}_rate{rate:g}_seed{r['seed']}.png"
        done = plot_fedmobile_diagnostics(rows, path, title)
        if done is not None:
            written.append(done)
    return written


def write_between_markers(
    doc: Path, setting: str, text: str, part: str = "", required: bool = True
) -> None:
    """Replace the text between the setting's markers in ``doc``; ``part`` names a second
    table of the setting (``grid:<setting>:<part>:begin``). Missing markers stop the report
    when ``required``, else the table is skipped (a document may show only some tables)."""
    name = f"{setting}:{part}" if part else setting
    begin, end = f"<!-- grid:{name}:begin -->", f"<!-- grid:{name}:end -->"
    content = doc.read_text(encoding="utf-8")
    if begin not in content or end not in content:
        if not required:
            return
        raise SystemExit(f"{doc} has no {begin} ... {end} markers")
    head, rest = content.split(begin, 1)
    _, tail = rest.split(end, 1)
    doc.write_text(f"{head}{begin}\n{text}\n{end}{tail}", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    parser.add_argument("--setting", default="reduced")
    parser.add_argument("--plots", type=Path, default=None, help="folder for the PNGs")
    parser.add_argument(
        "--diagnostics", nargs="*", default=[], help="variants to draw diagnostics plots of"
    )
    parser.add_argument("--write", type=Path, default=None, help="markdown file with markers")
    args = parser.parse_args(argv)
    by_cell = groups(load_records(args.results), args.setting)
    text = table(by_cell)
    print(text)
    if args.plots is not None:
        for path in plot(by_cell, args.setting, args.plots):
            print(f"wrote {path}")
        for variant in args.diagnostics:
            for path in diagnostics(by_cell, args.setting, variant, args.plots):
                print(f"wrote {path}")
    extras = {"headroom": headroom(by_cell), "versus": versus(by_cell), "swings": swings(by_cell)}
    for extra in extras.values():
        if extra:
            print(f"\n{extra}")
    if args.write is not None:
        write_between_markers(args.write, args.setting, text)
        for part, extra in extras.items():
            if extra:
                write_between_markers(args.write, args.setting, extra, part, required=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
