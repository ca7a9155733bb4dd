"""A resumable grid of runs: cells -> run -> one JSON record per finished cell, appended to a file.

Why resumable: the full USC-HAD grid of issue 12 (window 100, stride 50, the default model, 50
rounds, 3 rates x 3 seeds x every variant) takes days of two cores. A cell is the unit of work: it
runs through the project's own driver (in-process backend, the same numbers as Ray), and when it
finishes its record is added to the results file (rewritten atomically), so an interrupted grid
loses at most the cell it was running and a rerun skips every cell already recorded.

A cell is (setting, variant, rate, seed). A *setting* names the scenario knobs every cell shares
(``SETTINGS``; "full" is the scenario file as it is, "reduced" the smaller one this project
explores in); a *variant* is an algorithm plus its own overrides (``VARIANTS``, or
``--variant name=algorithm[:override;override...]`` on the command line). Nothing here knows
USC-HAD beyond the default scenario path and the modality that goes missing, so issue 11's grid
can reuse it with its own scenario, settings and variants.

    FEDMOBILE_USC_HAD=/work/shared/data/USC-HAD python -m benchmarks.usc_had_grid \\
        --setting reduced --variants fedavg fedmobile --rates 0.8 0.9 --seeds 0 1 2

Each record: setting, variant, algorithm, rate, seed, rounds, the final accuracies (test with the
missing pattern and complete, validation = proxy set likewise), their means over the last 3
rounds, the round-to-round std of the missing-pattern accuracy, per-round curves (for the plots
with seed bands), wall seconds, and the exact overrides.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SCENARIO = REPO / "scenarios" / "usc_had_paper.yaml"
DEFAULT_RESULTS = REPO / "benchmarks" / "results" / "usc_had.json"

#: Knobs every cell of a setting shares (dotted overrides of the scenario file).
SETTINGS: dict[str, tuple[str, ...]] = {
    # The scenario file as it stands: window 100, stride 50, the default model, 2 local epochs,
    # 50 rounds (issue 12 item 5), and a blocked validation split (no validation window shares
    # a sample with a test window).
    "full": (),
    # The exploration setting of docs/results.md: stride 100, a smaller model, 1 local epoch,
    # 15 rounds (about 1/10 of a full cell's compute).
    "reduced": (
        "data.source.stride=100",
        "model.conv_channels=[16, 32]",
        "algorithm.local_epochs=1",
        "rounds.rounds=15",
        # Windows do not overlap at stride 100, so a random validation draw shares no sample
        # with the test set; pinned so that these cells stay those of docs/results.md, measured
        # before the scenario file moved to the blocked split.
        "data.proxy_split=random",
    ),
}

#: Variants: name -> (algorithm, overrides of its own).
VARIANTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "fedavg": ("fedavg", ()),
    "fedprox": ("fedprox", ()),
    "noise_padding": ("noise_padding", ()),
    "fedmobile": ("fedmobile", ()),
    "fedmobile_no_shapley": ("fedmobile_no_shapley", ()),
    "fedmobile_no_alpha": ("fedmobile_no_alpha", ()),
    "fedmobile_ema": ("fedmobile", ("algorithm.fedmobile.generator_ema=0.5",)),
    "fedmobile_mix": ("fedmobile", ("algorithm.fedmobile.shapley_mass_mix=0.5",)),
    "fedmobile_xmodal": ("fedmobile_xmodal", ()),
    # The cross-modal variant with the global generator's EMA: at full size its accuracy with
    # the missing pattern swings by up to 10 points while its complete-modality accuracy holds.
    "fedmobile_xmodal_ema": ("fedmobile_xmodal", ("algorithm.fedmobile.generator_ema=0.5",)),
    "fedmobile_xmodal_no_ce": ("fedmobile_xmodal", ("algorithm.fedmobile.ce_weight=0",)),
    "fedmobile_xmodal_no_kd": ("fedmobile_xmodal", ("algorithm.fedmobile.kd_weight=0",)),
    "fedmobile_xmodal_no_match": (
        "fedmobile_xmodal",
        ("algorithm.fedmobile.feature_match_weight=0",),
    ),
    "fedmobile_xmodal_no_shapley": (
        "fedmobile_xmodal",
        ("algorithm.fedmobile.shapley_mass_mix=1",),
    ),
    # Self-distillation from complete rows into the missing path (``algorithm.missing_distill``),
    # with each strategy's own fill: zero (the ablation that has no generator), FedMobile's
    # prototypes, the cross-modal generator.
    "fedavg_distill": ("fedavg", ("algorithm.missing_distill.weight=1",)),
    "fedmobile_distill": ("fedmobile", ("algorithm.missing_distill.weight=1",)),
    "fedmobile_xmodal_distill": ("fedmobile_xmodal", ("algorithm.missing_distill.weight=1",)),
    # Trained with acc missing at the cell's rate, tested (and validated) with acc missing on
    # every window: the accuracy of the gyro-only path itself, to set beside a model trained on
    # gyro alone (fedavg at rate 1.0). USC-HAD's modality names.
    **{
        f"{name}_tested_without_acc": (name, ("modalities.test_missing={acc: 1.0}",))
        for name in ("fedavg", "fedmobile", "fedmobile_xmodal")
    },
}

#: Rounds averaged for the "last 3" figures.
LAST = 3


@dataclass(frozen=True)
class GridCell:
    """One run: a setting, a variant (algorithm + overrides), a missing rate and a seed."""

    setting: str
    variant: str
    algorithm: str
    rate: float
    seed: int

    @property
    def key(self) -> tuple[str, str, float, int]:
        return (self.setting, self.variant, round(self.rate, 6), self.seed)

    @property
    def name(self) -> str:
        """The cell's run name (its run directory is ``<name>-<timestamp>``)."""
        return f"grid-{self.setting}-{self.variant}-r{self.rate:g}-s{self.seed}"


def parse_variant(text: str) -> tuple[str, tuple[str, tuple[str, ...]]]:
    """``name=algorithm[:override;override...]`` -> (name, (algorithm, overrides))."""
    name, _, rest = text.partition("=")
    algorithm, _, extra = rest.partition(":")
    if not name or not algorithm:
        raise SystemExit(f"--variant {text!r}: expected name=algorithm[:override;override...]")
    return name, (algorithm, tuple(o for o in extra.split(";") if o))


def cell_overrides(
    cell: GridCell, setting: Sequence[str], variant: Sequence[str], modality: str
) -> list[str]:
    """Dotted overrides that turn the scenario file into this cell's run."""
    return [
        *setting,
        f"algorithm.name={cell.algorithm}",
        f"seed={cell.seed}",
        f"modalities.missing=[{{modality: {modality}, rate: {cell.rate}}}]",
        f"modalities.test_missing={{{modality}: {cell.rate}}}",
        "runtime.backend=inprocess",
        "output.plots=false",
        "output.checkpoint_every=0",
        "output.event_log=false",
        *variant,
    ]


def _finite(values: Iterable[Any]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def _last_mean(curve: Sequence[float | None]) -> float | None:
    finite = _finite(curve)
    return statistics.fmean(finite[-LAST:]) if finite else None


def round_to_round_std(curve: Sequence[float | None]) -> float | None:
    """Std of the change between consecutive evaluated rounds over the second half of the run:
    how much a round's accuracy jumps once the model is past its first climb."""
    finite = _finite(curve)
    half = finite[len(finite) // 2 :]
    steps = [b - a for a, b in itertools.pairwise(half)]
    return statistics.pstdev(steps) if len(steps) >= 2 else None


def record_of(
    cell: GridCell, overrides: Sequence[str], rows: Sequence[Mapping[str, Any]], wall: float
) -> dict[str, Any]:
    """The JSON record of a finished cell from its metrics rows."""

    def curve(column: str) -> list[float | None]:
        out: list[float | None] = []
        for r in rows:
            v = r.get(column)
            out.append(float(v) if v is not None and math.isfinite(float(v)) else None)
        return out

    curves = {
        "missing": curve("accuracy_missing"),
        "full": curve("accuracy_full"),
        "val_missing": curve("accuracy_val_missing"),
        "val_full": curve("accuracy_val_full"),
    }
    final = {k: (_finite(c)[-1] if _finite(c) else None) for k, c in curves.items()}
    return {
        "setting": cell.setting,
        "variant": cell.variant,
        "algorithm": cell.algorithm,
        "rate": cell.rate,
        "seed": cell.seed,
        "rounds": int(rows[-1]["round"]) if rows else 0,
        "accuracy_missing": final["missing"],
        "accuracy_full": final["full"],
        "val_accuracy_missing": final["val_missing"],
        "val_accuracy_full": final["val_full"],
        "last3_missing": _last_mean(curves["missing"]),
        "last3_full": _last_mean(curves["full"]),
        "last3_val_missing": _last_mean(curves["val_missing"]),
        "last3_val_full": _last_mean(curves["val_full"]),
        "round_to_round_std_missing": round_to_round_std(curves["missing"]),
        "round_to_round_std_val_missing": round_to_round_std(curves["val_missing"]),
        "curves": curves,
        "fill_error": curve("fill_error"),
        "model_weight_max": curve("model_weight_max"),
        # FedMobile's server step per round (empty lists for other strategies): the diagnosis.
        "shapley_weights": [list(r.get("shapley_weights") or []) for r in rows],
        "shapley_values": [list(r.get("shapley_values") or []) for r in rows],
        "cluster_sizes": [list(r.get("cluster_sizes") or []) for r in rows],
        "wall_s": round(wall, 1),
        "overrides": list(overrides),
    }


def load_records(path: Path) -> list[dict[str, Any]]:
    """The records of a results file; an absent file has none."""
    if not path.exists():
        return []
    data = json.loads(path.read_text(encoding="utf-8"))
    return list(data["records"])


def append_record(path: Path, record: Mapping[str, Any]) -> None:
    """Add one record to the results file, atomically (a crash leaves the old file whole)."""
    records = [*load_records(path), dict(record)]
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"records": records}, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)


def record_key(record: Mapping[str, Any]) -> tuple[str, str, float, int]:
    return (
        str(record["setting"]),
        str(record["variant"]),
        round(float(record["rate"]), 6),
        int(record["seed"]),
    )


def run_cell(scenario: str, overrides: Sequence[str], output_dir: str) -> list[dict[str, Any]]:
    """One run through the project's driver; its metrics rows."""
    import torch

    from fedmobile_actors.orchestration.driver import run_scenario
    from fedmobile_actors.scenario import load_scenario

    torch.set_num_threads(1)
    run_dir = run_scenario(
        load_scenario(scenario, list(overrides)), quiet=True, output_dir=output_dir
    )
    return list(run_dir.read_metrics())


def unfinished_run(name: str, runs_dir: Path) -> Path | None:
    """The newest run directory named ``name-<timestamp>`` in ``runs_dir`` that has a checkpoint
    and did not finish: where an interrupted cell resumes."""
    from fedmobile_actors.errors import UserError
    from fedmobile_actors.report.run_dir import RunDir

    if not runs_dir.is_dir():
        return None
    for path in sorted(runs_dir.glob(f"{name}-*"), reverse=True):
        try:
            run_dir = RunDir.open(path)
            if run_dir.read_run_info().status != "finished" and run_dir.latest_checkpoint():
                return path
        except UserError:
            continue
    return None


def run_wall_s(rows: Sequence[Mapping[str, Any]]) -> float:
    """Wall seconds of a run from its metrics: ``wall_time_s`` counts from each start of the
    driver, so a resumed run's clock restarts; the segments are summed (start-up excluded)."""
    total, previous = 0.0, 0.0
    for row in rows:
        value = row.get("wall_time_s")
        wall = float(value) if value is not None else float("nan")
        if wall < previous:
            total += previous
        previous = wall
    return total + previous


def run_or_resume(
    scenario: str, overrides: Sequence[str], name: str, runs_dir: Path, checkpoint_every: int
) -> list[dict[str, Any]]:
    """Run a cell as run ``name`` in ``runs_dir``, checkpointing every ``checkpoint_every``
    rounds, or resume it from its last checkpoint when an earlier attempt was cut short (the
    driver's ``resume``: the same rows as an uninterrupted run). The finished run's checkpoints
    are deleted; its metrics stay."""
    import torch

    from fedmobile_actors.orchestration.driver import resume_run, run_scenario
    from fedmobile_actors.scenario import load_scenario

    torch.set_num_threads(1)
    unfinished = unfinished_run(name, runs_dir)
    if unfinished is not None:
        print(f"  resuming {unfinished}", file=sys.stderr, flush=True)
        run_dir = resume_run(unfinished, quiet=True)
    else:
        managed = [*overrides, f"name={name}", f"output.checkpoint_every={checkpoint_every}"]
        run_dir = run_scenario(load_scenario(scenario, managed), quiet=True, output_dir=runs_dir)
    shutil.rmtree(run_dir.path / "checkpoints", ignore_errors=True)
    return list(run_dir.read_metrics())


def run_grid(
    cells: Sequence[GridCell],
    results: Path,
    scenario: str = str(DEFAULT_SCENARIO),
    modality: str = "acc",
    variants: Mapping[str, tuple[str, tuple[str, ...]]] = VARIANTS,
    settings: Mapping[str, tuple[str, ...]] = SETTINGS,
    runs_dir: Path | None = None,
    checkpoint_every: int = 5,
) -> int:
    """Run every cell not yet in ``results``, in order, appending each record; returns how many
    ran. Progress (one line per cell, with the time left at the mean pace) goes to stderr.

    With ``runs_dir`` each cell is a run directory there (named after the cell), checkpointed
    every ``checkpoint_every`` rounds, and a cell cut short resumes from its checkpoint instead
    of starting over; without, runs go to a temporary folder and a cut cell starts over."""
    done = {record_key(r) for r in load_records(results)}
    todo = [c for c in cells if c.key not in done]
    print(
        f"grid: {len(cells)} cells, {len(cells) - len(todo)} done, {len(todo)} to run",
        file=sys.stderr,
        flush=True,
    )
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="usc_had_grid-") as tmp:
        for i, cell in enumerate(todo):
            overrides = cell_overrides(
                cell, settings[cell.setting], variants[cell.variant][1], modality
            )
            t0 = time.perf_counter()
            if runs_dir is None:
                rows = run_cell(scenario, overrides, tmp)
                wall = time.perf_counter() - t0
            else:
                rows = run_or_resume(scenario, overrides, cell.name, runs_dir, checkpoint_every)
                wall = run_wall_s(rows)
            record = record_of(cell, overrides, rows, wall)
            append_record(results, record)
            pace = (time.perf_counter() - started) / (i + 1)
            print(
                f"[{i + 1}/{len(todo)}] {cell.setting} {cell.variant} rate {cell.rate} "
                f"seed {cell.seed}: missing {record['accuracy_missing']:.4f} "
                f"full {record['accuracy_full']:.4f} val {record['val_accuracy_missing']} "
                f"({record['wall_s']:.0f} s; ~{pace * (len(todo) - i - 1) / 60:.0f} min left)",
                file=sys.stderr,
                flush=True,
            )
    return len(todo)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", default=str(DEFAULT_SCENARIO))
    parser.add_argument("--setting", default="reduced", choices=sorted(SETTINGS))
    parser.add_argument("--modality", default="acc", help="the modality that goes missing")
    parser.add_argument("--variants", nargs="*", default=["fedavg", "fedmobile"])
    parser.add_argument(
        "--variant", action="append", default=[], help="name=algorithm[:override;override...]"
    )
    parser.add_argument("--rates", nargs="+", type=float, default=[0.5, 0.8, 0.9])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    parser.add_argument(
        "--runs-dir",
        type=Path,
        default=None,
        help="keep each cell's run here, checkpointed, so that a cut cell resumes "
        "(default: a temporary folder, and a cut cell starts over)",
    )
    parser.add_argument("--checkpoint-every", type=int, default=5, help="rounds, with --runs-dir")
    args = parser.parse_args(argv)
    variants = dict(VARIANTS)
    for text in args.variant:
        name, spec = parse_variant(text)
        variants[name] = spec
    names = list(args.variants) + [parse_variant(t)[0] for t in args.variant]
    unknown = [n for n in names if n not in variants]
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {sorted(variants)}")
    cells = [
        GridCell(args.setting, name, variants[name][0], rate, seed)
        for rate in args.rates
        for name in dict.fromkeys(names)
        for seed in args.seeds
    ]
    run_grid(
        cells,
        args.results,
        args.scenario,
        args.modality,
        variants,
        runs_dir=args.runs_dir,
        checkpoint_every=args.checkpoint_every,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
