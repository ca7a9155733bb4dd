"""Where a process trains: the CPU, or the GPU Ray gave its host (``runtime.device``).

Why the host decides and not the scenario alone: ``auto`` means "the GPU this host process
sees", which only the process itself can know (a cluster may mix GPU and CPU nodes, and Ray
shows a host only the GPUs it reserved through ``runtime.gpus_per_host``). The server always
evaluates on the CPU (docs/performance.md, "GPUs").

On a GPU, cuDNN's autotuner and TF32 are switched off and torch is told to prefer
deterministic kernels, so two runs on the same GPU give the same numbers. Runs on a GPU and on
the CPU agree only within a tolerance (different kernels sum in different orders); the CPU path
is untouched and stays bit-identical.
"""

from __future__ import annotations

import os

import torch

from fedmobile_actors.errors import ScenarioError
from fedmobile_actors.scenario.schema import RuntimeConfig

CPU = "cpu"
CUDA = "cuda"


def resolve_device(runtime: RuntimeConfig, strategy_on_gpu: bool = True, name: str = "") -> str:
    """The device this process trains on: "cpu" or "cuda".

    ``auto`` is "cuda" when the host reserved a GPU (``gpus_per_host > 0``), this process sees
    one, and the strategy can train on it; "cpu" otherwise. ``cuda`` insists: a process without
    a GPU, or a CPU-only strategy (``name``), is the user's mistake, reported in one line.
    """
    if runtime.device == CPU:
        return CPU
    visible = torch.cuda.is_available()
    if runtime.device == CUDA:
        if not visible:
            raise ScenarioError(
                [
                    "runtime.device: cuda, but this host process sees no CUDA GPU "
                    "(torch.cuda.is_available() is False); use runtime.device: auto or cpu"
                ]
            )
        if not strategy_on_gpu:
            raise ScenarioError(
                [
                    f"runtime.device: cuda, but algorithm {name!r} trains on the CPU only; "
                    "use runtime.device: auto or cpu"
                ]
            )
    elif not (runtime.gpus_per_host > 0 and visible and strategy_on_gpu):
        return CPU
    make_gpu_repeatable()
    return CUDA


def make_gpu_repeatable() -> None:
    """Same GPU, same numbers: no cuDNN autotuning (it may pick another kernel per run), no
    TF32 (it rounds matmul inputs to 10 bits), deterministic kernels where torch has them
    (``warn_only``: an op without one warns instead of failing the run), and the cuBLAS
    workspace setting those kernels need (read when cuBLAS starts, so set before first use)."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.use_deterministic_algorithms(True, warn_only=True)


def model_device(module: torch.nn.Module) -> torch.device:
    """The device of a module's parameters (the CPU for a module without any)."""
    for param in module.parameters():
        return param.device
    return torch.device(CPU)
