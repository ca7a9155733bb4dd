"""How much of a scenario's proxy (validation) set shares raw samples with its test set.

For a USC-HAD scenario, splits the held-out windows as ``data.proxy_split: random`` (today's
default) and as ``blocked`` would, and prints for each: proxy, test and dropped window counts and
the fraction of proxy windows that share at least one raw sample with some test window.

    export FEDMOBILE_USC_HAD=/work/shared/data/USC-HAD
    python -m benchmarks.proxy_overlap scenarios/usc_had_authors.yaml
    python -m benchmarks.proxy_overlap scenarios/usc_had_authors.yaml \
        -o data.source.window=100 -o data.source.stride=50       # issue 12's full setting

Only the windowing is done (from the cache after the first load); nothing trains.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fedmobile_actors.data.loading import fraction_indices
from fedmobile_actors.data.proxy import WindowPositions, blocked_indices, shares_samples
from fedmobile_actors.data.usc_had import load_usc_had_split
from fedmobile_actors.scenario import load_scenario
from fedmobile_actors.scenario.schema import UscHadSource


def overlap_row(
    name: str, positions: WindowPositions, proxy_idx: Any, test_idx: Any
) -> dict[str, Any]:
    """Sizes and the shared-sample fraction of one (proxy, test) split of the held-out windows."""
    shared = shares_samples(positions.subset(proxy_idx), positions.subset(test_idx))
    return {
        "split": name,
        "held_out": len(positions),
        "proxy": len(proxy_idx),
        "test": len(test_idx),
        "dropped": len(positions) - len(proxy_idx) - len(test_idx),
        "proxy_sharing": int(shared.sum()),
        "proxy_sharing_fraction": float(shared.mean()) if len(shared) else 0.0,
    }


def measure(scenario_path: str, overrides: Sequence[str], seed: int | None) -> dict[str, Any]:
    """Both splits of the scenario's held-out windows, at its seed unless ``seed`` is given."""
    scenario = load_scenario(scenario_path, list(overrides))
    source = scenario.data.source
    if not isinstance(source, UscHadSource):
        raise SystemExit(f"{scenario_path}: data.source is {source.kind}; usc_had only")
    fraction = scenario.data.proxy_fraction or 0.2
    seed = scenario.seed if seed is None else seed
    _, _, positions = load_usc_had_split(source, Path(scenario_path).resolve().parent)
    random_split = fraction_indices(len(positions), fraction, seed, "proxy")
    blocked_split = blocked_indices(positions, fraction, seed)
    return {
        "scenario": scenario_path,
        "overrides": list(overrides),
        "window": source.window,
        "stride": source.stride,
        "test_split": source.test_split,
        "proxy_fraction": fraction,
        "seed": seed,
        "recordings": len(set(positions.recording.tolist())),
        "rows": [
            overlap_row("random", positions, *random_split),
            overlap_row("blocked", positions, *blocked_split),
        ],
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario")
    parser.add_argument("-o", "--override", action="append", default=[], help="key=value")
    parser.add_argument("--seed", type=int, default=None, help="default: the scenario's seed")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    result = measure(args.scenario, args.override, args.seed)
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"{result['scenario']} window {result['window']} stride {result['stride']} "
        f"test_split {result['test_split']} proxy_fraction {result['proxy_fraction']} "
        f"seed {result['seed']}: {result['recordings']} held-out recordings"
    )
    for row in result["rows"]:
        print(
            f"  {row['split']:>7}: proxy {row['proxy']:5d}  test {row['test']:5d}  "
            f"dropped {row['dropped']:4d}  proxy windows sharing a sample with test "
            f"{row['proxy_sharing']:5d} ({100 * row['proxy_sharing_fraction']:.1f}%)"
        )


if __name__ == "__main__":
    main()
