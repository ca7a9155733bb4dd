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


@pytest.mark.parametrize("weight_decay", [0.0, 1e-4])
def test_local_adam_matches_torch_adam_exactly(weight_decay: float) -> None:
    """Five steps of LocalAdam and torch.optim.Adam leave identical parameters."""
    from fedmobile_actors.algorithms.training import LocalAdam

    torch.manual_seed(0)
    ours, theirs = torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)
    theirs.load_state_dict(ours.state_dict())
    opt_ours = LocalAdam(list(ours.parameters()), lr=1e-3, weight_decay=weight_decay)
    opt_theirs = torch.optim.Adam(
        theirs.parameters(), lr=1e-3, weight_decay=weight_decay, foreach=False
    )
    gen = torch.Generator().manual_seed(1)
    for _ in range(5):
        x = torch.randn(8, 4, generator=gen)
        for model, opt in ((ours, opt_ours), (theirs, opt_theirs)):
            opt.zero_grad()
            model(x).pow(2).sum().backward()
            opt.step()
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        assert torch.equal(a, b)


def test_local_adam_resumes_from_exported_moments() -> None:
    """Three steps, export, a fresh optimizer restores, two more steps: the same parameters as
    five uninterrupted steps (what a phone's state across tasks relies on)."""
    from fedmobile_actors.algorithms.training import LocalAdam

    torch.manual_seed(0)
    straight, split = torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)
    split.load_state_dict(straight.state_dict())
    names = [n for n, _ in straight.named_parameters()]
    xs = [torch.randn(8, 4, generator=torch.Generator().manual_seed(i)) for i in range(5)]
    opt = LocalAdam(list(straight.parameters()), lr=1e-2)
    for x in xs:
        opt.zero_grad()
        straight(x).pow(2).sum().backward()
        opt.step()
    first = LocalAdam(list(split.parameters()), lr=1e-2)
    for x in xs[:3]:
        first.zero_grad()
        split(x).pow(2).sum().backward()
        first.step()
    second = LocalAdam(list(split.parameters()), lr=1e-2)
    second.load_state(first.state_arrays(names), names)
    for x in xs[3:]:
        second.zero_grad()
        split(x).pow(2).sum().backward()
        second.step()
    for a, b in zip(straight.parameters(), split.parameters(), strict=True):
        assert torch.equal(a, b)
