"""PNG plots of a run and of a sweep, readable at a glance: titles, units, legends.

Why ``matplotlib.figure.Figure`` and not pyplot: pyplot keeps global state (current figure,
backend) that leaks memory over a sweep's many plots and needs a display; a bare ``Figure`` renders
with the Agg canvas, holds no global state and is freed when it goes out of scope.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from fedmobile_actors.errors import RunDirError
from fedmobile_actors.report.run_dir import RunDir
from fedmobile_actors.report.summary import target_key, write_summary
from fedmobile_actors.report.sweep_summary import (
    labels_for,
    param_name,
    setting_label,
    value_label,
)

#: Outcome colours, shared by the participation bars and the timeline (colour-blind safe).
OUTCOME_COLOURS = {
    "reported": "#009E73",
    "dropped_offline": "#0072B2",
    "dropped_failed": "#D55E00",
    "late": "#E69F00",
    "stale": "#CC79A7",
    "rejected": "#000000",
}
OUTCOME_LABELS = {
    "reported": "reported",
    "dropped_offline": "dropped (offline)",
    "dropped_failed": "dropped (failed)",
    "late": "late",
    "stale": "stale",
    "rejected": "rejected",
}
DPI = 110


def time_unit(max_seconds: float) -> tuple[str, float]:
    """A readable unit for a virtual-time axis: (label, seconds per unit)."""
    if max_seconds < 600:
        return "s", 1.0
    if max_seconds < 3 * 3600:
        return "min", 60.0
    return "h", 3600.0


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    return path


def _evaluated(metrics: Sequence[dict[str, Any]], column: str) -> list[dict[str, Any]]:
    return [r for r in metrics if r.get(column) is not None and math.isfinite(r[column])]


# ------------------------------------------------------------------------------------ one run


def plot_accuracy(metrics: Sequence[dict[str, Any]], path: Path, title: str = "") -> Path:
    """Test accuracy (all modalities, and the test-time missing pattern) vs round and vs time."""
    fig = Figure(figsize=(11, 4.2))
    by_round, by_time = fig.subplots(1, 2, sharey=True)
    label, scale = time_unit(max((r["virtual_time_s"] for r in metrics), default=0.0))
    for column, name, style in (
        ("accuracy_full", "all modalities", "-o"),
        ("accuracy_missing", "test-time missing", "--s"),
    ):
        rows = _evaluated(metrics, column)
        acc = [100 * r[column] for r in rows]
        by_round.plot([r["round"] for r in rows], acc, style, markersize=3, label=name)
        by_time.plot([r["virtual_time_s"] / scale for r in rows], acc, style, markersize=3)
    by_round.set(xlabel="round (global version)", ylabel="test accuracy (%)", title="per round")
    by_time.set(xlabel=f"virtual time ({label})", title="per virtual time")
    for ax in (by_round, by_time):
        ax.grid(alpha=0.3)
    by_round.legend(loc="lower right")
    fig.suptitle(f"Accuracy{f': {title}' if title else ''}")
    return _save(fig, path)


def plot_participation(metrics: Sequence[dict[str, Any]], path: Path, title: str = "") -> Path:
    """Per round, stacked task outcomes (reported, dropped, late, stale), with dispatches."""
    fig = Figure(figsize=(10, 4.2))
    ax = fig.subplots()
    rounds = [r["round"] for r in metrics]
    bottom = [0] * len(metrics)
    for outcome, colour in OUTCOME_COLOURS.items():
        counts = [int(r.get(outcome, 0)) for r in metrics]
        if outcome != "reported" and not any(counts):
            continue
        ax.bar(rounds, counts, bottom=bottom, color=colour, label=OUTCOME_LABELS[outcome])
        bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    ax.plot(rounds, [r["dispatched"] for r in metrics], "k_", markersize=12, label="dispatched")
    ax.set(xlabel="round (global version)", ylabel="tasks (count)")
    ax.set_title(f"Participation per round{f': {title}' if title else ''}")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def timeline_figure(
    events: Sequence[dict[str, Any]],
    metrics: Sequence[dict[str, Any]],
    rounds: tuple[int, int] | None = None,
    max_phones: int = 40,
    title: str = "",
) -> Figure:
    """Phone tasks as bars from dispatch to end, coloured by outcome, for a window of rounds.

    ``rounds`` is an inclusive (first, last) window; default: the first three rounds. At most
    ``max_phones`` phones are shown (those with tasks in the window, lowest ids first), so the
    bars stay legible on a fleet of thousands. Dashed lines mark aggregations.
    """
    first, last = rounds or (1, 3)
    window = [e for e in events if first <= int(e["round"]) <= last]
    phones = sorted({int(e["phone_id"]) for e in window})
    shown = phones[:max_phones]
    row_of = {phone: i for i, phone in enumerate(shown)}
    ends = [r["virtual_time_s"] for r in metrics if first <= int(r["round"]) <= last]
    label, scale = time_unit(max([float(e["end_s"]) for e in window] + ends + [0.0]))
    bars: dict[str, tuple[list[int], list[float], list[float]]] = {}
    for event in window:
        if int(event["phone_id"]) in row_of:
            ys, lefts, widths = bars.setdefault(event["outcome"], ([], [], []))
            ys.append(row_of[int(event["phone_id"])])
            lefts.append(float(event["dispatch_s"]) / scale)
            widths.append((float(event["end_s"]) - float(event["dispatch_s"])) / scale)
    fig = Figure(figsize=(11, 1.5 + 0.22 * max(len(shown), 4)))
    ax = fig.subplots()
    for outcome in sorted(
        bars, key=lambda o: list(OUTCOME_COLOURS).index(o) if o in OUTCOME_COLOURS else 99
    ):
        ys, lefts, widths = bars[outcome]
        ax.barh(
            ys,
            widths,
            left=lefts,
            height=0.7,
            color=OUTCOME_COLOURS.get(outcome, "grey"),
            label=OUTCOME_LABELS.get(outcome, outcome),
        )
    for end in ends:
        ax.axvline(end / scale, color="grey", linestyle="--", linewidth=0.8)
    ax.set_yticks(range(len(shown)), [str(p) for p in shown], fontsize=7)
    ax.invert_yaxis()
    ax.set(xlabel=f"virtual time ({label})", ylabel="phone id")
    more = f", {len(shown)} of {len(phones)} phones" if len(shown) < len(phones) else ""
    ax.set_title(
        f"Phone tasks, rounds {first}-{last}{more}; dashed: aggregations"
        f"{f' ({title})' if title else ''}"
    )
    if bars:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def plot_timeline(
    events: Sequence[dict[str, Any]],
    metrics: Sequence[dict[str, Any]],
    path: Path,
    rounds: tuple[int, int] | None = None,
    max_phones: int = 40,
    title: str = "",
) -> Path:
    """``timeline_figure`` saved as a PNG."""
    return _save(timeline_figure(events, metrics, rounds, max_phones, title), path)


def plot_shapley(metrics: Sequence[dict[str, Any]], path: Path, title: str = "") -> Path | None:
    """Shapley weights of the generator clusters per round; None when no round has any.

    Clusters are re-formed every round, so a cluster index means nothing across rounds: the
    weights are stacked largest first, and the effective number of clusters 1/sum(w^2) shows
    how concentrated the weighting is.
    """
    rows = [r for r in metrics if r.get("shapley_weights")]
    if not rows:
        return None
    fig = Figure(figsize=(10, 6))
    top, bottom_ax = fig.subplots(2, 1, sharex=True, height_ratios=(2, 1))
    rounds = [r["round"] for r in rows]
    ordered = [sorted((float(w) for w in r["shapley_weights"]), reverse=True) for r in rows]
    depth = max(len(w) for w in ordered)
    base = [0.0] * len(rows)
    for rank in range(depth):
        heights = [w[rank] if rank < len(w) else 0.0 for w in ordered]
        top.bar(rounds, heights, bottom=base, label=f"rank {rank + 1}" if depth <= 8 else None)
        base = [b + h for b, h in zip(base, heights, strict=True)]
    top.set(ylabel="weight (fraction)", title="cluster weights, largest at the bottom")
    if depth <= 8:
        top.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), title="weight rank")
    effective = [1.0 / sum(x * x for x in w) if any(w) else 0.0 for w in ordered]
    bottom_ax.plot(
        rounds,
        [r.get("clusters", len(w)) for r, w in zip(rows, ordered, strict=True)],
        "-o",
        markersize=3,
        label="clusters",
    )
    bottom_ax.plot(rounds, effective, "--s", markersize=3, label="effective clusters 1/Σw²")
    bottom_ax.set(xlabel="round (global version)", ylabel="clusters (count)")
    bottom_ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    for ax in (top, bottom_ax):
        ax.grid(alpha=0.3)
    fig.suptitle(f"Generator-cluster Shapley weights{f': {title}' if title else ''}")
    return _save(fig, path)


def plot_groups(metrics: Sequence[dict[str, Any]], path: Path, title: str = "") -> Path | None:
    """Per grouping (tier, availability class, subject): each group's accuracy on its own test
    windows per round (left) and its reported tasks per phone over the run (right).

    Why per phone: groups differ in size, and "budget phones report half as often" is the
    question, not "there are fewer budget phones". None when the run has no group figures.
    """
    by_grouping: dict[str, list[str]] = {}
    for row in metrics:
        for key in row.get("groups") or {}:
            grouping = key.split("/", 1)[0]
            if key not in by_grouping.setdefault(grouping, []):
                by_grouping[grouping].append(key)
    if not by_grouping:
        return None
    fig = Figure(figsize=(11, 3.4 * len(by_grouping)))
    axes = fig.subplots(len(by_grouping), 2, squeeze=False)
    for (grouping, keys), (acc_ax, part_ax) in zip(by_grouping.items(), axes, strict=True):
        reports = []
        for key in sorted(keys):
            points = [
                (r["round"], 100 * acc)
                for r in metrics
                if (acc := (r.get("groups") or {}).get(key, {}).get("accuracy")) is not None
            ]
            name = key.split("/", 1)[1]
            acc_ax.plot(*zip(*points, strict=True), "-o", markersize=2, label=name)
            phones = max(
                int((r.get("groups") or {}).get(key, {}).get("phones", 0)) for r in metrics
            )
            total = sum(
                int((r.get("groups") or {}).get(key, {}).get("reported", 0)) for r in metrics
            )
            reports.append((name, total / phones if phones else 0.0))
        acc_ax.set(xlabel="round (global version)", ylabel="accuracy (%)")
        acc_ax.set_title(f"accuracy on each {grouping}'s own test windows", fontsize=10)
        acc_ax.grid(alpha=0.3)
        if len(keys) <= 12:
            acc_ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
        part_ax.barh([n for n, _ in reports], [v for _, v in reports], color="#009E73")
        part_ax.set(xlabel="reported tasks per phone (whole run)")
        part_ax.set_title(f"participation by {grouping}", fontsize=10)
        part_ax.grid(axis="x", alpha=0.3)
    fig.suptitle(f"Per-group results{f': {title}' if title else ''}")
    fig.tight_layout()
    return _save(fig, path)


def _finite_or_none(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def plot_fedmobile_diagnostics(
    metrics: Sequence[dict[str, Any]], path: Path, title: str = ""
) -> Path | None:
    """What FedMobile's server step did each round, beside the accuracy it led to; None when the
    run has no such columns (not a FedMobile run, or an older run directory).

    Four panels sharing the round axis: test and validation accuracy with the missing pattern
    (the swings to explain); the fill's relative error on the proxy set (1 = no better than the
    mean feature); how concentrated the generator weighting is (largest Shapley weight, largest
    cluster's share of the reports); and v(all clusters) - v(no generator) = the sum of the
    Shapley values, i.e. how much the generators' fill is worth on the proxy set at all.
    """
    rows = [
        r
        for r in metrics
        if r.get("cluster_sizes") or _finite_or_none(r.get("fill_error")) is not None
    ]
    if not rows:
        return None
    fig = Figure(figsize=(10, 10))
    acc_ax, fill_ax, weight_ax, gain_ax = fig.subplots(4, 1, sharex=True)
    for column, name, style in (
        ("accuracy_missing", "test, missing pattern", "-o"),
        ("accuracy_val_missing", "validation, missing pattern", "--s"),
        ("accuracy_val_full", "validation, all modalities", ":^"),
    ):
        evaluated = _evaluated(metrics, column)
        if evaluated:
            acc_ax.plot(
                [r["round"] for r in evaluated],
                [100 * r[column] for r in evaluated],
                style,
                markersize=3,
                label=name,
            )
    acc_ax.set(ylabel="accuracy (%)", title="accuracy")
    acc_ax.legend(loc="lower right", fontsize=8)
    fills = [(r["round"], v) for r in rows if (v := _finite_or_none(r.get("fill_error")))]
    if fills:
        fill_ax.plot([f[0] for f in fills], [f[1] for f in fills], "-o", markersize=3)
    fill_ax.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
    fill_ax.set(ylabel="relative error", title="fill vs real feature on the proxy set")
    rounds = [r["round"] for r in rows]
    top = [max((float(w) for w in r.get("shapley_weights") or ()), default=math.nan) for r in rows]
    share = [
        max(sizes) / sum(sizes) if (sizes := list(r.get("cluster_sizes") or ())) else math.nan
        for r in rows
    ]
    weight_ax.plot(rounds, top, "-o", markersize=3, label="largest Shapley weight")
    weight_ax.plot(rounds, share, "--s", markersize=3, label="largest cluster's share of reports")
    model = [_finite_or_none(r.get("model_weight_max")) for r in rows]
    if any(m is not None for m in model):
        weight_ax.plot(
            rounds,
            [math.nan if m is None else m for m in model],
            ":^",
            markersize=3,
            label="largest phone's share of the model average",
        )
    weight_ax.set(ylabel="fraction", title="server weighting", ylim=(0, 1.05))
    weight_ax.legend(loc="lower right", fontsize=8)
    gain = [
        100 * sum(float(v) for v in values) if (values := r.get("shapley_values")) else math.nan
        for r in rows
    ]
    gain_ax.plot(rounds, gain, "-o", markersize=3)
    gain_ax.axhline(0.0, color="grey", linewidth=0.8, linestyle="--")
    gain_ax.set(
        xlabel="round (global version)",
        ylabel="accuracy points",
        title="v(all clusters) - v(zero fill) on the proxy set",
    )
    for ax in (acc_ax, fill_ax, weight_ax, gain_ax):
        ax.grid(alpha=0.3)
    fig.suptitle(f"FedMobile diagnostics{f': {title}' if title else ''}")
    return _save(fig, path)


def make_run_plots(run: RunDir | str | Path) -> list[Path]:
    """Draw every plot of one run into ``<run>/plots/``; returns the files written."""
    run_dir = run if isinstance(run, RunDir) else RunDir.open(run)
    metrics, events = run_dir.read_metrics(), run_dir.read_events()
    title = run_dir.name
    out = run_dir.plots_dir
    if out.exists() and not out.is_dir():
        raise RunDirError(f"{out}: is a file, not the plots folder; move it away to draw plots")
    written = [
        plot_accuracy(metrics, out / "accuracy.png", title),
        plot_participation(metrics, out / "participation.png", title),
    ]
    if events:
        written.append(plot_timeline(events, metrics, out / "timeline.png", title=title))
    for extra in (
        plot_shapley(metrics, out / "shapley.png", title),
        plot_groups(metrics, out / "groups.png", title),
        plot_fedmobile_diagnostics(metrics, out / "fedmobile_diagnostics.png", title),
    ):
        if extra is not None:
            written.append(extra)
    return written


def report_runs(paths: Sequence[str | Path]) -> list[Path]:
    """What ``fedmobile report RUN_DIR...`` does: write each run's summary.json and plots.

    Every path is opened (and validated) before anything is written, so a typo in the third path
    does not leave the first two half-reported. Returns every file written.
    """
    runs = [RunDir.open(p) for p in paths]
    written: list[Path] = []
    for run in runs:
        write_summary(run)
        written.append(run.summary_path)
        written.extend(make_run_plots(run))
    return written


# ------------------------------------------------------------------------------------ sweeps

SweepRow = tuple[dict[str, Any], dict[str, Any]]  # (swept params, summary)


def swept_parameters(rows: Sequence[SweepRow]) -> list[str]:
    """Parameters whose value differs between runs, except the algorithm and the seed."""
    names = sorted({name for params, _ in rows for name in params})
    return [
        name
        for name in names
        if name not in ("algorithm.name", "seed")
        and len({repr(params.get(name)) for params, _ in rows}) > 1
    ]


def _algorithm(params: dict[str, Any], summary: dict[str, Any]) -> str:
    """What a curve is of: a sweep variant's name (it names the method and its own settings),
    else the algorithm."""
    if "variant" in params:
        return str(params["variant"])
    return str(params.get("algorithm.name", summary.get("algorithm", "run")))


def sweep_target(rows: Sequence[SweepRow], column: str = "full") -> float | None:
    """The highest target at least half the runs reached (None if no target is reached)."""
    if not rows:
        return None
    targets = rows[0][1].get("targets", [])
    best = None
    for target in targets:
        hits = sum(1 for _, s in rows if s["accuracy"][column]["targets"].get(target_key(target)))
        if hits * 2 >= len(rows):
            best = target
    return best


def _series(
    rows: Sequence[SweepRow], param: str, value_of: Callable[[dict[str, Any]], float | None]
) -> dict[str, dict[Any, list[float]]]:
    """label -> x -> values over seeds; a label is the algorithm plus the other swept params,
    written as people read them (``availability=markov(mean_on_s=30, ...)``)."""
    others = [p for p in swept_parameters(rows) if p not in (param, "variant")]
    labels = {p: labels_for([params.get(p) for params, _ in rows]) for p in [*others, param]}
    series: dict[str, dict[Any, list[float]]] = {}
    for params, summary in rows:
        head = [] if param in ("algorithm.name", "variant") else [_algorithm(params, summary)]
        rest = setting_label({p: params.get(p) for p in others}, labels) if others else ""
        label = ", ".join([*head, *([rest] if rest else [])]) or "runs"
        value = value_of(summary)
        x = _hashable(params.get(param), labels[param])
        bucket = series.setdefault(label, {}).setdefault(x, [])
        if value is not None:
            bucket.append(float(value))
    return series


def _hashable(value: Any, labels: dict[str, str]) -> Any:
    """A swept value as a plot key: numbers stay numbers (a numeric axis), anything else
    becomes its readable label among the parameter's values (``deadline(overcommit=1.5)``)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    return labels.get(json.dumps({"v": value}, sort_keys=True, default=str), value_label(value))


def _draw_series(
    ax: Axes,
    series: dict[str, dict[Any, list[float]]],
    line: str = "-o",
    suffix: str = "",
    colours: dict[str, str] | None = None,
) -> None:
    """One line per label, mean over seeds with a band of +- one standard deviation (bars on
    a categorical axis); categorical x if needed."""
    xs_all = sorted({x for points in series.values() for x in points}, key=repr)
    numeric = all(isinstance(x, int | float) and not isinstance(x, bool) for x in xs_all)
    if numeric:
        xs_all = sorted(xs_all)
        positive = [x for x in xs_all if x > 0]
        if len(positive) == len(xs_all) > 1 and max(positive) / min(positive) >= 100:
            ax.set_xscale("log")
    position = {x: (x if numeric else i) for i, x in enumerate(xs_all)}
    for index, (label, points) in enumerate(series.items()):
        xs = [x for x in xs_all if points.get(x)]
        means = [statistics.fmean(points[x]) for x in xs]
        stds = [statistics.stdev(points[x]) if len(points[x]) > 1 else 0.0 for x in xs]
        # On a categorical axis each series sits a little to the side of the category, so
        # bars of equal settings (three strategies at one missing rate) do not hide each other.
        dodge = 0.0 if numeric else 0.3 * (index - (len(series) - 1) / 2) / max(1, len(series))
        where = [position[x] + dodge for x in xs]
        colour = (colours or {}).get(label)
        if numeric:
            (drawn,) = ax.plot(where, means, line, markersize=4, label=label + suffix, color=colour)
            ax.fill_between(
                where,
                [m - d for m, d in zip(means, stds, strict=True)],
                [m + d for m, d in zip(means, stds, strict=True)],
                color=drawn.get_color(),
                alpha=0.15,
                linewidth=0,
            )
        else:
            ax.errorbar(  # no line between categories: their order means nothing
                where,
                means,
                yerr=stds,
                fmt=line.lstrip("-"),
                markersize=4,
                capsize=3,
                label=label + suffix,
                color=colour,
            )
    if not numeric:
        ax.set_xticks(list(position.values()), [str(x) for x in xs_all], fontsize=8)
    ax.grid(alpha=0.3)


def _same_values(rows: Sequence[SweepRow]) -> bool:
    """True when every run's test-time-missing accuracy equals its all-modality accuracy (no
    missing pattern at test): the second line would hide under the first."""
    return all(s["accuracy"]["full"]["final"] == s["accuracy"]["missing"]["final"] for _, s in rows)


def plot_sweep_parameter(rows: Sequence[SweepRow], param: str, path: Path) -> Path:
    """Final accuracy and time-to-accuracy against one swept parameter, a line per algorithm
    (and per value of the other swept parameters), mean over seeds with a +- std band."""
    fig = Figure(figsize=(12, 5.0), layout="constrained")  # titles and legend never overlap
    acc_ax, time_ax = fig.subplots(1, 2)
    labels = sorted(_series(rows, param, lambda s: None))
    colours = {label: f"C{i % 10}" for i, label in enumerate(labels)}  # full and missing alike
    keys = [("full", "-o")] if _same_values(rows) else [("full", "-o"), ("missing", "--s")]
    for key, line in keys:
        suffix = (
            ""
            if len(keys) == 1
            else (" (all modalities)" if key == "full" else " (test-time missing)")
        )
        _draw_series(acc_ax, _series(rows, param, _final_percent(key)), line, suffix, colours)
    name = param_name(param, [param])
    acc_ax.set(xlabel=param, ylabel="final test accuracy (%)", title="final accuracy")
    target = sweep_target(rows)
    if target is not None:
        key = target_key(target)
        times = [s["accuracy"]["full"]["targets"].get(key) for _, s in rows]
        reached = sum(1 for t in times if t)
        max_time = max((t["virtual_time_s"] for t in times if t), default=0.0)
        label, scale = time_unit(max_time)

        def time_of(summary: dict[str, Any]) -> float | None:
            hit = summary["accuracy"]["full"]["targets"].get(key)
            return None if not hit else hit["virtual_time_s"] / scale

        _draw_series(time_ax, _series(rows, param, time_of), colours=colours)
        time_ax.set(
            xlabel=param,
            ylabel=f"virtual time ({label})",
            title=f"time to {100 * target:g}% accuracy\n({reached} of {len(rows)} runs reached it)",
        )
    else:
        time_ax.set_title("time to accuracy: no target reached by half the runs")
        time_ax.set_xlabel(param)
    fig.legend(*acc_ax.get_legend_handles_labels(), loc="outside lower center", fontsize=8, ncol=2)
    seeds = max(
        (len(v) for p in _series(rows, param, _final_percent("full")).values() for v in p.values()),
        default=0,
    )
    fig.suptitle(f"Sweep over {name}: mean over {seeds} seeds, band (or bars) = ± 1 std")
    return _save(fig, path)


def _final_percent(key: str) -> Callable[[dict[str, Any]], float | None]:
    """Final accuracy (%) of a summary, all modalities (``full``) or test-time missing."""

    def value_of(summary: dict[str, Any]) -> float | None:
        final = summary["accuracy"][key]["final"]
        return None if final is None else 100 * final

    return value_of


def _availability_classes(rows: Sequence[SweepRow]) -> list[str]:
    """Availability-class group keys (``availability/<class>``) seen in the runs' summaries."""
    keys = {k for _, s in rows for k in (s.get("groups") or {}) if k.startswith("availability/")}
    return sorted(keys)


def plot_sweep_groups(rows: Sequence[SweepRow], param: str, path: Path) -> Path:
    """Final accuracy on each availability class's own test windows against one swept
    parameter, a line per class (and per algorithm or other swept value), mean over seeds
    with a +- std band.

    Why a plot of its own: when availability follows the data, the overall accuracy can stay
    put while one class's phones are served far worse; this is the figure that shows it.
    """
    fig = Figure(figsize=(8, 5.0), layout="constrained")
    ax = fig.subplots(1, 1)
    for key in _availability_classes(rows):

        def value_of(summary: dict[str, Any], key: str = key) -> float | None:
            final = (summary.get("groups") or {}).get(key, {}).get("final_accuracy")
            return None if final is None else 100 * float(final)

        name = key.split("/", 1)[1]
        series = {
            f"{label}: {name}": points for label, points in _series(rows, param, value_of).items()
        }
        _draw_series(ax, series)
    ax.set(
        xlabel=param,
        ylabel="final accuracy on the class's own test windows (%)",
        title=f"Per availability class, over {param_name(param, [param])}: "
        "mean over seeds, band (or bars) = ± 1 std",
    )
    ax.title.set_fontsize(10)
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", fontsize=8, ncol=2)
    return _save(fig, path)


def make_sweep_plots(sweep_dir: str | Path, rows: Sequence[SweepRow]) -> list[Path]:
    """One plot per swept parameter into ``<sweep_dir>/plots/sweep-<param>.png``, and with
    more than one availability class, ``sweep-<param>-availability.png`` per parameter.

    A sweep over algorithms only (nothing else varies) gets one plot with the algorithm on x.
    """
    out = Path(sweep_dir) / "plots"
    params = swept_parameters(rows)
    if not params and rows:
        params = ["algorithm.name"]
    written = [
        plot_sweep_parameter(rows, param, out / f"sweep-{_file_safe(param)}.png")
        for param in params
    ]
    if len(_availability_classes(rows)) > 1:
        written += [
            plot_sweep_groups(rows, param, out / f"sweep-{_file_safe(param)}-availability.png")
            for param in params
        ]
    return written


def _file_safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "-" for c in name)
