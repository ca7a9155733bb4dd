"""The ``fedmobile`` command: run, validate, resume, report, compare, sweep.

A user's mistake (``UserError``: a bad scenario, a missing dataset, a broken run directory) is
printed as its one-line message(s) with exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from fedmobile_actors import __version__
from fedmobile_actors.errors import Interrupted, UserError
from fedmobile_actors.scenario.loader import short_path
from fedmobile_actors.startup_trace import mark

if TYPE_CHECKING:
    from fedmobile_actors.api import RunResult

EXIT_USER_ERROR = 2


def _scenario_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", help="scenario YAML file")
    parser.add_argument(
        "-o",
        "--override",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="override a field, e.g. -o rounds.deadline_s=60 (repeatable)",
    )


def _runtime_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("runtime (shorthands for -o runtime.*)")
    group.add_argument("--address", help="join a Ray cluster: 'auto' or 'ray://host:port'")
    group.add_argument("--backend", choices=["ray", "inprocess"], help="execution backend")
    group.add_argument("--hosts", type=int, help="phone-host actors")
    group.add_argument("--num-cpus", type=int, help="CPUs of a local Ray")
    group.add_argument("--cpus-per-host", type=float, help="CPUs reserved per host")
    group.add_argument("--gpus-per-host", type=float, help="GPUs per host (fractions allowed)")
    parser.add_argument("--output", help="parent directory of run directories (output.dir)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress display")


def _overrides(args: argparse.Namespace) -> list[str]:
    out = list(args.override)
    for flag, field in (
        ("address", "runtime.address"),
        ("backend", "runtime.backend"),
        ("hosts", "runtime.hosts"),
        ("num_cpus", "runtime.num_cpus"),
        ("cpus_per_host", "runtime.cpus_per_host"),
        ("gpus_per_host", "runtime.gpus_per_host"),
        ("output", "output.dir"),
    ):
        value = getattr(args, flag, None)
        if value is not None:
            out.append(f"{field}={value}")
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fedmobile",
        description="Simulate multimodal federated learning (FedMobile) on phone fleets, on Ray.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a scenario into a new run directory")
    _scenario_args(run)
    _runtime_args(run)

    validate = sub.add_parser("validate", help="check a scenario and print it resolved")
    _scenario_args(validate)

    resume = sub.add_parser("resume", help="continue an interrupted run from its checkpoint")
    resume.add_argument("run_dir")
    resume.add_argument("-q", "--quiet", action="store_true")

    report = sub.add_parser("report", help="(re)make summaries and plots of run directories")
    report.add_argument("run_dirs", nargs="+")

    compare = sub.add_parser("compare", help="compare run directories side by side")
    compare.add_argument("run_dirs", nargs="+")
    compare.add_argument("--csv", help="also write the table to this CSV file")

    sweep = sub.add_parser(
        "sweep",
        help="run every cell of a scenario's sweep block; given a sweep directory, resume it",
    )
    sweep.add_argument(
        "scenario", nargs="?", help="scenario YAML file, or a sweep directory to resume"
    )
    sweep.add_argument(
        "-o",
        "--override",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="override a field, e.g. -o rounds.deadline_s=60 (repeatable)",
    )
    sweep.add_argument(
        "--resume",
        metavar="SWEEP_DIR",
        help="continue this sweep directory (also: pass the directory as SCENARIO)",
    )
    sweep.add_argument(
        "--retry-failed", action="store_true", help="when resuming, run failed cells again"
    )
    sweep.add_argument("--parallel", type=int, help="cells at once (sweep.parallel)")
    _runtime_args(sweep)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    mark("cli started")
    args = build_parser().parse_args(argv)
    previous = _on_sigterm_interrupt()
    try:
        return _dispatch(args)
    except UserError as err:
        for line in str(err).splitlines() or [type(err).__name__]:
            print(f"fedmobile: error: {line}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt as err:
        reason = getattr(err, "reason", None) or "interrupted"
        print(f"fedmobile: {reason}", file=sys.stderr)
        run_dir = getattr(err, "run_dir", None)
        if run_dir:
            print(f"fedmobile: run directory: {run_dir}", file=sys.stderr)
            print(f"fedmobile: continue it with: fedmobile resume {run_dir}", file=sys.stderr)
        return int(getattr(err, "code", 130))
    except OSError as err:
        # The machine said no (disk full, permission denied, a path too long): not a bug of ours,
        # and nothing a traceback would help with.
        where = f"{short_path(err.filename)}: " if err.filename else ""
        print(f"fedmobile: error: {where}{err.strerror or err}", file=sys.stderr)
        return EXIT_USER_ERROR
    except MemoryError:
        print("fedmobile: error: out of memory; lower the scenario's sizes", file=sys.stderr)
        return EXIT_USER_ERROR
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _on_sigterm_interrupt() -> Any:
    """Make SIGTERM unwind like Ctrl-C, so run.json says "interrupted" and Ray is shut down.

    Returns the previous handler (None when this is not the main thread, where Python allows
    no handlers; then SIGTERM keeps its default).
    """

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise Interrupted("terminated (SIGTERM)", code=128 + signal.SIGTERM)

    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, interrupt)


def _dispatch(args: argparse.Namespace) -> int:
    from fedmobile_actors import api

    if args.command in ("validate", "run", "sweep"):
        _import_from_cwd()
    if args.command == "validate":
        from fedmobile_actors.scenario import scenario_to_yaml

        scenario = api.validate(args.scenario, args.override)
        print(scenario_to_yaml(scenario), end="")
        print(f"# {args.scenario}: valid", file=sys.stderr)
        return 0
    if args.command == "run":
        result = api.run(args.scenario, _overrides(args), quiet=args.quiet)
        _print_result(result)
        return 0
    if args.command == "resume":
        _import_from_cwd()
        result = api.resume(args.run_dir, quiet=args.quiet)
        _print_result(result)
        return 0
    if args.command == "report":
        from fedmobile_actors.report.plots import report_runs

        for path in report_runs([Path(p) for p in args.run_dirs]):
            print(path)
        return 0
    if args.command == "compare":
        from fedmobile_actors.report.compare import compare_runs

        compare_runs([Path(p) for p in args.run_dirs], csv_path=args.csv)
        return 0
    if args.command == "sweep":
        overrides = _overrides(args)
        if args.parallel is not None:
            overrides.append(f"sweep.parallel={args.parallel}")
        target = args.resume or args.scenario
        if target is None:
            raise UserError("sweep: give a scenario file, or a sweep directory to resume")
        if args.resume is not None and args.scenario is not None:
            raise UserError("sweep: give a scenario file or --resume SWEEP_DIR, not both")
        if args.resume is not None or Path(target).is_dir():
            outcome = api.resume_sweep(
                target, overrides, retry_failed=args.retry_failed, quiet=args.quiet
            )
        else:
            outcome = api.sweep(target, overrides, quiet=args.quiet)
        print(outcome.path)
        return 0
    raise AssertionError(args.command)


def _import_from_cwd() -> None:
    """Let ``algorithm.name``/``model.kind`` plug-ins (``module:Name``) be found in the current
    directory, as ``python -m`` would: the ``fedmobile`` script's own ``sys.path`` lacks it."""
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())


def _print_result(result: RunResult) -> None:
    for pattern, words in (("full", "all modalities"), ("missing", "missing pattern")):
        final = result.final_accuracy(pattern)
        if final is not None:
            print(f"final accuracy ({words}): {final:.4f}")
    print(f"run directory: {result.path}")


if __name__ == "__main__":
    sys.exit(main())
