"""Small scenarios for runtime tests (importable by subprocess scripts too)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fedmobile_actors.runtime.backend import Backend
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


def metrics_of(backend: Backend) -> list[dict[str, Any]]:
    """Run to the end; every round's metrics except wall time (the one figure that may differ)."""
    rows = []
    while (out := backend.run_round()) is not None:
        row = asdict(out.metrics)
        row.pop("wall_time_s")
        rows.append(row)
    backend.shutdown()
    return rows
