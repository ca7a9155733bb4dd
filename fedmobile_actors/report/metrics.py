"""Per-round metrics and the per-task event log as files: rows written while the run works.

The row types (``RoundMetrics``, event rows) are made by the runtime (``runtime/metrics.py``).

Both are written twice: CSV for people and spreadsheets, JSON lines for programs (the twin keeps
lists such as Shapley weights as lists). Rows are appended and flushed per round, so an
interrupted run leaves everything it finished readable.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def _csv_value(value: Any) -> Any:
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":")) if value else ""
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
