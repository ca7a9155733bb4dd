"""The authors' protocol as runtime settings: per-phone test splits and their accuracy column,
and fedmobile_authors (per-phone Adam, per-step dropout) bit-identical in-process and on Ray."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest_helpers import metrics_of  # type: ignore[import-not-found]

from fedmobile_actors.algorithms.fedavg import FedAvg
from fedmobile_actors.orchestration.driver import resume_run, run_scenario
from fedmobile_actors.report.run_dir import RunDir
from fedmobile_actors.runtime.inprocess import InProcessBackend
from fedmobile_actors.runtime.world import World
from fedmobile_actors.scenario import Scenario
from fedmobile_actors.scenario.schema import AlgorithmConfig

SUBJECTS = {"source": {"kind": "synthetic", "samples": 600, "num_classes": 4, "subjects": 6}}
AUTHORS: dict[str, Any] = {
    "data": {**SUBJECTS, "partition": {"kind": "subject"}, "proxy_fraction": 0.3},
    "fleet": {"phones": 6, "failure_prob": 0.0},
    "modalities": {"missing": [], "training_dropout": [{"modality": "acc", "rate": 0.8}]},
    "model": {"kind": "authors_conv2d"},
    "algorithm": {
        "name": "fedmobile_authors",
        "optimizer": "adam",
        "lr": 0.001,
        "weight_decay": 0.0001,
        "batch_size": 16,
        "fedmobile_authors": {"generator_hidden": 16},
    },
    "rounds": {"rounds": 2, "clients_per_round": 6, "eval_per_phone": True},
}


def test_phone_test_is_the_held_out_windows_of_its_subject(
    make_tiny: Callable[..., Scenario],
) -> None:
    world = World.build(make_tiny(data={**SUBJECTS, "partition": {"kind": "subject"}}))
    seen = []
    for phone in range(world.scenario.fleet.phones):
        own = world.phone_test(phone)
        start, end = world.data.offsets[phone], world.data.offsets[phone + 1]
        (subject,) = np.unique(world.split.train.subjects[start:end])
        assert set(own.dataset.subjects.tolist()) == {subject}
        assert len(own) == int((world.split.test.subjects == subject).sum())
        assert all(bool(mask.all()) for mask in own.present.values())  # complete test sets
        seen.append(len(own))
    assert sum(seen) == len(world.split.test)


class LeakingFedAvg(FedAvg):
    """A user's strategy that says it reads the test set."""

    @classmethod
    def reads_test_set(cls, algorithm: AlgorithmConfig) -> bool:
        return True


@pytest.mark.parametrize(
    ("algorithm", "leaks"),
    [
        ({"name": "fedavg"}, False),
        ({**AUTHORS["algorithm"], "fedmobile_authors": {"selection_split": "validation"}}, False),
        ({**AUTHORS["algorithm"], "fedmobile_authors": {"selection_split": "test_leaky"}}, True),
        ({"name": f"{__name__}:LeakingFedAvg"}, True),
    ],
)
def test_only_a_strategy_that_says_it_leaks_gets_the_test_set(
    make_tiny: Callable[..., Scenario], algorithm: dict[str, Any], leaks: bool
) -> None:
    world = World.build(make_tiny(**{**AUTHORS, "algorithm": algorithm}))
    context = world.context()
    assert (context.leaky_test is world.split.test) if leaks else context.leaky_test is None


def test_per_phone_accuracy_only_when_asked(make_tiny: Callable[..., Scenario]) -> None:
    asked = metrics_of(InProcessBackend(make_tiny(rounds={"rounds": 2, "eval_per_phone": True})))
    plain = metrics_of(InProcessBackend(make_tiny(rounds={"rounds": 2})))
    assert all(0.0 <= r["accuracy_per_phone"] <= 1.0 for r in asked)
    assert all(r["accuracy_per_phone"] is None for r in plain)
    # The pooled columns are the same either way.
    assert [r["accuracy_full"] for r in asked] == [r["accuracy_full"] for r in plain]


@pytest.mark.integration
def test_fedmobile_authors_on_ray_matches_in_process(
    ray_session: Any, make_tiny: Callable[..., Scenario]
) -> None:
    from fedmobile_actors.runtime.ray_backend import RayBackend

    local = metrics_of(InProcessBackend(make_tiny(**AUTHORS)))
    on_ray = metrics_of(RayBackend(make_tiny(**AUTHORS, runtime={"backend": "ray", "hosts": 2})))
    assert local == on_ray
    assert all(r["clusters"] >= 1 for r in local)


def test_fedmobile_authors_resumes_to_the_same_rows(
    make_tiny: Callable[..., Scenario], tmp_path: Path
) -> None:
    """Cut after round 1 and resumed: per-phone Adam moments, BatchNorm statistics, the
    generator and last round's accuracy all come back from the checkpoint."""
    scenario = make_tiny(**AUTHORS, output={"checkpoint_every": 1, "plots": False})
    reference = run_scenario(scenario, quiet=True, output_dir=tmp_path / "ref")
    cut = run_scenario(scenario, quiet=True, output_dir=tmp_path / "cut", stop_after=1)
    resumed = resume_run(cut.path, quiet=True)

    def rows(run: RunDir) -> list[dict[str, Any]]:
        return [{k: v for k, v in r.items() if k != "wall_time_s"} for r in run.read_metrics()]

    assert rows(resumed) == rows(reference)
