"""Bad .npz data is refused with one line naming the array; split and group arrays are honoured."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from fedmobile_actors.data.loading import load_split
from fedmobile_actors.data.npz_arrays import load_npz
from fedmobile_actors.errors import DataError
from fedmobile_actors.scenario.schema import DataConfig, NpzSource

N = 40


def write(tmp_path: Path, **override: object) -> Path:
    gen = np.random.default_rng(0)
    data: dict[str, object] = {
        "acc": gen.normal(size=(N, 3, 16)),
        "labels": np.arange(N) % 4,
    }
    data.update(override)
    path = tmp_path / "d.npz"
    np.savez(path, **{k: v for k, v in data.items() if v is not None})  # type: ignore[arg-type]
    return path


def load(path: Path, **source: object) -> object:
    return load_npz(NpzSource(path=path.name, **source), path.parent)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("override", "words"),
    [
        ({"labels": np.full(N, 10**12)}, "at most 10000"),
        ({"labels": np.zeros(N, dtype=int)}, "single class"),
        ({"labels": (np.arange(N) % 4) + 0.5}, "whole numbers"),
        ({"acc": np.full((N, 3, 16), 1e300)}, "float32"),
        ({"acc": np.zeros((N, 100, 3))}, "channels-last"),
    ],
    ids=["huge-label", "single-class", "float-labels", "float64-overflow", "channels-last"],
)
def test_bad_arrays_are_refused_naming_the_problem(
    tmp_path: Path, override: dict[str, object], words: str
) -> None:
    with pytest.raises(DataError, match=words):
        load(write(tmp_path, **override))


def test_labels_beyond_the_declared_num_classes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="num_classes is 3"):
        load(write(tmp_path), num_classes=3)


def test_a_member_that_is_not_an_array_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("notes.txt", "hello")
    with pytest.raises(DataError, match="not a numpy array"):
        load(path)


def test_an_empty_test_set_is_refused(tmp_path: Path) -> None:
    """One window per class: the stratified split can hold nothing out."""
    path = write(tmp_path, acc=np.zeros((2, 3, 16)), labels=np.array([0, 1]))
    with pytest.raises(DataError, match=r"held-out \(test\) set is empty"):
        load_split(DataConfig(source=NpzSource(path=path.name)), 0, path.parent)


def test_a_split_array_fixes_the_test_set(tmp_path: Path) -> None:
    split = np.where(np.arange(N) < 30, "train", "test")
    path = write(tmp_path, split=split)
    data = load_split(DataConfig(source=NpzSource(path=path.name)), 0, path.parent)
    assert (len(data.train), len(data.test)) == (30, 10)


def test_groups_never_straddle_the_split(tmp_path: Path) -> None:
    """Windows of one recording (group) land all in train or all in test."""
    groups = np.arange(N) // 5
    path = write(tmp_path, groups=groups, subjects=groups)
    data = load_split(DataConfig(source=NpzSource(path=path.name)), 0, path.parent)
    assert set(data.train.subjects.tolist()).isdisjoint(data.test.subjects.tolist())
    assert len(data.test) > 0


def test_split_values_other_than_train_and_test_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="allowed: 'train', 'test'"):
        load_split(
            DataConfig(source=NpzSource(path=write(tmp_path, split=np.full(N, "dev")).name)),
            0,
            tmp_path,
        )
