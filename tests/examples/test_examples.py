"""examples/: the out-of-tree strategies (FedAvgM, SCAFFOLD) and model (window statistics) run
from a directory outside the package, in-process and on Ray, with identical metrics.

On Ray the examples' package reaches the hosts through the actors' ``runtime_env``
``py_modules`` (the session's Ray was started before ``examples/`` was on any path).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fedmobile_actors import api
from fedmobile_actors.cli.main import main
from fedmobile_actors.runtime.ray_backend import plugin_runtime_env

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NAMES = ("fedavgm", "scaffold", "stats_model")


@pytest.fixture(scope="module", autouse=True)
def examples_importable() -> Iterator[None]:
    """What a user does with ``PYTHONPATH=examples`` (or by running from examples/)."""
    sys.path.insert(0, str(EXAMPLES))
    yield
    sys.path.remove(str(EXAMPLES))


@pytest.fixture(scope="module")
def in_process(tmp_path_factory: pytest.TempPathFactory) -> dict[str, api.RunResult]:
    """Each example run once in this process (shared by the tests that compare with it)."""
    out = tmp_path_factory.mktemp("inprocess")
    return {
        name: api.run(
            EXAMPLES / name / "scenario.yaml", {"runtime.backend": "inprocess"}, output_dir=out
        )
        for name in NAMES
    }


def rows(result: api.RunResult) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "wall_time_s"} for r in result.metrics]


@pytest.mark.parametrize("name", NAMES)
def test_example_runs_in_process(in_process: dict[str, api.RunResult], name: str) -> None:
    """Every round runs, phones report, and the model learns beyond chance (4 classes)."""
    result = in_process[name]
    assert result.status == "finished" and len(result.metrics) == 8
    assert sum(r["reported"] for r in result.metrics) > 0
    final = result.final_accuracy("full")
    assert final is not None and final > 0.35


def test_scaffold_keeps_its_variates_on_the_phones() -> None:
    """SCAFFOLD's variate c_i is phone state: it never travels in an update (only its change
    does), a phone's second task starts from it, and the server's c follows the reports."""
    from fedmobile_examples.scaffold import DELTA, FIRST, PHONE_C, SERVER_C

    from fedmobile_actors.algorithms.registry import make_strategy
    from fedmobile_actors.runtime.world import World

    world = World.build(api.validate(EXAMPLES / "scaffold" / "scenario.yaml"))
    strategy = make_strategy(world.context())
    assert strategy.is_stateful()
    state = strategy.initial_state()
    first = strategy.local_update(strategy.payload(state), world.local_data(0), 0, 0, 1)
    assert first.phone_state is not None and first.arrays[FIRST][0] == 1.0
    assert not any(k.startswith(PHONE_C) for k in first.arrays)
    assert set(strategy.update_shapes(strategy.payload(state))) == set(first.arrays)
    new = strategy.aggregate(state, [first], [1.0]).state
    second = strategy.local_update(
        strategy.payload(new), world.local_data(0), 0, 1, 2, first.phone_state
    )
    assert second.arrays[FIRST][0] == 0.0
    name = next(k for k in second.phone_state or {} if k.startswith(PHONE_C))
    param = name[len(PHONE_C) :]
    # One phone has reported: the server's c is its c_i, and c_i moved by the uploaded change.
    assert (strategy.payload(new)[SERVER_C + param] == first.phone_state[name]).all()
    moved = (second.phone_state or {})[name] - first.phone_state[name]
    assert abs(moved - second.arrays[DELTA + param]).max() < 1e-6


@pytest.mark.parametrize("name", ["fedavgm", "scaffold"])
def test_example_resumes_to_the_same_metrics(
    in_process: dict[str, api.RunResult], name: str, tmp_path: Path
) -> None:
    """Cut after round 4 (a checkpoint) and resumed: FedAvgM's server velocity and SCAFFOLD's
    per-phone variates come back from the checkpoint, so the rows equal an uncut run's."""
    from fedmobile_actors.orchestration.driver import run_scenario

    scenario = api.validate(EXAMPLES / name / "scenario.yaml", {"runtime.backend": "inprocess"})
    cut = run_scenario(scenario, quiet=True, output_dir=tmp_path, stop_after=4)
    assert len(api.load_run(cut.path).metrics) == 4
    assert rows(api.resume(cut.path)) == rows(in_process[name])


@pytest.mark.integration
@pytest.mark.parametrize("name", ["fedavgm", "scaffold"])
def test_example_on_ray_equals_in_process(
    ray_session: Any, in_process: dict[str, api.RunResult], name: str, tmp_path: Path
) -> None:
    scenario = api.validate(EXAMPLES / name / "scenario.yaml", {"runtime.hosts": 2})
    shipped = plugin_runtime_env(scenario)
    assert shipped is not None and shipped["env_vars"]["PYTHONPATH"].startswith(str(EXAMPLES))
    on_ray = api.run(scenario, output_dir=tmp_path)
    assert rows(on_ray) == rows(in_process[name])


@pytest.mark.integration
def test_cli_runs_an_out_of_tree_strategy_and_model_on_ray(
    ray_session: Any, in_process: dict[str, api.RunResult], tmp_path: Path, capsys: Any
) -> None:
    """The done-when of issue 13: `fedmobile run` of a scenario naming a plug-in strategy and a
    plug-in model, on Ray with two hosts, gives the in-process metrics."""
    path = EXAMPLES / "stats_model" / "scenario.yaml"
    assert main(["run", str(path), "--hosts", "2", "-q", "--output", str(tmp_path)]) == 0
    (run_dir,) = tmp_path.iterdir()
    assert f"run directory: {run_dir}" in capsys.readouterr().out
    assert rows(api.load_run(run_dir)) == rows(in_process["stats_model"])
