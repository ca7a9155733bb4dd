"""ModelScorer: many whole models scored side by side, with the serial loop's bits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fedmobile_actors.algorithms.fedmobile_authors import subject_mean_accuracy
from fedmobile_actors.algorithms.model import build_model, get_arrays
from fedmobile_actors.algorithms.models.base import MultimodalNet
from fedmobile_actors.algorithms.scoring import ModelScorer
from fedmobile_actors.data.dataset import MultimodalDataset
from fedmobile_actors.scenario.schema import ModelConfig

#: The authors' USC-HAD shapes (acc and gyro, 3 x 200), so the kernels are the grid's.
SHAPES = {"acc": (3, 200), "gyro": (3, 200)}
CLASSES = 12


def scored_set(windows: int = 600) -> MultimodalDataset:
    """Random windows of three subjects (more than one 512-window batch)."""
    rng = np.random.default_rng(5)
    return MultimodalDataset(
        modalities={
            n: rng.normal(size=(windows, *s)).astype(np.float32) for n, s in SHAPES.items()
        },
        labels=rng.integers(0, CLASSES, windows),
        subjects=rng.integers(0, 3, windows),
        num_classes=CLASSES,
    )


def candidates(n: int) -> tuple[MultimodalNet, list[dict[str, np.ndarray]]]:
    """The authors' model and ``n`` distinct whole states of it (parameters and BN means)."""
    model = build_model(SHAPES, CLASSES, ModelConfig(kind="authors_conv2d"), 11)
    rng = np.random.default_rng(3)
    base = get_arrays(model)
    keep = ("running_var", "num_batches_tracked")
    states = [
        {
            k: a.copy() if k.endswith(keep) else a + rng.normal(0, 0.1, a.shape).astype(np.float32)
            for k, a in base.items()
        }
        for _ in range(n)
    ]
    return model, states


@pytest.mark.parametrize("threads", [2, 3])
def test_threads_give_the_serial_scores(threads: int) -> None:
    dataset = scored_set()
    model, states = candidates(5)

    def score(m: MultimodalNet) -> float:
        return subject_mean_accuracy(m, dataset)

    serial = ModelScorer(model, score, threads=1).scores(states)
    assert len(set(serial)) > 1  # the candidates differ, so the order is checked too
    parallel = ModelScorer(model, score, threads=threads).scores(states)
    assert parallel == serial
    # The caller's model ends on the last candidate, in eval mode, as after the serial loop.
    after = get_arrays(model)
    assert all(np.array_equal(after[k], states[-1][k]) for k in after)
    assert not model.training


def test_threads_default_to_torchs_inter_op_pool() -> None:
    model, _ = candidates(1)
    assert ModelScorer(model, lambda m: 1.0).threads == torch.get_num_interop_threads()
    assert ModelScorer(model, lambda m: 1.0, threads=4).scores([]) == []
