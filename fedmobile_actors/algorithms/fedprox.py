"""FedProx: FedAvg plus a proximal term that keeps local weights near the received model.

Li et al. 2020. The local objective gains (mu / 2) * ||w - w_global||^2, which limits how far a
phone with skewed data (or many local steps) drifts; missing modalities are zero-filled as in
FedAvg, so the two differ in exactly one term.
"""

from __future__ import annotations

import numpy as np
import torch

from fedmobile_actors.algorithms.fedavg import FedAvg
from fedmobile_actors.algorithms.model import MultimodalNet
from fedmobile_actors.algorithms.strategy import Arrays
from fedmobile_actors.algorithms.training import ExtraLoss


class FedProx(FedAvg):
    """FedAvg whose local loss adds (mu / 2) * squared distance to the downloaded parameters."""

    name = "fedprox"
    trains_on_gpu = True

    def extra_loss(self, payload: Arrays) -> ExtraLoss | None:
        mu = self.context.algorithm.mu
        if mu == 0:
            return None
        anchors = {
            name: torch.from_numpy(np.array(payload[name], dtype=np.float32)).to(p.device)
            for name, p in self.model.named_parameters()
        }

        def proximal(model: MultimodalNet) -> torch.Tensor:
            terms = [((p - anchors[name]) ** 2).sum() for name, p in model.named_parameters()]
            return 0.5 * mu * torch.stack(terms).sum()

        return proximal
