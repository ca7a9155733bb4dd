"""Small scenarios for runtime tests (importable by subprocess scripts too)."""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any

from fedmobile_actors.runtime.backend import Backend
from fedmobile_actors.runtime.metrics import RoundMetrics
from fedmobile_actors.scenario import Scenario, validate_mapping


def tiny_scenario(**sections: Any) -> Scenario:
    """A scenario small enough that a round takes well under a second in-process."""
    raw: dict[str, Any] = {
        "name": "tiny",
        "seed": 7,
        "data": {"source": {"kind": "synthetic", "samples": 600, "num_classes": 4}},
        "fleet": {"phones": 6, "failure_prob": 0.1},
        "modalities": {"missing": [{"modality": "acc", "rate": 0.5}]},
        "model": {"conv_channels": [8]},
        "algorithm": {"lr": 0.05, "momentum": 0.9},
        "rounds": {"rounds": 3, "clients_per_round": 3, "overcommit": 1.5, "deadline_s": 600},
        "runtime": {"backend": "inprocess"},
        "output": {"checkpoint_every": 1, "plots": False},
    }
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value} if isinstance(value, dict) else value
    return validate_mapping(raw, "tiny")


def comparable(metrics: RoundMetrics) -> dict[str, Any]:
    """A round's metrics as a dict without wall time, NaN read as None (see ``metrics_of``)."""
    row = asdict(metrics)
    row.pop("wall_time_s")
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}


def metrics_of(backend: Backend) -> list[dict[str, Any]]:
    """Run to the end; every round's metrics except wall time (the one figure that may differ).

    NaN (not measured: no proxy set, not a FedMobile run) reads as None, so that two runs compare
    equal when both left a figure unmeasured (NaN != NaN once it has crossed a process).
    """
    rows = []
    while (out := backend.run_round()) is not None:
        rows.append(comparable(out.metrics))
    backend.shutdown()
    return rows


#: A plug-in strategy whose host process exits on its second task of round 2, once per run (a
#: marker file says it happened): a host killed mid-batch, after it has streamed a result.
#: ``{module}`` and ``{base}`` name the strategy it extends.
_DIES_ONCE = """
import os

from {module} import {base}


class DiesOnce({base}):
    calls = 0

    def local_update(self, payload, data, phone_id, base_version, task_id, phone_state=None):
        marker = self.context.algorithm.options["marker"]
        if base_version == 1:
            DiesOnce.calls += 1
            if DiesOnce.calls == 2 and not os.path.exists(marker):
                open(marker, "w").close()
                os._exit(1)
        return super().local_update(payload, data, phone_id, base_version, task_id, phone_state)
"""


def dies_once_plugin(directory: Any, module: str, base: str) -> tuple[str, Any]:
    """Write the dying strategy (extending ``module.base``) into ``directory`` as a module of
    its own; return its algorithm name (``module:DiesOnce``) and the marker file's path. The
    caller puts ``directory`` on ``sys.path``."""
    name = f"tmp_dies_once_{base.lower()}"
    (directory / f"{name}.py").write_text(
        _DIES_ONCE.format(module=module, base=base), encoding="utf-8"
    )
    return f"{name}:DiesOnce", directory / "died"
