"""Bring-your-own .npz: what loads, how it is shaped, and the one-line error for each mistake."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fedmobile_actors.data.loading import load_split
from fedmobile_actors.data.npz_arrays import load_npz
from fedmobile_actors.errors import DataError
from fedmobile_actors.scenario.schema import DataConfig, NpzSource

N = 30


def arrays(**override: object) -> dict[str, object]:
    gen = np.random.default_rng(0)
    out: dict[str, object] = {
        "acc": gen.normal(size=(N, 3, 16)),
        "audio": gen.normal(size=(N, 40)),
        "labels": np.arange(N) % 4,
        "subjects": np.arange(N) % 3,
    }
    out.update(override)
    return {k: v for k, v in out.items() if v is not None}


def write(tmp_path: Path, name: str = "d.npz", **override: object) -> Path:
    path = tmp_path / name
    np.savez(path, **arrays(**override))  # type: ignore[arg-type]
    return path


def load(path: Path, modalities: tuple[str, ...] | None = None):  # type: ignore[no-untyped-def]
    return load_npz(NpzSource(path=path.name, modalities=modalities), path.parent)


def test_every_array_but_labels_and_subjects_is_a_modality(tmp_path: Path) -> None:
    """acc (N, 3, T) stays as it is; audio (N, T) becomes one channel (N, 1, T); float32."""
    data = load(write(tmp_path))
    assert data.modality_names == ("acc", "audio")
    assert data.shapes == {"acc": (3, 16), "audio": (1, 40)}
    assert data.modalities["audio"].dtype == np.float32
    assert np.array_equal(data.labels, np.arange(N) % 4)
    assert np.array_equal(data.subjects, np.arange(N) % 3)
    assert data.num_classes == 4


def test_modalities_select_arrays(tmp_path: Path) -> None:
    """source.modalities picks which arrays are modalities, in that order."""
    data = load(write(tmp_path, extra=np.zeros((N, 2, 2))), modalities=("audio",))
    assert data.modality_names == ("audio",)


def test_subjects_are_optional(tmp_path: Path) -> None:
    """Without subjects every window belongs to subject 0."""
    data = load(write(tmp_path, subjects=None))
    assert np.all(data.subjects == 0)


def test_labels_with_gaps_need_a_declared_num_classes(tmp_path: Path) -> None:
    """Unused values below the maximum are refused unless num_classes says they are classes."""
    path = write(tmp_path, labels=np.where(np.arange(N) % 2 == 0, 0, 6))
    with pytest.raises(DataError, match=r"skips \[1, 2, 3, 4, 5\]"):
        load(path)
    declared = load_npz(NpzSource(path=path.name, num_classes=7), path.parent)
    assert declared.num_classes == 7


def test_integral_float_labels_are_accepted(tmp_path: Path) -> None:
    """Labels saved as 0.0, 1.0, ... (a pandas habit) load as integers."""
    data = load(write(tmp_path, labels=(np.arange(N) % 4).astype(float)))
    assert data.labels.dtype == np.int64 and data.num_classes == 4


def test_load_split_splits_an_npz_by_test_fraction(tmp_path: Path) -> None:
    """Through load_split, an npz is split stratified and every window lands in one split."""
    path = write(tmp_path)
    config = DataConfig(source=NpzSource(path=path.name), test_fraction=0.2)
    split = load_split(config, seed=0, base_dir=tmp_path)
    assert len(split.train) + len(split.test) == N
    assert set(np.unique(split.test.labels)) == {0, 1, 2, 3}


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load(tmp_path / "absent.npz")


def test_not_an_npz(tmp_path: Path) -> None:
    (tmp_path / "d.npz").write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match=r"not a readable \.npz archive"):
        load(tmp_path / "d.npz")


def test_a_single_npy_array_is_not_an_npz(tmp_path: Path) -> None:
    np.save(tmp_path / "d.npy", np.zeros(3))
    with pytest.raises(DataError, match="single array"):
        load(tmp_path / "d.npy")


def test_no_labels(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no 'labels' array \(arrays: acc, audio, subjects\)"):
        load(write(tmp_path, labels=None))


def test_length_mismatch_names_the_array(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"'audio' has 29 windows but labels has 30"):
        load(write(tmp_path, audio=np.zeros((N - 1, 40))))


def test_subjects_length_mismatch(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"'subjects' has 5 entries"):
        load(write(tmp_path, subjects=np.zeros(5, dtype=int)))


def test_wrong_ndim(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"'acc' has shape \(30, 3, 4, 4\); expected \(N, C, T\)"):
        load(write(tmp_path, acc=np.zeros((N, 3, 4, 4))))


def test_labels_must_be_one_dimensional(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"'labels' has shape \(30, 1\); expected \(N,\)"):
        load(write(tmp_path, labels=np.zeros((N, 1), dtype=int)))


def test_non_finite_values(tmp_path: Path) -> None:
    acc = np.zeros((N, 3, 16))
    acc[2, 1, 3] = np.nan
    acc[4, 0, 0] = np.inf
    with pytest.raises(DataError, match=r"'acc' has 2 non-finite values"):
        load(write(tmp_path, acc=acc))


def test_labels_not_integers(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="'labels' must hold integers"):
        load(write(tmp_path, labels=np.linspace(0, 1, N)))


def test_labels_as_strings(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="'labels' must hold integers"):
        load(write(tmp_path, labels=np.array(["walk"] * N)))


def test_negative_labels(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="'labels' has negative values"):
        load(write(tmp_path, labels=np.arange(N) - 1))


def test_requested_modality_absent(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no array 'gyro' for the requested modality"):
        load(write(tmp_path), modalities=("acc", "gyro"))


def test_labels_cannot_be_a_modality(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="'labels' cannot be a modality"):
        load(write(tmp_path), modalities=("labels",))


def test_no_modality_at_all(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no modality arrays"):
        load(write(tmp_path, acc=None, audio=None))


def test_pickled_object_arrays_are_refused(tmp_path: Path) -> None:
    ragged = np.empty(N, dtype=object)
    ragged[:] = [np.zeros(i + 1) for i in range(N)]
    with pytest.raises(DataError, match="cannot be read"):
        load(write(tmp_path, audio=ragged))
