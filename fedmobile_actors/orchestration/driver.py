"""The driver: one scenario -> one run directory, round by round, with progress and checkpoints.

The driver owns the files (the server only computes), so a run killed at any moment leaves every
finished round's rows and the last checkpoint on disk, and ``resume`` continues from there.
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

from fedmobile_actors import __version__
from fedmobile_actors.errors import RunDirError
from fedmobile_actors.report.progress import RunProgress
from fedmobile_actors.report.run_dir import RunDir, RunInfo, now_iso
from fedmobile_actors.runtime.backend import Backend, make_backend
from fedmobile_actors.runtime.metrics import RoundMetrics
from fedmobile_actors.runtime.world import World
from fedmobile_actors.scenario import Scenario, load_scenario, scenario_to_yaml
from fedmobile_actors.scenario.schema import SyntheticSource


def run_scenario(
    scenario: Scenario,
    *,
    quiet: bool = False,
    output_dir: str | Path | None = None,
    stop_after: int | None = None,
) -> RunDir:
    """Run ``scenario`` into a new run directory under ``output_dir`` (default: output.dir).

    ``stop_after`` ends the run early after that many rounds (tests use it to interrupt a run).
    """
    parent = Path(output_dir) if output_dir is not None else Path(scenario.output.dir)
    run_dir = RunDir.create(parent, scenario.name)
    run_dir.write_scenario(scenario_to_yaml(scenario))
    backend = _start_backend(scenario, None, quiet)
    info = RunInfo(
        name=scenario.name,
        status="running",
        started=now_iso(),
        seed=scenario.seed,
        backend=scenario.runtime.backend,
        algorithm=scenario.algorithm.name,
        policy=scenario.rounds.policy,
        rounds_planned=scenario.rounds.rounds,
        hosts=backend.describe()["hosts"],
        address=scenario.runtime.address,
        package_version=__version__,
    )
    return _drive(scenario, run_dir, backend, info, 0, quiet, stop_after)


def resume_run(path: str | Path, *, quiet: bool = False) -> RunDir:
    """Continue an interrupted run from its latest checkpoint, in the same directory.

    Rounds after the checkpoint are re-run (they give the same rows: every draw is keyed), so
    their rows are trimmed first; nothing before the checkpoint is touched.
    """
    run_dir = RunDir.open(path)
    info = run_dir.read_run_info()
    if info.status == "finished":
        raise RunDirError(f"{run_dir.path}: run already finished; nothing to resume")
    scenario = load_scenario(run_dir.scenario_path)
    run_dir.check_scenario(scenario_to_yaml(scenario))
    latest = run_dir.latest_checkpoint()
    if latest is None:
        raise RunDirError(f"{run_dir.path}: no checkpoint to resume from (checkpoints/ is empty)")
    round_done, ckpt_path = latest
    blob = read_checkpoint(ckpt_path)
    backend = _start_backend(scenario, blob, quiet)
    run_dir.trim_to_round(round_done)
    info = replace(
        info, status="running", rounds_done=round_done, resumed=(*info.resumed, now_iso())
    )
    return _drive(scenario, run_dir, backend, info, round_done, quiet, None)


def read_checkpoint(path: Path) -> bytes:
    """A checkpoint's bytes, checked to decode before any process is started for it."""
    from fedmobile_actors.errors import WireError
    from fedmobile_actors.wire import unpack

    try:
        blob = path.read_bytes()
        data = unpack(blob)
    except OSError as err:
        raise RunDirError(f"{path}: unreadable checkpoint ({err.strerror})") from None
    except WireError as err:
        raise RunDirError(f"{path}: corrupt checkpoint ({err})") from None
    if not isinstance(data, dict) or not {"format", "version", "arrays"} <= set(data):
        raise RunDirError(f"{path}: corrupt checkpoint (not a fedmobile checkpoint)")
    return blob


def _start_backend(scenario: Scenario, checkpoint: bytes | None, quiet: bool) -> Backend:
    """Start the backend, saying what is happening: Ray and its hosts take seconds to start."""
    if not quiet:
        where = scenario.runtime.address or "a local Ray"
        what = "in this process" if scenario.runtime.backend == "inprocess" else f"on {where}"
        print(f"[{scenario.name}] starting the server and phone hosts {what}...", file=sys.stderr)
    started = time.perf_counter()
    # Load a dataset from disk here first: a missing or malformed one is reported as one line
    # before any process is started for it. (Synthetic data cannot be missing.)
    if not isinstance(scenario.data.source, SyntheticSource):
        World.build(scenario)
    backend = make_backend(scenario, checkpoint)
    if not quiet:
        about = backend.describe()
        print(
            f"[{scenario.name}] {about['hosts']} host(s) on {about['nodes']} node(s) ready "
            f"in {time.perf_counter() - started:.1f}s; {scenario.fleet.phones} phones",
            file=sys.stderr,
        )
    return backend


def _drive(
    scenario: Scenario,
    run_dir: RunDir,
    backend: Backend,
    info: RunInfo,
    done: int,
    quiet: bool,
    stop_after: int | None,
) -> RunDir:
    metrics_out = run_dir.metrics_writer()
    events_out = run_dir.events_writer() if scenario.output.event_log else None
    run_dir.write_run_info(info)
    started = time.perf_counter()
    every = scenario.output.checkpoint_every
    try:
        with RunProgress(
            scenario.rounds.rounds, quiet=quiet, first_round=done, label=scenario.name
        ) as progress:
            while stop_after is None or done < stop_after:
                output = backend.run_round()
                if output is None:
                    break
                row: RoundMetrics = replace(
                    output.metrics, wall_time_s=time.perf_counter() - started
                )
                metrics_out.write([row.as_row()])
                if events_out is not None:
                    events_out.write(output.events)
                done = row.round
                if every and (done % every == 0 or done == scenario.rounds.rounds):
                    _write_checkpoint(run_dir, done, backend.checkpoint())
                info = replace(info, rounds_done=done)
                run_dir.write_run_info(info)
                progress.update(row)
    except BaseException as err:
        run_dir.write_run_info(replace(info, status="failed", error=f"{type(err).__name__}: {err}"))
        raise
    finally:
        metrics_out.close()
        if events_out is not None:
            events_out.close()
        backend.shutdown()
    if done >= scenario.rounds.rounds:
        run_dir.write_run_info(replace(info, status="finished", finished=now_iso()))
        finish_run(run_dir, plots=scenario.output.plots)
    return run_dir


def _write_checkpoint(run_dir: RunDir, round_index: int, blob: bytes) -> None:
    """Write atomically (temp + rename): a kill mid-write leaves the previous checkpoint intact."""
    path = run_dir.checkpoint_path(round_index)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(blob)
    tmp.replace(path)


def finish_run(run_dir: RunDir, plots: bool = True) -> None:
    """Summary (and plots) from the files on disk, so ``fedmobile report`` does the same."""
    from fedmobile_actors.report.plots import make_run_plots
    from fedmobile_actors.report.summary import write_summary

    write_summary(run_dir)
    if plots:
        make_run_plots(run_dir)
