"""The blocked weighted average gives the plain whole-array formula's bits.

The runs committed in benchmarks/results were made with the plain formula (one float64
accumulator, ``acc += w_k * x_k``); blocking only changes where the temporaries live, so every
element must come out with the same bits, for every dtype and block boundary.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from algo_setting import plain_weighted_average

from fedmobile_actors.algorithms import aggregation
from fedmobile_actors.algorithms.aggregation import OrderedWeightedSum, weighted_average
from fedmobile_actors.algorithms.model import set_arrays


def members(count: int, seed: int) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        big = rng.standard_normal((13, 11)).astype(np.float32) * 1e3
        big.reshape(-1)[:5] = [-0.0, 0.0, np.inf, -np.inf, np.nan]  # signs and specials
        out.append(
            {
                "big": big,
                "strided": rng.standard_normal((9, 8))[:, ::2],  # not contiguous
                "half": rng.standard_normal(37).astype(np.float16),
                "count": rng.integers(-50, 50, size=(5,)),
                "scalar": np.asarray(rng.standard_normal(), dtype=np.float32),
                "empty": np.zeros((0, 3), np.float32),
            }
        )
    return out


def same_bits(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return list(a) == list(b) and all(
        a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and a[k].tobytes() == b[k].tobytes()
        for k in a
    )


@pytest.mark.parametrize("block", [1, 7, 64, aggregation.BLOCK])
@pytest.mark.parametrize("count", [1, 2, 5])
def test_blocked_average_has_the_plain_formulas_bits(
    monkeypatch: pytest.MonkeyPatch, block: int, count: int
) -> None:
    monkeypatch.setattr(aggregation, "BLOCK", block)
    arrays = members(count, seed=count)
    weights = [0.3, 2.0, 1e-7, 5.0, 0.0][:count] if count > 1 else [3.0]
    with np.errstate(invalid="ignore"):
        assert same_bits(weighted_average(arrays, weights), plain_weighted_average(arrays, weights))


def test_blocked_ordered_sum_has_the_plain_formulas_bits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aggregation, "BLOCK", 5)
    arrays = members(4, seed=9)
    weights = [1.0, 0.25, 3.0, 0.5]
    total = OrderedWeightedSum(dict(enumerate(weights)))
    with np.errstate(invalid="ignore"):
        for i in (2, 0, 3, 1):
            total.add(i, arrays[i], weights[i])
        result = total.result()
        assert result is not None and same_bits(result, plain_weighted_average(arrays, weights))


def test_a_member_of_another_shape_is_named() -> None:
    good = {"w": np.ones((2, 3), np.float32)}
    with pytest.raises(ValueError, match="'w' has shape \\(3, 2\\)"):
        weighted_average([good, {"w": np.ones((3, 2), np.float32)}], [1.0, 1.0])


def test_out_receives_the_same_bits_in_place_and_is_checked() -> None:
    arrays = members(3, seed=4)
    weights = [1.0, 2.0, 0.5]
    out = {k: np.full(a.shape, 7, dtype=a.dtype) for k, a in arrays[0].items()}
    with np.errstate(invalid="ignore"):
        result = weighted_average(arrays, weights, out=out)
        assert all(result[k] is out[k] for k in out)
        assert same_bits(result, plain_weighted_average(arrays, weights))
    with pytest.raises(ValueError, match="out\\['count'\\] must be a C-contiguous int64"):
        weighted_average(arrays, weights, out={**out, "count": out["count"].astype(np.int32)})


def test_set_arrays_copies_so_the_source_can_be_reused() -> None:
    layer = torch.nn.Linear(3, 2)
    source = {k: np.full(t.shape, 1.5, np.float32) for k, t in layer.state_dict().items()}
    set_arrays(layer, source)
    source["weight"][:] = 9.0  # a scratch buffer overwritten later must not reach the module
    assert float(layer.weight.detach().max()) == 1.5
    wire = {k: a.copy() for k, a in source.items()}
    for a in wire.values():
        a.flags.writeable = False  # as decoded from a payload
    set_arrays(layer, wire)
    assert float(layer.weight.detach().max()) == 9.0
