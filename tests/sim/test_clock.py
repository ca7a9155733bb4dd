"""The virtual clock orders events by time, priority, then scheduling order."""

import pytest

from fedmobile_actors.sim.clock import VirtualClock


def test_events_come_out_by_time_then_priority_then_schedule_order() -> None:
    clock: VirtualClock[str] = VirtualClock()
    clock.schedule(5.0, "late")
    clock.schedule(1.0, "b", priority=2)
    clock.schedule(1.0, "a", priority=1)
    clock.schedule(1.0, "c", priority=2)
    assert clock.peek_s() == 1.0
    assert [clock.pop() for _ in range(4)] == [(1.0, "a"), (1.0, "b"), (1.0, "c"), (5.0, "late")]
    assert clock.now == 5.0 and len(clock) == 0 and clock.peek_s() is None


def test_uncomparable_events_with_equal_keys_do_not_break_the_heap() -> None:
    clock: VirtualClock[dict[str, int]] = VirtualClock()
    clock.schedule(1.0, {"x": 1})
    clock.schedule(1.0, {"x": 2})
    assert [clock.pop()[1]["x"] for _ in range(2)] == [1, 2]


def test_scheduling_in_the_past_is_refused() -> None:
    clock: VirtualClock[str] = VirtualClock(start_s=10.0)
    with pytest.raises(ValueError, match="already at 10"):
        clock.schedule(9.0, "x")
    with pytest.raises(IndexError):
        clock.pop()
