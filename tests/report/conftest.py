"""A synthetic run directory, written with the same writers the runtime uses.

Each round has six tasks, one phone per outcome pattern: two reported, one dropped offline, one
dropped failed, one late, one stale; accuracy climbs round by round (``ACCURACY``) and round 3
is not evaluated (NaN), as when evaluation is skipped for a round.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from fedmobile_actors.report.run_dir import RunDir, RunInfo
from fedmobile_actors.runtime.metrics import RoundMetrics, event_rows
from fedmobile_actors.scenario import Scenario, scenario_to_yaml
from fedmobile_actors.sim.tasks import Outcome, Task

OUTCOMES = (
    Outcome.REPORTED,
    Outcome.REPORTED,
    Outcome.DROPPED_OFFLINE,
    Outcome.DROPPED_FAILED,
    Outcome.LATE,
    Outcome.STALE,
)
ROUND_S = 100.0
#: Full-modality accuracy of rounds 1..5 (later rounds stay at the last value); missing is 0.1 less.
ACCURACY = (0.42, 0.54, math.nan, 0.78, 0.9)


def round_tasks(round_index: int) -> tuple[Task, ...]:
    """Six tasks dispatched at the round's start, phone p taking 20 + 10 p virtual seconds."""
    start = (round_index - 1) * ROUND_S
    return tuple(
        Task(
            task_id=(round_index - 1) * len(OUTCOMES) + phone,
            phone_id=phone,
            base_version=round_index - 1,
            dispatch_s=start,
            end_s=start + 20.0 + 10.0 * phone,
            outcome=outcome,
            staleness=1 if outcome is Outcome.STALE else 0,
            weight=0.5 if outcome is Outcome.STALE else 1.0,
            down_bytes=1000,
            up_bytes=800 if outcome is Outcome.REPORTED else 0,
        )
        for phone, outcome in enumerate(OUTCOMES)
    )


def round_metrics(round_index: int, shapley: bool) -> RoundMetrics:
    accuracy = ACCURACY[min(round_index, len(ACCURACY)) - 1]
    return RoundMetrics(
        round=round_index,
        virtual_time_s=round_index * ROUND_S,
        wall_time_s=0.5 * round_index,
        accuracy_full=accuracy,
        accuracy_missing=accuracy - 0.1 if not math.isnan(accuracy) else math.nan,
        loss=1.0 / round_index,
        train_loss=1.2 / round_index,
        dispatched=6,
        reported=2,
        dropped_offline=1,
        dropped_failed=1,
        late=1,
        stale=1,
        rejected=0,
        bytes_down=6000,
        bytes_up=1600,
        clusters=3 if shapley else 0,
        shapley_weights=(0.5, 0.3, 0.2) if shapley else (),
    )


def fabricate_run(
    parent: Path,
    rounds: int = 5,
    name: str = "synthetic",
    algorithm: str = "fedavg",
    shapley: bool = False,
    status: str = "finished",
) -> RunDir:
    """A complete run directory of ``rounds`` rounds (no summary.json, no plots yet)."""
    run = RunDir.create(parent, name)
    scenario = Scenario(name=name)
    run.write_scenario(scenario_to_yaml(scenario))
    metrics, events = run.metrics_writer(), run.events_writer()
    for r in range(1, rounds + 1):
        metrics.write([round_metrics(r, shapley).as_row()])
        events.write(event_rows(r, round_tasks(r)))
    metrics.close()
    events.close()
    run.write_run_info(
        RunInfo(
            name=name,
            status=status,  # type: ignore[arg-type]
            started=datetime(2025, 1, 1).astimezone().isoformat(),
            seed=0,
            backend="inprocess",
            algorithm=algorithm,
            policy="deadline",
            rounds_planned=rounds,
            rounds_done=rounds,
            package_version="0.1.0",
        )
    )
    return run


@pytest.fixture
def make_run(tmp_path: Path) -> Callable[..., RunDir]:
    """Fabricate runs under a fresh temporary parent: ``make_run(rounds=3, shapley=True)``."""

    def make(**kwargs: object) -> RunDir:
        return fabricate_run(tmp_path / "runs", **kwargs)  # type: ignore[arg-type]

    return make
