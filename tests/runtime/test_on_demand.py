"""On-demand phone data in the runtime: same bits on every backend and after resume, shards
cached within the host's budget, bookkeeping sized by groups and dispatched phones."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from conftest_helpers import comparable, metrics_of, tiny_scenario  # type: ignore[import-not-found]

from fedmobile_actors.runtime.groups import GROUP_SAMPLE_PHONES, GroupIndex
from fedmobile_actors.runtime.inprocess import InProcessBackend
from fedmobile_actors.runtime.phone_host import PhoneHost
from fedmobile_actors.runtime.world import World
from fedmobile_actors.scenario import Scenario

PER_PHONE = {"samples": 40, "test_samples": 300, "reference_samples": 300}


def on_demand(phones: int = 6, **sections: Any) -> Scenario:
    data = {
        "source": {"kind": "synthetic", "num_classes": 4, "per_phone": PER_PHONE},
        "partition": {"kind": "dirichlet", "alpha": 0.5},
        "proxy_fraction": 0.2,
        **sections.pop("data", {}),
    }
    fleet = {"phones": phones, "failure_prob": 0.1, **sections.pop("fleet", {})}
    return tiny_scenario(data=data, fleet=fleet, **sections)


@pytest.fixture(scope="module")
def reference() -> list[dict[str, Any]]:
    return metrics_of(InProcessBackend(on_demand()))


def test_on_demand_run_trains_and_evaluates(reference: list[dict[str, Any]]) -> None:
    assert len(reference) == 3
    assert all(row["reported"] > 0 and 0 <= row["accuracy_full"] <= 1 for row in reference)


@pytest.mark.integration
@pytest.mark.parametrize("hosts", [1, 2])
def test_ray_matches_in_process_bit_for_bit(
    ray_session: Any, reference: list[dict[str, Any]], hosts: int
) -> None:
    from fedmobile_actors.runtime.ray_backend import RayBackend

    backend = RayBackend(on_demand(runtime={"backend": "ray", "hosts": hosts}))
    assert metrics_of(backend) == reference


def test_resume_from_a_checkpoint_gives_the_same_metrics(reference: list[dict[str, Any]]) -> None:
    first = InProcessBackend(on_demand())
    out = first.run_round()
    assert out is not None
    resumed = InProcessBackend(on_demand(), checkpoint=first.checkpoint())
    assert [comparable(out.metrics), *metrics_of(resumed)] == reference


def test_host_cache_stays_within_its_budget_and_remakes_identical_shards() -> None:
    """Shards of ~0.5 MB under a 1 MB budget: old phones are dropped and remade bit for bit."""
    scenario = on_demand(
        data={"source": {"kind": "synthetic", "num_classes": 4, "per_phone": {"samples": 500}}},
        runtime={"shard_cache_mb": 1},
    )
    host = PhoneHost(scenario)
    first = host.phone(0).dataset.modalities["acc"].copy()
    for phone in range(1, 6):
        host.phone(phone)
        assert host.cached_bytes <= 2**20
    assert 0 not in host._phones
    assert np.array_equal(host.phone(0).dataset.modalities["acc"], first)


def test_dealt_data_is_never_evicted() -> None:
    host = PhoneHost(tiny_scenario(runtime={"shard_cache_mb": 1}))
    for phone in range(6):
        host.phone(phone)
    assert len(host._phones) == 6 and host.cached_bytes == 0


def test_a_groups_accuracy_reads_a_bounded_sample_of_its_phones() -> None:
    """On-demand groups count every phone but read the first 64 phones' test windows."""
    world = World.build(on_demand(phones=300, rounds={"clients_per_round": 2}))
    groups = GroupIndex.of(world)
    assert sum(v for k, v in groups.phones.items() if k.startswith("tier/")) == 300
    for key, index in groups.test_index.items():
        grouping, name = key.split("/", 1)
        members = [p for p, g in enumerate(world.phone_groups[grouping]) if g == name]
        sample = members[:GROUP_SAMPLE_PHONES]
        assert len(members) > GROUP_SAMPLE_PHONES or len(members) == len(sample)
        expected = np.concatenate([world.phone_test_index(p) for p in sample])
        assert np.array_equal(index, expected)


def test_per_phone_evaluation_reads_the_steps_applied_phones() -> None:
    """With on-demand data the authors' per-phone accuracy averages the phones that reported."""
    backend = InProcessBackend(on_demand(phones=30, rounds={"eval_per_phone": True}))
    out = backend.run_round()
    assert out is not None and out.metrics.accuracy_per_phone is not None
    server = backend.server
    reported = sorted({e["phone_id"] for e in out.events if e["outcome"] == "reported"})
    accuracies = []
    for phone in reported:
        own = server.world.phone_test(phone)
        accuracies.append(server.strategy.evaluate(server.state, own.dataset, own.present).accuracy)
    assert out.metrics.accuracy_per_phone == float(np.mean(accuracies))


def test_a_fleet_follows_on_demand_data_by_subject() -> None:
    """By-subject partition and correlation work without making any phone's windows."""
    classes = [
        {"name": "rare", "share": 0.5, "availability": {"model": "bernoulli", "p_online": 0.3}},
        {"name": "always", "share": 0.5, "availability": {"model": "always"}},
    ]
    world = World.build(
        on_demand(
            phones=40,
            data={"partition": {"kind": "subject"}},
            fleet={"availability_classes": classes, "correlation": {"by": "subject"}},
        )
    )
    subjects = world.phone_groups["subject"]
    assert subjects[:3] == ("subject 0", "subject 1", "subject 2")
    by_class: dict[str, set[str]] = {}
    for subject, cls in zip(subjects, world.phone_groups["availability"], strict=True):
        by_class.setdefault(cls, set()).add(subject)
    assert not by_class["rare"] & by_class["always"]  # strength 1: a subject has one class
