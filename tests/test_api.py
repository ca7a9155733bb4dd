"""The public Python API (fedmobile_actors.api): what a script gets, and that it matches the CLI."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from fedmobile_actors import api
from fedmobile_actors.cli.main import main
from fedmobile_actors.errors import RunDirError, ScenarioError, UserError

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "scenarios" / "quickstart.yaml"
TINY = {
    "runtime.backend": "inprocess",
    "rounds.rounds": 2,
    "fleet.phones": 6,
    "data.source.samples": 600,
    "output.plots": False,
    "output.checkpoint_every": 1,
}


def without_wall_time(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k != "wall_time_s"} for row in rows]


def test_run_returns_the_run_directory_read_back(tmp_path: Path) -> None:
    """``api.run`` gives the run directory, every round's metrics and the summary, which is
    what ``load_run`` reads from disk."""
    result = api.run(QUICKSTART, TINY, output_dir=tmp_path)
    assert result.path.parent == tmp_path and result.status == "finished"
    assert [row["round"] for row in result.metrics] == [1, 2]
    assert result.scenario.fleet.phones == 6
    final = result.final_accuracy("full")
    assert final is not None and math.isclose(final, result.metrics[-1]["accuracy_full"])
    assert api.load_run(result.path) == result


def test_overrides_as_values_or_as_cli_strings_give_one_scenario() -> None:
    """A mapping of Python values and the CLI's ``path=value`` strings resolve alike, floats in
    exponent notation included (YAML 1.1 would read ``1e-05`` as a string)."""
    values = api.validate(QUICKSTART, {"algorithm.lr": 1e-05, "modalities.test_missing": {}})
    texts = api.validate(QUICKSTART, ["algorithm.lr=0.00001", "modalities.test_missing={}"])
    assert values == texts and values.algorithm.lr == 1e-05


def test_a_scenario_object_takes_overrides_too() -> None:
    scenario = api.validate(QUICKSTART)
    changed = api.validate(scenario, {"fleet.phones": 12, "rounds.deadline_s": 30.5})
    assert (changed.fleet.phones, changed.rounds.deadline_s) == (12, 30.5)
    assert api.validate(scenario) is scenario


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"fleet.phones": 0}, "fleet.phones"),
        ({"fleet.phonez": 3}, "fleet.phonez"),
        ({"algorithm.name": "no_such_module_xyz:Thing"}, "cannot import 'no_such_module_xyz'"),
    ],
)
def test_errors_carry_the_cli_line(overrides: dict[str, Any], words: str, capsys: Any) -> None:
    """The API raises a UserError whose text is exactly what the CLI prints (after its prefix)
    and exits 2 with."""
    with pytest.raises(ScenarioError) as err:
        api.validate(QUICKSTART, overrides)
    assert words in str(err.value)
    texts = [f"-o{path}={api._yaml_value(value)}" for path, value in overrides.items()]
    assert main(["validate", str(QUICKSTART), *texts]) == 2
    printed = capsys.readouterr().err.strip().splitlines()
    assert printed == [f"fedmobile: error: {line}" for line in str(err.value).splitlines()]


def test_a_bad_plug_in_fails_before_ray_or_a_run_directory(tmp_path: Path) -> None:
    """On the Ray backend too, a plug-in that does not import stops ``run`` before Ray starts
    (this test has no Ray session) and before any run directory exists."""
    overrides = {"runtime.backend": "ray", "algorithm.name": "nowhere_xyz:Strategy"}
    with pytest.raises(ScenarioError, match="cannot import 'nowhere_xyz'"):
        api.run(QUICKSTART, overrides, output_dir=tmp_path)
    with pytest.raises(ScenarioError, match="takes no options"):
        api.run(QUICKSTART, {"algorithm.options": {"beta": 1}}, output_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_resume_continues_to_the_same_metrics(tmp_path: Path) -> None:
    """A run cut after round 1 (run.json says running) resumes through the API to the metrics of
    an uninterrupted run."""
    from fedmobile_actors.orchestration.driver import run_scenario

    full = api.run(QUICKSTART, TINY, output_dir=tmp_path / "full")
    cut = run_scenario(
        api.validate(QUICKSTART, TINY), quiet=True, output_dir=tmp_path, stop_after=1
    )
    assert api.load_run(cut.path).status == "running"
    resumed = api.resume(cut.path)
    assert resumed.status == "finished"
    assert without_wall_time(resumed.metrics) == without_wall_time(full.metrics)


def test_sweep_returns_its_table_and_runs(tmp_path: Path) -> None:
    overrides = {
        **TINY,
        "rounds.rounds": 1,
        "output.dir": str(tmp_path),
        "sweep": {"grid": {"algorithm.lr": [0.05, 0.1]}, "parallel": 1},
    }
    result = api.sweep(QUICKSTART, overrides)
    assert result.path.parent == tmp_path
    assert [row["algorithm.lr"] for row in result.rows] == [0.05, 0.1]
    assert [run.scenario.algorithm.lr for run in result.runs] == [0.05, 0.1]
    assert all(run.status == "finished" for run in result.runs)


def test_a_sweep_with_a_bad_plug_in_in_its_grid_fails_before_any_run(tmp_path: Path) -> None:
    overrides = {
        **TINY,
        "output.dir": str(tmp_path),
        "sweep": {"grid": {"algorithm.name": ["fedavg", "nowhere_xyz:Strategy"]}},
    }
    with pytest.raises(ScenarioError, match="cannot import 'nowhere_xyz'"):
        api.sweep(QUICKSTART, overrides)
    assert list(tmp_path.iterdir()) == []


def test_load_run_of_a_non_run_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(RunDirError):
        api.load_run(tmp_path)
    assert issubclass(RunDirError, UserError)
