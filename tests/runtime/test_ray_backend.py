"""The Ray backend: same numbers as in-process, whatever the hosts, even when a host dies."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest_helpers import comparable, metrics_of  # type: ignore[import-not-found]

from fedmobile_actors.runtime.inprocess import InProcessBackend
from fedmobile_actors.scenario import Scenario

REPO = Path(__file__).resolve().parents[2]

#: Every test here starts Ray actors or a cluster, so none is in the fast loop.
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def reference(make_tiny_module: Callable[..., Scenario]) -> list[dict[str, Any]]:
    return metrics_of(InProcessBackend(make_tiny_module()))


@pytest.fixture(scope="module")
def make_tiny_module() -> Callable[..., Scenario]:
    from conftest_helpers import tiny_scenario  # type: ignore[import-not-found]

    return tiny_scenario


@pytest.mark.parametrize(
    "runtime",
    [{"hosts": 1}, {"hosts": 2}, {"phones_per_host": 1, "cpus_per_host": 0.25}],
    ids=["1-host", "2-hosts", "actor-per-phone"],
)
def test_ray_backend_matches_in_process_bit_for_bit(
    ray_session: Any,
    make_tiny_module: Callable[..., Scenario],
    reference: list[dict[str, Any]],
    runtime: dict[str, Any],
) -> None:
    """1 host, 2 hosts and one actor per phone on Ray give exactly the in-process metrics."""
    from fedmobile_actors.runtime.ray_backend import RayBackend

    scenario = make_tiny_module(runtime={"backend": "ray", **runtime})
    backend = RayBackend(scenario)
    expected_hosts = runtime.get("hosts", scenario.fleet.phones)
    assert backend.describe()["hosts"] == expected_hosts
    assert metrics_of(backend) == reference


def test_async_rounds_on_ray_match_in_process_bit_for_bit(
    ray_session: Any, make_tiny_module: Callable[..., Scenario]
) -> None:
    """Buffered async rounds (stale updates, several model versions in flight) give the same
    metrics on 2 Ray hosts as in-process."""
    from fedmobile_actors.runtime.ray_backend import RayBackend

    rounds = {"policy": "async", "concurrency": 4, "buffer": 2, "max_staleness": 1, "rounds": 4}
    expected = metrics_of(InProcessBackend(make_tiny_module(rounds=rounds)))
    ray_run = RayBackend(make_tiny_module(rounds=rounds, runtime={"backend": "ray", "hosts": 2}))
    assert metrics_of(ray_run) == expected
    assert sum(r["stale"] for r in expected) > 0  # the case that needs old versions kept


def test_more_hosts_than_cpus_is_a_clear_error(
    ray_session: Any, make_tiny_module: Callable[..., Scenario]
) -> None:
    """Six one-CPU hosts on a two-CPU Ray would wait for ever: a one-line error instead."""
    from fedmobile_actors.errors import UserError
    from fedmobile_actors.runtime.ray_backend import RayBackend

    scenario = make_tiny_module(runtime={"backend": "ray", "phones_per_host": 1})
    with pytest.raises(UserError, match="cpus_per_host"):
        RayBackend(scenario)


def test_more_gpus_than_the_cluster_has_is_a_clear_error(
    ray_session: Any, make_tiny_module: Callable[..., Scenario]
) -> None:
    """Hosts asking for a GPU on a Ray without one would wait for ever: one line naming
    runtime.device and runtime.gpus_per_host instead, before any actor starts."""
    from fedmobile_actors.errors import UserError
    from fedmobile_actors.runtime.ray_backend import RayBackend

    runtime = {"backend": "ray", "hosts": 1, "gpus_per_host": 1, "device": "cuda"}
    with pytest.raises(UserError, match=r"^runtime\.device: cuda with runtime\.gpus_per_host"):
        RayBackend(make_tiny_module(runtime=runtime))


def test_a_host_killed_mid_round_changes_nothing(
    ray_session: Any,
    make_tiny_module: Callable[..., Scenario],
    reference: list[dict[str, Any]],
) -> None:
    """Ray restarts a killed host and re-runs its lost tasks; the metrics stay identical.

    The host's process id before and after shows that it really died and came back, and the
    round's reference not being ready at the kill shows that it died mid-round.
    """
    ray = ray_session
    from fedmobile_actors.runtime.ray_backend import RayBackend

    backend = RayBackend(make_tiny_module(runtime={"backend": "ray", "hosts": 2}))
    hosts = backend.host_handles()
    first = backend.run_round()
    assert first is not None
    pid_before = ray.get(hosts[0].pid.remote())
    pending = backend.actor.run_round.remote()  # round 2 in flight
    ready, _ = ray.wait([pending], timeout=0)
    assert not ready  # the kill below lands while round 2 runs
    ray.kill(hosts[0], no_restart=False)
    second = ray.get(pending)
    assert ray.get(hosts[0].pid.remote()) != pid_before
    rest = metrics_of(backend)
    rows = [comparable(first.metrics), comparable(second.metrics)]
    assert rows + rest == reference


def test_a_two_node_cluster_spreads_hosts_and_completes(tmp_path: Path) -> None:
    """A head and a worker node (each 1 CPU): one host lands on each, and the run finishes."""
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(REPO / "tests" / "runtime")!r})
        import ray
        from ray.cluster_utils import Cluster
        from conftest_helpers import tiny_scenario
        from fedmobile_actors.runtime.ray_backend import RayBackend
        cluster = Cluster(initialize_head=True, head_node_args={{"num_cpus": 1}})
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
        backend = RayBackend(tiny_scenario(runtime={{"backend": "ray", "hosts": 2}}))
        rounds = 0
        while backend.run_round() is not None:
            rounds += 1
        print("NODES", backend.describe()["nodes"], "ROUNDS", rounds)
        backend.shutdown()
        ray.shutdown()
        cluster.shutdown()
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert "NODES 2 ROUNDS 3" in out.stdout, out.stderr[-3000:]


def test_a_user_error_inside_an_actor_surfaces_as_itself(
    ray_session: Any, make_tiny_module: Callable[..., Scenario]
) -> None:
    """A checkpoint that does not fit the model, found inside the server actor, is a one-line
    RunDirError for the CLI, not Ray's wrapped traceback."""
    from fedmobile_actors.errors import RunDirError
    from fedmobile_actors.runtime.ray_backend import RayBackend
    from fedmobile_actors.wire import pack

    foreign = pack({"format": 1, "version": 1, "arrays": {}, "info": {}, "virtual_time_s": 0.0})
    with pytest.raises(RunDirError, match="does not match"):
        RayBackend(make_tiny_module(runtime={"backend": "ray", "hosts": 1}), checkpoint=foreign)
