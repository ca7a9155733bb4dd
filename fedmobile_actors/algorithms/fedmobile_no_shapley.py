"""Ablation: FedMobile without Shapley weighting of the generator clusters.

Clusters are still formed (and reported), but each representative weighs its cluster's mass (the
members' samples times staleness), which makes the global generator the plain sample-weighted
average of all reported generators: exactly what Shapley weighting is compared against.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from fedmobile_actors.algorithms.fedmobile import FedMobile


class FedMobileNoShapley(FedMobile):
    """FedMobile whose generator aggregation is mass-weighted instead of Shapley-weighted."""

    name = "fedmobile_no_shapley"

    def cluster_weights(
        self,
        version: int,
        reps: Sequence[Mapping[str, np.ndarray]],
        masses: np.ndarray,
        model: Mapping[str, np.ndarray],
    ) -> tuple[np.ndarray, np.ndarray]:
        """No Shapley values (empty); weights proportional to cluster mass (uniform if all 0)."""
        total = masses.sum()
        weights = masses / total if total > 0 else np.full(len(reps), 1.0 / len(reps))
        return np.zeros(0), weights
