"""Who this process has seen with a stored profile, so their next commands skip reading it before the command runs."""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime, timedelta

from bot.clock import Clock

KNOWN_FOR = timedelta(minutes=10)
KNOWN_AT_MOST = 10_000


class KnownPeople:
    """(team, user) pairs whose Slack profile Phasegate has stored: their commands need not look the person up first
    (the zone is read when a command needs one, `Context.zone`). Only a purge or uninstall undoes the fact; such
    events drop the workspace here (`forget_team`), and for another process's, an entry lasts `ttl` at most. The
    least recently seen are dropped beyond `size`."""

    def __init__(self, clock: Clock, *, ttl: timedelta = KNOWN_FOR, size: int = KNOWN_AT_MOST) -> None:
        self.clock, self.ttl, self.size = clock, ttl, size
        self._seen: OrderedDict[tuple[str, str], datetime] = OrderedDict()

    def __contains__(self, key: tuple[str, str]) -> bool:
        seen = self._seen.get(key)
        if seen is None:
            return False
        if self.clock.now() - seen >= self.ttl:
            del self._seen[key]
            return False
        self._seen.move_to_end(key)
        return True

    def add(self, key: tuple[str, str]) -> None:
        self._seen[key] = self.clock.now()
        self._seen.move_to_end(key)
        while len(self._seen) > self.size:
            self._seen.popitem(last=False)

    def forget_team(self, team_id: str) -> None:
        for key in [k for k in self._seen if k[0] == team_id]:
            del self._seen[key]

    def __len__(self) -> int:
        return len(self._seen)
