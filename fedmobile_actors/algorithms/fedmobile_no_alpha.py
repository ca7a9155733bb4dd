"""Ablation: FedMobile without contribution-aware model weights.

The model is averaged by sample count times staleness, as in FedAvg; everything else (generator
fill, distillation, clustering, Shapley weighting, the optional filter) is FedMobile's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fedmobile_actors.algorithms.fedmobile import FedMobile
from fedmobile_actors.algorithms.strategy import ClientUpdate


class FedMobileNoAlpha(FedMobile):
    """FedMobile whose model weights are sample counts times staleness, as in FedAvg."""

    name = "fedmobile_no_alpha"

    def alpha(self, updates: Sequence[ClientUpdate], staleness: np.ndarray) -> np.ndarray:
        return np.array([u.num_samples for u in updates], dtype=np.float64) * staleness
