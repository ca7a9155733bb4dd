"""Per-group figures of a round: which phones and which test windows make up each group.

A group is one value of a grouping over phones (``tier/budget``, ``availability/commuter``,
``subject/subject 3``); its accuracy is read off the one evaluation of the test set, and its
task outcomes are counted from the step's tasks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fedmobile_actors.runtime.world import World
from fedmobile_actors.sim.tasks import Outcome, Step


@dataclass(frozen=True)
class GroupIndex:
    """Which phones and which test windows make up each group ("tier/budget", ...).

    Built once per run from the world: a group's test windows are its phones' own
    (``World.phone_test_index``), so its accuracy is read off the one evaluation of the test set.
    """

    group_of: dict[str, tuple[str, ...]]  # grouping -> each phone's "grouping/group" key
    phones: dict[str, int]
    test_index: dict[str, np.ndarray]

    @staticmethod
    def of(world: World) -> GroupIndex:
        group_of: dict[str, tuple[str, ...]] = {}
        members: dict[str, list[int]] = {}
        for grouping, per_phone in world.phone_groups.items():
            keys = tuple(f"{grouping}/{g}" for g in per_phone)
            group_of[grouping] = keys
            for phone, key in enumerate(keys):
                members.setdefault(key, []).append(phone)
        index = {
            key: np.concatenate([world.phone_test_index(p) for p in phones])
            for key, phones in sorted(members.items())
        }
        return GroupIndex(group_of, {k: len(v) for k, v in members.items()}, index)

    def figures(
        self, step: Step, correct: np.ndarray | None
    ) -> dict[str, dict[str, float | int | None]]:
        """Each group's accuracy (None when not evaluated) and task outcomes in ``step``."""
        out: dict[str, dict[str, float | int | None]] = {}
        for key, idx in self.test_index.items():
            acc = None
            if correct is not None and idx.size:
                acc = float(correct[idx].mean())
            out[key] = {"phones": self.phones[key], "accuracy": acc, "dispatched": 0}
            out[key].update({o.value: 0 for o in Outcome})
        for task in step.tasks:
            for keys in self.group_of.values():
                row = out[keys[task.phone_id]]
                row["dispatched"] = int(row["dispatched"] or 0) + 1
                row[task.outcome.value] = int(row[task.outcome.value] or 0) + 1
        return out
