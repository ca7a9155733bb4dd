"""What one round produces: its metrics row and its tasks' event-log rows.

These types live where the round is made (the server); the report layer writes and reads them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from fedmobile_actors.sim.tasks import Task


@dataclass(frozen=True)
class RoundMetrics:
    """One aggregation's figures. Accuracies are NaN for rounds that were not evaluated."""

    round: int  # the global version this round produced (1..rounds)
    virtual_time_s: float  # virtual clock at aggregation
    wall_time_s: float  # seconds since the run started (wall clock)
    accuracy_full: float  # test accuracy, every modality present
    accuracy_missing: float  # test accuracy under the scenario's test-time missing pattern
    loss: float  # test cross-entropy, every modality present
    train_loss: float  # mean local training loss of applied updates
    dispatched: int
    reported: int  # updates aggregated
    dropped_offline: int
    dropped_failed: int
    late: int
    stale: int
    rejected: int  # corrupt, mis-shaped or non-finite updates
    bytes_down: int
    bytes_up: int
    clusters: int = 0  # FedMobile: generator clusters this round
    #: mean over phones of each phone's model on its own held-out windows; None unless
    #: rounds.eval_per_phone asks for it (or in rounds not evaluated)
    accuracy_per_phone: float | None = None
    shapley_weights: tuple[float, ...] = field(default_factory=tuple)
    # Per group of phones ("tier/budget", "availability/night", "subject/subject 3"): phones,
    # accuracy on the group's own test windows (every modality present; None when the round was
    # not evaluated), and this round's task outcomes (dispatched, reported, dropped, late, stale).
    groups: dict[str, dict[str, float | int | None]] = field(default_factory=dict)
    # Validation (proxy) accuracy: what design choices are made on; NaN without a proxy set.
    accuracy_val_full: float = math.nan
    accuracy_val_missing: float = math.nan
    # FedMobile's server step, as it computed it (the instability is read from these).
    filtered: int = 0  # phones the filter rule dropped from the model average
    cluster_sizes: tuple[int, ...] = field(default_factory=tuple)
    shapley_values: tuple[float, ...] = field(default_factory=tuple)
    # Relative error of the fill on proxy rows with the modality dropped:
    # mean ||fill - real||^2 / mean ||real - mean(real)||^2 (1 = no better than the mean feature).
    fill_error: float = math.nan
    # The largest report's share of the model average (FedMobile's alpha after the filter):
    # 1/reports for an even average, 1.0 when one phone's model becomes the global model.
    model_weight_max: float = math.nan

    @staticmethod
    def columns() -> list[str]:
        return [f.name for f in fields(RoundMetrics)]

    def as_row(self) -> dict[str, Any]:
        row = asdict(self)
        for name in ("shapley_weights", "cluster_sizes", "shapley_values"):
            row[name] = list(getattr(self, name))
        return row


#: RoundMetrics columns holding floats: their JSON ``null`` is NaN (not evaluated, or no loss).
FLOAT_METRIC_COLUMNS = (
    "virtual_time_s",
    "wall_time_s",
    "accuracy_full",
    "accuracy_missing",
    "loss",
    "train_loss",
    "accuracy_val_full",
    "accuracy_val_missing",
    "fill_error",
    "model_weight_max",
)


EVENT_COLUMNS = [
    "task_id",
    "phone_id",
    "base_version",
    "round",
    "dispatch_s",
    "end_s",
    "outcome",
    "staleness",
    "weight",
    "bytes_down",
    "bytes_up",
]


def event_rows(round_index: int, tasks: tuple[Task, ...]) -> list[dict[str, Any]]:
    """Event-log rows for the tasks that ended in one round."""
    return [
        {
            "task_id": t.task_id,
            "phone_id": t.phone_id,
            "base_version": t.base_version,
            "round": round_index,
            "dispatch_s": t.dispatch_s,
            "end_s": t.end_s,
            "outcome": t.outcome.value,
            "staleness": t.staleness,
            "weight": t.weight,
            "bytes_down": t.down_bytes,
            "bytes_up": t.up_bytes,
        }
        for t in tasks
    ]
