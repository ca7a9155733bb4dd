"""The round-policy interface: fleet + costs + seed -> a deterministic sequence of steps."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator

from fedmobile_actors.sim.tasks import Step


class RoundPolicy(ABC):
    """Decides, in virtual time, who is dispatched, who drops, who is late, and what is applied.

    ``steps()`` yields exactly ``rounds`` steps (versions 1..rounds); iterating it twice gives the
    same steps, which is how a resumed run fast-forwards to its checkpoint.
    """

    @abstractmethod
    def steps(self) -> Iterator[Step]:
        """The aggregation steps of the whole run, in order."""
