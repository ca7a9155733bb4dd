"""Which samples lack which modality: per-phone rates -> per-sample presence masks.

A phone's missing rates (from the fleet) are turned into a fixed per-sample mask, drawn once from
(seed, phone, "presence"): which of a phone's windows lack the accelerometer is a property of its
data, not redrawn every round. A sample always keeps at least one modality, since a window with
no sensor at all is not a sample.
"""

from __future__ import annotations

import numpy as np

from fedmobile_actors.seeding import rng


def presence(
    n: int,
    missing_rates: dict[str, float],
    names: tuple[str, ...],
    seed: int,
    owner: int,
    purpose: str = "presence",
) -> dict[str, np.ndarray]:
    """Bool masks (n,) per modality, True where present; ``owner`` is the phone id (or SERVER).

    ``purpose`` keys the stream, so the server's test and proxy masks are independent draws.
    """
    gen = rng(seed, owner, 0, purpose)
    present = {name: gen.random(n) >= missing_rates.get(name, 0.0) for name in names}
    if names:
        stacked = np.stack([present[name] for name in names])  # (M, n)
        empty = ~stacked.any(axis=0)
        if empty.any():
            # Give each empty sample back the modality with the lowest missing rate (ties: first).
            keep = min(names, key=lambda name: missing_rates.get(name, 0.0))
            present[keep] = present[keep] | empty
    return present
