"""runtime.device: which device a process trains on, and tensors following the model's device.

No GPU here, so the GPU path is checked on the ``meta`` device (placement only: nothing can be
computed there) and through ``resolve_device`` with torch's CUDA probe stubbed.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from algo_setting import Setting, build_setting, make_context

from fedmobile_actors.algorithms import device as device_module
from fedmobile_actors.algorithms.device import model_device, resolve_device
from fedmobile_actors.algorithms.fedavg import FedAvg
from fedmobile_actors.algorithms.registry import make_strategy
from fedmobile_actors.algorithms.training import Batchable, train_local
from fedmobile_actors.errors import ScenarioError
from fedmobile_actors.scenario.schema import RuntimeConfig

META = torch.device("meta")


@pytest.fixture(scope="module")
def setting() -> Setting:
    return build_setting(samples=300)


def _gpu(monkeypatch: pytest.MonkeyPatch, visible: bool) -> list[bool]:
    """Pretend this process does (not) see a GPU; record calls of make_gpu_repeatable instead
    of changing torch's global flags in the test process."""
    calls: list[bool] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: visible)
    monkeypatch.setattr(device_module, "make_gpu_repeatable", lambda: calls.append(True))
    return calls


def test_auto_trains_on_the_cpu_unless_the_host_reserved_a_gpu_it_sees(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = _gpu(monkeypatch, visible=True)
    assert resolve_device(RuntimeConfig()) == "cpu"  # gpus_per_host 0: a GPU seen is not ours
    assert resolve_device(RuntimeConfig(gpus_per_host=0.5)) == "cuda"
    assert resolve_device(RuntimeConfig(gpus_per_host=0.5), strategy_on_gpu=False) == "cpu"
    assert calls == [True]  # repeatable kernels switched on for the one GPU process
    _gpu(monkeypatch, visible=False)
    assert resolve_device(RuntimeConfig(gpus_per_host=0.5)) == "cpu"


def test_cuda_without_a_gpu_is_one_line_naming_runtime_device(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _gpu(monkeypatch, visible=False)
    with pytest.raises(ScenarioError, match=r"^runtime\.device: cuda, but this host process"):
        resolve_device(RuntimeConfig(device="cuda", gpus_per_host=1))


def test_cuda_with_a_cpu_only_strategy_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    _gpu(monkeypatch, visible=True)
    with pytest.raises(ScenarioError, match="algorithm 'fedmobile' trains on the CPU only"):
        resolve_device(RuntimeConfig(device="cuda", gpus_per_host=1), False, "fedmobile")


def test_a_batch_moves_to_the_device_and_stays_put_on_the_cpu(setting: Setting) -> None:
    data = setting.phones[0]
    batch = Batchable.of(data.dataset, data.present)
    assert batch.to(torch.device("cpu")) is batch  # no copy on the CPU: bit-identical
    moved = batch.to(META)
    tensors = [*moved.inputs.values(), *moved.present.values(), moved.labels]
    assert {t.device.type for t in tensors} == {"meta"}
    assert all(t.device.type == "cpu" for t in batch.inputs.values())  # the data stays put


def test_fedavg_keeps_its_model_on_the_context_device(setting: Setting) -> None:
    context = make_context(setting, "fedavg")
    on_meta = make_strategy(replace(context, device="meta"))
    assert isinstance(on_meta, FedAvg)
    assert {p.device.type for p in on_meta.model.parameters()} == {"meta"}
    assert model_device(on_meta.model) == META


def test_a_subclass_must_declare_trains_on_gpu_itself(setting: Setting) -> None:
    """A plug-in deriving from FedAvg may make CPU tensors in its own code: it stays on the CPU
    until its class says ``trains_on_gpu = True``."""

    class Derived(FedAvg):
        name = "derived"

    class Declared(FedAvg):
        name = "declared"
        trains_on_gpu = True

    context = replace(make_context(setting, "fedavg"), device="meta")
    assert FedAvg.trains_on_gpu and not Derived.trains_on_gpu and Declared.trains_on_gpu
    assert model_device(Derived(context).model).type == "cpu"
    assert model_device(Declared(context).model).type == "meta"


def test_training_moves_every_batch_to_the_model_device(
    setting: Setting, monkeypatch: pytest.MonkeyPatch
) -> None:
    strategy = make_strategy(make_context(setting, "fedavg"))
    assert isinstance(strategy, FedAvg)
    seen: list[torch.device] = []
    original = Batchable.to

    def spy(self: Batchable, device: torch.device) -> Batchable:
        seen.append(device)
        return original(self, device)

    monkeypatch.setattr(Batchable, "to", spy)
    rng = torch.Generator().manual_seed(0)
    train_local(strategy.model, setting.phones[0], strategy.context.algorithm, rng)
    batches = -(-len(setting.phones[0]) // strategy.context.algorithm.batch_size)
    assert len(seen) == batches * strategy.context.algorithm.local_epochs
    assert set(seen) == {model_device(strategy.model)}


def test_explicit_cpu_equals_the_default_bit_for_bit(setting: Setting) -> None:
    context = make_context(setting, "fedavg")
    default = make_strategy(context)
    explicit = make_strategy(replace(context, device="cpu"))
    payload = default.initial_state().arrays
    a = default.local_update(payload, setting.phones[1], 1, 0, 3)
    b = explicit.local_update(payload, setting.phones[1], 1, 0, 3)
    assert a.metrics == b.metrics
    assert all(np.array_equal(a.arrays[k], b.arrays[k]) for k in a.arrays)
