"""Server-side rules as plain functions: admission of updates and contribution-aware alpha."""

from __future__ import annotations

import numpy as np
import pytest

from fedmobile_actors.algorithms.admission import admit
from fedmobile_actors.algorithms.contribution import (
    contribution_scores,
    contribution_weights,
    filter_keep,
    reference_accuracy,
    relative_loss_reduction,
)
from fedmobile_actors.algorithms.strategy import ClientUpdate

CURRENT = {"w": np.zeros((2, 3), np.float32), "b": np.zeros(3, np.float32)}


def update(phone: int, fill: float = 1.0, n: int = 10, **override: np.ndarray) -> ClientUpdate:
    arrays = {k: np.full_like(a, fill) for k, a in CURRENT.items()}
    arrays.update(override)
    return ClientUpdate(phone_id=phone, base_version=0, num_samples=n, arrays=arrays)


def test_admit_keeps_good_updates_in_order_with_their_staleness() -> None:
    kept, factors, rejected = admit(CURRENT, [update(0), update(1)], [1.0, 0.5])
    assert [u.phone_id for u in kept] == [0, 1] and factors.tolist() == [1.0, 0.5]
    assert rejected == 0


@pytest.mark.parametrize(
    ("bad", "weight"),
    [
        (update(9, fill=np.nan), 1.0),
        (update(9, fill=np.inf), 1.0),
        (update(9, b=np.zeros(4, np.float32)), 1.0),  # wrong shape
        (update(9, extra=np.zeros(1, np.float32)), 1.0),  # unknown array
        (update(9, n=-1), 1.0),
        (update(9), float("nan")),
        (update(9), -0.5),
    ],
)
def test_admit_rejects_and_counts_what_must_never_be_averaged(
    bad: ClientUpdate, weight: float
) -> None:
    kept, _, rejected = admit(CURRENT, [update(0), bad], [1.0, weight])
    assert [u.phone_id for u in kept] == [0] and rejected == 1


def test_zero_staleness_weight_is_left_out_but_not_rejected() -> None:
    kept, _, rejected = admit(CURRENT, [update(0), update(1)], [0.0, 1.0])
    assert [u.phone_id for u in kept] == [1] and rejected == 0


def test_relative_loss_reduction_is_defined_within_one_task() -> None:
    assert relative_loss_reduction(2.0, 1.5) == pytest.approx(0.25)
    assert relative_loss_reduction(1.0, 1.2) == pytest.approx(-0.2)
    assert relative_loss_reduction(0.0, 0.0) == 0.0
    assert relative_loss_reduction(float("nan"), 1.0) == 0.0


def test_alpha_favours_phones_that_fit_and_improve_at_equal_size() -> None:
    metrics = [
        {"accuracy_after": 0.9, "loss_reduction": 0.5},
        {"accuracy_after": 0.3, "loss_reduction": -0.2},
        {},  # no evidence: scores 0
    ]
    scores = contribution_scores(metrics, balance=0.5)
    np.testing.assert_allclose(scores, [0.7, 0.15, 0.0])
    alpha = contribution_weights([10, 10, 10], [1.0, 1.0, 1.0], scores)
    assert alpha[0] > alpha[1] > alpha[2] == 0


def test_alpha_multiplies_samples_and_staleness_and_falls_back_to_samples() -> None:
    scores = np.array([0.5, 0.5])
    np.testing.assert_allclose(contribution_weights([10, 30], [1.0, 0.5], scores), [5.0, 7.5])
    np.testing.assert_allclose(contribution_weights([10, 30], [1.0, 0.5], np.zeros(2)), [10, 15])


def test_filter_keeps_phones_whose_gain_beats_the_reference_and_never_empties() -> None:
    metrics = [
        {"accuracy_before": 0.5, "accuracy_after": 0.7},  # 0.9
        {"accuracy_before": 0.6, "accuracy_after": 0.6},  # 0.6
    ]
    assert filter_keep(metrics, 0.8).tolist() == [True, False]
    assert filter_keep(metrics, 0.95).tolist() == [True, True]
    assert reference_accuracy(metrics, [1, 3]) == pytest.approx(0.575)
