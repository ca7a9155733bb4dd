"""Data layer: datasets (synthetic, USC-HAD, .npz), splits, partitions, modality masks."""

from fedmobile_actors.data.dataset import DatasetSplit, LocalData, MultimodalDataset
from fedmobile_actors.data.loading import load_split
from fedmobile_actors.data.masking import presence
from fedmobile_actors.data.partition import partition, phone_test_windows

__all__ = [
    "DatasetSplit",
    "LocalData",
    "MultimodalDataset",
    "load_split",
    "partition",
    "phone_test_windows",
    "presence",
]
