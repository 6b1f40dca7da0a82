"""Pacing of GitHub requests: serial writes under the secondary limits, one shared pause, retry backoff."""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

from bot.clock import Clock

Sleep = Callable[[float], Awaitable[None]]


class Pacer:
    """Writes one at a time, at most `per_minute` in any minute and `per_hour` in any hour, evenly spaced;
    `pause()` (a Retry-After or a rate-limit reset) holds back every read and write until it ends.

    Time comes from `clock` and waiting from `sleep`, so tests run on a fake clock without sleeping.
    """

    def __init__(
        self, clock: Clock, sleep: Sleep = asyncio.sleep, *, per_minute: int = 80, per_hour: int = 500
    ) -> None:
        if per_minute < 1 or per_hour < 1:
            raise ValueError("write budgets must be at least 1")
        self.clock = clock
        self.sleep = sleep
        self.per_minute = per_minute
        self.per_hour = per_hour
        self.spacing = 60.0 / per_minute
        self.paused_until: datetime | None = None
        self.writes = 0
        self._sent: deque[datetime] = deque()
        self._lock = asyncio.Lock()

    def pause(self, seconds: float) -> datetime:
        """Hold all work back for `seconds` from now (never shortens a longer pause); returns its end."""
        until = self.clock.now() + timedelta(seconds=seconds)
        if self.paused_until is None or until > self.paused_until:
            self.paused_until = until
        return self.paused_until

    async def wait_pause(self) -> None:
        """Return once no pause is in force."""
        while self.paused_until is not None:
            left = (self.paused_until - self.clock.now()).total_seconds()
            if left <= 0:
                self.paused_until = None
                return
            await self.sleep(left)

    def _next_write_at(self, now: datetime) -> datetime:
        while self._sent and self._sent[0] <= now - timedelta(hours=1):
            self._sent.popleft()
        at = now
        if self._sent:
            at = max(at, self._sent[-1] + timedelta(seconds=self.spacing))
        recent = [t for t in self._sent if t > now - timedelta(minutes=1)]
        if len(recent) >= self.per_minute:
            at = max(at, recent[-self.per_minute] + timedelta(minutes=1))
        if len(self._sent) >= self.per_hour:
            at = max(at, self._sent[-self.per_hour] + timedelta(hours=1))
        return at

    @asynccontextmanager
    async def write(self) -> AsyncIterator[None]:
        """`async with pacer.write(): <one content-creating request>` — serial and within budget."""
        async with self._lock:
            while True:
                await self.wait_pause()
                now = self.clock.now()
                wait = (self._next_write_at(now) - now).total_seconds()
                if wait <= 0 and self.paused_until is None:
                    break
                if wait > 0:
                    await self.sleep(wait)
            self._sent.append(self.clock.now())
            self.writes += 1
            yield

    async def read(self) -> None:
        """Call before a read: waits out a pause."""
        await self.wait_pause()


def backoff_seconds(attempts: int, *, base: float = 2.0, cap: float = 900.0, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter for the `attempts`-th failure: base·2^(n-1), capped, times 0.5–1."""
    raw = min(cap, base * 2.0 ** max(attempts - 1, 0))
    jitter: float = (rng or random).random()
    return raw * (0.5 + jitter / 2)


class PacerPool:
    """One `Pacer` per GitHub identity (a token or an App installation), since GitHub's secondary limits apply
    per token: writes for one identity stay serial, different identities write concurrently, and a pause
    (Retry-After) on one identity holds back that identity only.

    Every pacer shares the clock, the sleep and the budgets given here; `pacer(key)` makes one on first use.
    """

    def __init__(
        self, clock: Clock, sleep: Sleep = asyncio.sleep, *, per_minute: int = 80, per_hour: int = 500
    ) -> None:
        if per_minute < 1 or per_hour < 1:
            raise ValueError("write budgets must be at least 1")
        self.clock = clock
        self.sleep = sleep
        self.per_minute = per_minute
        self.per_hour = per_hour
        self._pacers: dict[str, Pacer] = {}

    def pacer(self, key: str) -> Pacer:
        """The pacer of identity `key` (e.g. "installation:42" or "token"), made on first use."""
        found = self._pacers.get(key)
        if found is None:
            found = Pacer(self.clock, self.sleep, per_minute=self.per_minute, per_hour=self.per_hour)
            self._pacers[key] = found
        return found

    def keys(self) -> list[str]:
        return sorted(self._pacers)

    def paused(self) -> dict[str, datetime]:
        """Identities under a pause that has not ended yet, with its end."""
        now = self.clock.now()
        return {
            k: p.paused_until for k, p in self._pacers.items() if p.paused_until is not None and p.paused_until > now
        }
