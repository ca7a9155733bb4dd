"""Why does the authors' selection leave out more phones when it scores on the test set?
Both sets side by side on the same models (issue 11's open diagnostic).

``fedmobile_authors_leaky`` left out 2-6 of the 10 phones in 38 of 50 rounds at rate 0.8, while
the validation variant did so only in a few early rounds. Those were two different runs, so the
difference could come from the set or from the trajectory the set's choices lead to. This
script separates the two: it drives one run with one set's selection (``--drive``) and, every
round, also scores the same models on the other set, with each set's own threshold (last
round's accuracy of the same global model on that set). Per round and per set it records the
threshold, each phone's local accuracy and prefix gain, and which phones the rule keeps.

The driving side is recomputed from scratch and checked against the strategy's own decision,
and the per-phone accuracy of each round against the grid's record of the same cell (when it
is in ``benchmarks/results/usc_had_authors.json``): the extra scoring must not move the run.

    FEDMOBILE_USC_HAD=/path/to/USC-HAD python -m benchmarks.authors_selection_sides --rounds 20
    python -m benchmarks.authors_selection_sides --report     # docs/results.md section
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.usc_had_authors import RESULTS as GRID_RESULTS
from benchmarks.usc_had_authors import Cell, overrides, read_results, record_key
from benchmarks.usc_had_report import write_between_markers
from fedmobile_actors.algorithms.admission import admit
from fedmobile_actors.algorithms.fedmobile_authors import (
    GEN_PREFIX,
    LAST_ACCURACY,
    FedMobileAuthors,
    kept_models,
)
from fedmobile_actors.algorithms.strategy import (
    AggregationResult,
    AlgorithmContext,
    ClientUpdate,
    GlobalState,
)
from fedmobile_actors.data.dataset import MultimodalDataset
from fedmobile_actors.scenario.schema import AlgorithmConfig

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "authors_selection_sides.json"
RESULTS_MD = REPO / "docs" / "results.md"
SECTION = "authors_selection_sides"
#: The strategy as scenarios name it (an import path: ``algorithm.name`` accepts one).
STRATEGY = "benchmarks.authors_selection_sides:SideBySideSelection"
SIDES = ("validation", "test")
#: Per-round rows of the strategy instance of this process (the in-process backend's server).
ROUNDS_LOG: list[dict[str, Any]] = []


class SideBySideSelection(FedMobileAuthors):
    """``fedmobile_authors`` that also records what its selection rule decides on each set.

    It declares that it reads the test set (``reads_test_set``) whichever set drives, since it
    scores both; the run's own decisions, and the Shapley utility, use the driving set only.
    """

    @classmethod
    def reads_test_set(cls, algorithm: AlgorithmConfig) -> bool:
        # Both sets are needed whichever drives; the run's own decisions use only its own.
        return True

    def __init__(self, context: AlgorithmContext) -> None:
        super().__init__(context)
        if context.proxy is None or context.leaky_test is None:
            raise SystemExit("authors_selection_sides needs both a validation and a test set")
        self.sides: dict[str, MultimodalDataset] = {
            "validation": context.proxy,
            "test": context.leaky_test,
        }
        self.driving = "test" if self.config.selection_split == "test_leaky" else "validation"
        self._last: dict[str, float] = {}

    def aggregate(
        self, state: GlobalState, updates: Sequence[ClientUpdate], staleness: Sequence[float]
    ) -> AggregationResult:
        expected = {
            **{k: a for k, a in state.arrays.items() if not k.startswith(GEN_PREFIX)},
            **self._initial_local,
        }
        admitted, _factors, _rejected = admit(expected, updates, staleness)
        models = [u.arrays for u in admitted]
        chance = 1.0 / self.context.num_classes
        row: dict[str, Any] = {"round": state.version + 1, "phones": [u.phone_id for u in admitted]}
        for side, dataset in self.sides.items():
            self.selection = dataset
            last = self._last.get(side, chance)
            if side == self.driving:
                last = float(state.info.get(LAST_ACCURACY, chance))
            local, gains = self._selection_scores(models, last)
            row[side] = {
                "last": last,
                "local": local,
                "gains": gains,
                "kept": kept_models(local, gains, last),
            }
        self.selection = self.sides[self.driving]
        result = super().aggregate(state, updates, staleness)
        if result.metrics.get("kept") != len(row[self.driving]["kept"]):
            raise SystemExit(
                f"round {row['round']}: the recomputed {self.driving} selection keeps "
                f"{len(row[self.driving]['kept'])} phones, the strategy "
                f"{result.metrics.get('kept')}"
            )
        shared = {
            k: a
            for k, a in result.state.arrays.items()
            if not k.startswith(GEN_PREFIX) and k not in self.local_keys
        }
        for side, dataset in self.sides.items():
            if side == self.driving:
                self._last[side] = float(result.state.info[LAST_ACCURACY])
                continue
            self.selection = dataset
            self._last[side] = float(
                np.mean(self._scores([{**shared, **self._local_of(m)} for m in models]))
            )
        self.selection = self.sides[self.driving]
        ROUNDS_LOG.append(row)
        return result


def run(
    rate: float,
    seed: int,
    rounds: int,
    drive: str,
    extra: Sequence[str] = (),
    grid_results: Path = GRID_RESULTS,
) -> dict[str, Any]:
    """Drive ``rounds`` rounds in this process and return the file's record; ``extra`` are
    further overrides, ``grid_results`` the grid's file to check the accuracies against."""
    import torch

    from fedmobile_actors.runtime.inprocess import InProcessBackend
    from fedmobile_actors.scenario import load_scenario

    torch.set_num_threads(1)
    grid_name = "fedmobile_authors_leaky" if drive == "test" else "fedmobile_authors"
    cell = Cell(grid_name, rate, seed, rounds)
    split = "test_leaky" if drive == "test" else "validation"
    scenario = load_scenario(
        REPO / "scenarios" / "usc_had_authors.yaml",
        [
            *overrides(cell, 0),
            f"algorithm.name={STRATEGY}",
            f"algorithm.fedmobile_authors.selection_split={split}",
            *extra,
        ],
    )
    # The plugin loader imports this file as a module of its own name; read that one's log.
    log = importlib.import_module("benchmarks.authors_selection_sides").ROUNDS_LOG
    log.clear()
    backend = InProcessBackend(scenario)
    accuracy: list[float] = []
    started = time.perf_counter()
    try:
        for _ in range(rounds):
            out = backend.run_round()
            if out is None:
                break
            accuracy.append(float(out.metrics.accuracy_per_phone or float("nan")))
            kept = ", ".join(f"{s} {len(log[-1][s]['kept'])}" for s in SIDES)
            print(
                f"round {out.metrics.round}: per-phone accuracy {accuracy[-1]:.4f}, "
                f"kept {kept} "
                f"({time.perf_counter() - started:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
    finally:
        backend.shutdown()
    return {
        "rate": rate,
        "seed": seed,
        "drive": drive,
        "rounds": list(log),
        "accuracy_per_round": accuracy,
        "grid_cell": cell.name.rsplit("-n", 1)[0],
        "matches_grid": matches_grid(cell, accuracy, grid_results),
        "wall_s": round(time.perf_counter() - started, 1),
    }


def matches_grid(cell: Cell, accuracy: Sequence[float], grid_results: Path) -> bool | None:
    """Whether these rounds' accuracies are the first rounds of the grid's record of the same
    cell, bit for bit (None when the grid has no such cell)."""
    for record in read_results(grid_results):
        if record_key(record)[:3] == cell.key()[:3] and int(record["rounds"]) >= len(accuracy):
            return list(record["accuracy_per_round"][: len(accuracy)]) == list(accuracy)
    return None


# ---- the report ------------------------------------------------------------------------------


def left_out(side: Mapping[str, Any], phones: int) -> int:
    return phones - len(side["kept"])


def summary(record: Mapping[str, Any]) -> dict[str, Any]:
    """Counts over the rounds: where each set leaves phones out, where they disagree, and the
    mean of each side's threshold, local accuracy and prefix accuracy (gain + threshold)."""
    rows = record["rounds"]
    out: dict[str, Any] = {"rounds": len(rows)}
    counts = {"both": 0, "test only": 0, "validation only": 0, "neither": 0}
    phone_disagree = 0
    phone_total = 0
    for row in rows:
        n = len(row["phones"])
        t, v = left_out(row["test"], n) > 0, left_out(row["validation"], n) > 0
        key = "both" if t and v else "test only" if t else "validation only" if v else "neither"
        counts[key] += 1
        kt, kv = set(row["test"]["kept"]), set(row["validation"]["kept"])
        phone_disagree += len(kt ^ kv)
        phone_total += n
    out["counts"] = counts
    out["phone_disagreement"] = phone_disagree / max(phone_total, 1)
    for side in SIDES:
        last = np.array([r[side]["last"] for r in rows])
        local = np.array([np.mean(r[side]["local"]) for r in rows])
        prefix = np.array([np.mean(r[side]["gains"]) + r[side]["last"] for r in rows])
        out[side] = {
            "rounds_left_out": sum(left_out(r[side], len(r["phones"])) > 0 for r in rows),
            "phones_left_out": float(np.mean([left_out(r[side], len(r["phones"])) for r in rows])),
            "last": float(last.mean()),
            "local": float(local.mean()),
            "prefix": float(prefix.mean()),
            "margin": float(np.mean(local + prefix - 2 * last)),
        }
    return out


def report_markdown(records: Sequence[Mapping[str, Any]]) -> str:
    lines = [
        "| driven by | rate | seed | rounds | rounds with phones left out (test / validation) "
        "| both / test only / validation only / neither | phones decided differently "
        "| threshold (test / val) | local acc. (test / val) | prefix acc. (test / val) "
        "| margin (test / val) |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in records:
        s = summary(r)
        c = s["counts"]
        t, v = s["test"], s["validation"]

        def pair(key: str, t: dict[str, Any] = t, v: dict[str, Any] = v) -> str:
            return f"{100 * t[key]:.2f} / {100 * v[key]:.2f}"

        lines.append(
            f"| {r['drive']} | {r['rate']} | {r['seed']} | {s['rounds']} "
            f"| {t['rounds_left_out']} / {v['rounds_left_out']} "
            f"| {c['both']} / {c['test only']} / {c['validation only']} / {c['neither']} "
            f"| {100 * s['phone_disagreement']:.1f}% "
            f"| {pair('last')} | {pair('local')} | {pair('prefix')} | {pair('margin')} |"
        )
    lines.append(
        "\nA phone is kept when local + prefix − 2 × threshold > 0 (the margin, averaged over "
        "phones and rounds, in points); the prefix model is the average of models 0..k with "
        "phone 0's BatchNorm statistics. Whether each row's per-phone accuracies are the grid's "
        "record of the same cell bit for bit (None: the grid has no such cell): "
        + ", ".join(f"{r['grid_cell']} {r['matches_grid']}" for r in records)
        + "."
    )
    return "\n".join(lines)


def read_records(path: Path = RESULTS) -> list[dict[str, Any]]:
    return json.loads(path.read_text()) if path.is_file() else []


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--rate", type=float, default=0.8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--drive", choices=SIDES, default="test")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--report", action="store_true", help="write the docs/results.md table")
    parser.add_argument("--results-md", type=Path, default=RESULTS_MD)
    parser.add_argument("--grid-results", type=Path, default=GRID_RESULTS)
    parser.add_argument("--override", action="append", default=[], help="extra dotted=value")
    args = parser.parse_args(argv)
    if args.report:
        write_between_markers(args.results_md, SECTION, report_markdown(read_records(args.results)))
        return
    record = run(args.rate, args.seed, args.rounds, args.drive, args.override, args.grid_results)
    key = (record["drive"], record["rate"], record["seed"])
    records = [r for r in read_records(args.results) if (r["drive"], r["rate"], r["seed"]) != key]
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps([*records, record], indent=1) + "\n")
    print(json.dumps(summary(record), indent=1))


if __name__ == "__main__":
    main()
