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

#: With on-demand data, a group's accuracy is read on the held-out windows of this many of its
#: phones (the lowest ids), not of all of them: a group of a million phones would otherwise need
#: a million test draws at start-up and tens of millions of indices.
GROUP_SAMPLE_PHONES = 64


@dataclass(frozen=True)
class GroupIndex:
    """Which phones and which test windows make up each group ("tier/budget", ...).

    Built once per run from the world: a group's test windows are its phones' own
    (``World.phone_test_index``), so its accuracy is read off the one evaluation of the test set.
    Each phone's group is a small integer code per grouping (one int32 column over the fleet),
    not a string per phone. With dealt data every phone of a group counts; with on-demand data
    (``data.source.per_phone``) the group's first ``GROUP_SAMPLE_PHONES`` phones by id do, so
    building the index costs O(groups), not O(fleet) test draws (docs/outputs.md).
    """

    keys: dict[str, tuple[str, ...]]  # grouping -> its groups' "grouping/group" keys
    codes: dict[str, np.ndarray]  # grouping -> each phone's index into keys[grouping]
    phones: dict[str, int]
    test_index: dict[str, np.ndarray]

    @staticmethod
    def of(world: World) -> GroupIndex:
        sample = GROUP_SAMPLE_PHONES if world.on_demand is not None else None
        keys: dict[str, tuple[str, ...]] = {}
        codes: dict[str, np.ndarray] = {}
        phones: dict[str, int] = {}
        index: dict[str, np.ndarray] = {}
        for grouping, (names, code) in world.group_codes.items():
            keys[grouping] = tuple(f"{grouping}/{name}" for name in names)
            codes[grouping] = code
            counts = np.bincount(code, minlength=len(names))
            for i, key in enumerate(keys[grouping]):
                phones[key] = int(counts[i])
                members = np.flatnonzero(code == i)[:sample]
                index[key] = np.concatenate([world.phone_test_index(int(p)) for p in members])
        return GroupIndex(keys, codes, phones, {k: index[k] for k in sorted(index)})

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
            for grouping, code in self.codes.items():
                row = out[self.keys[grouping][code[task.phone_id]]]
                row["dispatched"] = int(row["dispatched"] or 0) + 1
                row[task.outcome.value] = int(row[task.outcome.value] or 0) + 1
        return out
