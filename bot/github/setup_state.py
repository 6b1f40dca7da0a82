"""The `state` of a GitHub App install link: signed (HMAC-SHA256 with a server secret), bound to the workspace
and the person who asked for it, expiring, and good for one installation only (its nonce is recorded on use)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.db.models import GitHubSetupNonce

STATE_TTL = timedelta(minutes=30)


class SetupStateError(Exception):
    """The state is forged, expired or already used; the message says so in plain words."""


@dataclass(frozen=True)
class SetupState:
    team_id: str
    user_id: str
    nonce: str
    expires_at: datetime


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SetupStateSigner:
    """Makes and checks install-link states with `secret` (never empty)."""

    def __init__(self, secret: bytes, clock: Clock, *, ttl: timedelta = STATE_TTL) -> None:
        if not secret:
            raise ValueError("the setup state secret must not be empty")
        self._secret = secret
        self.clock = clock
        self.ttl = ttl

    def _mac(self, body: str) -> str:
        return _b64(hmac.new(self._secret, body.encode(), hashlib.sha256).digest())

    def issue(self, team_id: str, user_id: str) -> str:
        """A fresh state for `user_id` of `team_id`, good for `ttl` from now."""
        expires = int((self.clock.now() + self.ttl).timestamp())
        payload = {"t": team_id, "u": user_id, "n": secrets.token_urlsafe(16), "e": expires}
        body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
        return f"{body}.{self._mac(body)}"

    def verify(self, state: str) -> SetupState:
        """The state's contents, if it was signed here and has not expired (use `consume` to also spend it)."""
        body, _, mac = state.partition(".")
        if not body or not mac or not hmac.compare_digest(mac, self._mac(body)):
            raise SetupStateError("This install link was not made by Phasegate.")
        try:
            payload = json.loads(_unb64(body))
            parsed = SetupState(
                team_id=str(payload["t"]),
                user_id=str(payload["u"]),
                nonce=str(payload["n"]),
                expires_at=datetime.fromtimestamp(int(payload["e"]), tz=self.clock.now().tzinfo),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise SetupStateError("This install link was not made by Phasegate.") from exc
        if self.clock.now() >= parsed.expires_at:
            raise SetupStateError("This install link has expired.")
        return parsed

    async def consume(self, s: AsyncSession, state: str) -> SetupState:
        """Verify `state` and spend it: a second use is refused. Commits the nonce."""
        parsed = self.verify(state)
        s.add(GitHubSetupNonce(nonce=parsed.nonce, team_id=parsed.team_id, used_at=self.clock.now()))
        try:
            await s.commit()
        except IntegrityError as exc:
            await s.rollback()
            raise SetupStateError("This install link has already been used.") from exc
        return parsed
