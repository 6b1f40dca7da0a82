"""The `github connect` install link's state: signed, bound, expiring, single use."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.clock import FakeClock
from bot.db.session import Database
from bot.github.setup_state import SetupStateError, SetupStateSigner


async def test_a_state_links_once_for_its_workspace_and_person(db: Database, clock: FakeClock) -> None:
    signer = SetupStateSigner(b"server-secret", clock)
    state = signer.issue("TA000001", "U1")
    async with db.session() as s:
        parsed = await signer.consume(s, state)
    assert (parsed.team_id, parsed.user_id) == ("TA000001", "U1")
    async with db.session() as s:
        with pytest.raises(SetupStateError, match="already been used"):
            await signer.consume(s, state)


async def test_forged_and_expired_states_are_refused(db: Database, clock: FakeClock) -> None:
    signer = SetupStateSigner(b"server-secret", clock)
    other = SetupStateSigner(b"another-secret", clock)
    state = signer.issue("TA000001", "U1")
    body, _, mac = state.partition(".")
    tampered = signer.issue("TB000002", "U9").split(".")[0] + "." + mac  # another workspace's body, this MAC
    for forged in (other.issue("TA000001", "U1"), tampered, "garbage", "", f"{body}."):
        with pytest.raises(SetupStateError, match="not made by Phasegate"):
            signer.verify(forged)
    clock.advance(timedelta(minutes=31))
    async with db.session() as s:
        with pytest.raises(SetupStateError, match="expired"):
            await signer.consume(s, state)


def test_the_secret_must_not_be_empty(clock: FakeClock) -> None:
    with pytest.raises(ValueError):
        SetupStateSigner(b"", clock)
