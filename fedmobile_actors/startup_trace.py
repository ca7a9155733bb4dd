"""Start-up timestamps across processes, for measuring where a run's first seconds go.

Off unless ``FEDMOBILE_STARTUP_TRACE`` names a file: each process (the driver, the server actor,
every host) then appends ``<unix time> <pid> <event>`` lines to it. Unix time because the
processes share one clock on one machine, so ``benchmarks/bench_startup.py`` can line up the
phases of the driver, Ray, the server and the hosts on one axis. Ray's workers inherit the
variable from the driver that started Ray. Nothing is written when the variable is unset, and
nothing here may fail a run.
"""

from __future__ import annotations

import os
import time

ENV = "FEDMOBILE_STARTUP_TRACE"


def mark(event: str) -> None:
    """Record that ``event`` happened now in this process (no-op unless tracing is on)."""
    path = os.environ.get(ENV)
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as out:
            out.write(f"{time.time():.6f} {os.getpid()} {event}\n")
    except OSError:
        pass
