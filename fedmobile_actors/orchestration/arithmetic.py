"""The machine facts a run's last bits depend on, written into ``run.json``.

Why: every random draw is keyed, so a scenario's metrics repeat bit for bit, but only where the
floating-point arithmetic repeats too. torch picks its CPU kernels (and so the order in which it
sums) by the instruction set it finds and by its build; on another CPU the same seed gives a run
that differs in the last bits from round 1 and drifts from there (measured on USC-HAD:
docs/results.md, "Same code, another machine"). Recording the CPU and the builds is what lets a
reader tell such a difference from a change of code, and lets ``resume`` say when a run continues
on different arithmetic.

What is recorded is the driver's process. Phone hosts on a multi-machine Ray cluster train on
their own CPUs: a cluster repeats its bits where each phone trains on the same kind of machine.
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

#: The keys of ``arithmetic_platform()``, in the order they are written and compared.
KEYS: tuple[str, ...] = ("cpu", "cpu_capability", "torch", "numpy", "python")


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def arithmetic_platform() -> dict[str, str]:
    """CPU model, the instruction set torch dispatches to, and the torch, numpy and Python
    builds: the facts that decide a run's last bits on this machine."""
    import torch

    out = {
        "cpu": cpu_model(),
        "cpu_capability": str(torch.backends.cpu.get_cpu_capability()),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    try:
        out["numpy"] = metadata.version("numpy")
    except metadata.PackageNotFoundError:  # pragma: no cover - numpy is a dependency
        out["numpy"] = "not installed"
    return {key: out[key] for key in KEYS}


def platform_changes(recorded: Mapping[str, str] | None, current: Mapping[str, str]) -> list[str]:
    """``key: recorded -> current`` for every fact that differs (empty when ``recorded`` is None:
    a run directory written before the facts were recorded has nothing to compare)."""
    if recorded is None:
        return []
    return [
        f"{key}: {recorded.get(key, '?')} -> {current.get(key, '?')}"
        for key in KEYS
        if recorded.get(key) != current.get(key)
    ]


def warn_platform_change(name: str, round_done: int, changes: list[str]) -> None:
    """One line on stderr: the run continues, but its remaining rounds are not the bits an
    uninterrupted run on the first machine would have written."""
    if changes:
        print(
            f"[{name}] resumed on other arithmetic than the run started on "
            f"({'; '.join(changes)}): rounds after {round_done} may differ from an "
            "uninterrupted run in the last bits",
            file=sys.stderr,
        )
