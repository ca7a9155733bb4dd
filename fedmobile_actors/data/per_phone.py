"""Synthetic windows made per phone, on demand, keyed by (seed, phone).

Why: a fleet of a million phones cannot hold every phone's windows (128 windows of two 3 x 50
modalities are 150 KB a phone, 150 GB a fleet), and a round needs only the hundred phones it
dispatches. Everything shared by all phones (the class waveforms, subject gains and offsets, the
normalisation) is small and made once from server-keyed streams; a phone's labels, subjects and
noise come from streams keyed by the phone, so any process makes the same bits for it, in any
order, as often as it likes. The held-out test set is a fixed-size draw from the server's stream,
whatever the fleet size.

How ``data.partition`` reads per phone (each phone has ``per_phone.samples`` windows):
- ``iid``: labels uniform over the classes, subjects uniform over the subjects;
- ``dirichlet``: the phone's label proportions ~ Dirichlet(alpha) (Hsu et al. 2019), subjects
  uniform; ``min_samples`` has nothing left to guard;
- ``shards``: the phone holds ``shards_per_phone`` distinct labels (at most all), its windows split
  as evenly as possible between them;
- ``subject``: every window is of subject ``phone % subjects``, labels uniform (the dealt
  partition's rule for which subject a phone holds).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fedmobile_actors.data.dataset import DatasetSplit, MultimodalDataset
from fedmobile_actors.data.loading import take_fraction
from fedmobile_actors.data.synthetic import ModalityModel, render, synthetic_model
from fedmobile_actors.scenario.schema import (
    DataConfig,
    DirichletPartition,
    IidPartition,
    Partition,
    PerPhoneSynthetic,
    ShardPartition,
    SubjectPartition,
    SyntheticSource,
)
from fedmobile_actors.seeding import SERVER, rng

#: Per-channel normalisation of one modality: (mean, std), each float32 (1, C, 1).
Stats = dict[str, tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class PhoneWindows:
    """Makes any phone's shard of the per-phone synthetic mode; small, so every host holds it.

    ``stats`` is the normalisation fitted on the reference sample; shards come out normalised.
    """

    source: SyntheticSource
    partition: Partition
    phones: int
    seed: int
    model: dict[str, ModalityModel]
    stats: Stats

    @property
    def config(self) -> PerPhoneSynthetic:
        assert self.source.per_phone is not None
        return self.source.per_phone

    def size(self, phone: int) -> int:
        """Phone ``phone``'s number of training windows, known without making them."""
        return self.config.samples

    def sizes(self) -> np.ndarray:
        """Every phone's shard size (int64, (phones,)): what the task-time model needs."""
        return np.full(self.phones, self.config.samples, dtype=np.int64)

    def labels(self, phone: int) -> MultimodalDataset:
        """Phone ``phone``'s labels and subjects without its signals (no modality arrays): what
        its held-out test draw and its group need, at a fraction of the cost of the shard."""
        labels, subjects = phone_labels(self.source, self.partition, self.seed, phone)
        return MultimodalDataset({}, labels, subjects, self.source.num_classes)

    def shard(self, phone: int) -> MultimodalDataset:
        """Phone ``phone``'s normalised training windows; the same bits wherever and whenever."""
        if not 0 <= phone < self.phones:
            raise IndexError(f"phone {phone} is not in a fleet of {self.phones}")
        labels, subjects = phone_labels(self.source, self.partition, self.seed, phone)
        modalities = {
            name: apply_stats(
                render(
                    model,
                    labels,
                    subjects,
                    self.source.noise,
                    rng(self.seed, phone, 0, f"synthetic-phone/{name}"),
                ),
                self.stats[name],
            )
            for name, model in self.model.items()
        }
        return MultimodalDataset(modalities, labels, subjects, self.source.num_classes)

    def main_subjects(self) -> np.ndarray:
        """Each phone's main subject (int64, (phones,)); defined only under a by-subject
        partition, where it is a closed form (the schema refuses the other cases)."""
        if not isinstance(self.partition, SubjectPartition):
            raise ValueError("a phone's main subject is known up front only by subject")
        return np.arange(self.phones, dtype=np.int64) % self.source.subjects


def phone_labels(
    source: SyntheticSource, partition: Partition, seed: int, phone: int
) -> tuple[np.ndarray, np.ndarray]:
    """Labels and subjects (int64) of phone ``phone``'s windows under ``partition`` (see the
    module's docstring), from the phone's own stream."""
    assert source.per_phone is not None
    n, k = source.per_phone.samples, source.num_classes
    gen = rng(seed, phone, 0, "synthetic-phone/labels")
    if isinstance(partition, IidPartition):
        labels = gen.integers(0, k, size=n)
    elif isinstance(partition, DirichletPartition):
        labels = gen.choice(k, size=n, p=gen.dirichlet(np.full(k, partition.alpha)))
    elif isinstance(partition, ShardPartition):
        held = np.sort(gen.choice(k, size=min(partition.shards_per_phone, k), replace=False))
        labels = gen.permutation(np.resize(held, n))  # each held label n/K times, +-1
    elif isinstance(partition, SubjectPartition):
        labels = gen.integers(0, k, size=n)
    else:  # pragma: no cover - the schema admits no other partition
        raise TypeError(f"unknown partition {partition!r}")
    if isinstance(partition, SubjectPartition):
        subjects = np.full(n, phone % source.subjects)
    else:
        subjects = gen.integers(0, source.subjects, size=n)
    return labels.astype(np.int64), subjects.astype(np.int64)


def server_windows(
    source: SyntheticSource, model: dict[str, ModalityModel], seed: int, n: int, purpose: str
) -> MultimodalDataset:
    """``n`` IID windows from the server's ``purpose`` stream (test set, reference sample)."""
    gen = rng(seed, SERVER, 0, purpose)
    labels = gen.integers(0, source.num_classes, size=n).astype(np.int64)
    subjects = gen.integers(0, source.subjects, size=n).astype(np.int64)
    modalities = {
        name: render(m, labels, subjects, source.noise, rng(seed, SERVER, 0, f"{purpose}/{name}"))
        for name, m in model.items()
    }
    return MultimodalDataset(modalities, labels, subjects, source.num_classes)


def fit_stats(data: MultimodalDataset) -> Stats:
    """Per-channel mean and std (+1e-6) of every modality of ``data``."""
    return {
        name: (x.mean(axis=(0, 2), keepdims=True), x.std(axis=(0, 2), keepdims=True) + 1e-6)
        for name, x in data.modalities.items()
    }


def apply_stats(x: np.ndarray, stats: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    mean, std = stats
    return ((x - mean) / std).astype(np.float32)


def normalised(data: MultimodalDataset, stats: Stats) -> MultimodalDataset:
    modalities = {name: apply_stats(x, stats[name]) for name, x in data.modalities.items()}
    return MultimodalDataset(modalities, data.labels, data.subjects, data.num_classes)


def make_phone_windows(
    source: SyntheticSource, partition: Partition, phones: int, seed: int
) -> tuple[PhoneWindows, MultimodalDataset]:
    """The per-phone maker and the normalised held-out set (``test_samples`` windows).

    Normalisation is fitted on a server-keyed reference sample of ``reference_samples`` IID
    windows: not on the test set (its statistics must not reach training) and not on the
    training windows (nobody holds them all).
    """
    config = source.per_phone
    assert config is not None
    model = synthetic_model(source, seed)
    reference = server_windows(source, model, seed, config.reference_samples, "synthetic-reference")
    stats = fit_stats(reference)
    test = server_windows(source, model, seed, config.test_samples, "synthetic-test")
    return PhoneWindows(source, partition, phones, seed, model, stats), normalised(test, stats)


def load_per_phone(config: DataConfig, phones: int, seed: int) -> tuple[DatasetSplit, PhoneWindows]:
    """The split of the per-phone mode and its phone-window maker.

    ``split.train`` holds no windows (only the shapes: nobody holds every phone's windows); the
    proxy set is ``data.proxy_fraction`` of the held-out windows, taken as the dealt mode takes it.
    """
    source = config.source
    assert isinstance(source, SyntheticSource)
    maker, test = make_phone_windows(source, config.partition, phones, seed)
    empty = MultimodalDataset(
        {name: x[:0] for name, x in test.modalities.items()},
        test.labels[:0],
        test.subjects[:0],
        test.num_classes,
    )
    proxy = None
    if config.proxy_fraction > 0:
        proxy, test = take_fraction(test, config.proxy_fraction, seed, "proxy")
    return DatasetSplit(train=empty, test=test, proxy=proxy), maker
