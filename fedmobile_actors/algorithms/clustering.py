"""Group the reporting phones' generators by what they generate, with k-means.

Why cluster before Shapley: Shapley values cost 2^K utility evaluations, so FedMobile scores a few
cluster representatives instead of hundreds of phones. Two generators are alike when they map the
same probe (z, y) to similar features, so each generator's *signature* is its output on the server's
fixed probe batch, and k-means groups the signatures. A cluster's representative is the weighted
parameter average of its members.

Determinism: k-means is seeded from (seed, round) and runs on one BLAS/OpenMP thread, and the
clusters are renumbered by first member, so the same reports give the same clusters in any process.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from fedmobile_actors.algorithms.aggregation import weighted_average
from fedmobile_actors.algorithms.generator import FeatureGenerator
from fedmobile_actors.algorithms.model import set_arrays


@torch.no_grad()
def generator_signatures(
    generator: FeatureGenerator,
    arrays: Sequence[Mapping[str, np.ndarray]],
    z: torch.Tensor,
    y: torch.Tensor,
    prefix: str = "",
) -> np.ndarray:
    """Each generator's output on the probe, flattened: (R, P * F) float64.

    ``generator`` is a working module whose weights are overwritten by each entry of ``arrays``.
    """
    generator.eval()
    rows = []
    for a in arrays:
        set_arrays(generator, a, prefix)
        rows.append(generator(z, y).reshape(-1).numpy().astype(np.float64))
    return np.stack(rows) if rows else np.zeros((0, 0))


def kmeans_labels(signatures: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Cluster index per row (R,), numbered in order of first appearance.

    K is capped by the number of distinct rows (k-means cannot make more non-empty clusters).
    """
    n = len(signatures)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    # Distinct rows by their bytes: np.unique(axis=0) sorts and took ~1 s for 1,000 reports.
    distinct = len({row.tobytes() for row in np.ascontiguousarray(signatures)})
    k = min(k, n, distinct)
    if k <= 1:
        return np.zeros(n, dtype=np.int64)
    with threadpool_limits(limits=1):
        # Imported here: scikit-learn costs ~1-2 s to import, and only FedMobile's server needs it.
        from sklearn.cluster import KMeans

        raw = KMeans(n_clusters=k, n_init=3, random_state=seed % (2**32)).fit_predict(signatures)
    order = {int(c): i for i, c in enumerate(dict.fromkeys(int(c) for c in raw))}
    return np.array([order[int(c)] for c in raw], dtype=np.int64)


def cluster_representatives(
    arrays: Sequence[Mapping[str, np.ndarray]], labels: np.ndarray, weights: Sequence[float]
) -> tuple[list[dict[str, np.ndarray]], np.ndarray]:
    """Per cluster: the weighted parameter average of its members, and its mass (sum of weights).

    A cluster whose members all weigh zero is averaged uniformly (it still exists; its mass is 0).
    """
    w = np.asarray(weights, dtype=np.float64)
    reps, masses = [], []
    for c in range(int(labels.max()) + 1 if len(labels) else 0):
        members = np.flatnonzero(labels == c)
        mw = w[members]
        mass = float(mw.sum())
        reps.append(
            weighted_average(
                [arrays[int(i)] for i in members], (mw if mass > 0 else np.ones(len(mw))).tolist()
            )
        )
        masses.append(mass)
    return reps, np.array(masses)
