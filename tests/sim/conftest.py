"""Hand-built fleets for the policy tests: every timing is easy to compute by hand."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from fedmobile_actors.fleet import Fleet, PhoneSpec
from fedmobile_actors.fleet.availability import AvailabilityModel
from fedmobile_actors.scenario.schema import AlwaysOn, TraceAvailability

FleetFactory = Callable[..., Fleet]


def hand_fleet(
    n: int,
    trace: Sequence[Sequence[tuple[float, float]]] | None = None,
    failure_prob: float = 0.0,
    samples_per_second: float = 10.0,
) -> Fleet:
    """``n`` identical phones: 8000 bit/s both ways (1,000 bytes take 1 s), 0.5 s latency.

    ``trace[p]`` (optional) gives phone p's online intervals; otherwise always online.
    """
    phones = tuple(
        PhoneSpec(
            phone_id=p,
            tier="hand",
            samples_per_second=samples_per_second,
            down_bps=8000.0,
            up_bps=8000.0,
            latency_s=0.5,
            failure_prob=failure_prob,
        )
        for p in range(n)
    )
    if trace is None:
        return Fleet.from_phones(phones, AvailabilityModel(AlwaysOn()))
    intervals = tuple(tuple(phone) for phone in trace)
    return Fleet.from_phones(
        phones, AvailabilityModel(TraceAvailability(file="hand"), 0, intervals)
    )


@pytest.fixture
def make_fleet() -> FleetFactory:
    return hand_fleet
