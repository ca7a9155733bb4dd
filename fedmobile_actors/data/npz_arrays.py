"""Bring-your-own data: one .npz with an array per modality, ``labels`` and optional ``subjects``.

Why one flat .npz: it is what numpy writes in one line (``np.savez``), needs no schema file, and
holds every modality with its own shape. Each modality array is (N, C, T) windows, or (N, T) for a
single-channel modality (read as (N, 1, T)). ``labels`` are non-negative integers (N,);
``num_classes`` is ``max(labels) + 1``. ``subjects`` (N,) are optional integers (all 0 when absent)
and drive the natural partition. Everything is checked on load, so a malformed file fails with
one line naming the array, not with a shape error deep inside training.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from fedmobile_actors.data.dataset import MultimodalDataset
from fedmobile_actors.errors import DataError
from fedmobile_actors.scenario.schema import NpzSource

RESERVED = ("labels", "subjects", "split", "groups")

#: Most classes a label array may imply: a head of 10^12 outputs is a mistake, not a dataset.
MAX_CLASSES = 10_000

#: float32 cannot hold values beyond this; larger float64 values would become inf in training.
FLOAT32_MAX = float(np.finfo(np.float32).max)


def load_npz(source: NpzSource, base_dir: str | Path) -> MultimodalDataset:
    """The dataset in ``source.path`` (relative to ``base_dir``), validated."""
    path = (Path(base_dir) / Path(source.path).expanduser()).resolve()
    arrays = _read_archive(path)
    where = f"npz: {path}"
    listed = ", ".join(arrays) or "none"
    if "labels" not in arrays:
        raise DataError(f"{where}: no 'labels' array (arrays: {listed})")
    labels = _integer_ids(arrays["labels"], "labels", where)
    n = len(labels)
    if n == 0:
        raise DataError(f"{where}: 'labels' is empty")
    num_classes = _check_labels(labels, source.num_classes, where)
    if "subjects" in arrays:
        subjects = _integer_ids(arrays["subjects"], "subjects", where)
        if len(subjects) != n:
            raise DataError(f"{where}: 'subjects' has {len(subjects)} entries but labels has {n}")
    else:
        subjects = np.zeros(n, dtype=np.int64)
    names = (
        source.modalities
        if source.modalities is not None
        else tuple(name for name in arrays if name not in RESERVED)
    )
    if not names:
        raise DataError(f"{where}: no modality arrays besides labels/subjects (arrays: {listed})")
    modalities = {}
    for name in names:
        if name in RESERVED:
            raise DataError(f"{where}: {name!r} cannot be a modality")
        if name not in arrays:
            raise DataError(
                f"{where}: no array {name!r} for the requested modality (arrays: {listed})"
            )
        modalities[name] = _windows(arrays[name], name, n, where)
    return MultimodalDataset(
        modalities=modalities,
        labels=labels,
        subjects=subjects,
        num_classes=num_classes,
    )


def load_npz_split(
    source: NpzSource, base_dir: str | Path
) -> tuple[MultimodalDataset, np.ndarray | None, np.ndarray | None]:
    """The dataset plus its optional ``split`` (bool test mask) and ``groups`` (int ids) arrays.

    ``split`` holds "train"/"test" (or 0/1, 1 = test) per window and fixes the held-out set;
    ``groups`` holds a recording id per window, and the random split then keeps each group
    whole, so overlapping windows of one recording never land on both sides.
    """
    path = (Path(base_dir) / Path(source.path).expanduser()).resolve()
    dataset = load_npz(source, base_dir)
    arrays = _read_archive(path)
    where = f"npz: {path}"
    n = len(dataset)
    test_mask = _split_mask(arrays["split"], n, where) if "split" in arrays else None
    groups = None
    if "groups" in arrays:
        groups = _integer_ids(arrays["groups"], "groups", where)
        if len(groups) != n:
            raise DataError(f"{where}: 'groups' has {len(groups)} entries but labels has {n}")
    if test_mask is not None and groups is not None:
        raise DataError(f"{where}: give 'split' or 'groups', not both")
    return dataset, test_mask, groups


def _split_mask(array: np.ndarray, n: int, where: str) -> np.ndarray:
    """(N,) bool, True for test windows, from "train"/"test" strings or 0/1 integers."""
    if array.ndim != 1 or len(array) != n:
        raise DataError(f"{where}: 'split' has shape {array.shape}; expected ({n},)")
    if array.dtype.kind in "US":
        words = np.char.lower(array.astype(str))
        bad = sorted(set(words.tolist()) - {"train", "test"})
        if bad:
            raise DataError(f"{where}: 'split' holds {bad[:3]}; allowed: 'train', 'test'")
        mask = words == "test"
    elif array.dtype.kind in "biu":
        bad = sorted(set(np.unique(array).tolist()) - {0, 1})
        if bad:
            raise DataError(f"{where}: 'split' holds {bad[:3]}; allowed: 0 (train), 1 (test)")
        mask = array.astype(bool)
    else:
        raise DataError(f"{where}: 'split' has dtype {array.dtype}; expected 'train'/'test' or 0/1")
    if mask.all() or not mask.any():
        side = "test" if mask.all() else "train"
        raise DataError(f"{where}: 'split' marks every window {side}; both sides need windows")
    return mask


def _check_labels(labels: np.ndarray, declared: int | None, where: str) -> int:
    """The class count; refuses a huge head, a single class, labels beyond ``num_classes`` and,
    when the count is implied, unused label values (gaps make classes that never train)."""
    top = int(labels.max())
    if top + 1 > MAX_CLASSES:
        raise DataError(
            f"{where}: 'labels' goes up to {top}, i.e. {top + 1} classes; allowed: at most "
            f"{MAX_CLASSES} (labels are class indices 0..K-1)"
        )
    present = np.unique(labels)
    if len(present) < 2:
        raise DataError(
            f"{where}: 'labels' holds a single class ({int(present[0])}); "
            "a classifier needs at least 2"
        )
    if declared is not None:
        if top >= declared:
            raise DataError(
                f"{where}: 'labels' has value {top} but data.source.num_classes is {declared}; "
                f"allowed: 0..{declared - 1}"
            )
        return declared
    if len(present) != top + 1:
        missing = sorted(set(range(top + 1)) - set(present.tolist()))
        raise DataError(
            f"{where}: 'labels' skips {missing[:5]} (classes 0..{top} implied); renumber them "
            "0..K-1 or set data.source.num_classes"
        )
    return top + 1


def _read_archive(path: Path) -> dict[str, np.ndarray]:
    """Every array of the archive, in the order they were written; no pickled objects."""
    if not path.is_file():
        raise DataError(f"npz: {path} does not exist")
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise DataError(f"npz: {path} is not a readable .npz archive ({err})") from err
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise DataError(f"npz: {path} holds a single array; expected an .npz written by np.savez")
    try:
        with loaded:
            arrays = {name: loaded[name] for name in loaded.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as err:
        # allow_pickle=False makes object arrays fail here, with a ValueError.
        raise DataError(f"npz: {path}: an array cannot be read ({err})") from err
    for name, value in arrays.items():
        if not isinstance(value, np.ndarray):
            raise DataError(f"npz: {path}: member {name!r} is not a numpy array (.npy)")
    return arrays


def _integer_ids(array: np.ndarray, name: str, where: str) -> np.ndarray:
    """(N,) non-negative int64; integral floats (a common artefact of pandas) are accepted."""
    if array.ndim != 1:
        raise DataError(f"{where}: {name!r} has shape {array.shape}; expected (N,)")
    if not _is_integral(array):
        examples = array.ravel()[:3].tolist() if array.dtype.kind in "biufcUSb" else "?"
        raise DataError(
            f"{where}: {name!r} must hold integers (whole numbers); found {array.dtype} "
            f"values such as {examples}"
        )
    if array.dtype.kind == "f" and len(array) and float(np.abs(array).max()) >= 2**62:
        raise DataError(f"{where}: {name!r} holds values too large to be ids")
    ids = array.astype(np.int64)
    if len(ids) and ids.min() < 0:
        raise DataError(f"{where}: {name!r} has negative values (min {ids.min()}); expected >= 0")
    return ids


def _is_integral(array: np.ndarray) -> bool:
    if np.issubdtype(array.dtype, np.integer):
        return True
    if not np.issubdtype(array.dtype, np.floating):
        return False
    return bool(np.all(np.isfinite(array)) and np.all(array == np.round(array)))


def _windows(array: np.ndarray, name: str, n: int, where: str) -> np.ndarray:
    """float32 (N, C, T); (N, T) becomes one channel.

    A (N, T, C) array with few channels and many steps (``(N, 100, 3)``) is the common
    channels-last layout of other tools; it is refused rather than read as 100 channels of 3
    steps, which would train on nonsense without a word.
    """
    if array.ndim == 2:
        array = array[:, None, :]
    if array.ndim != 3:
        raise DataError(f"{where}: {name!r} has shape {array.shape}; expected (N, C, T) or (N, T)")
    if (
        array.shape[2] < array.shape[1]
        and array.shape[2] <= 16
        and array.shape[1] >= 4 * array.shape[2]
    ):
        raise DataError(
            f"{where}: {name!r} has shape {array.shape}, which looks channels-last (N, T, C); "
            f"store it as (N, C, T), e.g. np.transpose(x, (0, 2, 1))"
        )
    if len(array) != n:
        raise DataError(f"{where}: {name!r} has {len(array)} windows but labels has {n}")
    if array.shape[1] == 0 or array.shape[2] == 0:
        raise DataError(
            f"{where}: {name!r} has shape {array.shape}; channels and steps must be > 0"
        )
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise DataError(f"{where}: {name!r} has dtype {array.dtype}; expected numbers")
    bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
    if bad:
        raise DataError(f"{where}: {name!r} has {bad} non-finite values (NaN or inf)")
    if array.size and float(np.abs(array).max()) > FLOAT32_MAX / 1e6:
        raise DataError(
            f"{where}: {name!r} holds values up to {float(np.abs(array).max()):.3g}, beyond what "
            "float32 training can hold; rescale the data"
        )
    return np.ascontiguousarray(array, dtype=np.float32)
