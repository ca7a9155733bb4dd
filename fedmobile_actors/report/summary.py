"""A run in one JSON object: final and best accuracy, time-to-accuracy, totals.

Why explicit targets: "time to 80% of the best accuracy" moves with the run it describes, so two
runs cannot be compared on it. A fixed list of absolute accuracy targets gives, for every run,
the virtual time (and round) at which its evaluated accuracy first reached each target, or None.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from typing import Any

from fedmobile_actors.report.run_dir import RunDir

#: Absolute accuracy targets reported by default (fractions of 1).
DEFAULT_TARGETS: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9)

#: RoundMetrics count columns summed into ``totals``.
TOTAL_COLUMNS = (
    "dispatched",
    "reported",
    "dropped_offline",
    "dropped_failed",
    "late",
    "stale",
    "rejected",
    "bytes_down",
    "bytes_up",
)

#: Tolerance of "accuracy >= target", so 0.3 + 0.6 counts as reaching 0.9.
_EPS = 1e-9

#: The two accuracies every run reports, keyed as in summary.json.
ACCURACIES = {"full": "accuracy_full", "missing": "accuracy_missing"}
#: Each phone's model on its own test split, averaged over phones (``rounds.eval_per_phone``).
PER_PHONE = "accuracy_per_phone"


def target_key(target: float) -> str:
    """The JSON key of a target (``0.8`` -> ``"0.8"``), stable across runs."""
    return f"{target:g}"


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _accuracy_figures(
    metrics: Sequence[dict[str, Any]], column: str, targets: Sequence[float]
) -> dict[str, Any]:
    """Final, best and time-to-target of one accuracy column over the evaluated rounds."""
    evaluated = [
        (int(r["round"]), float(r["virtual_time_s"]), acc)
        for r in metrics
        if (acc := _finite(r.get(column))) is not None
    ]
    reached: dict[str, dict[str, float | int] | None] = {}
    for target in targets:
        first = next(((rnd, t) for rnd, t, acc in evaluated if acc >= target - _EPS), None)
        reached[target_key(target)] = (
            None if first is None else {"round": first[0], "virtual_time_s": first[1]}
        )
    if not evaluated:
        return {
            "final": None,
            "final_round": None,
            "best": None,
            "best_round": None,
            "best_virtual_time_s": None,
            "targets": reached,
        }
    last = evaluated[-1]
    best = max(evaluated, key=lambda e: (e[2], -e[0]))  # earliest round among equal bests
    return {
        "final": last[2],
        "final_round": last[0],
        "best": best[2],
        "best_round": best[0],
        "best_virtual_time_s": best[1],
        "targets": reached,
    }


#: Per-round columns whose stability summary.json reports (test and validation accuracies).
STABILITY_COLUMNS = {
    "missing": "accuracy_missing",
    "full": "accuracy_full",
    "val_missing": "accuracy_val_missing",
    "val_full": "accuracy_val_full",
}

#: Rounds averaged for ``last3_mean``.
LAST_ROUNDS = 3


def _stability(metrics: Sequence[dict[str, Any]], column: str) -> dict[str, float | None]:
    """How much an accuracy moves from one evaluated round to the next.

    ``round_to_round_std``: std of the change between consecutive evaluations over the second half
    of the run (past the first climb, where a steady method changes little and an oscillating one
    swings); ``last3_mean``: mean of the last 3 evaluations, a less noisy "final" figure.
    """
    values = [acc for r in metrics if (acc := _finite(r.get(column))) is not None]
    half = values[len(values) // 2 :]
    steps = [b - a for a, b in itertools.pairwise(half)]
    return {
        "round_to_round_std": statistics.pstdev(steps) if len(steps) >= 2 else None,
        "last3_mean": statistics.fmean(values[-LAST_ROUNDS:]) if values else None,
    }


def _nearest_rank(ordered: Sequence[float], q: float) -> float | None:
    """The q-quantile of sorted values by the nearest-rank rule (an observed value, no blending)."""
    if not ordered:
        return None
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _task_figures(events: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Who took part and how long tasks took, from the per-task event log."""
    durations = sorted(
        float(e["end_s"]) - float(e["dispatch_s"]) for e in events if e["outcome"] == "reported"
    )
    outcomes: dict[str, int] = {}
    for event in events:
        outcomes[event["outcome"]] = outcomes.get(event["outcome"], 0) + 1
    reported = [e for e in events if e["outcome"] == "reported"]
    return {
        "tasks": len(events),
        "outcomes": dict(sorted(outcomes.items())),
        "phones_dispatched": len({e["phone_id"] for e in events}),
        "phones_reported": len({e["phone_id"] for e in reported}),
        "reported_task_median_s": statistics.median(durations) if durations else None,
        "reported_task_p90_s": _nearest_rank(durations, 0.9),
        "mean_staleness": statistics.fmean(int(e["staleness"]) for e in reported)
        if reported
        else None,
    }


#: Per-group outcome counts summed over rounds (RoundMetrics.groups).
GROUP_COUNTS = ("dispatched", "reported", "dropped_offline", "dropped_failed", "late", "stale")


def _group_figures(metrics: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per group: phones, final accuracy on its own test windows, and how often it took part.

    ``reports_per_phone`` (reported tasks / phones in the group) is the participation figure
    that compares groups of different sizes.
    """
    out: dict[str, dict[str, Any]] = {}
    for row in metrics:
        for key, figures in (row.get("groups") or {}).items():
            group = out.setdefault(
                key,
                {"phones": int(figures["phones"]), "final_accuracy": None}
                | {name: 0 for name in GROUP_COUNTS},
            )
            if (acc := _finite(figures.get("accuracy"))) is not None:
                group["final_accuracy"] = acc
            for name in GROUP_COUNTS:
                group[name] += int(figures.get(name) or 0)
    for group in out.values():
        group["reports_per_phone"] = group["reported"] / group["phones"] if group["phones"] else 0
    return dict(sorted(out.items()))


def summarise(
    metrics: Sequence[dict[str, Any]],
    events: Sequence[dict[str, Any]],
    targets: Sequence[float] = DEFAULT_TARGETS,
) -> dict[str, Any]:
    """The summary of one run from its metrics rows and event rows (as ``RunDir`` reads them).

    Every float is finite or None (JSON has no NaN). ``accuracy.<full|missing>.targets`` maps
    each target to the first evaluated round reaching it and its virtual time, or None.
    ``groups`` maps "grouping/group" (``tier/budget``) to that group's figures.
    ``accuracy.per_phone`` is there only when the run measured it (``rounds.eval_per_phone``).
    """
    last = metrics[-1] if metrics else {}
    accuracy = {key: _accuracy_figures(metrics, col, targets) for key, col in ACCURACIES.items()}
    if any(_finite(r.get(PER_PHONE)) is not None for r in metrics):
        # Only runs that asked for it (rounds.eval_per_phone): the authors' evaluation.
        accuracy["per_phone"] = _accuracy_figures(metrics, PER_PHONE, targets)
    return {
        "rounds": len(metrics),
        "last_round": int(last["round"]) if metrics else None,
        "virtual_time_s": _finite(last.get("virtual_time_s")),
        "wall_time_s": _finite(last.get("wall_time_s")),
        "targets": [float(t) for t in targets],
        "accuracy": accuracy,
        "stability": {key: _stability(metrics, col) for key, col in STABILITY_COLUMNS.items()},
        "final_loss": next(
            (v for r in reversed(metrics) if (v := _finite(r.get("loss"))) is not None), None
        ),
        "totals": {name: sum(int(r[name]) for r in metrics) for name in TOTAL_COLUMNS},
        "participation": _task_figures(events),
        "groups": _group_figures(metrics),
    }


def summarise_run(run: RunDir, targets: Sequence[float] = DEFAULT_TARGETS) -> dict[str, Any]:
    """``summarise`` a run directory, with the run's identity from ``run.json`` alongside."""
    info = run.read_run_info()
    summary = summarise(run.read_metrics(), run.read_events(), targets)
    return {
        "run": run.name,
        "name": info.name,
        "status": info.status,
        "algorithm": info.algorithm,
        "policy": info.policy,
        "seed": info.seed,
        "rounds_planned": info.rounds_planned,
        **summary,
    }


def write_summary(run: RunDir, targets: Sequence[float] = DEFAULT_TARGETS) -> dict[str, Any]:
    """Summarise a run and store it as its ``summary.json`` (atomically); returns the summary."""
    summary = summarise_run(run, targets)
    run.write_summary(summary)
    return summary


def load_summary(run: RunDir) -> dict[str, Any]:
    """The stored summary of a finished run, or a fresh one for a running or failed run.

    Why recompute for unfinished runs: their summary.json, if any, is older than their metrics.
    """
    if run.summary_path.exists() and run.read_run_info().status == "finished":
        return run.read_summary()
    return summarise_run(run)
