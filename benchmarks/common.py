"""What every benchmark shares: the issue's workload, the ideal training loop, memory sampling,
machine facts, and printing a table plus JSON.

The workload (issue 8): every phone holds exactly 128 synthetic windows of two modalities, each
(3 channels, 100 steps), 6 classes; the model is the project's default ``MultimodalNet``
(Conv1d(3,32,5)-ReLU-Conv1d(32,64,5)-ReLU-mean per modality, Linear(128, 6)); SGD lr 0.05, one
local epoch, batch 32, one torch thread per training phone, FedAvg. Flower, this project and the
single-process ideal all train these exact shards with this exact model, so the only difference
is the machinery around the training.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

from fedmobile_actors.data import DatasetSplit, load_split, partition
from fedmobile_actors.data.loading import stratified_split
from fedmobile_actors.data.synthetic import make_synthetic
from fedmobile_actors.scenario import Scenario
from fedmobile_actors.scenario.loader import validate_mapping
from fedmobile_actors.scenario.schema import ModalityShape, SyntheticSource

REPO = Path(__file__).resolve().parents[1]
SAMPLES_PER_PHONE = 128
#: Small, so the held-out set (not part of the workload) costs little memory; the test split
#: only exists because every scenario has one.
TEST_FRACTION = 0.05
NUM_CLASSES = 6
MODALITIES = (("acc", 3, 100), ("gyro", 3, 100))
LR, BATCH, LOCAL_EPOCHS = 0.05, 32, 1
SEED = 0
#: Deadline and eval period far beyond anything the benchmarks run: every phone reports every
#: round, and no round evaluates (evaluation is not part of the workload).
NEVER = 100_000  # the schema's largest eval_every; as a deadline, 28 hours of virtual time


# ----------------------------------------------------------------------------------- workload


def synthetic_samples(phones: int, seed: int = SEED) -> int:
    """Total synthetic windows such that the training split is exactly ``phones * 128``.

    The split is stratified per class with rounding, so ``phones * 128 / (1 - f)`` can be off by
    a few windows; the labels depend only on (samples, seed), so a one-step, one-channel dataset
    gives the exact split sizes cheaply, and the first total that yields the wanted count wins.
    """
    want = phones * SAMPLES_PER_PHONE
    start = int(want / (1 - TEST_FRACTION))
    for total in range(start - 20, start + 200):
        tiny = SyntheticSource(
            samples=total,
            num_classes=NUM_CLASSES,
            modalities=(ModalityShape(name="acc", channels=1, steps=4),),
        )
        train, _test = stratified_split(make_synthetic(tiny, seed), TEST_FRACTION, seed)
        if len(train) == want:
            return total
    raise RuntimeError(f"no synthetic size gives exactly {want} training windows")


def workload_mapping(
    phones: int,
    clients_per_round: int,
    rounds: int,
    *,
    backend: str = "ray",
    output_dir: str = "bench-runs",
    seed: int = SEED,
) -> dict[str, Any]:
    """The issue's workload as a scenario mapping (what a user would write as YAML).

    ``rounds`` is one more than a benchmark drives: the runtime evaluates the final round, and
    evaluation is not part of the workload, so drivers stop one round short of it.
    """
    return {
        "name": f"bench-{phones}",
        "seed": seed,
        "data": {
            "source": {
                "kind": "synthetic",
                "num_classes": NUM_CLASSES,
                "samples": synthetic_samples(phones, seed),
                "modalities": [{"name": n, "channels": c, "steps": s} for n, c, s in MODALITIES],
            },
            "partition": {"kind": "iid"},
            "test_fraction": TEST_FRACTION,
        },
        "fleet": {"phones": phones, "availability": {"model": "always"}, "failure_prob": 0.0},
        "model": {"conv_channels": [32, 64], "kernel_size": 5},
        "algorithm": {
            "name": "fedavg",
            "lr": LR,
            "batch_size": BATCH,
            "local_epochs": LOCAL_EPOCHS,
            "momentum": 0.0,
        },
        "rounds": {
            "policy": "deadline",
            "rounds": rounds,
            "clients_per_round": clients_per_round,
            "overcommit": 1.0,
            "deadline_s": float(NEVER),
            "eval_every": NEVER,
        },
        "runtime": {"backend": backend, "torch_threads": 1},
        "output": {"dir": output_dir, "checkpoint_every": 0, "plots": False, "event_log": False},
    }


def workload_scenario(phones: int, clients_per_round: int, rounds: int, **kw: Any) -> Scenario:
    return validate_mapping(workload_mapping(phones, clients_per_round, rounds, **kw), "benchmark")


def workload_data(phones: int, seed: int = SEED) -> tuple[DatasetSplit, list[Any]]:
    """The split and the IID shards the runtime builds for this workload (same functions)."""
    scenario = workload_scenario(phones, phones, 2)
    split = load_split(scenario.data, seed)
    shards = partition(split.train, phones, scenario.data.partition, seed)
    sizes = {len(s) for s in shards}
    if sizes != {SAMPLES_PER_PHONE}:
        raise RuntimeError(f"shard sizes {sorted(sizes)}, expected {SAMPLES_PER_PHONE} each")
    return split, shards


# ------------------------------------------------------------------------------------ memory


@dataclass
class MemorySampler:
    """Peak of the summed RSS of a process and all its descendants, sampled every ``interval``.

    Counted: the root (a benchmark's worker process) and every process below it: for a local
    Ray that is the driver, gcs_server, raylet, the dashboard/log-monitor helpers and every Ray
    worker (actors and idle pool workers). RSS counts a shared page once per process that maps
    it (torch's libraries, the object store's shared memory), so the sum is an upper bound of
    the physical memory used; it is the same measure for every framework here.
    """

    root: int
    interval: float = 0.2
    #: Kill the whole tree when the sum exceeds this (a shared machine must not run out).
    limit_bytes: int | None = None
    peak_bytes: int = 0
    peak_processes: int = 0
    samples: int = 0
    exceeded: bool = False
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> MemorySampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def tree(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.root)
            return [root, *root.children(recursive=True)]
        except psutil.Error:
            return []

    def sample(self) -> tuple[int, int]:
        procs = self.tree()
        total = 0
        for proc in procs:
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                continue
        return total, len(procs)

    def _run(self) -> None:
        while not self._stop.is_set():
            total, count = self.sample()
            self.samples += 1
            if total > self.peak_bytes:
                self.peak_bytes, self.peak_processes = total, count
            if self.limit_bytes is not None and total > self.limit_bytes:
                self.exceeded = True
                for proc in reversed(self.tree()):  # only this run's own processes
                    try:
                        proc.kill()
                    except psutil.Error:
                        continue
                return
            self._stop.wait(self.interval)


class MemoryLimitExceeded(RuntimeError):
    """A run was stopped because its processes together went past the memory limit."""

    def __init__(self, sampler: MemorySampler) -> None:
        super().__init__(f"stopped at {mib(sampler.peak_bytes):.0f} MiB (limit reached)")
        self.sampler = sampler


def run_worker(
    argv: Sequence[str],
    *,
    timeout_s: float,
    log_path: Path | None = None,
    mem_limit_bytes: int | None = None,
) -> tuple[dict[str, Any], float, MemorySampler]:
    """Run ``python -m <argv>`` as a child, sample its process tree, return its JSON result.

    The child writes its result (JSON) to a file named by ``--result``; its launch time (epoch
    seconds) is returned so start-up can be measured from the command, not from our imports.
    """
    result = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-{os.getpid()}-{time.time_ns()}.json"
    # RAY_ADDRESS=local: a fresh Ray per run, never one found running on the machine (ray.init
    # without an address joins the most recent local cluster, e.g. another user's).
    env = dict(os.environ, PYTHONPATH=str(REPO), RAY_DEDUP_LOGS="1", RAY_ADDRESS="local")
    log = open(log_path, "w") if log_path is not None else subprocess.DEVNULL  # noqa: SIM115
    launched = time.time()
    proc = subprocess.Popen(
        [sys.executable, "-m", *argv, "--result", str(result)],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    sampler = MemorySampler(proc.pid, limit_bytes=mem_limit_bytes).start()
    try:
        code = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise RuntimeError(f"{' '.join(argv)}: timed out after {timeout_s:.0f} s") from None
    finally:
        sampler.stop()
        if log_path is not None:
            log.close()  # type: ignore[union-attr]
    if sampler.exceeded:
        raise MemoryLimitExceeded(sampler)
    if code != 0 or not result.exists():
        where = f" (log: {log_path})" if log_path is not None else ""
        raise RuntimeError(f"{' '.join(argv)}: exit code {code}{where}")
    data: dict[str, Any] = json.loads(result.read_text())
    result.unlink()
    return data, launched, sampler


# ------------------------------------------------------------------------------ reporting


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("torch", "ray", "flwr", "numpy", "fedmobile-actors"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def machine() -> dict[str, Any]:
    """The facts a reader needs to compare figures: cores, CPU, memory, load right now."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "versions": versions(),
    }


def print_table(title: str, rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> None:
    """A plain aligned text table (numbers formatted to 3 significant places)."""

    def show(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
        return str(value)

    cells = [[show(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print(f"\n{title}")
    print("  ".join(c.rjust(w) for c, w in zip(columns, widths, strict=True)))
    for row in cells:
        print("  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)))


def write_json(path: str | Path | None, payload: Mapping[str, Any]) -> None:
    """Print the JSON, and write it to ``path`` when given."""
    text = json.dumps(payload, indent=2, sort_keys=False)
    print("\nJSON:")
    print(text)
    if path is not None:
        Path(path).write_text(text + "\n")


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def mib(n: int) -> float:
    return n / 2**20


def run_figures(
    framework: str,
    phones: int,
    per_round: int,
    rounds: int,
    data: dict[str, Any],
    launched: float,
    ready_at: float,
    peak_bytes: int,
    peak_processes: int,
    load_before: list[float],
) -> dict[str, Any]:
    """One framework's row: start-up (launch to ``ready_at``, the first dispatch), rounds, total,
    peak memory; the same definitions for both frameworks."""
    rounds_s = data["round_s"]
    return {
        "framework": framework,
        "phones": phones,
        "per_round": per_round,
        "rounds": rounds,
        "startup_s": ready_at - launched,
        "first_round_s": rounds_s[0],
        "steady_round_s": mean(rounds_s[1:]),
        "first_round_done_s": ready_at - launched + rounds_s[0],
        "total_s": data["done_at"] - launched,
        "peak_mem_mib": mib(peak_bytes),
        "processes": peak_processes,
        "reported": data["reported"],
        "round_s": rounds_s,
        "loadavg_before": load_before,
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }


def bench_parser(doc: str | None, phones: list[int], rounds: int) -> argparse.ArgumentParser:
    """The options every runtime benchmark takes: fleet sizes, rounds, JSON output, log folder."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--phones", type=int, nargs="+", default=phones)
    parser.add_argument(
        "--rounds", type=int, default=rounds, help="rounds timed (first is warm-up)"
    )
    parser.add_argument("--json", help="also write the JSON here")
    parser.add_argument("--logs", default="bench-logs", help="child process logs")
    return parser


def logs_dir(args: argparse.Namespace) -> Path:
    """The child-process log folder named by ``--logs``, created."""
    logs = Path(args.logs)
    logs.mkdir(parents=True, exist_ok=True)
    return logs
