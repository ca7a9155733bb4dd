"""USC-HAD read from its original release layout: Subject<s>/a<activity>t<trial>.mat.

Why read the release as it is: the dataset is not ours to ship, so the user points at their copy
(``data.source.path`` or ``FEDMOBILE_USC_HAD``) and nothing is converted by hand. Each .mat file is
one trial: ``sensor_readings`` is N x 6 at 100 Hz (acc xyz in g, gyro xyz in dps). Windows are cut
within a trial, never across two, so no window mixes two recordings. The windowed arrays are
cached as one .npz so the 840 files are parsed once per (directory, window, stride).

Conventions: labels are ``activity - 1`` (0..11, always 12 classes); subject ids are kept as the
release's 1-based numbers (1..14), the same numbers ``subjects`` and ``test_subjects`` take in a
scenario. The activity comes from the file name, which is what the release's naming promises;
the field inside the file (``activity_number``, spelled ``activity_numbr`` in Subject13/a11t4) is
only cross-checked, because a few files of the release disagree with their names.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io

from fedmobile_actors.data.dataset import MultimodalDataset
from fedmobile_actors.data.proxy import WindowPositions
from fedmobile_actors.errors import DataError
from fedmobile_actors.scenario.schema import UscHadSource

log = logging.getLogger(__name__)

SUBJECTS = tuple(range(1, 15))
ACTIVITIES = tuple(range(1, 13))
TRIALS = tuple(range(1, 6))
NUM_CLASSES = len(ACTIVITIES)
ENV_VAR = "FEDMOBILE_USC_HAD"
#: Bump when the cache's content or layout changes, so old caches are ignored.
CACHE_FORMAT = 1
#: Columns of ``sensor_readings`` that make each modality.
MODALITY_COLUMNS = {"acc": slice(0, 3), "gyro": slice(3, 6)}
_PROGRESS_AFTER_S = 1.5
_FILE_NAME = re.compile(r"a(\d+)t(\d+)\.mat")


@dataclass(frozen=True)
class Windows:
    """Every window of the loaded subjects, in (subject, activity, trial, offset) order.

    ``readings`` is float32 (N, 6, window); ``activity``, ``subject`` and ``trial`` are the
    release's 1-based numbers, int64 (N,).
    """

    readings: np.ndarray
    activity: np.ndarray
    subject: np.ndarray
    trial: np.ndarray


def load_usc_had(
    source: UscHadSource, base_dir: str | Path
) -> tuple[MultimodalDataset, MultimodalDataset]:
    """(train, test) windows of USC-HAD, not yet normalised (``loading.normalise`` does that)."""
    train, test, _ = load_usc_had_split(source, base_dir)
    return train, test


def load_usc_had_split(
    source: UscHadSource, base_dir: str | Path
) -> tuple[MultimodalDataset, MultimodalDataset, WindowPositions]:
    """``load_usc_had`` plus where each test window came from (``recording_id`` and start
    offset), which a proxy split that shares no sample with the test split needs."""
    root = find_root(source, base_dir)
    subjects = _selected_subjects(source)
    windows = load_windows(
        root, subjects, source.window, source.stride, _cache_dir(source, base_dir)
    )
    if source.test_split == "trial":
        test_mask = windows.trial == TRIALS[-1]
    else:
        missing = sorted(set(source.test_subjects) - set(subjects))
        if missing:
            raise DataError(
                f"USC-HAD: test_subjects {missing} are not among the loaded subjects "
                f"{list(subjects)}"
            )
        test_mask = np.isin(windows.subject, source.test_subjects)
    if test_mask.all() or not test_mask.any():
        which = "training" if test_mask.all() else "test"
        raise DataError(
            f"USC-HAD: the {source.test_split} split leaves no {which} windows "
            f"(subjects {list(subjects)}, window {source.window})"
        )
    full = to_dataset(windows)
    test_idx = np.flatnonzero(test_mask)
    positions = window_positions(windows, source.window, source.stride).subset(test_idx)
    return full.subset(np.flatnonzero(~test_mask)), full.subset(test_idx), positions


def recording_id(subject: np.ndarray, activity: np.ndarray, trial: np.ndarray) -> np.ndarray:
    """One int64 per (subject, activity, trial): ``subject * 1000 + activity * 10 + trial``
    (subject 10, activity 12, trial 5 is 10125), readable and unique for the release's ranges."""
    return subject.astype(np.int64) * 1000 + activity.astype(np.int64) * 10 + trial


def window_positions(windows: Windows, window: int, stride: int) -> WindowPositions:
    """Recording and start offset of every window. Windows are stored in (subject, activity,
    trial, offset) order and a trial's k-th window starts at ``k * stride``, so the offset is
    the window's rank within its run of equal recording ids times the stride."""
    ids = recording_id(windows.subject, windows.activity, windows.trial)
    n = len(ids)
    new_run = np.ones(n, dtype=bool)
    new_run[1:] = ids[1:] != ids[:-1]
    run_start = np.maximum.accumulate(np.where(new_run, np.arange(n), 0))
    return WindowPositions(ids, (np.arange(n) - run_start).astype(np.int64) * stride, window)


def to_dataset(windows: Windows) -> MultimodalDataset:
    """Two modalities, acc and gyro (3, window) each; labels 0..11; 1-based subject ids kept."""
    return MultimodalDataset(
        modalities={
            name: np.ascontiguousarray(windows.readings[:, cols])
            for name, cols in MODALITY_COLUMNS.items()
        },
        labels=windows.activity - 1,
        subjects=windows.subject.copy(),
        num_classes=NUM_CLASSES,
    )


def window_count(samples: int, window: int, stride: int) -> int:
    """Windows of ``window`` samples every ``stride`` samples that fit in one trial."""
    return 0 if samples < window else (samples - window) // stride + 1


# --------------------------------------------------------------------------------------------
# Finding the release
# --------------------------------------------------------------------------------------------


def find_root(source: UscHadSource, base_dir: str | Path) -> Path:
    """The directory holding Subject1..Subject14: the given one, or its ``data/`` child."""
    if source.path is not None:
        given = Path(base_dir) / Path(source.path).expanduser()
    elif os.environ.get(ENV_VAR):
        given = Path(os.environ[ENV_VAR]).expanduser()
    else:
        raise DataError(
            f"USC-HAD: no dataset path; set data.source.path in the scenario or the {ENV_VAR} "
            f"environment variable to the release's directory"
        )
    given = given.resolve()
    if not given.is_dir():
        raise DataError(f"USC-HAD: {given} does not exist or is not a directory")
    for candidate in (given, given / "data"):
        if any((candidate / f"Subject{s}").is_dir() for s in SUBJECTS):
            return candidate
    raise DataError(
        f"USC-HAD: {given}: no Subject1..Subject14 folders (expected the release's data "
        f"directory or its parent)"
    )


def _selected_subjects(source: UscHadSource) -> tuple[int, ...]:
    chosen = tuple(sorted(set(source.subjects))) if source.subjects is not None else SUBJECTS
    bad = [s for s in chosen if s not in SUBJECTS]
    if bad or not chosen:
        raise DataError(f"USC-HAD: subjects {bad or '[]'} are not valid; allowed: 1 to 14")
    return chosen


def trial_files(root: Path, subjects: tuple[int, ...]) -> list[tuple[int, int, int, Path]]:
    """(subject, activity, trial, path) of each expected file; the first missing one is an error."""
    files = []
    for s in subjects:
        folder = root / f"Subject{s}"
        if not folder.is_dir():
            raise DataError(f"USC-HAD: {root} has no Subject{s} folder")
        for a in ACTIVITIES:
            for t in TRIALS:
                path = folder / f"a{a}t{t}.mat"
                if not path.is_file():
                    raise DataError(f"USC-HAD: Subject{s} has no a{a}t{t}.mat (in {folder})")
                files.append((s, a, t, path))
    return files


# --------------------------------------------------------------------------------------------
# Parsing and windowing
# --------------------------------------------------------------------------------------------


def load_windows(
    root: Path, subjects: tuple[int, ...], window: int, stride: int, cache_dir: Path | None
) -> Windows:
    """Windows of the given subjects, from the cache when it matches the files, else parsed."""
    files = trial_files(root, subjects)
    cache_path = None
    if cache_dir is not None:
        key = _cache_key(root, files, window, stride)
        cache_path = cache_dir / f"w{window}-s{stride}-{key}.npz"
        cached = _read_cache(cache_path)
        if cached is not None:
            return cached
    windows = parse_windows(files, window, stride)
    if cache_path is not None:
        _write_cache(cache_path, windows)
    return windows


def parse_windows(files: list[tuple[int, int, int, Path]], window: int, stride: int) -> Windows:
    """Read every trial and cut it into windows; metadata disagreements are logged, not fatal."""
    chunks, activity, subject, trial = [], [], [], []
    disagreements: list[str] = []
    progress = _Progress(len(files))
    for done, (s, a, t, path) in enumerate(files, start=1):
        readings = read_trial(path, s, a, t, disagreements)  # (samples, 6)
        count = window_count(len(readings), window, stride)
        if count:
            view = np.lib.stride_tricks.sliding_window_view(readings, window, axis=0)
            chunks.append(view[::stride][:count].astype(np.float32))  # (count, 6, window)
        activity.append(np.full(count, a, dtype=np.int64))
        subject.append(np.full(count, s, dtype=np.int64))
        trial.append(np.full(count, t, dtype=np.int64))
        progress.update(done)
    progress.close()
    if disagreements:
        log.warning(
            "USC-HAD: %d file(s) disagree with their names (the name is used): %s",
            len(disagreements),
            "; ".join(disagreements),
        )
    readings_all = np.concatenate(chunks) if chunks else np.empty((0, 6, window), dtype=np.float32)
    return Windows(
        readings=readings_all,
        activity=np.concatenate(activity),
        subject=np.concatenate(subject),
        trial=np.concatenate(trial),
    )


def read_trial(path: Path, s: int, a: int, t: int, disagreements: list[str]) -> np.ndarray:
    """``sensor_readings`` (samples, 6) of one file, float64; cross-checks its metadata fields."""
    where = f"Subject{s}/{path.name}"
    try:
        content = scipy.io.loadmat(str(path))
    except Exception as err:  # scipy raises several types for a file that is not MATLAB
        raise DataError(f"USC-HAD: {where} is not a readable MATLAB file ({err})") from err
    if "sensor_readings" not in content:
        raise DataError(f"USC-HAD: {where} has no sensor_readings field")
    readings = np.asarray(content["sensor_readings"])
    if readings.ndim != 2 or readings.shape[1] != 6 or not np.issubdtype(readings.dtype, np.number):
        raise DataError(
            f"USC-HAD: {where}: sensor_readings has shape {readings.shape} ({readings.dtype}); "
            f"expected N x 6 numbers"
        )
    if not np.isfinite(readings).all():
        raise DataError(f"USC-HAD: {where}: sensor_readings has non-finite values")
    for field, expected in (
        ("activity_number", a),
        ("activity_numbr", a),  # the spelling of Subject13/a11t4.mat
        ("trial", t),
        ("subject", s),
    ):
        found = _scalar_text(content.get(field))
        if found is not None and found != str(expected):
            disagreements.append(f"{where} says {field}={found}")
    return readings.astype(np.float64, copy=False)


def _scalar_text(value: object) -> str | None:
    """The text of a one-element MATLAB string/number field, or None when absent or empty."""
    if value is None:
        return None
    flat = np.asarray(value).ravel()
    return str(flat[0]).strip() if flat.size else None


class _Progress:
    """A stderr line for a first parse that takes a while; silent when it is quick."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.start = time.monotonic()
        self.shown = False
        self.tty = sys.stderr.isatty()

    def update(self, done: int) -> None:
        if time.monotonic() - self.start < _PROGRESS_AFTER_S:
            return
        if self.tty or not self.shown or done == self.total:
            end = "\r" if self.tty and done < self.total else "\n"
            print(
                f"USC-HAD: parsed {done}/{self.total} files (first load; cached afterwards)",
                end=end,
                file=sys.stderr,
                flush=True,
            )
            self.shown = True

    def close(self) -> None:
        if self.shown and self.tty:
            print(file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# The cache of windowed arrays
# --------------------------------------------------------------------------------------------


def _cache_dir(source: UscHadSource, base_dir: str | Path) -> Path:
    if source.cache_dir is not None:
        return (Path(base_dir) / Path(source.cache_dir).expanduser()).resolve()
    xdg = os.environ.get("XDG_CACHE_HOME")
    home_cache = Path(xdg) if xdg else Path.home() / ".cache"
    return home_cache / "fedmobile" / "usc_had"


def _cache_key(
    root: Path, files: list[tuple[int, int, int, Path]], window: int, stride: int
) -> str:
    """A hash of everything the windows depend on: path, window, stride, format, each file's
    size and mtime (an edited or replaced file gives a new key)."""
    stats = []
    for s, a, t, path in files:
        st = path.stat()
        stats.append([s, a, t, st.st_size, st.st_mtime_ns])
    text = json.dumps([CACHE_FORMAT, str(root), window, stride, stats])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


def _read_cache(path: Path) -> Windows | None:
    """The cached windows, or None when absent or unreadable (then it is rebuilt)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if int(z["format"]) != CACHE_FORMAT:
                return None
            return Windows(
                readings=z["readings"],
                activity=z["activity"],
                subject=z["subject"],
                trial=z["trial"],
            )
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        log.warning("USC-HAD: ignoring unreadable cache %s (%s); parsing again", path, err)
        return None


def _write_cache(path: Path, windows: Windows) -> None:
    """Write to a temporary file beside the target, then rename: readers never see half a file.

    A cache that cannot be written (read-only home, full disk) costs a re-parse next time, not
    the run, so the failure is logged and swallowed.
    """
    tmp_name = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            dir=path.parent, prefix=path.stem + ".", suffix=".tmp", delete=False
        ) as tmp:
            tmp_name = tmp.name
            np.savez(
                tmp,
                format=np.int64(CACHE_FORMAT),
                readings=windows.readings,
                activity=windows.activity,
                subject=windows.subject,
                trial=windows.trial,
            )
        os.replace(tmp_name, path)
        tmp_name = None
    except OSError as err:
        log.warning("USC-HAD: could not write the cache %s (%s)", path, err)
    finally:
        if tmp_name is not None:
            Path(tmp_name).unlink(missing_ok=True)
