"""The simulated day's compressed clock: frozen until run, fast up to its hour's end, then stopped there."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bench.memory_day import CompressedClock

START = datetime(2026, 3, 2, tzinfo=UTC)


class Wall:
    def __init__(self) -> None:
        self.t = 1000.0

    def time(self) -> float:
        return self.t


@pytest.fixture
def wall() -> Wall:
    return Wall()


def test_the_clock_is_frozen_until_it_runs(wall: Wall) -> None:
    clock = CompressedClock(START, wall.time)
    wall.t += 50
    assert clock.now() == START


def test_it_runs_factor_times_faster_and_stops_at_the_end_of_its_hour(wall: Wall) -> None:
    clock = CompressedClock(START, wall.time)
    clock.run(360.0, START + timedelta(hours=1))
    wall.t += 5
    assert clock.now() == START + timedelta(minutes=30)
    wall.t += 60  # the traffic of the hour is late: simulated time waits for it at the hour
    assert clock.now() == START + timedelta(hours=1)
    clock.run(360.0, START + timedelta(hours=2))
    wall.t += 1
    assert clock.now() == START + timedelta(hours=1, minutes=6)


def test_a_pause_keeps_the_time_and_running_again_goes_on_from_there(wall: Wall) -> None:
    clock = CompressedClock(START, wall.time)
    clock.run(360.0, START + timedelta(hours=1))
    wall.t += 2
    clock.pause()
    wall.t += 30  # a slow sample: no simulated time passes
    assert clock.now() == START + timedelta(minutes=12)
    clock.run(360.0, START + timedelta(hours=1))
    wall.t += 1
    assert clock.now() == START + timedelta(minutes=18)
