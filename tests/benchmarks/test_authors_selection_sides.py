"""benchmarks/authors_selection_sides.py: both sets scored on the same models, without moving
the run it watches."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from benchmarks.authors_selection_sides import main, report_markdown, summary
from benchmarks.usc_had_authors import main as grid_main
from benchmarks.usc_had_authors import read_results

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from test_usc_had import write_release  # type: ignore[import-not-found]

SUBJECTS = (1, 2, 3, 4, 5)


def _tiny(release: Path, tmp_path: Path) -> list[str]:
    """The authors' scenario shrunk to five tiny subjects (five phones: more than the three
    below which the rule keeps everyone)."""
    return [
        f"data.source.path={release}",
        f"data.source.cache_dir={tmp_path / 'cache'}",
        "data.source.window=8",
        "data.source.stride=4",
        f"data.source.subjects=[{', '.join(map(str, SUBJECTS))}]",
        f"fleet.phones={len(SUBJECTS)}",
        f"rounds.clients_per_round={len(SUBJECTS)}",
    ]


def test_both_sets_are_recorded_and_the_run_is_the_grids(tmp_path: Path) -> None:
    """Each round has both sets' thresholds, scores and kept phones; the driving set's decision
    is the strategy's own (the script stops otherwise), and the accuracies are the grid's record
    of the same cell bit for bit."""
    release = write_release(tmp_path / "usc", SUBJECTS)
    tiny = _tiny(release, tmp_path)
    grid_results = tmp_path / "grid.json"
    grid_main(
        [
            "--rounds", "2", "--algorithms", "fedmobile_authors_leaky", "--rates", "0.8",
            "--seeds", "0", "--results", str(grid_results), "--runs-dir", str(tmp_path / "runs"),
            *(a for o in tiny for a in ("--override", o)),
        ]
    )  # fmt: skip
    results = tmp_path / "sides.json"
    main(
        [
            "--rounds", "2", "--results", str(results), "--grid-results", str(grid_results),
            *(a for o in tiny for a in ("--override", o)),
        ]
    )  # fmt: skip
    (record,) = json.loads(results.read_text())
    assert record["drive"] == "test"
    assert record["matches_grid"] is True
    assert record["accuracy_per_round"] == read_results(grid_results)[0]["accuracy_per_round"]
    assert [row["round"] for row in record["rounds"]] == [1, 2]
    for row in record["rounds"]:
        assert len(row["phones"]) == len(SUBJECTS)
        for side in ("validation", "test"):
            assert len(row[side]["local"]) == len(row[side]["gains"]) == len(SUBJECTS)
            assert set(row[side]["kept"]) <= set(range(len(SUBJECTS)))
    # Round 1's threshold is chance on both sets; round 2's is each set's own accuracy.
    first, second = record["rounds"]
    assert first["test"]["last"] == first["validation"]["last"] == 1 / 12
    assert second["test"]["last"] != second["validation"]["last"]


def _row(kept_test: list[int], kept_val: list[int]) -> dict[str, Any]:
    def side(kept: list[int], last: float) -> dict[str, Any]:
        return {"last": last, "local": [0.5] * 5, "gains": [0.1] * 5, "kept": kept}

    return {"round": 1, "phones": list(range(5)), "test": side(kept_test, 0.4),
            "validation": side(kept_val, 0.3)}  # fmt: skip


def test_the_summary_counts_agreement_by_round_and_by_phone() -> None:
    everyone = list(range(5))
    record = {
        "drive": "test", "rate": 0.8, "seed": 0, "grid_cell": "c", "matches_grid": True,
        "rounds": [
            _row([0, 1, 2, 3], everyone),  # test leaves out one phone, validation none
            _row([0, 1, 2, 3], [0, 1, 2, 4]),  # both leave one out, different phones
            _row(everyone, everyone),
        ],
    }  # fmt: skip
    s = summary(record)
    assert s["counts"] == {"both": 1, "test only": 1, "validation only": 0, "neither": 1}
    assert s["phone_disagreement"] == 3 / 15
    assert s["test"]["rounds_left_out"] == 2 and s["validation"]["rounds_left_out"] == 1
    # margin = local + (gain + last) - 2 last = 0.5 + 0.1 - last
    assert abs(s["test"]["margin"] - 0.2) < 1e-12
    assert abs(s["validation"]["margin"] - 0.3) < 1e-12
    assert "| test | 0.8 | 0 | 3 | 2 / 1 | 1 / 1 / 0 / 1 | 20.0% |" in report_markdown([record])
