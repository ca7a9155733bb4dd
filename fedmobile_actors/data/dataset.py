"""The in-memory shape of every dataset: windows per modality, labels, subjects.

Why one small container: every source (synthetic, USC-HAD, .npz) ends here, so partitioners,
masking, local training and evaluation are written once against it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MultimodalDataset:
    """Windows of several sensor modalities with one label (and subject) per window.

    ``modalities[name]`` is float32 of shape (N, C, T); ``labels`` and ``subjects`` are int64 (N,).
    """

    modalities: dict[str, np.ndarray]
    labels: np.ndarray
    subjects: np.ndarray
    num_classes: int

    def __post_init__(self) -> None:
        n = len(self.labels)
        for name, array in self.modalities.items():
            if array.ndim != 3 or len(array) != n:
                raise ValueError(f"modality {name!r} has shape {array.shape}; expected ({n}, C, T)")
        if len(self.subjects) != n:
            raise ValueError(f"subjects has {len(self.subjects)} entries; expected {n}")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def modality_names(self) -> tuple[str, ...]:
        return tuple(self.modalities)

    @property
    def shapes(self) -> dict[str, tuple[int, int]]:
        """(channels, steps) of each modality, which fixes the encoders."""
        return {name: (a.shape[1], a.shape[2]) for name, a in self.modalities.items()}

    def slice(self, start: int, end: int) -> MultimodalDataset:
        """Windows ``start:end`` as views (no copy): how hosts read shards from shared memory."""
        return MultimodalDataset(
            modalities={name: a[start:end] for name, a in self.modalities.items()},
            labels=self.labels[start:end],
            subjects=self.subjects[start:end],
            num_classes=self.num_classes,
        )

    def subset(self, index: np.ndarray) -> MultimodalDataset:
        return MultimodalDataset(
            modalities={name: a[index] for name, a in self.modalities.items()},
            labels=self.labels[index],
            subjects=self.subjects[index],
            num_classes=self.num_classes,
        )


@dataclass(frozen=True)
class DatasetSplit:
    """Training windows (dealt to phones), held-out test windows, and an optional server proxy."""

    train: MultimodalDataset
    test: MultimodalDataset
    proxy: MultimodalDataset | None = None


@dataclass(frozen=True)
class LocalData:
    """What one phone trains on: its shard and which modalities each of its samples has.

    ``present[name]`` is a bool array (N,), True where the sample has that modality.
    """

    dataset: MultimodalDataset
    present: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.dataset)
