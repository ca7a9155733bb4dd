"""orchestration layer: runs and sweeps end to end, above ``runtime`` and ``report``.

The driver starts a backend (``runtime``), writes the run directory and shows progress
(``report``); sweeps run many drivers. Nothing here imports Ray: the runtime does that.
"""
