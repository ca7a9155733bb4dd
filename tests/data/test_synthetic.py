"""The synthetic dataset: seeded, shaped as configured, cross-modal correlation as a knob."""

from __future__ import annotations

import numpy as np

from fedmobile_actors.data.synthetic import make_synthetic
from fedmobile_actors.scenario.schema import ModalityShape, SyntheticSource


def cross_modal_correlation(correlation: float, seed: int = 0) -> float:
    """Mean |Pearson r| between acc and gyro channels of each class's mean window.

    Class means average the noise away, so this measures how much class signal the two
    modalities share, which is what ``correlation`` controls.
    """
    data = make_synthetic(SyntheticSource(correlation=correlation, samples=1200), seed)
    acc, gyro = data.modalities["acc"], data.modalities["gyro"]
    values = []
    for k in range(data.num_classes):
        mean_acc, mean_gyro = acc[data.labels == k].mean(0), gyro[data.labels == k].mean(0)
        for a in mean_acc:
            for g in mean_gyro:
                values.append(abs(np.corrcoef(a, g)[0, 1]))
    return float(np.mean(values))


def test_same_seed_same_arrays_other_seed_other_arrays() -> None:
    source = SyntheticSource(samples=200)
    a, b, c = make_synthetic(source, 5), make_synthetic(source, 5), make_synthetic(source, 6)
    for name in ("acc", "gyro"):
        assert np.array_equal(a.modalities[name], b.modalities[name])
        assert not np.array_equal(a.modalities[name], c.modalities[name])
    assert np.array_equal(a.labels, b.labels) and np.array_equal(a.subjects, b.subjects)


def test_shapes_classes_and_subjects_follow_the_source() -> None:
    source = SyntheticSource(
        num_classes=4,
        samples=120,
        subjects=3,
        modalities=(
            ModalityShape(name="acc", channels=3, steps=20),
            ModalityShape(name="ppg", channels=1, steps=64),
        ),
    )
    data = make_synthetic(source, 0)
    assert data.shapes == {"acc": (3, 20), "ppg": (1, 64)}
    assert len(data) == 120 and data.num_classes == 4
    assert set(np.unique(data.labels)) <= set(range(4))
    assert set(np.unique(data.subjects)) <= set(range(3))
    assert all(a.dtype == np.float32 for a in data.modalities.values())


def test_correlation_parameter_changes_cross_modal_correlation() -> None:
    """Measured |r| rises with the parameter: near 1 at c=1, low at c=0."""
    low, mid, high = (cross_modal_correlation(c) for c in (0.0, 0.5, 1.0))
    assert low < mid < high
    assert high > 0.9
    assert low < 0.4


def test_a_modality_added_later_leaves_the_others_unchanged() -> None:
    """Each modality draws from its own stream, so adding one does not reshuffle another."""
    one = make_synthetic(SyntheticSource(samples=100, modalities=(ModalityShape(name="acc"),)), 0)
    two = make_synthetic(SyntheticSource(samples=100), 0)
    assert np.array_equal(one.modalities["acc"], two.modalities["acc"])
