"""Per-group results of a run: accuracy on each group's own test windows, task outcomes."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from conftest_helpers import metrics_of  # type: ignore[import-not-found]

from fedmobile_actors.runtime.inprocess import InProcessBackend
from fedmobile_actors.runtime.world import World
from fedmobile_actors.scenario import Scenario

CLASSES = [
    {"name": "rare", "share": 0.5, "availability": {"model": "bernoulli", "p_online": 0.3}},
    {"name": "always", "share": 0.5, "availability": {"model": "always"}},
]


def _grouped(make_tiny: Callable[..., Scenario]) -> Scenario:
    return make_tiny(
        data={"partition": {"kind": "subject"}},
        fleet={"availability_classes": CLASSES, "correlation": {"by": "subject"}},
    )


def test_every_phone_is_in_one_group_of_each_grouping(make_tiny: Callable[..., Scenario]) -> None:
    world = World.build(_grouped(make_tiny))
    groups = world.phone_groups
    assert set(groups) == {"tier", "availability", "subject"}
    assert all(len(per_phone) == 6 for per_phone in groups.values())
    assert sorted(set(groups["availability"])) == ["always", "rare"]


def test_phone_test_holds_the_phones_subject(make_tiny: Callable[..., Scenario]) -> None:
    world = World.build(_grouped(make_tiny))
    for phone in range(6):
        subjects = set(world.local_data(phone).dataset.subjects.tolist())
        assert set(world.phone_test(phone).dataset.subjects.tolist()) == subjects


def test_group_outcomes_add_up_to_the_rounds_and_accuracy_is_evaluated(
    make_tiny: Callable[..., Scenario],
) -> None:
    rows = metrics_of(InProcessBackend(_grouped(make_tiny)))
    for row in rows:
        totals = {}
        for grouping in ("tier", "availability", "subject"):
            members = [g for k, g in row["groups"].items() if k.startswith(f"{grouping}/")]
            assert sum(g["phones"] for g in members) == 6
            totals[grouping] = tuple(
                sum(g[name] for g in members) for name in ("dispatched", "reported", "late")
            )
        assert len(set(totals.values())) == 1  # every grouping counts the same tasks
        assert totals["tier"][1] == row["reported"] + row["rejected"]
        assert all(0.0 <= g["accuracy"] <= 1.0 for g in row["groups"].values())


def test_a_group_accuracy_is_the_accuracy_on_its_phones_test_windows(
    make_tiny: Callable[..., Scenario],
) -> None:
    """Read off the one evaluation of the test set = evaluating the group's windows directly."""
    scenario = _grouped(make_tiny)
    backend = InProcessBackend(scenario)
    out = backend.run_round()
    assert out is not None
    server = backend.server
    world = server.world
    phones = [p for p, c in enumerate(world.phone_groups["availability"]) if c == "rare"]
    index = np.concatenate([world.phone_test_index(p) for p in phones])
    test = world.split.test.subset(index)
    present = {m: np.ones(len(test), dtype=bool) for m in world.modality_names}
    direct = server.strategy.evaluate(server.state, test, present).accuracy
    assert out.metrics.groups["availability/rare"]["accuracy"] == direct
    backend.shutdown()
