"""CLI-level mutation test: hostile inputs end in one line (exit 2), never a traceback or a hang.

Every case runs the real ``fedmobile`` entry point in-process (``main``) under a time limit, on
mutated bundled scenarios, nonsense values, damaged run directories, damaged checkpoints and bad
.npz files. A case passes when ``main`` returns 0 or 2 and, for 2, prints one ``fedmobile:
error:`` line per problem and nothing else.
"""

from __future__ import annotations

import json
import shutil
import signal
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fedmobile_actors.cli.main import main
from fedmobile_actors.report.run_dir import RunDir

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
CASE_LIMIT_S = 30

TINY = """
name: tiny
data: {source: {kind: synthetic, samples: 200}}
fleet: {phones: 4}
model: {conv_channels: [4]}
rounds: {rounds: 4, clients_per_round: 2}
runtime: {backend: inprocess}
output: {checkpoint_every: 2, plots: false}
"""


def _alarm(signum: int, frame: Any) -> None:
    raise TimeoutError("case ran past its time limit (a hang)")


def cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    """Run the CLI under a time limit; (exit code, stderr lines)."""
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(CASE_LIMIT_S)
    try:
        code = main(argv)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    return code, capsys.readouterr().err.strip().splitlines()


def assert_one_line_refusal(code: int, err: list[str]) -> None:
    assert code == 2, err
    assert err and all(line.startswith("fedmobile: error: ") for line in err), err
    assert len(err) <= 42, f"{len(err)} lines"  # at most MAX_PROBLEMS problems plus a count


NONSENSE = [
    "algorithm.lr=1e300",
    "model.kernel_size=10000000",
    "model.kernel_size=51",
    "rounds.clients_per_round=1000000000000",
    "fleet.availability={model: markov, mean_on_s: 1e-300}",
    "fleet.availability={model: bernoulli, p_online: 0}",
    "fleet.availability={model: diurnal, peak_online: 0, trough_online: 0}",
    "rounds.idle_retry_s=1e-9",
    "rounds.deadline_s=1e300",
    "data.source.samples=100000000",
    "model.conv_channels=[1024, 1024, 1024, 1024, 1024, 1024, 1024, 1024]",
    "algorithm.fedmobile.shapley_exact_max=64",
    "algorithm.fedmobile.temperature=1e-300",
    "fleet.tiers.0.samples_per_second={dist: lognormal, median: 1, sigma: 1000}",
    "rounds.rounds=10000000000",
    "name=" + "n" * 300,
    "seed=-1",
    "fleet.phones=0",
    "data.partition={kind: dirichlet, alpha: 1e-300}",
]


@pytest.mark.parametrize("override", NONSENSE)
def test_nonsense_values_are_refused_in_one_line(
    override: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert_one_line_refusal(
        *cli(["validate", str(SCENARIOS / "quickstart.yaml"), "-o", override], capsys)
    )


def _mutations() -> Iterator[tuple[str, str]]:
    """(id, text) of each bundled scenario with one line replaced by nonsense."""
    for path in sorted(SCENARIOS.glob("*.yaml")):
        lines = path.read_text().splitlines()
        numbered = [
            i for i, line in enumerate(lines) if ":" in line and not line.strip().startswith("#")
        ]
        for index in numbered[:: max(1, len(numbered) // 4)]:
            key = lines[index].split(":", 1)[0]
            yield (
                f"{path.stem}-{index}",
                "\n".join([*lines[:index], f"{key}: -1e308", *lines[index + 1 :]]),
            )


@pytest.mark.parametrize(("case", "text"), list(_mutations()))
def test_mutated_bundled_scenarios_validate_or_refuse(
    case: str, text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("traces",):
        if (SCENARIOS / name).exists():
            shutil.copytree(SCENARIOS / name, tmp_path / name)
    path = tmp_path / f"{case}.yaml"
    path.write_text(text)
    code, err = cli(["validate", str(path)], capsys)
    if code != 0:
        assert_one_line_refusal(code, err)


@pytest.mark.parametrize(
    "extends", ["a\\x00b", "x" * 5000, "x/" * 3000, "/dev/null", ".", "\\udcff"]
)
def test_odd_extends_paths_are_one_line(
    extends: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(f'extends: "{extends}"\n')
    assert_one_line_refusal(*cli(["validate", str(path)], capsys))


def test_validating_a_large_file_of_junk_keys_is_fast(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """50 000 unknown keys (1.5 MB): 40 lines and a count, well within the time limit."""
    path = tmp_path / "junk.yaml"
    path.write_text("".join(f"junk_{i}: {i}\n" for i in range(50_000)))
    code, err = cli(["validate", str(path)], capsys)
    assert_one_line_refusal(code, err)
    assert err[-1].endswith("more problems")


# ------------------------------------------------------------------ output directories


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


@pytest.mark.parametrize("where", ["a-file", "a-file/below", "n" * 300])
def test_unusable_output_dirs_are_one_line(
    where: str, tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a-file").write_text("x")
    out = str(tmp_path / where)
    assert_one_line_refusal(*cli(["run", str(tiny), "-q", "--output", out], capsys))


# ------------------------------------------------------------------ damaged run directories


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("finished")
    (base / "tiny.yaml").write_text(TINY)
    assert main(["run", str(base / "tiny.yaml"), "-q", "--output", str(base / "runs")]) == 0
    return next((base / "runs").iterdir())


@pytest.fixture(scope="module")
def interrupted_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A run stopped after round 3 (checkpoint at round 2), and its uninterrupted twin."""
    from fedmobile_actors.orchestration.driver import run_scenario
    from fedmobile_actors.scenario import load_scenario

    base = tmp_path_factory.mktemp("interrupted")
    (base / "tiny.yaml").write_text(TINY)
    scenario = load_scenario(base / "tiny.yaml")
    stopped = run_scenario(scenario, quiet=True, output_dir=base / "stopped", stop_after=3)
    whole = run_scenario(scenario, quiet=True, output_dir=base / "whole")
    return stopped.path, whole.path


def _plots_file(run: Path) -> None:
    shutil.rmtree(run / "plots", ignore_errors=True)
    (run / "plots").write_text("x")


DAMAGE: dict[str, Callable[[Path], object]] = {
    "metrics-binary": lambda d: (d / "metrics.jsonl").write_bytes(b"\xff\xfe{junk"),
    "metrics-types": lambda d: (d / "metrics.jsonl").write_text('{"round": "x", "loss": "y"}\n'),
    "metrics-not-object": lambda d: (d / "metrics.jsonl").write_text("[1, 2]\n3\n"),
    "metrics-missing": lambda d: (d / "metrics.jsonl").unlink(),
    "metrics-dir": lambda d: ((d / "metrics.jsonl").unlink(), (d / "metrics.jsonl").mkdir()),
    "events-junk": lambda d: (d / "events.jsonl").write_text('{"round": 1}\nnot json\n{}\n'),
    "events-types": lambda d: (d / "events.jsonl").write_text('{"round": 1, "end_s": []}\n'),
    "summary-junk": lambda d: (d / "summary.json").write_text("{not json"),
    "summary-list": lambda d: (d / "summary.json").write_text("[]"),
    "run-json-junk": lambda d: (d / "run.json").write_text("\x00\x01"),
    "run-json-types": lambda d: (d / "run.json").write_text(
        json.dumps({**json.loads((d / "run.json").read_text()), "rounds_done": "x"})
    ),
    "scenario-junk": lambda d: (d / "scenario.yaml").write_text("rounds: {rounds: many}\n"),
    "plots-file": _plots_file,
}


@pytest.mark.parametrize("damage", list(DAMAGE))
@pytest.mark.parametrize("command", ["report", "compare", "resume"])
def test_damaged_run_directories_are_one_line_or_fine(
    damage: str,
    command: str,
    finished_run: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    DAMAGE[damage](run)
    argv = {"report": ["report", str(run)], "compare": ["compare", str(run), str(finished_run)]}
    code, err = cli(argv.get(command, ["resume", str(run), "-q"]), capsys)
    if code != 0:
        assert_one_line_refusal(code, err)


# ------------------------------------------------------------------ resume integrity


def _flip_byte(run: Path) -> None:
    ckpt = sorted((run / "checkpoints").glob("*.ckpt"))[-1]
    data = bytearray(ckpt.read_bytes())
    data[-10] ^= 0x01
    ckpt.write_bytes(bytes(data))


def _older_over_newer(run: Path) -> None:
    """Round 2's checkpoint copied over a (made-up) round 3 one: the name and inside disagree."""
    shutil.copy(run / "checkpoints" / "round-00002.ckpt", run / "checkpoints" / "round-00003.ckpt")


def _changed_seed(run: Path) -> None:
    text = (run / "scenario.yaml").read_text()
    (run / "scenario.yaml").write_text(text.replace("seed: 0", "seed: 7", 1))


def _truncated_checkpoint(run: Path) -> None:
    ckpt = run / "checkpoints" / "round-00002.ckpt"
    ckpt.write_bytes(ckpt.read_bytes()[:-100])


def _foreign_identity(run: Path) -> None:
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**info, "scenario_sha256": "0" * 64}))


def _metrics_lost_rows(run: Path) -> None:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    (run / "metrics.jsonl").write_text(lines[0] + "\n")


def _metrics_duplicate_row(run: Path) -> None:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    (run / "metrics.jsonl").write_text("\n".join([lines[0], *lines]) + "\n")


REFUSED: dict[str, Callable[[Path], object]] = {
    "flipped-byte": _flip_byte,
    "older-over-newer": _older_over_newer,
    "changed-seed": _changed_seed,
    "truncated": _truncated_checkpoint,
    "other-run": _foreign_identity,
    "metrics-lost-rows": _metrics_lost_rows,
    "metrics-duplicate": _metrics_duplicate_row,
}


@pytest.mark.parametrize("damage", list(REFUSED))
def test_resume_refuses_what_does_not_match_in_one_line(
    damage: str,
    interrupted_run: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = tmp_path / "run"
    shutil.copytree(interrupted_run[0], run)
    REFUSED[damage](run)
    before = (run / "metrics.jsonl").read_bytes()
    assert_one_line_refusal(*cli(["resume", str(run), "-q"], capsys))
    assert (run / "metrics.jsonl").read_bytes() == before  # nothing was written


def _leftover_tmp(run: Path) -> None:
    (run / "checkpoints" / ".round-00004.ckpt.1234.tmp").write_bytes(b"half")
    (run / "checkpoints" / "round-00004.tmp").write_bytes(b"half a checkpoint")


RESUMED: dict[str, Callable[[Path], object]] = {
    "untouched": lambda run: None,
    "leftover-tmp": _leftover_tmp,
    "empty-newer": lambda run: (run / "checkpoints" / "round-00003.ckpt").write_bytes(b""),
}


@pytest.mark.parametrize("damage", list(RESUMED))
def test_resume_gives_the_uninterrupted_metrics(
    damage: str,
    interrupted_run: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = tmp_path / "run"
    shutil.copytree(interrupted_run[0], run)
    RESUMED[damage](run)
    code, err = cli(["resume", str(run), "-q"], capsys)
    assert code == 0, err
    drop = ("wall_time_s",)
    got = [{k: v for k, v in r.items() if k not in drop} for r in RunDir(run).read_metrics()]
    want = RunDir(interrupted_run[1]).read_metrics()
    assert got == [{k: v for k, v in r.items() if k not in drop} for r in want]
    info = RunDir(run).read_run_info()
    assert info.status == "finished" and info.error is None
    assert not list((run / "checkpoints").glob("*.tmp"))


# ------------------------------------------------------------------ bad .npz files


def _npz(tmp_path: Path, **arrays: Any) -> Path:
    gen = np.random.default_rng(0)
    data: dict[str, Any] = {"acc": gen.normal(size=(60, 3, 16)), "labels": np.arange(60) % 3}
    data.update(arrays)
    path = tmp_path / "d.npz"
    np.savez(path, **{k: v for k, v in data.items() if v is not None})
    return path


def _with_text_member(tmp_path: Path) -> Path:
    path = _npz(tmp_path)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("readme.txt", "not an array")
    return path


BAD_NPZ: dict[str, Callable[[Path], Path]] = {
    "text-member": _with_text_member,
    "huge-label": lambda p: _npz(p, labels=np.full(60, 10**12)),
    "label-gaps": lambda p: _npz(p, labels=(np.arange(60) % 3) * 5),
    "float64-overflow": lambda p: _npz(p, acc=np.full((60, 3, 16), 1e300)),
    "single-class": lambda p: _npz(p, labels=np.zeros(60, dtype=int)),
    "empty-test": lambda p: _npz(p, acc=np.zeros((2, 3, 16)), labels=np.array([0, 1])),
    "channels-last": lambda p: _npz(p, acc=np.zeros((60, 100, 3))),
    "float-labels": lambda p: _npz(p, labels=np.linspace(0, 2, 60)),
    "not-a-zip": lambda p: (p / "d.npz", (p / "d.npz").write_bytes(b"PK\x03\x04junk"))[0],
    "bad-split": lambda p: _npz(p, split=np.full(60, "dev")),
}


@pytest.mark.parametrize("bad", list(BAD_NPZ))
def test_bad_npz_files_are_one_line(
    bad: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    BAD_NPZ[bad](tmp_path)
    scenario = tmp_path / "npz.yaml"
    scenario.write_text(
        "data: {source: {kind: npz, path: d.npz}}\nfleet: {phones: 2}\n"
        "rounds: {rounds: 1, clients_per_round: 2}\nruntime: {backend: inprocess}\n"
        "model: {conv_channels: [4]}\noutput: {plots: false}\n"
    )
    out = str(tmp_path / "runs")
    assert_one_line_refusal(*cli(["run", str(scenario), "-q", "--output", out], capsys))
