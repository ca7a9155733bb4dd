"""Per-phone synthetic windows made on demand: keyed by (seed, phone); a fixed-size test set."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fedmobile_actors.data.per_phone import PhoneWindows, load_per_phone
from fedmobile_actors.errors import ScenarioError
from fedmobile_actors.scenario import Scenario, validate_mapping

REPO = Path(__file__).resolve().parents[2]


def _scenario(
    phones: int = 40, partition: dict[str, Any] | None = None, **per_phone: Any
) -> Scenario:
    source = {
        "kind": "synthetic",
        "num_classes": 5,
        "subjects": 7,
        "per_phone": {"samples": 30, "test_samples": 200, "reference_samples": 300, **per_phone},
    }
    raw = {
        "data": {"source": source, "partition": partition or {"kind": "iid"}},
        "fleet": {"phones": phones},
        "rounds": {"clients_per_round": 2},
    }
    return validate_mapping(raw, "per-phone")


def _maker(scenario: Scenario) -> PhoneWindows:
    return load_per_phone(scenario.data, scenario.fleet.phones, scenario.seed)[1]


def _same(a: Any, b: Any) -> bool:
    return all(np.array_equal(a.modalities[m], b.modalities[m]) for m in a.modalities) and (
        np.array_equal(a.labels, b.labels) and np.array_equal(a.subjects, b.subjects)
    )


def test_a_phones_shard_is_the_same_bits_whatever_made_it_first() -> None:
    """Two makers built apart, asked for phones in opposite orders, give identical shards."""
    first, second = _maker(_scenario()), _maker(_scenario())
    forward = {p: first.shard(p) for p in (3, 17, 39)}
    backward = {p: second.shard(p) for p in (39, 17, 3)}
    assert all(_same(forward[p], backward[p]) for p in forward)
    assert not _same(forward[3], forward[17])


def test_shards_have_the_configured_size_and_are_float32() -> None:
    shard = _maker(_scenario()).shard(5)
    assert len(shard) == 30
    assert all(x.dtype == np.float32 for x in shard.modalities.values())
    assert _maker(_scenario()).sizes().tolist() == [30] * 40


def test_the_held_out_set_does_not_depend_on_the_fleet_size() -> None:
    small = load_per_phone(_scenario(10).data, 10, 0)[0].test
    large = load_per_phone(_scenario(1000).data, 1000, 0)[0].test
    assert len(small) == 200 and _same(small, large)


def test_normalisation_makes_pooled_shards_near_standard() -> None:
    """Fitted on the reference sample, it leaves pooled IID shards near zero mean, unit std."""
    maker = _maker(_scenario())
    pooled = np.concatenate([maker.shard(p).modalities["acc"] for p in range(40)])
    assert np.abs(pooled.mean(axis=(0, 2))).max() < 0.15
    assert np.abs(pooled.std(axis=(0, 2)) - 1).max() < 0.15


def test_dirichlet_skews_each_phones_labels() -> None:
    """Small alpha: each phone's commonest label dominates; IID phones stay near uniform."""
    skewed = _maker(_scenario(partition={"kind": "dirichlet", "alpha": 0.05}, samples=100))
    iid = _maker(_scenario(samples=100))

    def top_share(maker: PhoneWindows) -> float:
        shares = [np.bincount(maker.labels(p).labels).max() / 100 for p in range(20)]
        return float(np.mean(shares))

    assert top_share(skewed) > 0.8 > 0.4 > top_share(iid)


def test_shard_partition_gives_each_phone_at_most_its_labels() -> None:
    maker = _maker(_scenario(partition={"kind": "shards", "shards_per_phone": 2}))
    assert all(len(np.unique(maker.labels(p).labels)) == 2 for p in range(40))


def test_subject_partition_gives_each_phone_one_subject() -> None:
    maker = _maker(_scenario(partition={"kind": "subject"}))
    for phone in (0, 8, 13):
        assert set(maker.shard(phone).subjects.tolist()) == {phone % 7}
    assert maker.main_subjects()[:9].tolist() == [0, 1, 2, 3, 4, 5, 6, 0, 1]


def test_labels_alone_match_the_shards_labels() -> None:
    """What group and per-phone test draws read (labels only) is the shard's own labels."""
    maker = _maker(_scenario(partition={"kind": "dirichlet", "alpha": 0.3}))
    assert np.array_equal(maker.labels(11).labels, maker.shard(11).labels)


def test_a_fleet_correlated_by_label_is_refused_with_on_demand_data() -> None:
    raw = {
        "data": {"source": {"kind": "synthetic", "per_phone": {}}},
        "fleet": {"phones": 10, "correlation": {"by": "label"}},
    }
    with pytest.raises(ScenarioError, match=r"correlation\.by"):
        validate_mapping(raw, "x")


_DIGEST = """
import hashlib, sys
sys.path.insert(0, "tests/data")
from test_per_phone import _maker, _scenario
shard = _maker(_scenario()).shard(int(sys.argv[1]))
digest = hashlib.sha256()
for x in (*shard.modalities.values(), shard.labels, shard.subjects):
    digest.update(x.tobytes())
print(digest.hexdigest())
"""


def _digest(phone: int) -> str:
    shard = _maker(_scenario()).shard(phone)
    digest = hashlib.sha256()
    for x in (*shard.modalities.values(), shard.labels, shard.subjects):
        digest.update(x.tobytes())
    return digest.hexdigest()


@pytest.mark.integration
def test_another_process_makes_the_same_shard() -> None:
    """A fresh interpreter (new hash seed, nothing cached) makes phone 21's shard bit for bit."""
    out = subprocess.run(
        [sys.executable, "-c", _DIGEST, "21"],
        cwd=REPO,
        env={**os.environ, "PYTHONHASHSEED": "123", "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == _digest(21)


def test_shard_partition_splits_a_phones_windows_evenly_between_its_labels() -> None:
    maker = _maker(_scenario(partition={"kind": "shards", "shards_per_phone": 4}))
    counts = np.bincount(maker.labels(0).labels)
    assert sorted(counts[counts > 0].tolist()) == [7, 7, 8, 8]  # 30 windows, 4 labels
