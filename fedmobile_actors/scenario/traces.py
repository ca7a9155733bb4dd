"""Check an availability trace file when the scenario is loaded, not rounds into a run.

Why here and not only in fleet/availability.py (whose ``load_trace`` reads the trace for the
run): a missing or malformed trace is a mistake in the scenario, so ``fedmobile validate`` must
name it, with its file and line, before anything starts. The scenario layer cannot import the
fleet layer (dependencies point down), so the format's rules are checked again here; a test
feeds the same broken files to both readers so they cannot disagree.

Format: a header ``phone,online_from,online_until``, then one online interval per row, in
seconds; blank rows are skipped; ``online_until`` must exceed ``online_from``.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

#: The header a trace file must start with (same as fleet.availability.TRACE_HEADER).
TRACE_HEADER = ("phone", "online_from", "online_until")


def resolve_trace(file: str, base_dir: str) -> Path:
    """A trace path as the run will open it: relative paths are relative to the scenario."""
    path = Path(file).expanduser()
    return path if path.is_absolute() else Path(base_dir) / path


def trace_problem(path: Path) -> str | None:
    """The first problem of a trace file as ``<file>[:<line>]: <problem>``, or None if valid."""
    if path.is_dir():
        return f"{path}: is a directory; expected a CSV trace file"
    if not path.is_file():
        return f"{path}: trace file not found"
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as err:
        return f"{path}: cannot read trace file ({err.strerror or err})"
    except UnicodeDecodeError as err:
        return f"{path}: not a text file (byte {err.start} is not UTF-8)"
    try:
        rows = list(csv.reader(text.splitlines()))
    except csv.Error as err:
        return f"{path}: not a CSV file ({err})"
    if not rows or tuple(cell.strip() for cell in rows[0]) != TRACE_HEADER:
        got = ",".join(rows[0]) if rows else "nothing"
        return f"{path}:1: header is {got[:60]!r}; expected {','.join(TRACE_HEADER)!r}"
    intervals = 0
    for line, row in enumerate(rows[1:], start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        problem = _row_problem(row)
        if problem is not None:
            return f"{path}:{line}: {problem}"
        intervals += 1
    if intervals == 0:
        return f"{path}: no online intervals after the header"
    return None


def _row_problem(row: list[str]) -> str | None:
    if len(row) != 3:
        return f"expected 3 fields (phone,online_from,online_until), got {len(row)}"
    try:
        phone = int(row[0].strip())
    except ValueError:
        return f"phone {row[0].strip()[:30]!r} is not a whole number"
    if phone < 0:
        return f"phone {phone} is negative; ids must be >= 0"
    times: list[float] = []
    for name, cell in zip(TRACE_HEADER[1:], row[1:], strict=True):
        try:
            value = float(cell.strip())
        except ValueError:
            return f"{name} {cell.strip()[:30]!r} is not a number"
        if not math.isfinite(value) or value < 0:
            return f"{name} {cell.strip()[:30]!r} must be a finite number >= 0"
        times.append(value)
    start, end = times
    if end <= start:
        return f"online_until {end:g} must be greater than online_from {start:g}"
    return None
