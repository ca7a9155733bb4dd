"""Per-sample presence masks: rates respected, fixed per phone, never a sample without sensors."""

from __future__ import annotations

import numpy as np

from fedmobile_actors.data.masking import presence

NAMES = ("acc", "gyro")


def test_missing_rate_is_respected_approximately() -> None:
    """acc missing at 0.3 on 20000 samples: about 70% present; gyro (rate 0) always present."""
    masks = presence(20_000, {"acc": 0.3}, NAMES, seed=0, owner=4)
    assert abs(masks["acc"].mean() - 0.7) < 0.02
    assert masks["gyro"].all()


def test_the_papers_setting_one_modality_missing_at_80_percent() -> None:
    masks = presence(20_000, {"gyro": 0.8}, NAMES, seed=1, owner=0)
    assert abs(masks["gyro"].mean() - 0.2) < 0.02


def test_every_sample_keeps_at_least_one_modality() -> None:
    """Both at 0.9: samples that drew neither get the lower-rate modality back."""
    masks = presence(5_000, {"acc": 0.9, "gyro": 0.95}, NAMES, seed=0, owner=1)
    assert np.all(masks["acc"] | masks["gyro"])
    assert masks["gyro"].mean() < 0.1  # gyro is not the one given back


def test_masks_are_fixed_per_phone_and_differ_between_phones() -> None:
    rates = {"acc": 0.5}
    a = presence(1_000, rates, NAMES, seed=0, owner=7)
    b = presence(1_000, rates, NAMES, seed=0, owner=7)
    c = presence(1_000, rates, NAMES, seed=0, owner=8)
    assert np.array_equal(a["acc"], b["acc"])
    assert not np.array_equal(a["acc"], c["acc"])


def test_rate_one_removes_the_modality_entirely() -> None:
    masks = presence(100, {"acc": 1.0}, NAMES, seed=0, owner=0)
    assert not masks["acc"].any() and masks["gyro"].all()
