"""FedAvg whose local SGD momentum persists on each phone from one task to the next.

The authors' public FedMobile code keeps a per-node optimizer whose state survives across rounds;
this is the smallest strategy with that property (heavy-ball buffers instead of Adam moments),
and the reference user of per-phone state: the buffers are the phone's, never uploaded, never
charged in bytes, and a phone that has not trained yet starts with none (as torch's SGD does).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch

from fedmobile_actors.algorithms.fedavg import FedAvg
from fedmobile_actors.algorithms.strategy import Arrays
from fedmobile_actors.algorithms.training import LocalOptimizer, LocalSGD

#: Prefix of the momentum buffers in a phone's state (beside the model's local arrays).
MOMENTUM_PREFIX = "momentum."


class FedAvgLocalMomentum(FedAvg):
    """FedAvg + per-phone momentum buffers carried across the phone's tasks."""

    name = "fedavg_local_momentum"
    trains_on_gpu = True
    stateful: ClassVar[bool] = True

    def make_optimizer(self, phone_state: Arrays | None) -> LocalOptimizer:
        optimizer = super().make_optimizer(phone_state)
        assert isinstance(optimizer, LocalSGD)
        if phone_state is None:
            return optimizer
        for i, (name, param) in enumerate(self.model.named_parameters()):
            saved = phone_state.get(MOMENTUM_PREFIX + name)
            if saved is not None:
                optimizer.buffers[i] = torch.from_numpy(np.array(saved, copy=True)).to(param.device)
        return optimizer

    def phone_state_after(self, optimizer: LocalOptimizer) -> Arrays | None:
        assert isinstance(optimizer, LocalSGD)
        state = dict(super().phone_state_after(optimizer) or {})
        names = [n for n, _ in self.model.named_parameters()]
        for name, buf in zip(names, optimizer.buffers, strict=True):
            if buf is not None:
                values = buf.detach().cpu().numpy()
                state[MOMENTUM_PREFIX + name] = values.astype(np.float32, copy=True)
        return state
