"""report layer: run directories, metrics files, summaries, plots, comparisons, progress.

It reads and writes what the runtime produces (``runtime.metrics``) and is imported only by the
layers above it (orchestration, cli). Plots, comparisons and progress pull in matplotlib and
rich, so import them from their modules (``report.plots``, ``report.compare``,
``report.progress``) where they are needed; this package re-exports only the light file layer.
"""

from __future__ import annotations

from fedmobile_actors.report.metrics import RowWriter, read_jsonl
from fedmobile_actors.report.run_dir import RunDir, RunInfo, write_json_atomic
from fedmobile_actors.report.summary import (
    DEFAULT_TARGETS,
    load_summary,
    summarise,
    summarise_run,
    write_summary,
)

__all__ = [
    "DEFAULT_TARGETS",
    "RowWriter",
    "RunDir",
    "RunInfo",
    "load_summary",
    "read_jsonl",
    "summarise",
    "summarise_run",
    "write_json_atomic",
    "write_summary",
]
