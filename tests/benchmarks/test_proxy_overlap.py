"""benchmarks/proxy_overlap.py on a small USC-HAD-shaped release: random shares, blocked not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io

from benchmarks.proxy_overlap import measure


def write_release(root: Path) -> None:
    """Subject1 only, 60 trials of 40-63 samples (6 to 10 windows of 10 every 5)."""
    folder = root / "Subject1"
    folder.mkdir(parents=True)
    for a in range(1, 13):
        for t in range(1, 6):
            n = 30 + 2 * a + t
            readings = np.tile(np.arange(n, dtype=float)[:, None], (1, 6))
            scipy.io.savemat(folder / f"a{a}t{t}.mat", {"sensor_readings": readings})


def test_measure_reports_sharing_under_random_and_none_under_blocked(tmp_path: Path) -> None:
    write_release(tmp_path / "usc")
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        "name: s\n"
        "data:\n"
        "  source: {kind: usc_had, path: usc, window: 10, stride: 5, subjects: [1],\n"
        "           test_split: trial, cache_dir: cache}\n"
        "  proxy_fraction: 0.2\n"
    )
    result = measure(str(scenario), [], None)
    random, blocked = result["rows"]
    assert result["recordings"] == 12
    assert random["proxy_sharing_fraction"] > 0.5 and random["dropped"] == 0
    assert blocked["proxy_sharing"] == 0 and blocked["dropped"] > 0
    assert blocked["proxy"] + blocked["test"] + blocked["dropped"] == blocked["held_out"]
