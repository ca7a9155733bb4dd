"""The public Python API: run, resume, sweep, load and validate scenarios from a script or notebook.

The ``fedmobile`` command is a thin layer over these functions, so a script gets what the command
does, file for file: the same run directories, the same checks, and the same one-line messages,
raised as ``UserError`` subclasses (``ScenarioError`` for a bad scenario or plug-in,
``DataError``, ``RunDirError``, ``BackendError``) instead of printed. Anything else is a bug.

Names here are stable (docs/api.md); what they return are frozen dataclasses of plain values.

Why ``quiet=True`` by default, unlike the command: a script or notebook usually wants the result,
not a progress display on stderr.
"""

from __future__ import annotations

import json
import math
import os
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedmobile_actors.errors import RunDirError, ScenarioError, UserError
from fedmobile_actors.report.run_dir import RunDir, RunInfo
from fedmobile_actors.report.summary import load_summary
from fedmobile_actors.scenario import Scenario, load_scenario, validate_mapping
from fedmobile_actors.scenario.loader import apply_override
from fedmobile_actors.startup_trace import mark

__all__ = [
    "Overrides",
    "RunResult",
    "ScenarioLike",
    "SweepResult",
    "UserError",
    "load_run",
    "resume",
    "run",
    "sweep",
    "validate",
]

#: A scenario file's path, or a ``Scenario`` already loaded (e.g. by ``validate``).
ScenarioLike = Scenario | str | os.PathLike[str]
#: Field overrides: ``{"rounds.rounds": 5, "fleet.phones": 40}`` (Python values), or the CLI's
#: ``["rounds.rounds=5"]`` strings (values parsed as YAML). Paths are checked against the schema.
Overrides = Mapping[str, Any] | Sequence[str]


@dataclass(frozen=True)
class RunResult:
    """A run directory as read back: where it is, how it ended, every round's metrics, the summary.

    ``metrics`` holds one dict per finished round, the rows of ``metrics.jsonl`` (columns in
    docs/outputs.md; a metric that has no value that round is NaN). ``summary`` is
    ``summary.json`` (recomputed from the metrics for a run that did not finish).
    """

    path: Path
    scenario: Scenario
    info: RunInfo
    metrics: list[dict[str, Any]]
    summary: dict[str, Any]

    @property
    def status(self) -> str:
        """``finished``, ``running`` (or killed without notice), ``interrupted`` or ``failed``."""
        return self.info.status

    def final_accuracy(self, pattern: str = "full") -> float | None:
        """Test accuracy after the last round with every modality (``full``) or with the
        scenario's test-time missing pattern (``missing``); None when never evaluated."""
        value = ((self.summary.get("accuracy") or {}).get(pattern) or {}).get("final")
        return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


@dataclass(frozen=True)
class SweepResult:
    """A sweep directory: one row per cell (grid point x seed) of ``sweep.json``, and each cell's
    run read back (cells that failed before a run directory existed have none; their row says
    why)."""

    path: Path
    rows: list[dict[str, Any]]
    runs: list[RunResult]


def validate(scenario: ScenarioLike, overrides: Overrides | None = None) -> Scenario:
    """Load (or take) a scenario, apply ``overrides``, and check everything a run would check
    before starting: the schema, the strategy and model kind (plug-ins are imported), and that
    the model provides what the strategy needs. Returns the resolved, frozen ``Scenario``."""
    from fedmobile_actors.algorithms.registry import check_model

    resolved = _resolve(scenario, overrides)
    check_model(resolved.algorithm, resolved.model)
    return resolved


def run(
    scenario: ScenarioLike,
    overrides: Overrides | None = None,
    *,
    output_dir: str | os.PathLike[str] | None = None,
    quiet: bool = True,
) -> RunResult:
    """Run one scenario into a new run directory under ``output_dir`` (default: the scenario's
    ``output.dir``) and read it back. Blocks until the run ends.

    A ``KeyboardInterrupt`` (Ctrl-C, or SIGTERM under the command) leaves the run resumable and
    is re-raised as ``errors.Interrupted`` carrying the run directory.
    """
    from fedmobile_actors.orchestration.driver import run_scenario
    from fedmobile_actors.runtime.backend import abandon_early_ray, start_ray_early

    resolved = _resolve(scenario, overrides)
    mark("scenario parsed")
    # Ray starts while the strategy and model are checked (a plug-in's import costs seconds).
    start_ray_early(resolved)
    try:
        check_before_start(resolved)
    except BaseException:
        abandon_early_ray()
        raise
    run_dir = run_scenario(
        resolved, quiet=quiet, output_dir=None if output_dir is None else Path(output_dir)
    )
    return load_run(run_dir.path)


def resume(path: str | os.PathLike[str], *, quiet: bool = True) -> RunResult:
    """Continue an interrupted run in its directory from its latest checkpoint (the guards of
    docs/outputs.md run first) and read it back; the metrics equal an uninterrupted run's."""
    from fedmobile_actors.orchestration.driver import resume_run

    run_dir = resume_run(Path(path), quiet=quiet)
    return load_run(run_dir.path)


def sweep(
    scenario: ScenarioLike,
    overrides: Overrides | None = None,
    *,
    quiet: bool = True,
) -> SweepResult:
    """Run every (grid point, seed) of the scenario's ``sweep`` block into one sweep directory
    (under ``output.dir``) and read it back. Every point's strategy and model are checked first,
    so a bad plug-in in one grid value fails before any run starts."""
    from fedmobile_actors.orchestration.sweep import run_sweep
    from fedmobile_actors.scenario.sweep import expand_sweep

    resolved = _resolve(scenario, overrides)
    for point in expand_sweep(resolved):
        check_before_start(point.scenario)
    return _read_sweep(run_sweep(resolved, quiet=quiet))


def resume_sweep(
    path: str | os.PathLike[str],
    overrides: Overrides | None = None,
    *,
    retry_failed: bool = False,
    quiet: bool = True,
) -> SweepResult:
    """Continue the sweep in ``path``: finished cells are kept, interrupted ones resume from
    their checkpoints, the rest run (failed ones too with ``retry_failed``). ``overrides`` may
    only say where to run (runtime.address, runtime.num_cpus, sweep.parallel)."""
    from fedmobile_actors.orchestration.sweep import resume_sweep as resume_cells

    texts = override_texts(overrides)
    return _read_sweep(resume_cells(path, quiet=quiet, retry_failed=retry_failed, overrides=texts))


def _read_sweep(sweep_dir: Path) -> SweepResult:
    """A sweep directory's table (sweep.json, one row per cell) and each cell's run read back."""
    from fedmobile_actors.report.compare import load_sweep_rows

    rows = load_sweep_rows(sweep_dir)
    runs = [load_run(sweep_dir / str(row["run"])) for row in rows if row.get("run")]
    return SweepResult(sweep_dir, rows, runs)


def load_run(path: str | os.PathLike[str]) -> RunResult:
    """Read a run directory (finished or not): its scenario, run.json, metrics and summary.

    A path that is not a run directory, or a damaged file in one, is a ``RunDirError``.
    """
    run_dir = RunDir.open(path)
    info = run_dir.read_run_info()
    try:
        stored = load_scenario(run_dir.scenario_path)
    except ScenarioError as err:
        raise RunDirError(f"{run_dir.path}: its scenario.yaml does not load ({err})") from None
    return RunResult(
        path=run_dir.path,
        scenario=stored,
        info=info,
        metrics=run_dir.read_metrics(),
        summary=load_summary(run_dir),
    )


def check_before_start(scenario: Scenario) -> None:
    """``validate``'s strategy and model check, where it costs nothing or may fail.

    Why not always: the check imports torch and every strategy (about 1.6 s of CPU here), and
    the Ray driver otherwise never imports torch, so its hosts start sooner. A Ray run whose
    strategy is built in and whose model kind is no plug-in skips it. Such a scenario can only
    fail the check through a misspelt ``model.kind``, which the server reports at start as the
    same single line.
    """
    from fedmobile_actors.algorithms.plugins import plugin_references
    from fedmobile_actors.scenario.schema import AlgorithmName

    plain = scenario.algorithm.name in typing.get_args(AlgorithmName) and not plugin_references(
        scenario.algorithm.name, scenario.model.kind
    )
    if scenario.runtime.backend == "ray" and plain and not scenario.algorithm.options:
        return
    from fedmobile_actors.algorithms.registry import check_model

    check_model(scenario.algorithm, scenario.model)


def _resolve(scenario: ScenarioLike, overrides: Overrides | None) -> Scenario:
    """A ``Scenario`` from a path or an object, with ``overrides`` applied the CLI's way."""
    texts = override_texts(overrides)
    if not isinstance(scenario, Scenario):
        return load_scenario(scenario, texts)
    if not texts:
        return scenario
    source = f"scenario {scenario.name!r}"
    raw: dict[str, Any] = scenario.model_dump(mode="json")
    problems: list[str] = []
    for text in texts:
        try:
            raw = apply_override(raw, text, source=source)
        except ScenarioError as err:
            problems.extend(err.problems)
    if problems:
        raise ScenarioError(problems)
    return validate_mapping(raw, source=source)


def override_texts(overrides: Overrides | None) -> list[str]:
    """Overrides as the CLI's ``path=value`` strings; a Python value is written as the YAML
    (JSON-style flow) that reads back as the same value."""
    if overrides is None:
        return []
    if isinstance(overrides, str):
        return [overrides]
    if isinstance(overrides, Mapping):
        return [f"{path}={_yaml_value(value)}" for path, value in overrides.items()]
    return [str(text) for text in overrides]


def _yaml_value(value: Any) -> str:
    """``value`` as YAML flow text. Why not ``json.dumps`` alone: YAML 1.1 (PyYAML) reads
    ``1e-05`` as a string; a float is written with a mantissa dot (``1.0e-05``)."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        text = repr(value)
        if not math.isfinite(value):
            return {"inf": ".inf", "-inf": "-.inf"}.get(text, ".nan")
        if "e" in text and "." not in text:
            mantissa, _, exponent = text.partition("e")
            text = f"{mantissa}.0e{exponent}"
        return text
    if isinstance(value, int | str):
        return json.dumps(value)
    if isinstance(value, os.PathLike):
        return json.dumps(os.fspath(value))
    if isinstance(value, Mapping):
        items = ", ".join(f"{json.dumps(str(k))}: {_yaml_value(v)}" for k, v in value.items())
        return "{" + items + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_yaml_value(v) for v in value) + "]"
    raise ScenarioError([f"override value {value!r}: not a number, string, list or mapping"])
