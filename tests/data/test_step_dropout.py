"""Training-time dropout redrawn every step (the FedMobile authors' missing rate)."""

from __future__ import annotations

import numpy as np
import torch

from fedmobile_actors.algorithms.training import Batchable
from fedmobile_actors.data.dataset import MultimodalDataset
from fedmobile_actors.data.step_dropout import StepDropoutSampler
from fedmobile_actors.scenario.schema import StepDropout


def batch(n: int = 16) -> Batchable:
    data = MultimodalDataset(
        modalities={
            "acc": np.ones((n, 3, 5), dtype=np.float32),
            "gyro": np.ones((n, 3, 5), dtype=np.float32),
        },
        labels=np.zeros(n, dtype=np.int64),
        subjects=np.zeros(n, dtype=np.int64),
        num_classes=2,
    )
    return Batchable.of(data, {m: np.ones(n, dtype=bool) for m in ("acc", "gyro")})


def sampler(rate: float, seed: int = 3, mode: str = "zero_input") -> StepDropoutSampler:
    rule = StepDropout(modality="acc", rate=rate, mode=mode)  # type: ignore[arg-type]
    return StepDropoutSampler((rule,), torch.Generator().manual_seed(seed))


def test_int_rate_times_batch_distinct_rows_are_drawn() -> None:
    """As ``random.sample(range(bsz), int(bsz * rate))``: 12 of 16 at 0.8, 14 of 16 at 0.9."""
    for rate, count in ((0.8, 12), (0.9, 14), (0.0, 0)):
        (drop,) = sampler(rate).draw(16)
        assert len(drop.rows) == count == len(set(drop.rows.tolist()))


def test_rows_are_redrawn_each_step_and_keyed() -> None:
    """Two steps of one task drop different rows; the same key drops the same rows again."""
    first, again = sampler(0.5), sampler(0.5)
    steps = [first.draw(16)[0].rows.tolist() for _ in range(3)]
    assert steps[0] != steps[1] or steps[1] != steps[2]
    assert [again.draw(16)[0].rows.tolist() for _ in range(3)] == steps


def test_zero_input_zeroes_only_the_dropped_rows_of_the_modality() -> None:
    b = batch()
    out = b.dropped(sampler(0.8, seed=1))
    zero_rows = (out.inputs["acc"].abs().sum(dim=(1, 2)) == 0).nonzero().flatten()
    assert len(zero_rows) == 12
    assert bool(out.inputs["gyro"].eq(1).all())  # other modality untouched
    assert bool(out.present["acc"].all())  # the model is not told
    assert bool(b.inputs["acc"].eq(1).all())  # the shard itself is never written


def test_absent_mode_marks_rows_missing_instead() -> None:
    out = batch().dropped(sampler(0.9, mode="absent"))
    assert int((~out.present["acc"]).sum()) == 14
    assert bool(out.inputs["acc"].eq(1).all())


def test_no_sampler_is_the_batch_itself() -> None:
    b = batch()
    assert b.dropped(None) is b
