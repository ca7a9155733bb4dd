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

RESERVED = ("labels", "subjects")


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
        num_classes=int(labels.max()) + 1,
    )


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
            return {name: loaded[name] for name in loaded.files}
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        # allow_pickle=False makes object arrays fail here, with a ValueError.
        raise DataError(f"npz: {path}: an array cannot be read ({err})") from err


def _integer_ids(array: np.ndarray, name: str, where: str) -> np.ndarray:
    """(N,) non-negative int64; integral floats (a common artefact of pandas) are accepted."""
    if array.ndim != 1:
        raise DataError(f"{where}: {name!r} has shape {array.shape}; expected (N,)")
    if not _is_integral(array):
        raise DataError(
            f"{where}: {name!r} must hold integers; found {array.dtype} values such as "
            f"{array.ravel()[:3].tolist()}"
        )
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
    """float32 (N, C, T); (N, T) becomes one channel."""
    if array.ndim == 2:
        array = array[:, None, :]
    if array.ndim != 3:
        raise DataError(f"{where}: {name!r} has shape {array.shape}; expected (N, C, T) or (N, T)")
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
    return np.ascontiguousarray(array, dtype=np.float32)
