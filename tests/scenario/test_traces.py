"""The one trace-file reader: merging intervals, and one line per malformed file."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedmobile_actors.errors import DataError
from fedmobile_actors.scenario.traces import load_trace, trace_problem


def _write(tmp_path: Path, text: str | bytes, name: str = "trace.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


TRACE = "phone,online_from,online_until\n0,10,20\n0,30,40\n1,0,100\n0,15,25\n"


def test_load_trace_sorts_and_merges_intervals_per_phone(tmp_path: Path) -> None:
    trace = load_trace(_write(tmp_path, TRACE))
    assert trace == {0: [(10.0, 25.0), (30.0, 40.0)], 1: [(0.0, 100.0)]}


def test_a_directory_is_a_one_line_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is a directory"):
        load_trace(tmp_path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("phone,from,until\n0,1,2\n", r"trace\.csv:1: header is 'phone,from,until'"),
        ("phone,online_from,online_until\n0,1\n", r"trace\.csv:2: expected 3 fields"),
        ("phone,online_from,online_until\n0,1,2\nx,1,2\n", r"trace\.csv:3: phone 'x' is not"),
        ("phone,online_from,online_until\n0,abc,2\n", r"trace\.csv:2: online_from 'abc' is not"),
        ("phone,online_from,online_until\n0,5,5\n", r"trace\.csv:2: online_until 5 must be"),
        ("phone,online_from,online_until\n-1,1,2\n", r"trace\.csv:2: phone -1 is negative"),
        ("phone,online_from,online_until\n0,nan,2\n", r"trace\.csv:2: online_from 'nan' must"),
        ("phone,online_from,online_until\n\n", r"trace\.csv: no online intervals"),
        ("", r"trace\.csv:1: header is 'nothing'"),
        (b"phone,online_from,online_until\n\xff,1,2\n", r"trace\.csv: not a text file"),
    ],
)
def test_malformed_trace_names_file_line_and_problem(
    tmp_path: Path, text: str | bytes, message: str
) -> None:
    with pytest.raises(DataError, match=message) as err:
        load_trace(_write(tmp_path, text))
    assert "\n" not in str(err.value)


def test_trace_problem_is_the_readers_message_or_none(tmp_path: Path) -> None:
    """Loading a scenario reports exactly what the reader raises, as one line."""
    assert trace_problem(_write(tmp_path, TRACE)) is None
    bad = _write(tmp_path, "phone,online_from,online_until\n0,5,5\n", "bad.csv")
    with pytest.raises(DataError) as err:
        load_trace(bad)
    assert trace_problem(bad) == str(err.value)
