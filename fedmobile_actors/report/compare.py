"""Runs side by side: one row per figure, one column per run; and the one-table-per-sweep CSV.

Why figures as rows: people compare two to five runs, and a summary has some thirty figures; rows
of figures with a column per run fit a terminal and read across like a paper's table. A sweep's
many runs go the other way (``sweep_table``: one row per run), which is what a spreadsheet wants.

Runs of different lengths are aligned on the last round all of them reached ("accuracy at round
R"), the only accuracy comparison that is fair between a finished and an interrupted run.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from fedmobile_actors.errors import RunDirError, UserError
from fedmobile_actors.report.run_dir import RunDir, write_json_atomic
from fedmobile_actors.report.summary import TOTAL_COLUMNS, load_summary, target_key
from fedmobile_actors.report.sweep_summary import value_label
from fedmobile_actors.scenario import load_scenario, read_settings

Value = str | int | float | None


@dataclass(frozen=True)
class Comparison:
    """A table of figures (rows) by runs (columns); ``values[i][j]`` is figure i of run j."""

    runs: tuple[str, ...]
    figures: tuple[str, ...]
    values: tuple[tuple[Value, ...], ...]

    def column(self, run: str) -> dict[str, Value]:
        """One run's figures by name."""
        j = self.runs.index(run)
        return {fig: row[j] for fig, row in zip(self.figures, self.values, strict=True)}

    def row(self, figure: str) -> tuple[Value, ...]:
        """One figure across the runs."""
        return self.values[self.figures.index(figure)]


def _accuracy_at(metrics: list[dict[str, Any]], round_index: int, column: str) -> float | None:
    """The last evaluated accuracy at or before ``round_index`` (None if none was evaluated)."""
    value = None
    for row in metrics:
        if int(row["round"]) > round_index:
            break
        acc = row.get(column)
        if acc is not None and math.isfinite(acc):
            value = float(acc)
    return value


def _figures(summary: dict[str, Any]) -> dict[str, Value]:
    """The flat figures of one summary, in display order."""
    out: dict[str, Value] = {
        "status": summary.get("status"),
        "algorithm": summary.get("algorithm"),
        "policy": summary.get("policy"),
        "seed": summary.get("seed"),
        "rounds": summary["rounds"],
        "virtual_time_s": summary["virtual_time_s"],
        "wall_time_s": summary["wall_time_s"],
    }
    for key in ("full", "missing"):
        acc = summary["accuracy"][key]
        out[f"final_accuracy_{key}"] = acc["final"]
        out[f"best_accuracy_{key}"] = acc["best"]
    per_phone = summary["accuracy"].get("per_phone")
    if per_phone:  # only runs that measured it (rounds.eval_per_phone: the authors' evaluation)
        out["final_accuracy_per_phone"] = per_phone["final"]
        out["best_accuracy_per_phone"] = per_phone["best"]
    for key in ("full", "missing"):
        for target in summary["targets"]:
            hit = summary["accuracy"][key]["targets"].get(target_key(target))
            out[f"time_to_{target_key(target)}_{key}_s"] = hit["virtual_time_s"] if hit else None
    for name in TOTAL_COLUMNS:
        out[name] = summary["totals"][name]
    out["phones_reported"] = summary["participation"]["phones_reported"]
    out["reported_task_median_s"] = summary["participation"]["reported_task_median_s"]
    return out


def _column_names(runs: Sequence[RunDir]) -> list[str]:
    """Run directory names, with the parent added where two runs share a name."""
    names = [run.name for run in runs]
    return [
        f"{run.path.parent.name}/{run.name}" if names.count(run.name) > 1 else run.name
        for run in runs
    ]


#: Scenario keys that name or describe a run rather than set it up.
_NOT_SETTINGS = ("name", "description", "base_dir", "sweep", "output")

#: Prefix of the figure rows that hold a differing scenario setting.
SETTING = "setting "


def _settings(run: RunDir) -> dict[str, Any]:
    """The run's resolved scenario as dotted path -> value (empty if it cannot be read).

    A stored scenario this version no longer validates (a field since removed or renamed) is
    compared as written, so an old run still shows how it differs from a new one.
    """
    try:
        dumped = load_scenario(run.scenario_path).model_dump(mode="json")
    except UserError:
        try:
            dumped = read_settings(run.scenario_path)
        except UserError:
            return {}
    except OSError:
        return {}
    out: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        # An availability process or a distribution is one setting (its tag names it).
        whole = isinstance(value, dict) and any(
            isinstance(value.get(tag), str) for tag in ("model", "dist")
        )
        if isinstance(value, dict) and value and not whole:
            for key, item in value.items():
                walk(f"{prefix}.{key}" if prefix else key, item)
        else:
            out[prefix] = value

    for key in _NOT_SETTINGS:
        dumped.pop(key, None)
    walk("", dumped)
    return out


def differing_settings(runs: Sequence[RunDir]) -> dict[str, tuple[Any, ...]]:
    """Scenario settings whose value is not the same in every run: path -> value per run.

    Why: "run b is worse than run a" means nothing until one sees that b has 50 phones where a
    had 12; the settings that differ are the first thing a comparison must say.
    """
    settings = [_settings(run) for run in runs]
    if len(runs) < 2 or not all(settings):
        return {}
    paths: list[str] = []
    for one in settings:
        paths.extend(p for p in one if p not in paths)
    return {
        path: tuple(one.get(path) for one in settings)
        for path in paths
        if len({json.dumps(one.get(path), sort_keys=True) for one in settings}) > 1
    }


def compare(runs: Sequence[RunDir]) -> Comparison:
    """Align the runs' summaries; the first rows are the scenario settings that differ between
    the runs, then accuracy at the last round all reached, then every figure."""
    summaries = [load_summary(run) for run in runs]
    common = min((s["rounds"] for s in summaries), default=0)
    metrics = [run.read_metrics() for run in runs]
    differing = differing_settings(runs)
    per_run = []
    for j, (summary, rows) in enumerate(zip(summaries, metrics, strict=True)):
        figures: dict[str, Value] = {
            f"{SETTING}{path}": _setting_value(values[j]) for path, values in differing.items()
        }
        figures["common_round"] = common
        for key in ("full", "missing"):
            figures[f"accuracy_{key}_at_common_round"] = _accuracy_at(
                rows, common, f"accuracy_{key}"
            )
        figures.update(_figures(summary))
        for key, group in summary.get("groups", {}).items():
            if key.split("/", 1)[0] in ("tier", "availability"):
                figures[f"accuracy_{key}"] = group["final_accuracy"]
                figures[f"reports_per_phone_{key}"] = group["reports_per_phone"]
        per_run.append(figures)
    names: list[str] = []
    for figures in per_run:  # union, first-seen order (targets may differ between runs)
        names.extend(n for n in figures if n not in names)
    values = tuple(tuple(f.get(name) for f in per_run) for name in names)
    return Comparison(tuple(_column_names(runs)), tuple(names), values)


def _setting_value(value: Any) -> Value:
    """A setting as one cell: scalars as they are, sections and lists as readable labels."""
    if value is None or isinstance(value, str | int | float):
        return value
    return value_label(value)


def format_value(figure: str, value: Value) -> str:
    """Accuracies as percentages, times and bytes with units, missing values as a dash."""
    if figure.startswith(SETTING):
        return "—" if value is None else str(value)
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if isinstance(value, float) and "accuracy" in figure:
        return f"{100 * value:.2f}%"
    if figure.endswith("_s") and isinstance(value, int | float):
        return f"{value:,.1f} s"
    if figure.startswith("bytes") and isinstance(value, int | float):
        return f"{value / 1e6:,.2f} MB"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


#: Run names longer than this are shown as "run 1", "run 2" with a key above the table.
_SHORT_NAME = 14


def render(comparison: Comparison, console: Console | None = None) -> None:
    """Print the comparison (figures down, runs across) in 80 columns: runs with long names are
    numbered and named above the table; differing settings come first, then a rule, then the
    figures."""
    out = console or Console(width=80)
    names = list(comparison.runs)
    if any(len(n) > _SHORT_NAME for n in names):
        for j, name in enumerate(names, start=1):
            out.print(Text(f"run {j}: {name}"), soft_wrap=True)
        names = [f"run {j}" for j in range(1, len(names) + 1)]
    settings = [f for f in comparison.figures if f.startswith(SETTING)]
    if len(comparison.runs) > 1 and not settings:
        out.print("settings: the runs' scenarios differ in nothing but their names")
    table = Table(title="Run comparison", show_lines=False, width=min(out.width, 80))
    table.add_column("figure", style="bold", overflow="fold")
    for name in names:
        table.add_column(name, justify="right", overflow="fold")
    for figure, row in zip(comparison.figures, comparison.values, strict=True):
        last_setting = figure.startswith(SETTING) and figure == settings[-1]
        # Text, not markup: a setting such as "[modality=acc, rate=0.8]" is not a style tag.
        table.add_row(
            Text(figure.removeprefix(SETTING) if figure.startswith(SETTING) else figure),
            *(Text(format_value(figure, v)) for v in row),
            end_section=last_setting,
        )
    out.print(table)


def write_csv(comparison: Comparison, path: str | os.PathLike[str]) -> Path:
    """The comparison as CSV in the same orientation (raw numbers, empty for missing)."""
    out = Path(path)
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["figure", *comparison.runs])
        for figure, row in zip(comparison.figures, comparison.values, strict=True):
            writer.writerow([figure, *("" if v is None else v for v in row)])
    return out


def compare_runs(
    paths: Sequence[str | os.PathLike[str]],
    console: Console | None = None,
    csv_path: str | os.PathLike[str] | None = None,
) -> Comparison:
    """What ``fedmobile compare RUN_DIR...`` does: open all, compare, print, optionally save."""
    # A sweep directory stands for its cells' runs; every path is checked before any work.
    expanded = [run for p in paths for run in (sweep_run_dirs(p) or [Path(p)])]
    runs = [RunDir.open(p) for p in expanded]
    comparison = compare(runs)
    render(comparison, console)
    if csv_path is not None:
        write_csv(comparison, csv_path)
    return comparison


# ------------------------------------------------------------------------------------ sweeps


def sweep_table(
    rows: Sequence[tuple[dict[str, Any], dict[str, Any]]],
) -> tuple[list[str], list[list[Value]]]:
    """One row per run of a sweep: its swept parameters, then its figures."""
    params: list[str] = []
    for p, _ in rows:
        params.extend(k for k in p if k not in params)
    figure_rows = [_figures(summary) for _, summary in rows]
    figures: list[str] = []
    for f in figure_rows:
        # A figure that is also a parameter (the seed) is shown once, with the parameters.
        figures.extend(k for k in f if k not in figures and k not in params)
    header = ["run", *params, *figures]
    table = [
        [summary.get("run"), *(p.get(k) for k in params), *(f.get(k) for k in figures)]
        for (p, summary), f in zip(rows, figure_rows, strict=True)
    ]
    return header, table


def write_sweep_table(
    path: str | os.PathLike[str], rows: Sequence[tuple[dict[str, Any], dict[str, Any]]]
) -> Path:
    """A sweep's ``sweep.csv``: one row per run (parameters, then summary figures)."""
    header, table = sweep_table(rows)
    out = Path(path)
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows([["" if v is None else v for v in row] for row in table])
    return out


#: A sweep's table, beside its cells: the same rows as CSV (spreadsheets) and JSON (programs).
SWEEP_CSV = "sweep.csv"
SWEEP_JSON = "sweep.json"

#: The leading columns of every sweep row, before the cell's swept parameters and its figures.
SWEEP_ID_COLUMNS = ("cell", "run")


def sweep_row(
    cell: str,
    run: str | None,
    params: dict[str, Any],
    summary: dict[str, Any] | None,
    error: str | None,
    node: str = "",
) -> dict[str, Value]:
    """One cell's row of a sweep table, a flat dict.

    Keys, in order: ``cell`` (the id of its resolved settings), ``run`` (its run directory,
    relative to the sweep directory; empty if it failed before one existed), each swept
    parameter by its dotted path and ``seed``, ``status`` (finished, failed, or running for a
    cell cut short), ``error`` (one line, empty unless failed), then the figures of its
    summary (``_figures``: algorithm, policy, rounds, times, final and best accuracies, time
    to each target, totals, participation) and ``node`` (the Ray node it ran on; empty when it
    ran in this machine's processes). A cell without a summary has None figures.
    """
    figures = _figures(summary) if summary is not None else {}
    row: dict[str, Value] = {"cell": cell, "run": run or None}
    row.update({k: _plain(v) for k, v in params.items()})
    row["status"] = "failed" if error is not None else figures.get("status", "failed")
    row["error"] = error
    for key, value in figures.items():
        if key not in row:
            row[key] = None if isinstance(value, float) and not math.isfinite(value) else value
    row["node"] = node or None
    return row


def _plain(value: Any) -> Value:
    """A parameter value as a table cell: scalars as they are, anything else as compact JSON."""
    if value is None or isinstance(value, str | int | float):
        return value
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def write_sweep_tables(sweep_dir: str | os.PathLike[str], rows: Sequence[dict[str, Value]]) -> Path:
    """Write ``sweep.json`` (the list of rows) and ``sweep.csv`` (the same, columns in first-seen
    order, empty for None), each replaced in one step so a killed sweep leaves a whole table."""
    out = Path(sweep_dir)
    write_json_atomic(out / SWEEP_JSON, list(rows))
    header: list[str] = []
    for row in rows:
        header.extend(k for k in row if k not in header)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if row.get(k) is None else row.get(k) for k in header])
    tmp = out / f".{SWEEP_CSV}.tmp"
    tmp.write_text(buffer.getvalue(), encoding="utf-8")
    tmp.replace(out / SWEEP_CSV)
    return out / SWEEP_CSV


def load_sweep_rows(sweep_dir: str | os.PathLike[str]) -> list[dict[str, Value]]:
    """The rows of a sweep's table (``sweep.json``), one dict per cell as ``sweep_row`` made it;
    empty if the sweep has not written one yet. This is the function to build on (summaries
    over seeds, plots): the rows are plain data, independent of how the cells were run."""
    path = Path(sweep_dir) / SWEEP_JSON
    if not path.is_file():
        return []
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise RunDirError(f"{path}: unreadable sweep table ({err})") from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise RunDirError(f"{path}: not a sweep table (expected a list of rows)")
    return rows


def sweep_run_dirs(path: str | os.PathLike[str]) -> list[Path]:
    """The run directories of a sweep's cells that have one, in table order (for ``compare``)."""
    root = Path(path)
    return [root / str(row["run"]) for row in load_sweep_rows(root) if row.get("run")]
