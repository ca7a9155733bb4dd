"""Do a FedMobile run's swings follow its server's weighting? Per-round correlations from the
grid's records (docs/results.md section 7).

For every FedMobile-family cell of a setting, over the second half of the run (as the report's
round-to-round std): the Pearson correlation between the per-round gap (accuracy with all
modalities minus with the missing pattern: what the fill costs that round) and (a) the Shapley
weight on single-phone clusters, (b) the total-variation distance between the Shapley weights
and the cluster masses, (c) the fill's relative error; and, at each dip of the complete-modality
accuracy (``usc_had_report.DIP_POINTS`` below both neighbours), the single-phone clusters'
weight in the round before, whose generator the phones trained with.

    python -m benchmarks.usc_had_swings --setting full
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.usc_had_grid import DEFAULT_RESULTS, load_records
from benchmarks.usc_had_report import dip_rounds


def _series(record: Mapping[str, Any], key: str) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in record[key]], dtype=float)


def weighting(record: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Per round: Shapley weight on single-phone clusters; TV distance of weights to masses."""
    single, tv = [], []
    for weights, sizes in zip(record["shapley_weights"], record["cluster_sizes"], strict=True):
        w, c = np.asarray(weights, float), np.asarray(sizes, float)
        if len(w) == 0 or c.sum() == 0:
            single.append(np.nan)
            tv.append(np.nan)
            continue
        single.append(float(w[c == 1].sum()))
        tv.append(float(0.5 * np.abs(w - c / c.sum()).sum()))
    return np.array(single), np.array(tv)


def _corr(x: np.ndarray, y: np.ndarray) -> float:
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.std(x[ok]) == 0 or np.std(y[ok]) == 0:
        return float("nan")
    return float(np.corrcoef(x[ok], y[ok])[0, 1])


def analyse(record: Mapping[str, Any]) -> dict[str, Any]:
    full = 100 * _series(record["curves"], "full")
    missing = 100 * _series(record["curves"], "missing")
    single, tv = weighting(record)
    fill = _series(record, "fill_error")
    half = slice(len(full) // 2, len(full))
    gap = full - missing
    dips = dip_rounds(list(full), first=len(full) // 2)
    return {
        "r_single": _corr(gap[half], single[half]),
        "r_tv": _corr(gap[half], tv[half]),
        "r_fill": _corr(gap[half], fill[half]),
        "single_before_dips": [round(float(single[t - 1]), 2) for t in dips],
        "single_mean": float(np.nanmean(single[half])),
    }


def report(records: Sequence[Mapping[str, Any]], setting: str) -> list[str]:
    lines = [
        "| variant | rate | seed | r(gap, single-phone weight) | r(gap, TV to masses) "
        "| r(gap, fill error) | single-phone weight before each full-accuracy dip (mean) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in sorted(records, key=lambda r: (r["variant"], float(r["rate"]), int(r["seed"]))):
        if r["setting"] != setting or not any(r.get("cluster_sizes") or []):
            continue
        a = analyse(r)
        lines.append(
            f"| {r['variant']} | {float(r['rate']):g} | {r['seed']} | {a['r_single']:+.2f} "
            f"| {a['r_tv']:+.2f} | {a['r_fill']:+.2f} | {a['single_before_dips']} "
            f"({a['single_mean']:.2f}) |"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    parser.add_argument("--setting", default="full")
    args = parser.parse_args(argv)
    print("\n".join(report(load_records(args.results), args.setting)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
