"""Sweeps on Ray: cells as tasks in placement groups, packed on the nodes, same numbers."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from conftest_helpers import tiny_scenario

from fedmobile_actors.report.compare import load_sweep_rows
from fedmobile_actors.runtime.ray_sweep import cell_bundles, unplaceable

REPO = Path(__file__).resolve().parents[2]
NOT_RESULTS = ("run", "wall_time_s", "node")


def results(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k not in NOT_RESULTS} for row in rows]


def test_a_cell_reserves_one_bundle_per_host() -> None:
    """Hosts unset: one host per cell; set: that many bundles of its CPUs, GPUs and memory."""
    assert cell_bundles(tiny_scenario(runtime={"backend": "ray"})) == [{"CPU": 1.0}]
    sized = tiny_scenario(
        runtime={
            "backend": "ray",
            "hosts": 2,
            "cpus_per_host": 0.5,
            "gpus_per_host": 0.25,
            "memory_per_host_mb": 100,
        }
    )
    assert cell_bundles(sized) == [{"CPU": 0.5, "GPU": 0.25, "memory": 100 * 2**20}] * 2
    assert cell_bundles(tiny_scenario()) == [{"CPU": 1.0}]  # an in-process cell: one core


def test_a_cell_that_can_never_be_placed_says_why() -> None:
    """A host larger than every node, or hosts more than the cluster: the reason; else None."""
    nodes = [{"CPU": 2.0}, {"CPU": 1.0}]
    assert unplaceable([{"CPU": 2.0}, {"CPU": 1.0}], nodes) is None
    assert unplaceable([{"CPU": 3.0}], nodes) == "a host needs 3 CPU but the largest node has 2"
    assert unplaceable([{"CPU": 1.0}] * 4, nodes) == (
        "the cell's hosts need 4 CPU but the cluster has 3"
    )
    assert unplaceable([{"CPU": 1.0, "GPU": 1.0}], nodes) == (
        "a host needs 1 GPU but the largest node has 0"
    )


SWEEP = """
name: tiny
data: {{source: {{kind: synthetic, samples: 240}}}}
fleet: {{phones: 4}}
algorithm: {{local_epochs: 1, lr: 0.05, momentum: 0.9}}
rounds: {{rounds: 2, clients_per_round: 2}}
runtime: {{backend: {backend}}}
output: {{dir: {out}, checkpoint_every: 1, plots: false, event_log: false}}
sweep:
  grid:
{grid}
  seeds: [0]
"""


@pytest.mark.integration
def test_failing_cells_are_isolated_and_the_rest_match_in_process(
    ray_session: Any, tmp_path: Path
) -> None:
    """On Ray: a missing dataset and a cell too big for the cluster fail with one line each;
    the good cell finishes with the same figures as the in-process sweep."""
    from fedmobile_actors.orchestration.sweep import run_sweep
    from fedmobile_actors.scenario import load_scenario

    grid = (
        "    runtime.cpus_per_host: [1, 64]\n"
        "    data.source: [{kind: synthetic, samples: 240}, {kind: npz, path: gone.npz}]"
    )
    tables = {}
    for backend in ("ray", "inprocess"):
        path = tmp_path / f"{backend}.yaml"
        path.write_text(SWEEP.format(backend=backend, out=tmp_path / backend, grid=grid))
        tables[backend] = load_sweep_rows(run_sweep(load_scenario(path), quiet=True))
    ray_rows = tables["ray"]
    assert [r["status"] for r in ray_rows] == ["finished", "failed", "failed", "failed"]
    assert "gone.npz does not exist" in str(ray_rows[1]["error"])
    assert str(ray_rows[2]["error"]).startswith("cannot be placed: a host needs 64 CPU")
    assert ray_rows[0]["node"]  # ran as a Ray task, on a node Ray chose
    # The runtime is part of a cell's settings, so only the cell ids differ.
    assert results(ray_rows)[0] | {"cell": ""} == results(tables["inprocess"])[0] | {"cell": ""}


CLUSTER_SCRIPT = """
import json, sys
import ray
from ray.cluster_utils import Cluster
from fedmobile_actors.orchestration.sweep import run_sweep
from fedmobile_actors.report.compare import load_sweep_rows
from fedmobile_actors.scenario import load_scenario

cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
cluster.add_node(num_cpus=1)
cluster.wait_for_nodes()
ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
tables = {}
for parallel in ("null", "1"):
    scenario = load_scenario(sys.argv[1], [f"sweep.parallel={parallel}"])
    tables[parallel] = load_sweep_rows(run_sweep(scenario, quiet=True))
nodes = sorted(n["NodeID"] for n in ray.nodes() if n["Alive"])
print("RESULT", json.dumps({"tables": tables, "nodes": nodes}))
ray.shutdown()
cluster.shutdown()
"""


@pytest.mark.integration
@pytest.mark.slow  # two Ray nodes and eight cells: ~100 s on the shared 2-core machine
def test_a_sweep_on_two_nodes_uses_both_and_equals_the_sequential_sweep(
    tmp_path: Path,
) -> None:
    """Four one-host cells on a 2-node cluster of 1 CPU each: cells run on both nodes, and
    every cell's figures equal those of the same sweep run one cell after another."""
    grid = "    algorithm.lr: [0.01, 0.02, 0.05, 0.1]"
    path = tmp_path / "s.yaml"
    path.write_text(SWEEP.format(backend="ray", out=tmp_path / "out", grid=grid))
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CLUSTER_SCRIPT), str(path)],
        capture_output=True,
        text=True,
        timeout=400,
        cwd=tmp_path,
        env={**__import__("os").environ, "PYTHONPATH": str(REPO)},
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, out.stderr[-3000:]
    found = json.loads(lines[0].removeprefix("RESULT "))
    concurrent, sequential = found["tables"]["null"], found["tables"]["1"]
    assert [r["status"] for r in concurrent] == ["finished"] * 4
    assert {r["node"] for r in concurrent} == set(found["nodes"])
    assert len(found["nodes"]) == 2
    assert results(concurrent) == results(sequential)


def checkpoints_in(sweep_dirs: list[Path]) -> int:
    return sum(1 for d in sweep_dirs for _ in d.glob("*/*/checkpoints/round-*.ckpt"))


@pytest.mark.integration
@pytest.mark.slow  # a local Ray started twice in subprocesses: ~1-2 min on the shared machine
def test_a_killed_concurrent_ray_sweep_resumes_to_the_uninterrupted_table(
    tmp_path: Path,
) -> None:
    """`fedmobile sweep` on Ray, SIGKILLed while its cells are mid-run, then `fedmobile sweep
    SWEEP_DIR` in a new process: the table equals an uninterrupted (in-process) sweep's."""
    import os
    import signal
    import time

    from fedmobile_actors.orchestration.sweep import run_sweep
    from fedmobile_actors.scenario import load_scenario

    grid = "    algorithm.lr: [0.01, 0.02, 0.05, 0.1]"
    text = SWEEP.replace("rounds: 2", "rounds: 8")
    path = tmp_path / "ray.yaml"
    path.write_text(text.format(backend="ray", out=tmp_path / "ray", grid=grid))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "fedmobile_actors.cli", "sweep"]
    child = subprocess.Popen(
        [*command, str(path), "-q", "--num-cpus", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 300
        while checkpoints_in(list((tmp_path / "ray").glob("tiny-sweep-*"))) < 3:
            assert time.monotonic() < deadline, "no cell reached a checkpoint"
            time.sleep(0.1)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=60)
    (sweep_dir,) = (tmp_path / "ray").glob("tiny-sweep-*")
    assert len(load_sweep_rows(sweep_dir)) < 4  # killed mid-way
    resumed = subprocess.run(
        [*command, str(sweep_dir), "-q", "--num-cpus", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    reference = tmp_path / "inprocess.yaml"
    reference.write_text(text.format(backend="inprocess", out=tmp_path / "inp", grid=grid))
    whole = load_sweep_rows(run_sweep(load_scenario(reference), quiet=True))
    # The backend is part of a cell's settings, so only the cell ids differ.
    assert [r | {"cell": ""} for r in results(load_sweep_rows(sweep_dir))] == [
        r | {"cell": ""} for r in results(whole)
    ]
