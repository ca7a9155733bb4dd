"""A sweep's answer: one row per setting, mean +- std over its seeds, in the terminal and a CSV.

Why per setting and not per run: a sweep asks "what does this knob do", and one run per seed
answers it only once the seeds are folded together and their spread is shown beside the effect.
The input is one row per sweep cell (a run: its params, seed, status and summary), whoever ran
the cells; the output is ``SettingRow``s, a table that fits an 80-column terminal, and
``sweep_summary.csv`` with every figure.

Figures per setting: final accuracy (all modalities, and under the test-time missing pattern),
the virtual time to one common accuracy target (the highest that at least half the finished runs
reached, so every setting is timed on the same bar; runs that never reach it are counted, not
averaged), and participation (reported tasks / dispatched tasks). With groups of phones (tiers,
availability classes) each group's accuracy and reports per phone are folded the same way.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fedmobile_actors.report.summary import target_key
from fedmobile_actors.scenario.sweep import value_labels

SWEEP_SUMMARY = "sweep_summary.csv"

#: Groupings shown in the per-group table (subjects are too many for a terminal).
TABLE_GROUPINGS = ("tier", "availability")

#: Width of the printed tables.
WIDTH = 80


@dataclass(frozen=True)
class Spread:
    """Mean and sample standard deviation of one figure over a setting's seeds (``n`` values)."""

    mean: float | None
    std: float | None
    n: int

    @staticmethod
    def of(values: Sequence[float | None]) -> Spread:
        got = [float(v) for v in values if v is not None and math.isfinite(float(v))]
        if not got:
            return Spread(None, None, 0)
        std = statistics.stdev(got) if len(got) > 1 else 0.0
        return Spread(statistics.fmean(got), std, len(got))


@dataclass(frozen=True)
class SettingRow:
    """One setting of a sweep (its swept values, seed excluded) folded over its seeds."""

    params: dict[str, Any]
    runs: int
    finished: int
    final_accuracy_full: Spread
    final_accuracy_missing: Spread
    target: float | None
    time_to_target_s: Spread  # over the runs that reached ``target``; ``n`` of ``finished``
    reported_share: Spread  # reported tasks / dispatched tasks
    groups: dict[str, tuple[Spread, Spread]] = field(
        default_factory=dict
    )  # accuracy, reports/phone


def cell_row(params: Mapping[str, Any], summary: Mapping[str, Any]) -> dict[str, Any]:
    """The input row of one sweep cell from its swept params and its run's summary.json."""
    seed = params.get("seed", summary.get("seed"))
    return {
        "params": {k: v for k, v in params.items() if k != "seed"},
        "seed": seed,
        "status": summary.get("status", "finished"),
        "summary": dict(summary),
    }


def _setting_key(params: Mapping[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, default=str)


def common_target(cells: Sequence[Mapping[str, Any]], column: str = "full") -> float | None:
    """The highest accuracy target that at least half the finished cells reached."""
    finished = [c["summary"] for c in cells if c.get("status") == "finished" and "summary" in c]
    if not finished:
        return None
    best = None
    for target in finished[0].get("targets", []):
        hits = sum(1 for s in finished if s["accuracy"][column]["targets"].get(target_key(target)))
        if hits * 2 >= len(finished):
            best = float(target)
    return best


def _time_to(summary: Mapping[str, Any], target: float | None) -> float | None:
    if target is None:
        return None
    hit = summary["accuracy"]["full"]["targets"].get(target_key(target))
    return None if not hit else float(hit["virtual_time_s"])


def _reported_share(summary: Mapping[str, Any]) -> float | None:
    totals = summary.get("totals") or {}
    dispatched = int(totals.get("dispatched") or 0)
    return int(totals.get("reported") or 0) / dispatched if dispatched else None


def summarise_settings(cells: Sequence[Mapping[str, Any]]) -> list[SettingRow]:
    """Fold the cells (``cell_row`` dicts) into one row per setting, in first-seen order."""
    target = common_target(cells)
    by_setting: dict[str, list[Mapping[str, Any]]] = {}
    params_of: dict[str, dict[str, Any]] = {}
    for cell in cells:
        key = _setting_key(cell["params"])
        by_setting.setdefault(key, []).append(cell)
        params_of.setdefault(key, dict(cell["params"]))
    rows = []
    for key, members in by_setting.items():
        done = [c["summary"] for c in members if c.get("status") == "finished" and "summary" in c]
        group_keys: list[str] = []
        for s in done:
            group_keys.extend(k for k in s.get("groups", {}) if k not in group_keys)
        groups = {
            g: (
                Spread.of([s.get("groups", {}).get(g, {}).get("final_accuracy") for s in done]),
                Spread.of([s.get("groups", {}).get(g, {}).get("reports_per_phone") for s in done]),
            )
            for g in group_keys
        }
        rows.append(
            SettingRow(
                params=params_of[key],
                runs=len(members),
                finished=len(done),
                final_accuracy_full=Spread.of([s["accuracy"]["full"]["final"] for s in done]),
                final_accuracy_missing=Spread.of([s["accuracy"]["missing"]["final"] for s in done]),
                target=target,
                time_to_target_s=Spread.of([_time_to(s, target) for s in done]),
                reported_share=Spread.of([_reported_share(s) for s in done]),
                groups=groups,
            )
        )
    return rows


# ------------------------------------------------------------------------------------ labels


def value_label(value: Any) -> str:
    """A swept value as people read it: ``0.25``, ``markov(mean_on_s=30, mean_off_s=15)``,
    ``[gyro 0.8]``; never a Python dict repr."""
    if isinstance(value, Mapping):
        tag = next(
            (
                str(value[k])
                for k in ("model", "dist", "kind", "name")
                if isinstance(value.get(k), str)
            ),
            None,
        )
        rest = {k: v for k, v in value.items() if tag is None or str(v) != tag}
        inner = ", ".join(f"{k}={value_label(v)}" for k, v in rest.items())
        if tag is None:
            return inner or "{}"
        return f"{tag}({inner})" if inner else tag
    if isinstance(value, list | tuple):
        return "[" + "; ".join(value_label(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _tail(path: str) -> str:
    parts = path.split(".")
    return parts[-2] if parts[-1] == "name" and len(parts) > 1 else parts[-1]


def param_name(path: str, all_paths: Sequence[str]) -> str:
    """The last part of a dotted path (``algorithm.name`` -> ``algorithm``), or the whole path
    where two last parts collide."""
    tail = _tail(path)
    return tail if [_tail(p) for p in all_paths].count(tail) == 1 else path


def labels_for(values: Sequence[Any]) -> dict[str, str]:
    """Each distinct value (by its JSON) -> its label among the others, as in run names: a
    swept section shows only what tells it apart (``deadline(overcommit=1.5)``, ``async``)."""
    distinct: dict[str, Any] = {}
    for value in values:
        distinct.setdefault(_setting_key({"v": value}), value)
    return dict(zip(distinct, value_labels(list(distinct.values())), strict=True))


def setting_label(params: Mapping[str, Any], labels: Mapping[str, Mapping[str, str]]) -> str:
    """``failure_prob=0.25, availability=markov(mean_on_s=30)``: the setting's swept values,
    each labelled among its parameter's values (``labels``: param -> ``labels_for``)."""
    names = list(params)
    return (
        ", ".join(
            f"{param_name(k, names)}={labels[k].get(_setting_key({'v': v}), value_label(v))}"
            for k, v in params.items()
        )
        or "-"
    )


# ------------------------------------------------------------------------------------ output


def _pct(spread: Spread) -> str:
    if spread.mean is None:
        return "—"
    return f"{100 * spread.mean:.1f} ± {100 * (spread.std or 0.0):.1f}"


def _seconds(spread: Spread, of: int) -> str:
    if spread.mean is None:
        return f"never (0/{of})"
    text = f"{spread.mean:,.0f} ± {spread.std or 0.0:,.0f}"
    return text if spread.n == of else f"{text} ({spread.n}/{of})"


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _varying(rows: Sequence[SettingRow]) -> list[str]:
    """Swept params whose value differs between settings (a constant one says nothing)."""
    names: list[str] = []
    for row in rows:
        names.extend(k for k in row.params if k not in names)
    return [
        n for n in names if len({_setting_key({n: r.params.get(n)}) for r in rows}) > 1
    ] or names


def _labeller(rows: Sequence[SettingRow]) -> tuple[list[str], dict[str, dict[str, str]]]:
    names = _varying(rows)
    return names, {n: labels_for([r.params.get(n) for r in rows]) for n in names}


def _label(row: SettingRow, names: Sequence[str], labels: Mapping[str, Mapping[str, str]]) -> str:
    return setting_label({n: row.params.get(n) for n in names}, labels)


def format_table(rows: Sequence[SettingRow]) -> list[str]:
    """The setting table as lines of at most ``WIDTH`` characters."""
    if not rows:
        return ["(no runs)"]
    names, labels = _labeller(rows)
    show_missing = any(r.final_accuracy_missing.mean != r.final_accuracy_full.mean for r in rows)
    target = rows[0].target
    time_head = "time to —" if target is None else f"time to {100 * target:g}% (s)"
    heads = ["final acc %"] + (["missing %"] if show_missing else []) + [time_head, "reported %"]
    cells = [
        [_pct(r.final_accuracy_full)]
        + ([_pct(r.final_accuracy_missing)] if show_missing else [])
        + [_seconds(r.time_to_target_s, r.finished), _pct(r.reported_share)]
        for r in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(heads)]
    label_width = max(12, WIDTH - sum(w + 2 for w in widths) - 1)
    seeds = max(r.runs for r in rows)
    full = [_label(row, names, labels) for row in rows]
    lines = [
        _fit(
            f"mean ± std over seeds ({seeds} per setting); setting = "
            + ", ".join(param_name(n, names) for n in names),
            WIDTH,
        ),
    ]
    if max(len(label) for label in full) > label_width:
        # Labels that would be cut are listed once in full and numbered in the table.
        lines += [_fit(f"#{i} = {label}", WIDTH) for i, label in enumerate(full, start=1)]
        full = [f"#{i}" for i in range(1, len(full) + 1)]
    lines.append(
        f"{'setting':<{label_width}} "
        + "  ".join(f"{h:>{w}}" for h, w in zip(heads, widths, strict=True))
    )
    for text, values in zip(full, cells, strict=True):
        label = _fit(text, label_width)
        lines.append(
            f"{label:<{label_width}} "
            + "  ".join(f"{v:>{w}}" for v, w in zip(values, widths, strict=True))
        )
    return lines


def format_group_table(rows: Sequence[SettingRow]) -> list[str]:
    """Per setting and group (tiers, availability classes with more than one group): accuracy on
    the group's own test windows and reports per phone; empty when no grouping has two groups."""
    names, labels = _labeller(rows)
    shown = [
        g
        for g in (rows[0].groups if rows else {})
        if g.split("/", 1)[0] in TABLE_GROUPINGS
        and sum(1 for h in rows[0].groups if h.split("/", 1)[0] == g.split("/", 1)[0]) > 1
    ]
    if not shown:
        return []
    lines = [
        "per group (its phones' own test windows), mean ± std over seeds",
        f"{'setting':<34} {'group':<18} {'acc %':>11}  {'reports/phone':>13}",
    ]
    full = [_label(row, names, labels) for row in rows]
    if max(len(label) for label in full) > 34:  # numbered as in the setting table
        full = [f"#{i}" for i in range(1, len(full) + 1)]
    for row, text in zip(rows, full, strict=True):
        label = _fit(text, 34)
        for g in shown:
            acc, reports = row.groups.get(g, (Spread(None, None, 0), Spread(None, None, 0)))
            per_phone = (
                "—" if reports.mean is None else f"{reports.mean:.2f} ± {reports.std or 0.0:.2f}"
            )
            lines.append(f"{label:<34} {_fit(g, 18):<18} {_pct(acc):>11}  {per_phone:>13}")
            label = ""
    return lines


def write_csv(rows: Sequence[SettingRow], path: str | Path) -> Path:
    """``sweep_summary.csv``: one row per setting, every figure as mean and std columns."""
    names: list[str] = []
    for row in rows:
        names.extend(k for k in row.params if k not in names)
    groups: list[str] = []
    for row in rows:
        groups.extend(g for g in row.groups if g not in groups)
    figures = ["final_accuracy_full", "final_accuracy_missing", "time_to_target_s"]
    header = [*names, "runs", "finished", "target"]
    for fig in [*figures, "reported_share"]:
        header += [f"{fig}_mean", f"{fig}_std"]
    header.append("reached_target")
    for g in groups:
        header += [f"{g}:accuracy_mean", f"{g}:accuracy_std", f"{g}:reports_per_phone_mean"]
    out = Path(path)
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for row in rows:
            values: list[Any] = [
                json.dumps(row.params[n])
                if isinstance(row.params.get(n), dict | list)
                else row.params.get(n)
                for n in names
            ]
            values += [row.runs, row.finished, row.target]
            for spread in (
                row.final_accuracy_full,
                row.final_accuracy_missing,
                row.time_to_target_s,
                row.reported_share,
            ):
                values += [spread.mean, spread.std]
            values.append(row.time_to_target_s.n)
            for g in groups:
                acc, reports = row.groups.get(g, (Spread(None, None, 0), Spread(None, None, 0)))
                values += [acc.mean, acc.std, reports.mean]
            writer.writerow(["" if v is None else v for v in values])
    return out


def report_sweep(
    sweep_dir: str | Path, cells: Sequence[Mapping[str, Any]], quiet: bool = False
) -> list[SettingRow]:
    """What a sweep does at its end: fold the cells, write ``sweep_summary.csv``, print the
    tables (unless ``quiet``)."""
    rows = summarise_settings(cells)
    write_csv(rows, Path(sweep_dir) / SWEEP_SUMMARY)
    if not quiet:
        lines = format_table(rows)
        groups = format_group_table(rows)
        print("\n".join(lines + (["", *groups] if groups else [])), flush=True)
    return rows
