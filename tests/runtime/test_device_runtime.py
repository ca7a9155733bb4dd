"""runtime.device through the in-process backend: the CPU default unchanged, cuda checked."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from conftest_helpers import metrics_of  # type: ignore[import-not-found]

from fedmobile_actors.errors import ScenarioError
from fedmobile_actors.runtime.inprocess import InProcessBackend
from fedmobile_actors.runtime.phone_host import PhoneHost
from fedmobile_actors.scenario import Scenario


def test_device_cpu_gives_the_default_metrics(make_tiny: Callable[..., Scenario]) -> None:
    """runtime.device: cpu (explicit) and the default (auto, no GPU reserved) train alike."""
    explicit = metrics_of(InProcessBackend(make_tiny(runtime={"device": "cpu"})))
    assert explicit == metrics_of(InProcessBackend(make_tiny()))


def test_a_host_without_a_reserved_gpu_trains_on_the_cpu(tiny: Scenario) -> None:
    host = PhoneHost(tiny)
    assert host.device == "cpu" and host.strategy.context.device == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without CUDA")
def test_device_cuda_without_a_gpu_fails_at_host_start(make_tiny: Callable[..., Scenario]) -> None:
    with pytest.raises(ScenarioError, match=r"^runtime\.device: cuda, but this host process"):
        InProcessBackend(make_tiny(runtime={"device": "cuda"}))
