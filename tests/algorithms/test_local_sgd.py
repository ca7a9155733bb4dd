"""LocalSGD is torch.optim.SGD's update rule, bit for bit, without its import cost."""

from __future__ import annotations

import pytest
import torch

from fedmobile_actors.algorithms.training import LocalSGD


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_local_sgd_matches_torch_sgd_exactly(momentum: float) -> None:
    """Five steps of both optimizers on the same data leave identical parameters."""
    torch.manual_seed(0)
    ours, theirs = torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)
    theirs.load_state_dict(ours.state_dict())
    opt_ours = LocalSGD(list(ours.parameters()), lr=0.05, momentum=momentum)
    opt_theirs = torch.optim.SGD(theirs.parameters(), lr=0.05, momentum=momentum)
    rng = torch.Generator().manual_seed(1)
    for _ in range(5):
        x = torch.randn(8, 4, generator=rng)
        for model, opt in ((ours, opt_ours), (theirs, opt_theirs)):
            opt.zero_grad()
            model(x).pow(2).sum().backward()
            opt.step()
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        assert torch.equal(a, b)
