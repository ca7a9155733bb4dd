"""One simulated phone as an object: a frozen spec, made on demand from the fleet's columns.

Why a pure function of (scenario, seed): every host and the server agree on every phone without
talking, and a re-run gives the same fleet. Why on demand: a fleet of a million phones is a few
numpy columns (builder.py); a spec is made only for the phone someone asks about.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class PhoneSpec:
    """A phone's device tier, compute speed, network, failure rate and missing modalities.

    Bandwidths are in bits per second; ``missing_rates[m]`` is the per-sample probability that a
    window of this phone lacks modality m (1.0: the phone has no such sensor).
    ``availability_class`` names the availability class the phone belongs to (the model's name,
    e.g. ``always``, when the scenario has no classes).
    """

    phone_id: int
    tier: str
    samples_per_second: float
    down_bps: float
    up_bps: float
    latency_s: float
    failure_prob: float
    missing_rates: Mapping[str, float] = field(default_factory=dict)
    availability_class: str = ""


class AvailabilityProcess(Protocol):
    """When one phone is online. Pure: the same queries always give the same answers.

    ``round_index`` is the dispatch round (deadline policy) or model version (async policy); only
    per-round models (Bernoulli) use it.
    """

    def online_at(self, t: float, round_index: int) -> bool:
        """Is the phone online at virtual time ``t``?"""
        ...

    def next_offline(self, t: float, round_index: int) -> float:
        """The first instant >= t at which the phone is offline (``t`` itself if offline now,
        ``math.inf`` if it stays online for ever)."""
        ...
