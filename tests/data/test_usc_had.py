"""USC-HAD from its release layout: windowing, labels, splits, cache, errors, and the real set.

The small releases here are written by the tests themselves with scipy.io.savemat, in the same
layout and with the same field names as the original files (and its quirks). Every reading
carries a tag that says which file it came from (column 0 = subject*1000 + activity*10 + trial,
column 1 = the sample's index in its trial), so a window's origin can be read off its values.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from fedmobile_actors.data import usc_had
from fedmobile_actors.data.dataset import MultimodalDataset
from fedmobile_actors.data.loading import load_split
from fedmobile_actors.data.usc_had import load_usc_had, window_count
from fedmobile_actors.errors import DataError
from fedmobile_actors.scenario.schema import DataConfig, UscHadSource

WINDOW, STRIDE = 10, 5
REAL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "USC-HAD"


def trial_length(s: int, a: int, t: int) -> int:
    """Varied lengths; activity 12 trial 1 is shorter than a window (it gives no window)."""
    return 6 if (a, t) == (12, 1) else 12 + 3 * a + 2 * t + s


def tag(s: int, a: int, t: int) -> int:
    return s * 1000 + a * 10 + t


def readings(s: int, a: int, t: int) -> np.ndarray:
    n = trial_length(s, a, t)
    out = np.zeros((n, 6))
    out[:, 0] = tag(s, a, t)
    out[:, 1] = np.arange(n)
    for col in range(2, 6):
        out[:, col] = tag(s, a, t) + col / 10  # acc_z .. gyro_z distinguishable
    return out


def write_release(root: Path, subjects: tuple[int, ...] = (1, 2, 3)) -> Path:
    """A release-shaped tree root/data/Subject<s>/a<a>t<t>.mat with the original's quirks."""
    data = root / "data"
    for s in subjects:
        folder = data / f"Subject{s}"
        folder.mkdir(parents=True)
        for a in range(1, 13):
            for t in range(1, 6):
                fields: dict[str, object] = {
                    "title": "USC Human Motion Database",
                    "subject": str(s),
                    "activity": f"activity-{a}",
                    "activity_number": str(a),
                    "trial": str(t),
                    "sensor_readings": readings(s, a, t),
                }
                if (s, a, t) == (2, 11, 4):  # like Subject13/a11t4.mat
                    fields["activity_numbr"] = fields.pop("activity_number")
                if s == 3 and a == 1 and t >= 3:  # like Subject3/a1t3..a1t5.mat
                    fields["comments"] = "indoor"
                scipy.io.savemat(folder / f"a{a}t{t}.mat", fields)
    return root


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_release(tmp_path_factory.mktemp("usc"))


def source(path: Path, cache: Path, **kw: object) -> UscHadSource:
    args: dict[str, object] = {
        "path": str(path),
        "window": WINDOW,
        "stride": STRIDE,
        "subjects": (1, 2, 3),
        "cache_dir": str(cache),
    }
    args.update(kw)
    return UscHadSource.model_validate(args)


def origins(data: MultimodalDataset) -> set[tuple[int, int, int]]:
    """(subject, activity, trial) of each window, read off its tag."""
    tags = data.modalities["acc"][:, 0, 0].astype(int)
    return {(int(x) // 1000, int(x) // 10 % 100, int(x) % 10) for x in tags}


def test_window_count_formula() -> None:
    """floor((n - window) / stride) + 1 windows when the trial is long enough, else none."""
    assert window_count(10, 10, 5) == 1
    assert window_count(24, 10, 5) == 3
    assert window_count(25, 10, 5) == 4
    assert window_count(9, 10, 5) == 0


def test_each_trial_gives_the_formula_count_of_windows(release: Path, tmp_path: Path) -> None:
    """Per (subject, activity, trial), the number of windows is window_count of its length."""
    train, test = load_usc_had(source(release, tmp_path), ".")
    tags = np.concatenate([train.modalities["acc"][:, 0, 0], test.modalities["acc"][:, 0, 0]])
    counts = dict(zip(*np.unique(tags.astype(int), return_counts=True), strict=True))
    for s in (1, 2, 3):
        for a in range(1, 13):
            for t in range(1, 6):
                expected = window_count(trial_length(s, a, t), WINDOW, STRIDE)
                assert counts.get(tag(s, a, t), 0) == expected, (s, a, t)
    assert tag(1, 12, 1) not in counts  # shorter than a window


def test_no_window_spans_two_trials(release: Path, tmp_path: Path) -> None:
    """Every window holds one trial's consecutive samples, starting at a multiple of the stride."""
    train, test = load_usc_had(source(release, tmp_path), ".")
    for split in (train, test):
        acc = split.modalities["acc"]  # (N, 3, WINDOW)
        assert np.all(acc[:, 0, :] == acc[:, 0, :1])  # one tag per window
        index = acc[:, 1, :]
        assert np.all(np.diff(index, axis=1) == 1)
        assert np.all(index[:, 0] % STRIDE == 0)


def test_labels_subjects_and_modalities(release: Path, tmp_path: Path) -> None:
    """Labels are activity - 1 (12 classes); subjects stay 1-based; acc/gyro = columns 0-2/3-5."""
    train, _ = load_usc_had(source(release, tmp_path), ".")
    tags = train.modalities["acc"][:, 0, 0].astype(int)
    assert np.array_equal(train.labels, tags // 10 % 100 - 1)
    assert np.array_equal(train.subjects, tags // 1000)
    assert set(np.unique(train.subjects)) == {1, 2, 3}
    assert set(np.unique(train.labels)) == set(range(12))
    assert train.num_classes == 12
    assert train.shapes == {"acc": (3, WINDOW), "gyro": (3, WINDOW)}
    gyro = train.modalities["gyro"][:, :, 0] - tags[:, None]
    assert np.allclose(gyro, [0.3, 0.4, 0.5], atol=1e-3)
    assert train.modalities["acc"].dtype == np.float32


def test_trial_split_holds_out_the_last_trial(release: Path, tmp_path: Path) -> None:
    """By trial: the test set is exactly the t5 windows, training every other trial."""
    train, test = load_usc_had(source(release, tmp_path, test_split="trial"), ".")
    assert {t for _, _, t in origins(test)} == {5}
    assert {t for _, _, t in origins(train)} == {1, 2, 3, 4}
    assert {(s, a) for s, a, _ in origins(test)} == {
        (s, a) for s in (1, 2, 3) for a in range(1, 13)
    }


def test_subject_split_holds_out_the_test_subjects(release: Path, tmp_path: Path) -> None:
    """By subject: the test_subjects' windows are the test set, the others' the training set."""
    train, test = load_usc_had(
        source(release, tmp_path, test_split="subject", test_subjects=(3,)), "."
    )
    assert set(np.unique(test.subjects)) == {3}
    assert set(np.unique(train.subjects)) == {1, 2}
    assert len({t for _, _, t in origins(train)}) == 5


def test_subject_selection_loads_only_those_subjects(release: Path, tmp_path: Path) -> None:
    """subjects=(1, 3) gives windows of subjects 1 and 3 only."""
    train, test = load_usc_had(source(release, tmp_path, subjects=(3, 1)), ".")
    assert set(np.unique(np.concatenate([train.subjects, test.subjects]))) == {1, 3}


def test_quirky_files_load_and_the_name_gives_the_activity(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """activity_numbr and comments load; a file whose inside disagrees keeps its name's label."""
    root = write_release(tmp_path / "rel", subjects=(1, 2))
    path = root / "data" / "Subject1" / "a3t2.mat"
    content = scipy.io.loadmat(path)
    content["activity_number"] = "2"  # as in Subject14/a3t2.mat of the release
    scipy.io.savemat(path, {k: v for k, v in content.items() if not k.startswith("__")})
    with caplog.at_level(logging.WARNING, logger=usc_had.__name__):
        train, _ = load_usc_had(source(root, tmp_path / "c", subjects=(1, 2)), ".")
    assert "Subject1/a3t2.mat says activity_number=2" in caplog.text
    rows = train.modalities["acc"][:, 0, 0].astype(int) == tag(1, 3, 2)
    assert rows.any() and np.all(train.labels[rows] == 2)
    assert np.any(train.modalities["acc"][:, 0, 0].astype(int) == tag(2, 11, 4))


def test_second_load_reads_the_cache_not_the_mat_files(
    release: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the first load, loading again never calls loadmat and gives identical arrays."""
    cache = tmp_path / "cache"
    first = load_usc_had(source(release, cache), ".")
    assert len(list(cache.glob("*.npz"))) == 1
    assert not list(cache.glob("*.tmp"))

    def refuse(*args: object, **kw: object) -> None:
        raise AssertionError("loadmat called despite a cache")

    monkeypatch.setattr(scipy.io, "loadmat", refuse)
    second = load_usc_had(source(release, cache), ".")
    for a, b in zip(first, second, strict=True):
        assert np.array_equal(a.modalities["gyro"], b.modalities["gyro"])
        assert np.array_equal(a.labels, b.labels)
        assert np.array_equal(a.subjects, b.subjects)


def test_cache_key_follows_window_and_files(tmp_path: Path) -> None:
    """A new window or an edited file gives a new cache entry; same inputs reuse the old one."""
    root = write_release(tmp_path / "rel", subjects=(1,))
    cache = tmp_path / "cache"
    kw = {"subjects": (1,), "test_split": "trial"}
    load_usc_had(source(root, cache, **kw), ".")
    load_usc_had(source(root, cache, **kw), ".")
    assert len(list(cache.glob("*.npz"))) == 1
    load_usc_had(source(root, cache, window=12, **kw), ".")
    assert len(list(cache.glob("*.npz"))) == 2
    edited = root / "data" / "Subject1" / "a1t1.mat"
    later = time.time() + 5
    os.utime(edited, (later, later))
    load_usc_had(source(root, cache, **kw), ".")
    assert len(list(cache.glob("*.npz"))) == 3


def test_corrupt_cache_is_rebuilt(release: Path, tmp_path: Path) -> None:
    """A truncated cache file is ignored and rewritten, not an error."""
    cache = tmp_path / "cache"
    first, _ = load_usc_had(source(release, cache), ".")
    (entry,) = cache.glob("*.npz")
    entry.write_bytes(b"not a zip")
    again, _ = load_usc_had(source(release, cache), ".")
    assert np.array_equal(first.modalities["acc"], again.modalities["acc"])
    assert entry.stat().st_size > 100


def test_path_may_be_the_data_folder_relative_or_from_the_environment(
    release: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The data/ folder itself, a path relative to base_dir, and FEDMOBILE_USC_HAD all work."""
    direct, _ = load_usc_had(source(release / "data", tmp_path), ".")
    relative, _ = load_usc_had(source(Path(release.name), tmp_path), release.parent)
    monkeypatch.setenv("FEDMOBILE_USC_HAD", str(release))
    from_env, _ = load_usc_had(source(release, tmp_path).model_copy(update={"path": None}), ".")
    assert len(direct) == len(relative) == len(from_env) > 0


def test_load_split_normalises_usc_had_on_the_training_windows(
    release: Path, tmp_path: Path
) -> None:
    """Through load_split, training channels come out with mean 0 and std 1."""
    split = load_split(DataConfig(source=source(release, tmp_path)), seed=0)
    acc = split.train.modalities["acc"]
    assert np.allclose(acc.mean(axis=(0, 2)), 0, atol=1e-3)
    assert np.allclose(acc.std(axis=(0, 2)), 1, atol=1e-2)


# --------------------------------------------------------------------------------------------
# Errors: one line each, naming what was expected where
# --------------------------------------------------------------------------------------------


def test_missing_directory_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_usc_had(source(tmp_path / "nowhere", tmp_path), ".")


def test_directory_without_subject_folders_is_a_data_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"no Subject1\.\.Subject14 folders"):
        load_usc_had(source(tmp_path / "empty", tmp_path), ".")


def test_no_path_and_no_environment_is_a_data_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FEDMOBILE_USC_HAD", raising=False)
    with pytest.raises(DataError, match="FEDMOBILE_USC_HAD"):
        load_usc_had(UscHadSource(), ".")


def test_missing_subject_folder_is_a_data_error(release: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="has no Subject4 folder"):
        load_usc_had(source(release, tmp_path, subjects=(1, 4)), ".")


def test_missing_trial_file_is_a_data_error(tmp_path: Path) -> None:
    root = write_release(tmp_path / "rel", subjects=(1,))
    (root / "data" / "Subject1" / "a3t2.mat").unlink()
    with pytest.raises(DataError, match=r"Subject1 has no a3t2\.mat"):
        load_usc_had(source(root, tmp_path, subjects=(1,)), ".")


def test_file_without_sensor_readings_is_a_data_error(tmp_path: Path) -> None:
    root = write_release(tmp_path / "rel", subjects=(1,))
    scipy.io.savemat(root / "data" / "Subject1" / "a2t1.mat", {"title": "x"})
    with pytest.raises(DataError, match=r"Subject1/a2t1\.mat has no sensor_readings"):
        load_usc_had(source(root, tmp_path, subjects=(1,)), ".")


def test_file_that_is_not_matlab_is_a_data_error(tmp_path: Path) -> None:
    root = write_release(tmp_path / "rel", subjects=(1,))
    (root / "data" / "Subject1" / "a2t1.mat").write_text("hello")
    with pytest.raises(DataError, match=r"a2t1\.mat is not a readable MATLAB file"):
        load_usc_had(source(root, tmp_path, subjects=(1,)), ".")


def test_readings_of_the_wrong_shape_are_a_data_error(tmp_path: Path) -> None:
    root = write_release(tmp_path / "rel", subjects=(1,))
    scipy.io.savemat(root / "data" / "Subject1" / "a2t1.mat", {"sensor_readings": np.ones((40, 3))})
    with pytest.raises(DataError, match=r"shape \(40, 3\).*N x 6"):
        load_usc_had(source(root, tmp_path, subjects=(1,)), ".")


def test_subject_split_needs_loaded_test_subjects(release: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"test_subjects \[13, 14\]"):
        load_usc_had(source(release, tmp_path, test_split="subject"), ".")


def test_invalid_subject_numbers_are_a_data_error(release: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="allowed: 1 to 14"):
        load_usc_had(source(release, tmp_path, subjects=(0, 15)), ".")


# --------------------------------------------------------------------------------------------
# The real release, when this machine has it
# --------------------------------------------------------------------------------------------


def _real_path() -> Path | None:
    env = os.environ.get("FEDMOBILE_USC_HAD")
    if env and Path(env).is_dir():
        return Path(env)
    return REAL if REAL.is_dir() else None


@pytest.mark.skipif(_real_path() is None, reason="USC-HAD not present (../shared or env var)")
def test_real_release_has_14_subjects_12_activities(tmp_path: Path) -> None:
    """The full release loads: 14 subjects, 12 activities, ~55k windows of 100 at stride 50."""
    real = UscHadSource(path=str(_real_path()), cache_dir=str(tmp_path))
    train, test = load_usc_had(real, ".")
    subjects = np.concatenate([train.subjects, test.subjects])
    labels = np.concatenate([train.labels, test.labels])
    assert set(np.unique(subjects)) == set(range(1, 15))
    assert set(np.unique(labels)) == set(range(12))
    # 2.81 million samples in 840 trials of 600-13500 samples: about 2.81M / 50 windows.
    assert 50_000 < len(labels) < 60_000
    assert 0.15 < len(test) / len(labels) < 0.25  # one trial of five held out
    assert train.shapes == {"acc": (3, 100), "gyro": (3, 100)}
