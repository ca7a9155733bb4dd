"""load_split and normalisation: statistics come from the training windows only."""

from __future__ import annotations

import numpy as np

from fedmobile_actors.data.dataset import MultimodalDataset
from fedmobile_actors.data.loading import load_split, normalise, stratified_split
from fedmobile_actors.scenario.schema import DataConfig, SyntheticSource


def dataset(values: np.ndarray) -> MultimodalDataset:
    n = len(values)
    return MultimodalDataset(
        modalities={"acc": values.astype(np.float32)},
        labels=np.zeros(n, dtype=np.int64),
        subjects=np.zeros(n, dtype=np.int64),
        num_classes=1,
    )


def test_normalisation_is_fitted_on_train_only() -> None:
    """Train becomes mean 0 / std 1 per channel; test is shifted by the *train* statistics."""
    gen = np.random.default_rng(0)
    train = dataset(gen.normal([[5.0], [-2.0]], [[2.0], [0.5]], size=(400, 2, 30)))
    test = dataset(gen.normal([[50.0], [0.0]], 1.0, size=(100, 2, 30)))
    norm_train, norm_test = normalise(train, test)
    x = norm_train.modalities["acc"]
    assert np.allclose(x.mean(axis=(0, 2)), 0, atol=1e-4)
    assert np.allclose(x.std(axis=(0, 2)), 1, atol=1e-3)
    raw = train.modalities["acc"]
    mean, std = raw.mean(axis=(0, 2)), raw.std(axis=(0, 2))
    expected = (test.modalities["acc"] - mean[None, :, None]) / std[None, :, None]
    assert np.allclose(norm_test.modalities["acc"], expected, atol=1e-3)
    assert norm_test.modalities["acc"][:, 0].mean() > 15  # test's own mean was not removed


def test_stratified_split_holds_out_each_class() -> None:
    base = dataset(np.zeros((100, 1, 4)))
    data = MultimodalDataset(base.modalities, np.arange(100) % 4, base.subjects, 4)
    train, test = stratified_split(data, 0.2, seed=0)
    assert len(train) + len(test) == 100
    assert list(np.bincount(test.labels)) == [5, 5, 5, 5]


def test_load_split_is_deterministic_and_keeps_a_proxy_set() -> None:
    """The same seed gives the same split; a proxy fraction is carved out of the test windows."""
    config = DataConfig(source=SyntheticSource(samples=300), test_fraction=0.2, proxy_fraction=0.5)
    a, b = load_split(config, seed=3), load_split(config, seed=3)
    assert np.array_equal(a.train.modalities["acc"], b.train.modalities["acc"])
    assert a.proxy is not None
    assert len(a.train) + len(a.test) + len(a.proxy) == 300
    assert abs(len(a.proxy) - len(a.test)) <= 1
