"""Per-round metrics and the per-task event log, as rows written while the run works.

Both are written twice: CSV for people and spreadsheets, JSON lines for programs (the twin keeps
lists such as Shapley weights as lists). Rows are appended and flushed per round, so an
interrupted run leaves everything it finished readable.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
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
    shapley_weights: tuple[float, ...] = field(default_factory=tuple)

    @staticmethod
    def columns() -> list[str]:
        return [f.name for f in fields(RoundMetrics)]

    def as_row(self) -> dict[str, Any]:
        row = asdict(self)
        row["shapley_weights"] = list(self.shapley_weights)
        return row

    @staticmethod
    def from_row(row: dict[str, Any]) -> RoundMetrics:
        """The inverse of ``as_row`` for a JSON-lines row (``null`` floats become NaN)."""
        values = {name: row[name] for name in RoundMetrics.columns() if name in row}
        for name in FLOAT_METRIC_COLUMNS:
            if values.get(name) is None:
                values[name] = math.nan
        values["shapley_weights"] = tuple(values.get("shapley_weights") or ())
        return RoundMetrics(**values)


#: RoundMetrics columns holding floats: their JSON ``null`` is NaN (not evaluated, or no loss).
FLOAT_METRIC_COLUMNS = (
    "virtual_time_s",
    "wall_time_s",
    "accuracy_full",
    "accuracy_missing",
    "loss",
    "train_loss",
)


def _csv_value(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return ";".join(f"{v:.6g}" for v in value)
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return value


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class RowWriter:
    """Appends rows to ``<stem>.csv`` and ``<stem>.jsonl`` under one directory."""

    def __init__(self, directory: Path, stem: str, columns: list[str]) -> None:
        self.columns = columns
        self.csv_path = directory / f"{stem}.csv"
        self.jsonl_path = directory / f"{stem}.jsonl"
        new = not self.csv_path.exists()
        self._csv = self.csv_path.open("a", newline="", encoding="utf-8")
        self._jsonl = self.jsonl_path.open("a", encoding="utf-8")
        self._writer = csv.DictWriter(self._csv, fieldnames=columns)
        if new:
            self._writer.writeheader()

    def write(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            self._writer.writerow({k: _csv_value(row[k]) for k in self.columns})
            self._jsonl.write(json.dumps({k: _json_value(row[k]) for k in self.columns}) + "\n")
        self._csv.flush()
        self._jsonl.flush()

    def close(self) -> None:
        self._csv.close()
        self._jsonl.close()


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


def read_jsonl(path: Path, nan_columns: Iterable[str] = ()) -> list[dict[str, Any]]:
    """Rows of a JSON-lines file; ``null`` in a ``nan_columns`` column comes back as NaN.

    Why the list: JSON has no NaN, so the writer stores a not-evaluated accuracy as ``null``;
    the caller names the float columns whose ``null`` means NaN (``FLOAT_METRIC_COLUMNS``).
    A cut-off last line (no newline: the run was killed mid-write) is ignored, because the rows
    before it are complete; any other line that is not a JSON object is a ``ValueError`` naming
    its line number.
    """
    nan_set = set(nan_columns)
    lines = path.read_text(encoding="utf-8").split("\n")
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):
                break
            raise ValueError(f"line {number} is not JSON") from None
        if not isinstance(row, dict):
            raise ValueError(f"line {number} is not a JSON object")
        for name in nan_set:
            if name in row and row[name] is None:
                row[name] = math.nan
        rows.append(row)
    return rows
