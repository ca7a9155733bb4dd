"""How much a stale update counts in buffered-async aggregation.

The staleness s of an update is the number of aggregations between the version it was trained
from and the version it is applied to. The functions are those of FedAsync (Xie et al., 2019,
"Asynchronous Federated Optimization", section 5.2), also used by FedBuff (Nguyen et al., 2022):

- constant:   w(s) = 1
- polynomial: w(s) = (1 + s)^(-a)
- hinge:      w(s) = 1                        if s <= b
              w(s) = 1 / (a * (s - b) + 1)    otherwise

with a = ``rounds.staleness_exponent`` and b = ``rounds.staleness_hinge``. All give w(0) = 1, so
a fresh update keeps its full weight.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from fedmobile_actors.scenario.schema import RoundsConfig

StalenessKind = Literal["constant", "polynomial", "hinge"]


@dataclass(frozen=True)
class StalenessWeight:
    """w(s) for one choice of function and parameters; call it with the staleness."""

    kind: StalenessKind = "polynomial"
    exponent: float = 0.5
    hinge: int = 4

    @classmethod
    def from_rounds(cls, rounds: RoundsConfig) -> StalenessWeight:
        return cls(rounds.staleness, rounds.staleness_exponent, rounds.staleness_hinge)

    def __call__(self, staleness: int) -> float:
        if staleness < 0:
            raise ValueError(f"staleness {staleness} is negative")
        if self.kind == "constant":
            return 1.0
        if self.kind == "polynomial":
            return float((1.0 + staleness) ** -self.exponent)
        if staleness <= self.hinge:
            return 1.0
        return 1.0 / (self.exponent * (staleness - self.hinge) + 1.0)
