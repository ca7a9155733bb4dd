"""The run directory: fresh names, validation on open, append-only results, atomic status."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from fedmobile_actors.errors import RunDirError
from fedmobile_actors.report.run_dir import RunDir, scenario_identity, write_json_atomic

WHEN = datetime(2025, 3, 4, 5, 6, 7)


def test_create_twice_in_the_same_second_gives_two_directories(tmp_path: Path) -> None:
    first = RunDir.create(tmp_path, "demo", when=WHEN)
    second = RunDir.create(tmp_path, "demo", when=WHEN)
    assert first.path.name == "demo-20250304-050607"
    assert second.path.name == "demo-20250304-050607-1"
    assert first.checkpoints_dir.is_dir() and second.checkpoints_dir.is_dir()


def test_create_makes_an_unsafe_scenario_name_a_single_folder(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path, "../a b/c", when=WHEN)
    assert run.path.parent == tmp_path
    assert run.path.name == "a-b-c-20250304-050607"


def test_open_reads_back_a_fabricated_run(make_run: Callable[..., RunDir]) -> None:
    run = RunDir.open(make_run(rounds=4).path)
    info = run.read_run_info()
    assert (info.status, info.rounds_done, info.algorithm) == ("finished", 4, "fedavg")
    assert [row["round"] for row in run.read_metrics()] == [1, 2, 3, 4]
    assert len(run.read_events()) == 4 * 6


def test_open_rejects_a_path_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match="no such run directory"):
        RunDir.open(tmp_path / "nope")


def test_open_rejects_a_file(tmp_path: Path) -> None:
    file = tmp_path / "metrics.csv"
    file.write_text("x")
    with pytest.raises(RunDirError, match="not a directory"):
        RunDir.open(file)


def test_open_rejects_a_directory_without_run_json(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match=r"missing run\.json"):
        RunDir.open(tmp_path)


def test_open_names_missing_metrics(make_run: Callable[..., RunDir]) -> None:
    run = make_run()
    run.metrics_jsonl.unlink()
    with pytest.raises(RunDirError, match=r"missing metrics\.jsonl"):
        RunDir.open(run.path)


def test_open_names_corrupt_run_json(make_run: Callable[..., RunDir]) -> None:
    run = make_run()
    run.run_info_path.write_text('{"status": "finished",')
    with pytest.raises(RunDirError, match=r"run\.json: corrupt run\.json"):
        RunDir.open(run.path)


def test_open_names_run_json_missing_keys_and_bad_status(make_run: Callable[..., RunDir]) -> None:
    run = make_run()
    data = json.loads(run.run_info_path.read_text())
    del data["seed"]
    run.run_info_path.write_text(json.dumps(data))
    with pytest.raises(RunDirError, match="missing seed"):
        RunDir.open(run.path)
    data["seed"], data["status"] = 0, "paused"
    run.run_info_path.write_text(json.dumps(data))
    with pytest.raises(RunDirError, match="status 'paused'"):
        RunDir.open(run.path)


def test_open_names_corrupt_summary(make_run: Callable[..., RunDir]) -> None:
    run = make_run()
    run.summary_path.write_text("[1, 2")
    with pytest.raises(RunDirError, match=r"summary\.json: corrupt summary\.json"):
        RunDir.open(run.path)
    run.summary_path.write_text("[1, 2]")
    with pytest.raises(RunDirError, match="not a JSON object"):
        RunDir.open(run.path)


def test_not_evaluated_accuracy_comes_back_as_nan(make_run: Callable[..., RunDir]) -> None:
    rows = make_run().read_metrics()
    assert math.isnan(rows[2]["accuracy_full"]) and math.isnan(rows[2]["accuracy_missing"])
    assert rows[1]["accuracy_full"] == 0.54


def test_a_cut_off_last_line_is_ignored_but_a_corrupt_middle_line_is_an_error(
    make_run: Callable[..., RunDir],
) -> None:
    run = make_run(rounds=3)
    with run.metrics_jsonl.open("a") as handle:
        handle.write('{"round": 4, "virtual_')
    assert [row["round"] for row in run.read_metrics()] == [1, 2, 3]
    lines = run.metrics_jsonl.read_text().split("\n")
    lines[1] = "garbage"
    run.metrics_jsonl.write_text("\n".join(lines))
    with pytest.raises(RunDirError, match=r"metrics\.jsonl \(line 2 is not JSON\)"):
        run.read_metrics()


def test_scenario_is_written_once_and_resume_checks_it(make_run: Callable[..., RunDir]) -> None:
    run = make_run()
    stored = run.scenario_path.read_text()
    with pytest.raises(RunDirError, match="refusing to overwrite"):
        run.write_scenario("name: other\n")
    assert run.scenario_path.read_text() == stored
    run.check_scenario(stored)
    with pytest.raises(RunDirError, match="differs from the scenario this run started with"):
        run.check_scenario(stored + "# edited\n")


def test_writers_append_and_never_rewrite_earlier_rows(make_run: Callable[..., RunDir]) -> None:
    run = make_run(rounds=2)
    header = run.metrics_csv.read_text().splitlines()[0]
    writer = run.metrics_writer()
    writer.write([dict(run.read_metrics()[-1], round=3)])
    writer.close()
    lines = run.metrics_csv.read_text().splitlines()
    assert lines[0] == header and lines.count(header) == 1
    assert [row["round"] for row in run.read_metrics()] == [1, 2, 3]


def test_trim_to_round_drops_rows_past_the_checkpoint(make_run: Callable[..., RunDir]) -> None:
    run = make_run(rounds=5)
    run.trim_to_round(3)
    assert [row["round"] for row in run.read_metrics()] == [1, 2, 3]
    assert {row["round"] for row in run.read_events()} == {1, 2, 3}
    assert len(run.metrics_csv.read_text().splitlines()) == 1 + 3
    assert len(run.events_csv.read_text().splitlines()) == 1 + 3 * 6
    assert not list(run.path.glob(".trim-*"))


def test_checkpoints_are_listed_by_round_skipping_empty_files(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path, "ckpt")
    for r in (10, 5):
        run.checkpoint_path(r).write_bytes(b"state")
    run.checkpoint_path(15).write_bytes(b"")  # crashed while writing
    assert [r for r, _ in run.checkpoints()] == [5, 10]
    assert run.latest_checkpoint() == (10, run.checkpoint_path(10))


def test_write_json_atomic_replaces_whole_and_refuses_nan(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    write_json_atomic(path, {"a": 1})
    write_json_atomic(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    with pytest.raises(ValueError):
        write_json_atomic(path, {"a": float("nan")})
    assert json.loads(path.read_text()) == {"a": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]


def test_a_run_stored_by_an_older_version_still_passes_the_scenario_check(
    make_run: Callable[..., RunDir],
) -> None:
    """A setting added since the run started makes the re-resolved text longer than the stored
    file; the stored file's own hash (run.json's identity) is what decides."""
    run = make_run()
    stored = run.scenario_path.read_text()
    identity = scenario_identity(stored)
    run.check_scenario(stored + "  added_setting: default\n", identity)
    run.scenario_path.write_text(stored.replace("seed: 0", "seed: 1"))
    with pytest.raises(RunDirError, match="differs from the scenario this run started with"):
        run.check_scenario(stored, identity)


def test_open_reads_the_platform_and_names_a_corrupt_one(make_run: Callable[..., RunDir]) -> None:
    """Run directories from before the platform was recorded read as None; a platform that is
    not a map of texts is a one-line error."""
    run = make_run()
    data = json.loads(run.run_info_path.read_text())
    data.pop("platform", None)
    run.run_info_path.write_text(json.dumps(data))
    assert RunDir.open(run.path).read_run_info().platform is None
    data["platform"] = {"cpu": "x", "torch": "2.13.0"}
    run.run_info_path.write_text(json.dumps(data))
    assert RunDir.open(run.path).read_run_info().platform == data["platform"]
    data["platform"] = ["AVX2"]
    run.run_info_path.write_text(json.dumps(data))
    with pytest.raises(RunDirError, match="platform is not a map of texts"):
        RunDir.open(run.path).read_run_info()
