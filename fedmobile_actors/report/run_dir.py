"""The run directory: one folder per run, its file names, and safe ways to write and read them.

Why a class of its own: the runtime writes a run, ``fedmobile report``/``compare`` and sweeps read
it back, and a resumed run appends to it. Keeping every file name and every write rule here means
a run directory is never reused by accident (creation picks a fresh name), status files are
replaced atomically (a crash never leaves half a ``run.json``), and results files are only ever
appended to or created exclusively (resume fails loudly instead of clobbering).

Layout (docs/outputs.md)::

    <output.dir>/<scenario name>-<YYYYmmdd-HHMMSS>[-N]/
      run.json  scenario.yaml  metrics.csv  metrics.jsonl  events.csv  events.jsonl
      summary.json  checkpoints/round-00005.ckpt  plots/*.png
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import tempfile
from dataclasses import MISSING, asdict, dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from fedmobile_actors.errors import RunDirError
from fedmobile_actors.report.metrics import RowWriter, read_jsonl
from fedmobile_actors.runtime.metrics import EVENT_COLUMNS, FLOAT_METRIC_COLUMNS, RoundMetrics

RUN_INFO = "run.json"
SCENARIO = "scenario.yaml"
METRICS = "metrics"  # stem: metrics.csv and metrics.jsonl
EVENTS = "events"  # stem: events.csv and events.jsonl
SUMMARY = "summary.json"
CHECKPOINTS = "checkpoints"
PLOTS = "plots"

RunStatus = Literal["running", "finished", "failed", "interrupted"]
STATUSES: tuple[str, ...] = ("running", "finished", "failed", "interrupted")
_CHECKPOINT_NAME = re.compile(r"^round-(\d+)\.ckpt$")

#: First line of every checkpoint file; the second is a JSON header, the rest the server's blob.
CHECKPOINT_MAGIC = b"FEDMOBILE-CHECKPOINT 1\n"
_CHECKPOINT_HEADER_MAX = 4096


@dataclass(frozen=True)
class RunInfo:
    """The contents of ``run.json``: what ran, where, and how far it got.

    Times are ISO 8601 with offset (``datetime.now().astimezone().isoformat()``); ``finished`` is
    None while running. ``error`` holds the one-line reason of a failed run.
    """

    name: str  # scenario name
    status: RunStatus
    started: str
    seed: int
    backend: str  # "ray" or "inprocess"
    algorithm: str
    policy: str  # "deadline" or "async"
    rounds_planned: int
    rounds_done: int = 0
    hosts: int | None = None  # phone-host actors (None for the in-process backend)
    address: str | None = None  # Ray address joined (None: a local Ray or in-process)
    package_version: str = ""
    finished: str | None = None
    resumed: tuple[str, ...] = ()  # ISO times at which the run was resumed
    error: str | None = None
    scenario_sha256: str | None = None  # the run's identity: hash of the resolved scenario
    # CPU and builds the run started on (orchestration/arithmetic.py); None in older run dirs
    platform: dict[str, str] | None = None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["resumed"] = list(self.resumed)
        return data

    @staticmethod
    def from_dict(data: Any, source: Path) -> RunInfo:
        """Validate a parsed ``run.json``; a missing key or a bad status is a ``RunDirError``."""
        if not isinstance(data, dict):
            raise RunDirError(f"{source}: corrupt run.json (not a JSON object)")
        known = {f.name for f in fields(RunInfo)}
        required = [
            f.name for f in fields(RunInfo) if f.default is MISSING and f.default_factory is MISSING
        ]
        missing = [name for name in required if name not in data]
        if missing:
            raise RunDirError(f"{source}: corrupt run.json (missing {', '.join(missing)})")
        if data["status"] not in STATUSES:
            raise RunDirError(
                f"{source}: corrupt run.json (status {data['status']!r}; "
                f"allowed: {', '.join(STATUSES)})"
            )
        for name in ("seed", "rounds_planned", "rounds_done"):
            value = data.get(name, 0)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise RunDirError(f"{source}: corrupt run.json ({name} is {value!r})")
        for name in ("name", "started"):
            if not isinstance(data[name], str):
                raise RunDirError(f"{source}: corrupt run.json ({name} is not text)")
        if not isinstance(data.get("resumed") or [], list):
            raise RunDirError(f"{source}: corrupt run.json (resumed is not a list)")
        facts = data.get("platform")
        if facts is not None and not (
            isinstance(facts, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in facts.items())
        ):
            raise RunDirError(f"{source}: corrupt run.json (platform is not a map of texts)")
        values = {k: v for k, v in data.items() if k in known}
        values["resumed"] = tuple(values.get("resumed") or ())
        return RunInfo(**values)


def now_iso() -> str:
    """The current local time as ISO 8601 with its UTC offset, to the second."""
    return datetime.now().astimezone().isoformat(timespec="seconds")


def write_json_atomic(path: Path, data: Any) -> None:
    """Replace ``path`` with ``data`` as JSON in one step (temp file + ``os.replace``).

    Why: ``run.json`` and ``summary.json`` are rewritten while other processes may read them, and
    a run may be killed at any moment; readers see the old file or the new one, never half.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, allow_nan=False)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_new_text(path: Path, text: str) -> None:
    """Create ``path`` with ``text``; if it already exists, refuse with a ``RunDirError``."""
    try:
        with path.open("x", encoding="utf-8") as handle:
            handle.write(text)
    except FileExistsError:
        raise RunDirError(f"{path}: already exists; refusing to overwrite it") from None


def _safe_name(name: str) -> str:
    """A scenario name made safe as a folder name (letters, digits, ``._-``; others become -)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")
    return cleaned or "run"


def claim_new_dir(parent: Path, name: str, when: datetime | None = None) -> Path:
    """Create ``<parent>/<name>-<YYYYmmdd-HHMMSS>[-N]``, never an existing directory.

    ``mkdir`` without ``exist_ok`` is the atomic claim, so two runs (or sweeps) started in the
    same second still get two directories (``-1``, ``-2``, ...).
    """
    parent.mkdir(parents=True, exist_ok=True)
    base = f"{_safe_name(name)}-{(when or datetime.now()).strftime('%Y%m%d-%H%M%S')}"
    for n in range(10_000):
        path = parent / (base if n == 0 else f"{base}-{n}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise RunDirError(f"{parent}: could not find a free directory name for {base!r}")


def scenario_identity(yaml_text: str) -> str:
    """A run's identity: the sha256 of its resolved scenario, as stored in scenario.yaml."""
    return hashlib.sha256(yaml_text.encode("utf-8")).hexdigest()


def _why(err: BaseException) -> str:
    """An OS error's reason in a few words (``No space left on device``), without the path."""
    if isinstance(err, FileExistsError):
        return "a file of that name is in the way"
    if isinstance(err, NotADirectoryError):
        return "a part of the path is a file, not a directory"
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return str(err) or type(err).__name__


class RunDir:
    """One run's directory. Build with ``create`` (a new run) or ``open`` (an existing one)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    # ---------------------------------------------------------------- creation and validation

    @staticmethod
    def create(parent: str | os.PathLike[str], name: str, when: datetime | None = None) -> RunDir:
        """Make a fresh ``<parent>/<name>-<YYYYmmdd-HHMMSS>[-N]`` (never an existing directory).

        ``mkdir`` without ``exist_ok`` is the atomic claim, so two runs of a sweep started in the
        same second still get two directories (``-1``, ``-2``, ...).
        """
        try:
            path = claim_new_dir(Path(parent), name, when)
            (path / CHECKPOINTS).mkdir()
        except (OSError, ValueError) as err:
            raise RunDirError(
                f"{parent}: cannot create a run directory here ({_why(err)})"
            ) from None
        return RunDir(path)

    @staticmethod
    def open(path: str | os.PathLike[str]) -> RunDir:
        """Open an existing run directory, checking the files every reader relies on.

        Checks: it is a directory; ``run.json`` parses and has every required key;
        ``scenario.yaml`` and ``metrics.jsonl`` exist; ``summary.json`` parses if present.
        Each failure is one ``RunDirError`` line naming the file.
        """
        run = RunDir(Path(path))
        if not run.path.exists():
            raise RunDirError(f"{run.path}: no such run directory")
        if not run.path.is_dir():
            raise RunDirError(f"{run.path}: not a directory (expected a run directory)")
        if not run.run_info_path.is_file():
            raise RunDirError(f"{run.path}: not a run directory (missing {RUN_INFO})")
        run.read_run_info()
        for required in (run.scenario_path, run.metrics_jsonl):
            if not required.is_file():
                raise RunDirError(f"{run.path}: incomplete run directory (missing {required.name})")
        if run.summary_path.exists():
            run.read_summary()
        return run

    # ---------------------------------------------------------------- paths

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def run_info_path(self) -> Path:
        return self.path / RUN_INFO

    @property
    def scenario_path(self) -> Path:
        return self.path / SCENARIO

    @property
    def metrics_csv(self) -> Path:
        return self.path / f"{METRICS}.csv"

    @property
    def metrics_jsonl(self) -> Path:
        return self.path / f"{METRICS}.jsonl"

    @property
    def events_csv(self) -> Path:
        return self.path / f"{EVENTS}.csv"

    @property
    def events_jsonl(self) -> Path:
        return self.path / f"{EVENTS}.jsonl"

    @property
    def summary_path(self) -> Path:
        return self.path / SUMMARY

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / CHECKPOINTS

    @property
    def plots_dir(self) -> Path:
        return self.path / PLOTS

    def checkpoint_path(self, round_index: int, suffix: str = ".ckpt") -> Path:
        """Where the checkpoint taken after ``round_index`` goes (``round-00005.ckpt``)."""
        return self.checkpoints_dir / f"round-{round_index:05d}{suffix}"

    # ---------------------------------------------------------------- writing

    def write_scenario(self, yaml_text: str) -> None:
        """Store the resolved scenario once; a second write is refused, never overwritten."""
        write_new_text(self.scenario_path, yaml_text)

    def check_scenario(self, yaml_text: str, identity: str | None = None) -> None:
        """On resume: the stored scenario must be the one this run started with.

        With ``identity`` (the sha256 written into run.json when the run started) the stored
        file must hash to it: that catches any edit, the seed included. It is not compared with
        ``yaml_text`` (the file loaded and resolved again by this version), because a newer
        version that added a setting resolves the same file to a longer text, and a study must
        survive an upgrade: added settings default to what older versions did. Without an
        identity (run.json written before it was kept) the file must equal its re-resolution.
        """
        if not self.scenario_path.is_file():
            raise RunDirError(f"{self.path}: incomplete run directory (missing {SCENARIO})")
        try:
            stored = self.scenario_path.read_text(encoding="utf-8")
        except (OSError, ValueError) as err:
            raise RunDirError(f"{self.scenario_path}: unreadable ({_why(err)})") from None
        if identity is not None:
            changed = scenario_identity(stored) != identity
        else:
            changed = stored != yaml_text
        if changed:
            raise RunDirError(
                f"{self.scenario_path}: differs from the scenario this run started with "
                f"({RUN_INFO} scenario_sha256); restore it or start a new run"
            )

    def write_checkpoint(self, round_index: int, blob: bytes, identity: str) -> Path:
        """Write the checkpoint of ``round_index`` with its integrity header, atomically.

        Header: the round, the run's identity and the blob's sha256 and length, so resume can
        refuse a damaged file, a file copied from another round or another run. Written to a
        temporary name, fsynced, then renamed: a kill or a full disk mid-write leaves the
        previous checkpoint as the newest and no half file under a checkpoint's name.
        """
        path = self.checkpoint_path(round_index)
        header = {
            "round": round_index,
            "run": identity,
            "sha256": hashlib.sha256(blob).hexdigest(),
            "bytes": len(blob),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(CHECKPOINT_MAGIC)
                handle.write(json.dumps(header).encode("ascii") + b"\n")
                handle.write(blob)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    def read_checkpoint(self, round_index: int, path: Path, identity: str | None) -> bytes:
        """The server's blob of a checkpoint, after every guard; a ``RunDirError`` names the file.

        Guards: the magic line and header parse; the round inside equals the round in the
        name; the run identity equals ``identity`` (from run.json); the blob has the recorded
        length and sha256.
        """
        try:
            data = path.read_bytes()
        except OSError as err:
            raise RunDirError(f"{path}: unreadable checkpoint ({_why(err)})") from None
        if not data.startswith(CHECKPOINT_MAGIC):
            raise RunDirError(f"{path}: corrupt checkpoint (no fedmobile checkpoint header)")
        rest = data[len(CHECKPOINT_MAGIC) :]
        end = rest.find(b"\n", 0, _CHECKPOINT_HEADER_MAX)
        try:
            header = json.loads(rest[:end]) if end >= 0 else None
        except ValueError:
            header = None
        if not isinstance(header, dict) or not {"round", "run", "sha256", "bytes"} <= set(header):
            raise RunDirError(f"{path}: corrupt checkpoint (damaged header)")
        blob = rest[end + 1 :]
        if header["round"] != round_index:
            raise RunDirError(
                f"{path}: holds round {header['round']!r}, not round {round_index} as its name "
                "says (copied over?); delete it to resume from the previous checkpoint"
            )
        if identity is not None and header["run"] != identity:
            raise RunDirError(f"{path}: belongs to another run (its scenario hash differs)")
        if len(blob) != header["bytes"] or hashlib.sha256(blob).hexdigest() != header["sha256"]:
            raise RunDirError(
                f"{path}: corrupt checkpoint (sha256 mismatch); delete it to resume from the "
                "previous checkpoint"
            )
        return blob

    def remove_partial_checkpoints(self) -> list[Path]:
        """Delete ``*.tmp`` files a killed checkpoint write left behind; return what was removed."""
        if not self.checkpoints_dir.is_dir():
            return []
        removed = sorted(p for p in self.checkpoints_dir.glob("*.tmp") if p.is_file())
        for path in removed:
            path.unlink(missing_ok=True)
        return removed

    def write_run_info(self, info: RunInfo) -> None:
        """Replace ``run.json`` atomically (it is the one file meant to change as a run goes)."""
        write_json_atomic(self.run_info_path, info.as_dict())

    def write_summary(self, summary: dict[str, Any]) -> Path:
        write_json_atomic(self.summary_path, summary)
        return self.summary_path

    def metrics_writer(self) -> RowWriter:
        """Append-only writer of metrics.csv/.jsonl (existing rows are kept, never rewritten)."""
        return RowWriter(self.path, METRICS, RoundMetrics.columns())

    def events_writer(self) -> RowWriter:
        """Append-only writer of events.csv/.jsonl."""
        return RowWriter(self.path, EVENTS, list(EVENT_COLUMNS))

    def trim_to_round(self, round_index: int) -> None:
        """Drop metrics and event rows after ``round_index`` (resume from that checkpoint).

        Why this is not clobbering: rounds after the checkpoint are re-run, and since every draw
        is keyed by (seed, phone, round, purpose) they produce the same rows again; keeping the
        old rows would count those rounds twice. Each file is rewritten atomically.
        """
        self._trim(METRICS, RoundMetrics.columns(), round_index)
        if self.events_jsonl.exists():
            self._trim(EVENTS, list(EVENT_COLUMNS), round_index)

    def _trim(self, stem: str, columns: list[str], round_index: int) -> None:
        jsonl = self.path / f"{stem}.jsonl"
        keep = [row for row in self._read_rows(jsonl, ()) if int(row["round"]) <= round_index]
        with tempfile.TemporaryDirectory(dir=self.path, prefix=".trim-") as tmp:
            writer = RowWriter(Path(tmp), stem, columns)
            writer.write(keep)
            writer.close()
            os.replace(writer.jsonl_path, jsonl)
            os.replace(writer.csv_path, self.path / f"{stem}.csv")

    # ---------------------------------------------------------------- reading

    def read_run_info(self) -> RunInfo:
        return RunInfo.from_dict(self._read_json(self.run_info_path), self.run_info_path)

    def read_summary(self) -> dict[str, Any]:
        """The stored ``summary.json``; missing or corrupt is a ``RunDirError``."""
        data = self._read_json(self.summary_path)
        if not isinstance(data, dict):
            raise RunDirError(f"{self.summary_path}: corrupt summary.json (not a JSON object)")
        return data

    def read_metrics(self) -> list[dict[str, Any]]:
        """Metrics rows from ``metrics.jsonl``, in round order; ``null`` floats are NaN."""
        return self._read_rows(self.metrics_jsonl, FLOAT_METRIC_COLUMNS)

    def read_events(self) -> list[dict[str, Any]]:
        """Event rows from ``events.jsonl``; empty when the run had ``output.event_log: false``."""
        if not self.events_jsonl.exists():
            return []
        return self._read_rows(self.events_jsonl, ())

    def checkpoints(self) -> list[tuple[int, Path]]:
        """(round, path) of each non-empty ``round-NNNNN.ckpt`` checkpoint, oldest first.

        Empty files and ``.tmp`` leftovers (a crash while writing) are never taken for the newest
        checkpoint.
        """
        if not self.checkpoints_dir.is_dir():
            return []
        found = []
        for path in self.checkpoints_dir.iterdir():
            match = _CHECKPOINT_NAME.match(path.name)
            if match and path.is_file() and path.stat().st_size > 0:
                found.append((int(match.group(1)), path))
        return sorted(found)

    def latest_checkpoint(self) -> tuple[int, Path] | None:
        found = self.checkpoints()
        return found[-1] if found else None

    def plot_files(self) -> list[Path]:
        return sorted(self.plots_dir.glob("*.png")) if self.plots_dir.is_dir() else []

    def _read_json(self, path: Path) -> Any:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise RunDirError(f"{self.path}: missing {path.name}") from None
        try:
            return json.loads(text)
        except json.JSONDecodeError as err:
            reason = f"{err.msg}, line {err.lineno}"
            raise RunDirError(f"{path}: corrupt {path.name} ({reason})") from None

    def _read_rows(self, path: Path, nan_columns: tuple[str, ...]) -> list[dict[str, Any]]:
        try:
            rows = read_jsonl(path, nan_columns)
        except FileNotFoundError:
            raise RunDirError(f"{self.path}: missing {path.name}") from None
        except IsADirectoryError:
            raise RunDirError(f"{path}: is a directory, not {path.name}") from None
        except OSError as err:
            raise RunDirError(f"{path}: unreadable ({_why(err)})") from None
        except ValueError as err:  # includes UnicodeDecodeError
            raise RunDirError(f"{path}: corrupt {path.name} ({err})") from None
        for number, row in enumerate(rows, start=1):
            problem = _row_problem(row)
            if problem is not None:
                raise RunDirError(f"{path}: corrupt {path.name} (row {number}: {problem})")
        return rows


def _row_problem(row: dict[str, Any]) -> str | None:
    """Why a metrics or event row cannot be read back, or None.

    Readers (summary, plots, compare, resume) do arithmetic on these values; a hand-edited or
    damaged row must fail here with the file's name, not as a TypeError deep in a plot.
    """
    round_index = row.get("round")
    if isinstance(round_index, bool) or not isinstance(round_index, int) or round_index < 0:
        return f"round is {round_index!r}, not a round number"
    for key, value in row.items():
        if key == "outcome":
            if not isinstance(value, str):
                return f"outcome is {value!r}, not text"
        elif key in _LIST_COLUMNS:
            if not isinstance(value, list) or not all(_is_number(v) for v in value):
                return f"{key} is not a list of numbers"
        elif key in _MAPPING_COLUMNS:
            if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
                return f"{key} is not a mapping of groups"
        elif key in _NUMERIC_COLUMNS and value is not None and not _is_number(value):
            return f"{key} is {value!r}, not a number"
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


#: Column kinds read off RoundMetrics' annotations, so a new metric is checked without a list here.
_METRIC_TYPES = {f.name: str(f.type) for f in dataclasses.fields(RoundMetrics)}
_LIST_COLUMNS = frozenset(c for c, t in _METRIC_TYPES.items() if t.startswith("tuple["))
_MAPPING_COLUMNS = frozenset(c for c, t in _METRIC_TYPES.items() if t.startswith("dict["))
_NUMERIC_COLUMNS = frozenset(
    [c for c, t in _METRIC_TYPES.items() if t in ("int", "float")]
    + [c for c in EVENT_COLUMNS if c != "outcome"]
)
