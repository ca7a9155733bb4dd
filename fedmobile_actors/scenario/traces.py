"""The one reader of availability trace files, used both when a scenario is loaded and when a
fleet replays the trace.

Why it lives in the scenario layer: a missing or malformed trace is a mistake in the scenario, so
``fedmobile validate`` must name it, with its file and line, before anything starts; the scenario
layer is the lowest that needs the trace, and the fleet layer (which replays it) sits above it and
imports this reader instead of keeping a copy of its rules.

Format: a header ``phone,online_from,online_until``, then one online interval per row, in
seconds; blank rows are skipped; ``online_until`` must exceed ``online_from``.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from fedmobile_actors.errors import DataError

#: The header a trace file must start with.
TRACE_HEADER = ("phone", "online_from", "online_until")


def resolve_trace(file: str, base_dir: str | Path) -> Path:
    """A trace path as the run will open it: relative paths are relative to the scenario."""
    path = Path(file).expanduser()
    return path if path.is_absolute() else Path(base_dir) / path


def load_trace(path: str | Path) -> dict[int, list[tuple[float, float]]]:
    """Read a trace CSV into sorted, merged intervals per phone id, in ascending id order.

    Overlapping or touching intervals of one phone are merged. Raises ``DataError`` whose message
    is ``<file>[:<line>]: <problem>``.
    """
    file = Path(path)
    if file.is_dir():
        raise DataError(f"{file}: is a directory; expected a CSV trace file")
    if not file.is_file():
        raise DataError(f"{file}: trace file not found")
    try:
        text = file.read_bytes().decode("utf-8")
    except OSError as err:
        raise DataError(f"{file}: cannot read trace file ({err.strerror or err})") from None
    except UnicodeDecodeError as err:
        raise DataError(f"{file}: not a text file (byte {err.start} is not UTF-8)") from None
    try:
        table = list(csv.reader(text.splitlines()))
    except csv.Error as err:
        raise DataError(f"{file}: not a CSV file ({err})") from None
    rows = iter(table)
    header = next(rows, None)
    if header is None or tuple(h.strip() for h in header) != TRACE_HEADER:
        got = ",".join(header) if header else "nothing"
        raise DataError(f"{file}:1: header is {got[:60]!r}; expected {','.join(TRACE_HEADER)!r}")
    raw: dict[int, list[tuple[float, float]]] = {}
    for line, row in enumerate(rows, start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        phone, start, end = _parse_row(f"{file}:{line}", row)
        raw.setdefault(phone, []).append((start, end))
    if not raw:
        raise DataError(f"{file}: no online intervals after the header")
    return {phone: _merge(raw[phone]) for phone in sorted(raw)}


def trace_problem(path: Path) -> str | None:
    """The first problem of a trace file as ``<file>[:<line>]: <problem>``, or None if valid."""
    try:
        load_trace(path)
    except DataError as err:
        return str(err)
    return None


def _parse_row(where: str, row: list[str]) -> tuple[int, float, float]:
    if len(row) != 3:
        fields = ",".join(TRACE_HEADER)
        raise DataError(f"{where}: expected 3 fields ({fields}), got {len(row)}")
    try:
        phone = int(row[0].strip())
    except ValueError:
        raise DataError(f"{where}: phone {row[0].strip()[:30]!r} is not a whole number") from None
    if phone < 0:
        raise DataError(f"{where}: phone {phone} is negative; ids must be >= 0")
    times = []
    for name, cell in zip(TRACE_HEADER[1:], row[1:], strict=True):
        try:
            value = float(cell.strip())
        except ValueError:
            raise DataError(f"{where}: {name} {cell.strip()[:30]!r} is not a number") from None
        if not math.isfinite(value) or value < 0:
            raise DataError(f"{where}: {name} {cell.strip()[:30]!r} must be a finite number >= 0")
        times.append(value)
    start, end = times
    if end <= start:
        raise DataError(f"{where}: online_until {end:g} must be greater than online_from {start:g}")
    return phone, start, end


def _merge(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
