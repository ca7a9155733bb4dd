"""report layer: run directories, metrics files, summaries, plots, comparisons, progress.

Why some names load lazily: the runtime imports ``report.metrics`` and ``report.run_dir`` in every
process that writes results; matplotlib and rich (plots, compare, progress) cost a second of
import time and memory there, so they are imported on first use of one of their names.
``compare`` the function is not re-exported: the ``report.compare`` module would shadow it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from fedmobile_actors.report.metrics import (
    EVENT_COLUMNS,
    RoundMetrics,
    RowWriter,
    event_rows,
    read_jsonl,
)
from fedmobile_actors.report.run_dir import RunDir, RunInfo, write_json_atomic
from fedmobile_actors.report.summary import (
    DEFAULT_TARGETS,
    load_summary,
    summarise,
    summarise_run,
    write_summary,
)

if TYPE_CHECKING:
    from fedmobile_actors.report.compare import (
        Comparison,
        compare_runs,
        write_csv,
        write_sweep_table,
    )
    from fedmobile_actors.report.plots import make_run_plots, make_sweep_plots, report_runs
    from fedmobile_actors.report.progress import RunProgress, SweepProgress

_LAZY = {
    "compare_runs": "compare",
    "report_runs": "plots",
    "Comparison": "compare",
    "write_csv": "compare",
    "write_sweep_table": "compare",
    "make_run_plots": "plots",
    "make_sweep_plots": "plots",
    "RunProgress": "progress",
    "SweepProgress": "progress",
}

__all__ = [
    "DEFAULT_TARGETS",
    "EVENT_COLUMNS",
    "Comparison",
    "RoundMetrics",
    "RowWriter",
    "RunDir",
    "RunInfo",
    "RunProgress",
    "SweepProgress",
    "compare_runs",
    "event_rows",
    "load_summary",
    "make_run_plots",
    "make_sweep_plots",
    "read_jsonl",
    "report_runs",
    "summarise",
    "summarise_run",
    "write_csv",
    "write_json_atomic",
    "write_summary",
    "write_sweep_table",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f"fedmobile_actors.report.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
