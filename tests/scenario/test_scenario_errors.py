"""Each kind of bad scenario gives one line per problem: field path, value, what is allowed."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from scenario_helpers import SCENARIOS, problems_of

from fedmobile_actors.cli.main import main
from fedmobile_actors.scenario.traces import trace_problem

TIER = "{{name: {name}, share: {share}, samples_per_second: 100, down_mbps: 10, up_mbps: {up}}}"


def tiers(*shares: float, up: float = 5) -> str:
    items = ", ".join(
        TIER.format(name=f"t{i}", share=s, up=up if i == 0 else 5) for i, s in enumerate(shares)
    )
    return f"[{items}]"


def test_unknown_key_suggests_the_closest_field(write: Callable[..., Path]) -> None:
    """fleet.phone -> 'did you mean phones', with the allowed names listed."""
    [line] = problems_of(write("fleet: {phone: 3}\n"))
    assert "fleet.phone: unknown field" in line
    assert "did you mean 'phones'?" in line and "failure_prob" in line


def test_dotted_key_in_yaml_says_to_nest_it(write: Callable[..., Path]) -> None:
    """A YAML key written as a dotted path is explained, not just rejected."""
    [line] = problems_of(write("fleet.phones: 3\n"))
    assert "nest it" in line


def test_out_of_range_rate_names_path_value_and_range(write: Callable[..., Path]) -> None:
    """A missing rate of 1.5 says where, what, and 0 <= x <= 1."""
    [line] = problems_of(write("modalities: {missing: [{modality: gyro, rate: 1.5}]}\n"))
    assert "modalities.missing.0.rate: value 1.5: out of range" in line
    assert "0 <= x <= 1" in line


def test_tier_shares_not_summing_to_one_name_fleet_tiers(write: Callable[..., Path]) -> None:
    """Shares 0.5 + 0.3: the line names fleet.tiers, the shares, their sum and the rule."""
    [line] = problems_of(write(f"fleet: {{tiers: {tiers(0.5, 0.3)}}}\n"))
    assert line.split(": ")[1] == "fleet.tiers"
    assert "0.5 + 0.3" in line and "sum to 0.8" in line and "sum to 1" in line


def test_tier_shares_reported_alongside_other_fleet_errors(write: Callable[..., Path]) -> None:
    """A bad phones count in the same section does not hide the shares problem."""
    lines = problems_of(write(f"fleet: {{phones: 0, tiers: {tiers(0.5, 0.3)}}}\n"))
    assert any("fleet.phones: value 0" in line for line in lines)
    assert any("fleet.tiers" in line and "sum to 0.8" in line for line in lines)


def test_tier_shares_reported_when_a_tier_itself_is_invalid(write: Callable[..., Path]) -> None:
    """Even when pydantic stops at a bad tier bandwidth, the shares are still checked."""
    lines = problems_of(write(f"fleet: {{tiers: {tiers(0.5, 0.3, up=-1)}}}\n"))
    assert any("fleet.tiers.0.up_mbps" in line and "value -1" in line for line in lines)
    assert any("fleet.tiers:" in line and "sum to 0.8" in line for line in lines)
    assert len(lines) == 2


def test_several_problems_give_several_lines(write: Callable[..., Path]) -> None:
    """Three independent mistakes, three lines, each naming its own field."""
    lines = problems_of(
        write("rounds: {policy: sometimes, rounds: 2.5}\nfleet: {failure_prob: 1}\n")
    )
    assert len(lines) == 3
    joined = "\n".join(lines)
    assert "rounds.policy: value 'sometimes'" in joined and "'deadline', 'async'" in joined
    assert "rounds.rounds: value 2.5: not a whole number" in joined
    assert "fleet.failure_prob: value 1: out of range" in joined and "0 <= x < 1" in joined


def test_unknown_kind_names_the_discriminator_key(write: Callable[..., Path]) -> None:
    """availability: {model: sometimes} points at fleet.availability.model and lists kinds."""
    [line] = problems_of(write("fleet: {availability: {model: sometimes}}\n"))
    assert "fleet.availability.model: value 'sometimes'" in line
    assert "'markov'" in line and "'trace'" in line


def test_modality_not_in_dataset_names_the_rule_entry(write: Callable[..., Path]) -> None:
    """A missing rule for 'magnetometer' names modalities.missing.0.modality and acc, gyro."""
    [line] = problems_of(write("modalities: {missing: [{modality: magnetometer, rate: 0.5}]}\n"))
    assert "modalities.missing.0.modality: value 'magnetometer'" in line
    assert "acc, gyro" in line


def test_missing_trace_file_is_caught_at_load(write: Callable[..., Path]) -> None:
    """A trace that does not exist fails validation, naming the resolved file."""
    path = write("fleet: {availability: {model: trace, file: traces/gone.csv}}\n")
    [line] = problems_of(path)
    assert "fleet.availability.file: value 'traces/gone.csv'" in line
    assert str(path.parent / "traces" / "gone.csv") in line and "not found" in line


@pytest.mark.parametrize(
    ("body", "where", "words"),
    [
        ("phone,from,until\n0,0,10\n", ":1:", "header"),
        ("phone,online_from,online_until\n0,0,10\n1,5\n", ":3:", "expected 3 fields"),
        ("phone,online_from,online_until\n0,0,10\nx,0,10\n", ":3:", "not a whole number"),
        ("phone,online_from,online_until\n0,10,5\n", ":2:", "greater than"),
        ("phone,online_from,online_until\n0,0,inf\n", ":2:", "finite"),
        ("phone,online_from,online_until\n", ":", "no online intervals"),
    ],
)
def test_malformed_trace_names_file_and_line(
    write: Callable[..., Path], body: str, where: str, words: str
) -> None:
    """Each malformed trace gives one line with the trace file, the line number and the fault."""
    trace = write(body, "trace.csv")
    [line] = problems_of(write("fleet: {availability: {model: trace, file: trace.csv}}\n"))
    assert f"{trace}{where}" in line and words in line


def test_bundled_example_trace_is_valid() -> None:
    """The example trace shipped with the scenarios passes the reader."""
    assert trace_problem(SCENARIOS / "traces" / "example_trace.csv") is None


def test_sweep_over_a_field_that_does_not_exist(write: Callable[..., Path]) -> None:
    """A grid key that is no field path is named, with the closest real path."""
    [line] = problems_of(write("sweep: {grid: {fleet.failure_prop: [0, 0.1]}}\n"))
    assert "sweep.grid['fleet.failure_prop']" in line
    assert "did you mean 'fleet.failure_prob'?" in line


def test_sweep_value_that_does_not_validate(write: Callable[..., Path]) -> None:
    """A grid value is validated in place: its index, the field and the range are named."""
    [line] = problems_of(write("sweep: {grid: {fleet.failure_prob: [0, 0.5, 1.5]}}\n"))
    assert "sweep.grid['fleet.failure_prob'][2]" in line
    assert "fleet.failure_prob: value 1.5: out of range" in line


def test_sweeping_the_seed_points_to_sweep_seeds(write: Callable[..., Path]) -> None:
    """seed is not a grid key; the line says seeds go in sweep.seeds."""
    [line] = problems_of(write("sweep: {grid: {seed: [1, 2]}}\n"))
    assert "sweep.seeds" in line


def test_override_of_a_field_that_does_not_exist(write: Callable[..., Path]) -> None:
    """-o rounds.deadline=5 names the override and suggests rounds.deadline_s."""
    [line] = problems_of(write(""), ("rounds.deadline=5",))
    assert "override 'rounds.deadline=5'" in line and "did you mean 'rounds.deadline_s'?" in line


def test_override_into_a_number_and_without_equals(write: Callable[..., Path]) -> None:
    """Two bad overrides: both reported, each one line."""
    lines = problems_of(write(""), ("fleet.phones.count=3", "fleet.phones"))
    assert len(lines) == 2
    assert "fleet.phones is a whole number and has no fields" in lines[0]
    assert "expected dotted.path=value" in lines[1]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("fleet:\n\tphones: 3\n", "spaces, not tabs"),
        ("fleet: {phones: 3}\nfleet: {phones: 4}\n", "duplicate key 'fleet'"),
        ("rounds: {deadline_s: .inf}\n", "not a finite number"),
        ("rounds: {deadline_s: .nan}\n", "not a finite number"),
        ("fleet: {phones: " + "9" * 5000 + "}\n", "more digits"),
        ("fleet: {phones: " + "9" * 40 + "}\n", "out of range"),
        ("seed: 5000000000\n", "0 <= x <= 4_294_967_295"),
        ("1: 2\n", "keys must be text"),
        ("? [a, b]\n: 1\n", "unhashable"),
        ("- just\n- a list\n", "must be a mapping"),
        ("x: &a [*a, *a]\nfleet: *a\n", "fleet: value"),
        ("a: !!python/object:os.system x\n", "not valid YAML"),
        ("[" * 3000 + "]" * 3000, "nested too deeply"),
    ],
)
def test_hostile_yaml_gives_one_clear_line(
    write: Callable[..., Path], text: str, words: str
) -> None:
    """Tabs, duplicates, .inf/.nan, huge numbers, odd keys, aliases, tags, deep nesting."""
    lines = problems_of(write(text))
    assert any(words in line for line in lines), lines


def test_binary_file_directory_and_missing_file(tmp_path: Path) -> None:
    """Bytes that are not UTF-8, a directory, and a path that does not exist: one line each."""
    binary = tmp_path / "b.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    assert "not a text file" in problems_of(binary)[0]
    assert "is a directory" in problems_of(tmp_path)[0]
    assert "not found" in problems_of(tmp_path / "nope.yaml")[0]


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Permission denied is a ScenarioError naming the file and the reason."""
    path = tmp_path / "secret.yaml"
    path.write_text("seed: 1\n")

    def denied(self: Path) -> bytes:
        raise PermissionError(13, os.strerror(13), str(self))

    monkeypatch.setattr(Path, "read_bytes", denied)
    [line] = problems_of(path)
    assert str(path) in line and "Permission denied" in line


def test_cli_prints_one_line_per_problem_and_exits_2(
    write: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """fedmobile validate on a file with two mistakes: exit code 2, two lines, no traceback."""
    path = write("fleet: {phones: -1}\nrounds: {polcy: async}\n")
    code = main(["validate", str(path)])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 2
    assert all(line.startswith("fedmobile: error: ") for line in lines)
    assert "Traceback" not in err


def test_cli_bad_override_exits_2(
    write: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """fedmobile validate -o with a wrong path: exit code 2 and the override is named."""
    code = main(["validate", str(write("")), "-o", "fleet.phonez=3"])
    err = capsys.readouterr().err
    assert code == 2 and "fleet.phonez" in err and "Traceback" not in err


def test_cuda_on_ray_without_a_reserved_gpu_names_runtime_device(
    write: Callable[..., Path],
) -> None:
    """runtime.device: cuda with gpus_per_host 0 on Ray: the hosts would have no GPU of their
    own; one line says which two fields to change."""
    [line] = problems_of(write("runtime: {device: cuda}\n"))
    assert "runtime.device: value 'cuda'" in line and "gpus_per_host > 0" in line


def test_unknown_device_lists_the_allowed_ones(write: Callable[..., Path]) -> None:
    [line] = problems_of(write("runtime: {device: gpu}\n"))
    assert "runtime.device: value 'gpu'" in line and "'auto', 'cpu', 'cuda'" in line
