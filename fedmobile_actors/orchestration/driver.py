"""The driver: one scenario -> one run directory, round by round, with progress and checkpoints.

The driver owns the files (the server only computes), so a run killed at any moment leaves every
finished round's rows and the last checkpoint on disk, and ``resume`` continues from there.
"""

from __future__ import annotations

import contextlib
import sys
import time
from dataclasses import replace
from pathlib import Path

from fedmobile_actors import __version__
from fedmobile_actors.errors import BackendError, Interrupted, RunDirError
from fedmobile_actors.orchestration.arithmetic import (
    arithmetic_platform,
    platform_changes,
    warn_platform_change,
)
from fedmobile_actors.report.metrics import RowWriter
from fedmobile_actors.report.progress import RunProgress
from fedmobile_actors.report.run_dir import SCENARIO, RunDir, RunInfo, now_iso, scenario_identity
from fedmobile_actors.runtime.backend import (
    Backend,
    abandon_early_ray,
    make_backend,
    start_ray_early,
)
from fedmobile_actors.runtime.metrics import RoundMetrics
from fedmobile_actors.runtime.world import World
from fedmobile_actors.scenario import Scenario, load_scenario, scenario_to_yaml
from fedmobile_actors.scenario.schema import SyntheticSource
from fedmobile_actors.startup_trace import mark


def run_scenario(
    scenario: Scenario,
    *,
    quiet: bool = False,
    output_dir: str | Path | None = None,
    stop_after: int | None = None,
) -> RunDir:
    """Run ``scenario`` into a new run directory under ``output_dir`` (default: output.dir).

    ``stop_after`` ends the run early after that many rounds (tests use it to interrupt a run).
    Ray starts in the background first, while the run directory is prepared.
    """
    start_ray_early(scenario)
    try:
        parent = Path(output_dir) if output_dir is not None else Path(scenario.output.dir)
        yaml_text = scenario_to_yaml(scenario)
        run_dir = RunDir.create(parent, scenario.name)
        try:
            run_dir.write_scenario(yaml_text)
        except OSError as err:
            raise RunDirError(f"{run_dir.path}: cannot write {SCENARIO} ({err.strerror})") from None
        mark("run directory written")
        backend = _start_backend(scenario, None, quiet)
    except BaseException:
        abandon_early_ray()
        raise
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
        scenario_sha256=scenario_identity(yaml_text),
        platform=arithmetic_platform(),
    )
    return _drive(scenario, run_dir, backend, info, 0, quiet, stop_after)


def resume_run(path: str | Path, *, quiet: bool = False) -> RunDir:
    """Continue an interrupted run from its latest checkpoint, in the same directory.

    Rounds after the checkpoint are re-run (they give the same rows: every draw is keyed), so
    their rows are trimmed first; nothing before the checkpoint is touched. Before any process
    starts or any file changes, the guards of docs/outputs.md run: the stored scenario must hash
    to the identity in run.json, the newest checkpoint must carry this run's identity, its own
    round and an intact sha256, and the metrics must hold exactly the rounds up to it.
    """
    run_dir = RunDir.open(path)
    info = run_dir.read_run_info()
    if info.status == "finished":
        raise RunDirError(f"{run_dir.path}: run already finished; nothing to resume")
    scenario = load_scenario(run_dir.scenario_path)
    yaml_text = scenario_to_yaml(scenario)
    run_dir.check_scenario(yaml_text, info.scenario_sha256)
    identity = info.scenario_sha256 or scenario_identity(yaml_text)
    removed = run_dir.remove_partial_checkpoints()
    if removed and not quiet:
        names = ", ".join(p.name for p in removed)
        print(f"[{scenario.name}] removed a half-written checkpoint: {names}", file=sys.stderr)
    latest = run_dir.latest_checkpoint()
    if latest is None:
        raise RunDirError(f"{run_dir.path}: no checkpoint to resume from (checkpoints/ is empty)")
    round_done, ckpt_path = latest
    if round_done > scenario.rounds.rounds:
        raise RunDirError(
            f"{ckpt_path}: round {round_done} is beyond the run's {scenario.rounds.rounds} rounds"
        )
    start_ray_early(scenario)  # the checkpoint's checks overlap Ray's start
    try:
        blob = check_blob(ckpt_path, run_dir.read_checkpoint(round_done, ckpt_path, identity))
        _check_metrics_reach(run_dir, round_done)
        backend = _start_backend(scenario, blob, quiet)
    except BaseException:
        abandon_early_ray()
        raise
    run_dir.trim_to_round(round_done)
    # Printed even when quiet: it is about the results, not progress.
    warn_platform_change(
        scenario.name, round_done, platform_changes(info.platform, arithmetic_platform())
    )
    info = replace(
        info,
        status="running",
        rounds_done=round_done,
        resumed=(*info.resumed, now_iso()),
        error=None,
        finished=None,
        scenario_sha256=identity,
    )
    return _drive(scenario, run_dir, backend, info, round_done, quiet, None)


def _check_metrics_reach(run_dir: RunDir, round_done: int) -> None:
    """The metrics must hold rounds 1..round_done once each, or resuming would leave a gap or
    a duplicate row; rows past the checkpoint are trimmed later."""
    rounds = [row.get("round") for row in run_dir.read_metrics()]
    kept = [r for r in rounds if isinstance(r, int) and r <= round_done]
    if kept != list(range(1, round_done + 1)):
        raise RunDirError(
            f"{run_dir.metrics_jsonl}: does not hold rounds 1..{round_done} once each "
            f"(found {len(kept)} row(s) up to the checkpoint); cannot resume without "
            "duplicate or missing rounds"
        )


def check_blob(path: Path, blob: bytes) -> bytes:
    """A checkpoint's blob, checked to decode before any process is started for it."""
    from fedmobile_actors.errors import WireError
    from fedmobile_actors.wire import unpack

    try:
        data = unpack(blob)
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
    identity = info.scenario_sha256 or ""
    reports = 0
    try:
        with RunProgress(
            scenario.rounds.rounds, quiet=quiet, first_round=done, label=scenario.name
        ) as progress:
            mark("first round requested")
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
                reports += row.reported
                if every and (done % every == 0 or done == scenario.rounds.rounds):
                    run_dir.write_checkpoint(done, backend.checkpoint(), identity)
                info = replace(info, rounds_done=done)
                run_dir.write_run_info(info)
                progress.update(row)
    except KeyboardInterrupt as err:
        reason = getattr(err, "reason", None) or "interrupted (SIGINT)"
        _record_end(run_dir, replace(info, status="interrupted", error=reason))
        raise Interrupted(reason, str(run_dir.path), getattr(err, "code", 130)) from None
    except BaseException as err:
        _record_end(run_dir, replace(info, status="failed", error=_one_line(err)))
        if isinstance(err, BackendError | OSError):
            raise BackendError(
                f"{_one_line(err)}; finished rounds are kept: fedmobile resume {run_dir.path}"
            ) from None
        raise
    finally:
        _close_quietly(metrics_out, events_out)
        backend.shutdown()
    if done >= scenario.rounds.rounds:
        run_dir.write_run_info(replace(info, status="finished", finished=now_iso()))
        if reports == 0 and not info.resumed and not quiet:
            print(
                f"[{scenario.name}] warning: no phone reported in any round, so the model never "
                "trained; check rounds.deadline_s against the phones' task times and "
                "fleet.availability",
                file=sys.stderr,
            )
        finish_run(run_dir, plots=scenario.output.plots)
    return run_dir


def _one_line(err: BaseException) -> str:
    """``Type: message`` on one line, cut to a length a status file and a terminal can hold."""
    text = " ".join(str(err).split()) or type(err).__name__
    if isinstance(err, OSError) and err.strerror:
        where = f" ({err.filename})" if err.filename else ""
        text = f"{err.strerror}{where}"
    text = f"{type(err).__name__}: {text}"
    return text if len(text) <= 300 else text[:297] + "..."


def _record_end(run_dir: RunDir, info: RunInfo) -> None:
    """Write how the run ended into run.json, if the disk still lets us (a full disk may not)."""
    with contextlib.suppress(OSError):
        run_dir.write_run_info(info)


def _close_quietly(*writers: RowWriter | None) -> None:
    """Close the metrics and event writers; a full disk on close must not hide the first error."""
    for writer in writers:
        if writer is None:
            continue
        with contextlib.suppress(OSError):
            writer.close()


def finish_run(run_dir: RunDir, plots: bool = True) -> None:
    """Summary (and plots) from the files on disk, so ``fedmobile report`` does the same."""
    from fedmobile_actors.report.plots import make_run_plots
    from fedmobile_actors.report.summary import write_summary

    write_summary(run_dir)
    if plots:
        make_run_plots(run_dir)
