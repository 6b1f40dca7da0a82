"""Pacing per GitHub identity: one pacer and one write lock per installation (or token)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import pytest

from bot.clock import FakeClock
from bot.github.pacing import PacerPool
from bot.locks import SyncLock


async def test_retry_after_on_one_installation_does_not_pause_the_other(
    clock: FakeClock, fake_sleep: Callable[[float], Awaitable[None]]
) -> None:
    pool = PacerPool(clock, fake_sleep, per_minute=80, per_hour=500)
    a, b = pool.pacer("installation:1"), pool.pacer("installation:2")
    assert pool.pacer("installation:1") is a and a is not b
    a.pause(120)
    start = clock.now()
    for _ in range(3):
        async with b.write():
            pass
    await b.read()
    assert clock.now() - start == timedelta(seconds=1.5)  # b's own spacing only, no 120 s pause
    assert set(pool.paused()) == {"installation:1"}
    async with a.write():
        pass
    assert clock.now() >= start + timedelta(seconds=120)
    assert pool.paused() == {}


async def test_each_identity_has_its_own_budget(
    clock: FakeClock, fake_sleep: Callable[[float], Awaitable[None]]
) -> None:
    pool = PacerPool(clock, fake_sleep, per_minute=2, per_hour=500)
    start = clock.now()
    for key in ("installation:1", "installation:2", "token"):
        async with pool.pacer(key).write():
            pass
    assert clock.now() == start  # the first write of each identity waits for nobody
    assert pool.keys() == ["installation:1", "installation:2", "token"]
    async with pool.pacer("token").write():
        pass
    assert clock.now() == start + timedelta(seconds=30)


def test_budgets_must_be_positive(clock: FakeClock) -> None:
    with pytest.raises(ValueError):
        PacerPool(clock, per_minute=0)


async def test_write_locks_are_per_identity_key(tmp_path: Path) -> None:
    lock = SyncLock(f"sqlite+aiosqlite:///{tmp_path / 'pg.db'}", poll=0.001)
    assert lock.file_for("") == lock.path
    assert lock.file_for("installation:1") != lock.file_for("installation:2")
    order: list[str] = []
    async with lock.hold("installation:1"):
        # another identity is not held up by installation 1's lock
        async with asyncio.timeout(2):
            async with lock.hold("installation:2"):
                order.append("2")
        # the same identity waits
        waiter = asyncio.create_task(_hold(lock, "installation:1", order))
        await asyncio.sleep(0.01)
        assert not waiter.done()
        order.append("1-released")
    await asyncio.wait_for(waiter, 2)
    assert order == ["2", "1-released", "1"]


async def _hold(lock: SyncLock, key: str, order: list[str]) -> None:
    async with lock.hold(key):
        order.append(key.split(":")[1])


async def test_two_processes_wait_only_for_the_same_identity(database_url: str) -> None:
    """Two SyncLock objects stand for two processes (serve and `phasegate sync`): advisory lock / flock per key."""
    first, second = SyncLock(database_url, poll=0.005), SyncLock(database_url, poll=0.005)
    async with first.hold("installation:1"):
        async with asyncio.timeout(5):
            async with second.hold("installation:2"):
                pass
        blocked = asyncio.create_task(_enter(second, "installation:1"))
        await asyncio.sleep(0.1)
        assert not blocked.done()
    await asyncio.wait_for(blocked, 5)


async def _enter(lock: SyncLock, key: str) -> None:
    async with lock.hold(key):
        pass
