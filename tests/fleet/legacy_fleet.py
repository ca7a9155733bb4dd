"""A frozen copy of the object-based fleet build as it was before fleets became columns (commit
128760b): one ``PhoneSpec`` per phone, drawn with the same streams.

Kept only so tests/fleet/test_fleet_columns.py can show that the column build draws the very same
fleet (every field of every phone) for the scenarios that ran before; it is not used elsewhere.
The helpers it imports (tier and class assignment, missing rates, distribution draws) are
unchanged by the move to columns.
"""

from __future__ import annotations

import numpy as np

from fedmobile_actors.fleet.builder import (
    MBPS,
    _availability_classes,
    assign_tiers,
    correlated_assignment,
    missing_rates,
)
from fedmobile_actors.fleet.distributions import draw
from fedmobile_actors.fleet.phone import PhoneSpec
from fedmobile_actors.scenario.schema import Scenario
from fedmobile_actors.seeding import SERVER, rng


def legacy_phones(
    scenario: Scenario, modality_names: tuple[str, ...], data_key: np.ndarray | None = None
) -> tuple[PhoneSpec, ...]:
    """Every phone of ``scenario.fleet`` as the object-based build made it."""
    cfg = scenario.fleet
    n, seed = cfg.phones, scenario.seed
    corr = cfg.correlation
    shares = tuple(t.share for t in cfg.tiers)
    if corr is not None and corr.tiers and data_key is not None:
        tier_of = correlated_assignment(shares, data_key, corr.strength, seed, "tiers")
    else:
        tier_of = assign_tiers(shares, n, seed)
    class_names, class_of = _availability_classes(scenario, data_key)
    speed, down, up, latency = (np.empty(n) for _ in range(4))
    for i, tier in enumerate(cfg.tiers):
        members = np.flatnonzero(tier_of == i)
        for name, out, scale in (
            ("samples_per_second", speed, 1.0),
            ("down_mbps", down, MBPS),
            ("up_mbps", up, MBPS),
        ):
            values = draw(
                getattr(tier, name), rng(seed, SERVER, 0, f"fleet/{tier.name}/{name}"), members.size
            )
            out[members] = values * scale
        latency[members] = tier.latency_s
    rates = missing_rates(scenario.modalities, modality_names, n, seed)
    names = [t.name for t in cfg.tiers]
    return tuple(
        PhoneSpec(
            phone_id=p,
            tier=names[tier_index],
            samples_per_second=s,
            down_bps=d,
            up_bps=u,
            latency_s=lat,
            failure_prob=cfg.failure_prob,
            missing_rates=dict(zip(modality_names, row, strict=True)),
            availability_class=class_names[class_index],
        )
        for p, (tier_index, class_index, s, d, u, lat, row) in enumerate(
            zip(
                tier_of.tolist(),
                class_of.tolist(),
                speed.tolist(),
                down.tolist(),
                up.tolist(),
                latency.tolist(),
                rates.tolist(),
                strict=True,
            )
        )
    )
