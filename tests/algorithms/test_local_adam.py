"""LocalAdam is torch.optim.Adam's update rule, bit for bit, and its moments can be kept."""

from __future__ import annotations

import pytest
import torch

from fedmobile_actors.algorithms.training import AdamMoments, LocalAdam

Optimizer = LocalAdam | torch.optim.Adam


def _pair() -> tuple[torch.nn.Sequential, torch.nn.Sequential]:
    torch.manual_seed(0)
    ours = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3))
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3))
    theirs.load_state_dict(ours.state_dict())
    return ours, theirs


def _train(model: torch.nn.Module, opt: Optimizer, steps: int, seed: int) -> None:
    """``steps`` steps on batches drawn from ``seed``; odd steps freeze the first layer's bias
    (no gradient), so per-parameter step counts differ as they do in torch."""
    rng = torch.Generator().manual_seed(seed)
    for step in range(steps):
        x = torch.randn(8, 4, generator=rng)
        opt.zero_grad()
        model(x).pow(2).sum().backward()
        if step % 2:
            model[0].bias.grad = None
        opt.step()


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


@pytest.mark.parametrize("weight_decay", [0.0, 1e-4])
def test_local_adam_matches_torch_adam_exactly(weight_decay: float) -> None:
    """Twelve steps of both optimizers on the same data leave identical parameters."""
    ours, theirs = _pair()
    _train(ours, LocalAdam(list(ours.parameters()), lr=0.01, weight_decay=weight_decay), 12, 1)
    _train(theirs, torch.optim.Adam(theirs.parameters(), lr=0.01, weight_decay=weight_decay), 12, 1)
    assert _same(ours, theirs)


def test_moments_match_torch_state() -> None:
    """The exposed moments and step counts are those torch.optim.Adam keeps."""
    ours, theirs = _pair()
    opt_ours = LocalAdam(list(ours.parameters()), lr=0.01, weight_decay=1e-4)
    opt_theirs = torch.optim.Adam(theirs.parameters(), lr=0.01, weight_decay=1e-4)
    _train(ours, opt_ours, 5, 2)
    _train(theirs, opt_theirs, 5, 2)
    moments = opt_ours.moments()
    for i, p in enumerate(theirs.parameters()):
        state = opt_theirs.state[p]
        assert moments.steps[i] == int(state["step"])
        assert torch.equal(moments.exp_avg[i], state["exp_avg"])
        assert torch.equal(moments.exp_avg_sq[i], state["exp_avg_sq"])


def test_restored_moments_continue_as_one_uninterrupted_run() -> None:
    """Saving the moments after 4 steps and loading them into a new optimizer gives the same
    parameters after 4 more steps as one torch Adam running all 8 (weight decay 1e-4)."""
    ours, theirs = _pair()
    first = LocalAdam(list(ours.parameters()), lr=0.01, weight_decay=1e-4)
    _train(ours, first, 4, 3)
    saved = first.moments()
    _train(ours, first, 3, 99)  # later steps must not change what was saved
    ours, _ = _pair()  # the same 4 steps again, then a fresh optimizer from the saved moments
    _train(ours, LocalAdam(list(ours.parameters()), lr=0.01, weight_decay=1e-4), 4, 3)
    second = LocalAdam(list(ours.parameters()), lr=0.01, weight_decay=1e-4)
    second.load_moments(saved)
    _train(ours, second, 4, 4)
    opt_theirs = torch.optim.Adam(theirs.parameters(), lr=0.01, weight_decay=1e-4)
    _train(theirs, opt_theirs, 4, 3)
    _train(theirs, opt_theirs, 4, 4)
    assert _same(ours, theirs)


def test_load_moments_rejects_a_mismatched_state() -> None:
    """Moments for another model's parameters are refused, not silently broadcast."""
    model = torch.nn.Linear(4, 3)
    opt = LocalAdam(list(model.parameters()), lr=0.01)
    wrong = AdamMoments(steps=(1,), exp_avg=(torch.zeros(3, 4),), exp_avg_sq=(torch.zeros(3, 4),))
    with pytest.raises(ValueError, match="moments hold 1 parameters, not 2"):
        opt.load_moments(wrong)
    shapes = [torch.zeros(4, 3), torch.zeros(3)]
    with pytest.raises(ValueError, match="do not have its shape"):
        opt.load_moments(AdamMoments((1, 1), tuple(shapes), tuple(shapes)))
