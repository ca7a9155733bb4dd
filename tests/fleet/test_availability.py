"""Each availability model, and trace files (replay, reuse, loop, errors)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from fedmobile_actors.errors import DataError
from fedmobile_actors.fleet.availability import (
    AvailabilityModel,
    DiurnalOnline,
    MarkovOnline,
    availability_model,
)
from fedmobile_actors.scenario.schema import (
    AlwaysOn,
    BernoulliAvailability,
    DiurnalAvailability,
    MarkovAvailability,
    TraceAvailability,
)


def test_always_on_is_online_for_ever() -> None:
    process = AvailabilityModel(AlwaysOn()).for_phone(3)
    assert process.online_at(1e9, 5) and process.next_offline(12.0, 0) == math.inf


def test_bernoulli_online_fraction_per_round_is_p_and_state_holds_within_a_round() -> None:
    model = AvailabilityModel(BernoulliAvailability(p_online=0.3), seed=1)
    phones = [model.for_phone(p) for p in range(4000)]
    for r in (0, 7):
        online = np.array([ph.online_at(0.0, r) for ph in phones])
        assert abs(online.mean() - 0.3) < 0.03
        assert all(ph.online_at(1e6, r) == o for ph, o in zip(phones, online, strict=True))
        assert all(
            ph.next_offline(5.0, r) == (math.inf if o else 5.0)
            for ph, o in zip(phones, online, strict=True)
        )
    states = np.array([[ph.online_at(0.0, r) for r in range(10)] for ph in phones[:50]])
    assert (states.min(axis=1) != states.max(axis=1)).any()  # redrawn per round


def test_markov_stationary_online_fraction_is_mean_on_over_cycle() -> None:
    model = AvailabilityModel(MarkovAvailability(mean_on_s=600, mean_off_s=300), seed=2)
    phones = [model.for_phone(p) for p in range(3000)]
    for t in (0.0, 5_000.0, 50_000.0):
        fraction = np.mean([ph.online_at(t, 0) for ph in phones])
        assert abs(fraction - 2 / 3) < 0.03


def test_markov_mean_holding_times_match_config() -> None:
    phone = MarkovOnline(0, seed=3, mean_on_s=600, mean_off_s=300)
    phone.online_at(3e6, 0)  # draws the timeline up to 3e6 s
    changes = np.array(phone._changes)
    durations = np.diff(changes)[1:-1]  # whole intervals only
    first_on = phone._online0 ^ True  # interval 1 has the opposite state of interval 0
    on = durations[0 if first_on else 1 :: 2]
    off = durations[1 if first_on else 0 :: 2]
    assert abs(on.mean() / 600 - 1) < 0.1 and abs(off.mean() / 300 - 1) < 0.1


def test_markov_answers_do_not_depend_on_query_order() -> None:
    times = [7_000.0, 12.0, 90_000.0, 3_500.5, 40_000.0]
    a = MarkovOnline(5, seed=4, mean_on_s=100, mean_off_s=50)
    b = MarkovOnline(5, seed=4, mean_on_s=100, mean_off_s=50)
    first = {t: (a.online_at(t, 0), a.next_offline(t, 0)) for t in times}
    second = {t: (b.online_at(t, 0), b.next_offline(t, 0)) for t in reversed(times)}
    assert first == second


def test_markov_next_offline_ends_the_current_online_stretch() -> None:
    phone = MarkovOnline(1, seed=5, mean_on_s=100, mean_off_s=50)
    checked = 0
    for t in np.linspace(0, 5_000, 200):
        off = phone.next_offline(float(t), 0)
        if phone.online_at(float(t), 0):
            assert off > t and phone.online_at(off - 1e-6, 0) and not phone.online_at(off, 0)
            checked += 1
        else:
            assert off == t
    assert checked > 50


def test_diurnal_online_rate_follows_the_wave() -> None:
    """Slots near a phone's peak are online far more often than slots near its trough."""
    config = DiurnalAvailability(period_s=1000, peak_online=0.9, trough_online=0.1, slot_s=50)
    model = AvailabilityModel(config, seed=6)
    high: list[bool] = []
    low: list[bool] = []
    for p in range(300):
        phone = model.for_phone(p)
        assert isinstance(phone, DiurnalOnline)
        for slot in range(40):
            t = slot * 50.0 + 1.0
            prob = phone.online_probability(t)
            (high if prob > 0.8 else low if prob < 0.2 else []).append(phone.online_at(t, 0))
    assert np.mean(high) > 0.8 and np.mean(low) < 0.2
    phases = {model.for_phone(p).phase_s for p in range(20)}  # type: ignore[attr-defined]
    assert len(phases) == 20


def test_diurnal_state_is_held_per_slot_and_next_offline_lands_on_a_slot_start() -> None:
    config = DiurnalAvailability(period_s=3600, peak_online=0.7, trough_online=0.3, slot_s=60)
    phone = DiurnalOnline(2, seed=7, config=config)
    for slot in range(100):
        assert phone.online_at(slot * 60.0, 0) == phone.online_at(slot * 60.0 + 59.9, 0)
        if phone.online_at(slot * 60.0 + 10, 0):
            off = phone.next_offline(slot * 60.0 + 10, 0)
            assert off % 60 == 0 and off > slot * 60.0 and not phone.online_at(off, 0)
            assert all(phone.online_at(t, 0) for t in np.arange(slot * 60.0 + 10, off, 60.0))


def test_diurnal_always_online_when_peak_and_trough_are_one() -> None:
    config = DiurnalAvailability(peak_online=1.0, trough_online=1.0)
    assert DiurnalOnline(0, 0, config).next_offline(100.0, 0) == math.inf


def _write(tmp_path: Path, text: str | bytes, name: str = "trace.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


TRACE = "phone,online_from,online_until\n0,10,20\n0,30,40\n1,0,100\n0,15,25\n"


def test_trace_replay_is_half_open_and_ends_offline(tmp_path: Path) -> None:
    _write(tmp_path, TRACE)
    model = availability_model(TraceAvailability(file="trace.csv"), seed=0, base_dir=tmp_path)
    phone = model.for_phone(0)
    assert [phone.online_at(t, 0) for t in (9.9, 10, 24.9, 25, 30, 41)] == [
        False, True, True, False, True, False,
    ]  # fmt: skip
    assert phone.next_offline(12.0, 0) == 25.0 and phone.next_offline(27.0, 0) == 27.0
    assert not phone.online_at(1e6, 0)


def test_trace_phones_beyond_the_trace_reuse_ids_modulo(tmp_path: Path) -> None:
    _write(tmp_path, TRACE)
    model = availability_model(TraceAvailability(file="trace.csv"), seed=0, base_dir=tmp_path)
    assert model.for_phone(4).online_at(12.0, 0) and not model.for_phone(4).online_at(50.0, 0)
    assert model.for_phone(5).online_at(50.0, 0)  # 5 % 2 == 1: online 0..100


def test_trace_loop_repeats_and_joins_stretches_across_the_loop(tmp_path: Path) -> None:
    path = _write(tmp_path, "phone,online_from,online_until\n0,0,10\n0,50,100\n1,0,100\n")
    model = availability_model(TraceAvailability(file=str(path), loop_s=100), seed=0)
    phone = model.for_phone(0)
    assert phone.online_at(205.0, 0) and not phone.online_at(230.0, 0)
    assert phone.next_offline(160.0, 0) == 210.0  # 150..200 runs on into 200..210
    assert model.for_phone(1).next_offline(5.0, 0) == math.inf


def test_missing_trace_file_is_a_one_line_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope\.csv: trace file not found"):
        availability_model(TraceAvailability(file="nope.csv"), seed=0, base_dir=tmp_path)
