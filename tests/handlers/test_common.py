"""What every listener shares: the acting person's context asks Slack for a profile once, not on every command."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from aiohttp import web
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import event

from bot.clock import FakeClock
from bot.commands import Context, dispatch
from bot.messaging import Person, RecordingMessenger
from bot.services import Actor, Services
from bot.services.known_people import KNOWN_FOR
from bot.slack_client import SharedSession
from handlers.common import ResponseUrlRefused, context_for, is_slash_command, replayed, responder

TEAM, CHANNEL = "TA000001", "C0COMMON01"


@dataclass
class CountingMessenger(RecordingMessenger):
    asked: int = 0

    async def person(self, *, team_id: str, user_id: str) -> Person | None:
        self.asked += 1
        return await super().person(team_id=team_id, user_id=user_id)


def _services(services: Services, messenger: CountingMessenger) -> Services:
    services.messenger = messenger
    return services


async def test_a_person_whose_profile_is_stored_is_not_looked_up_again(services: Services) -> None:
    messenger = CountingMessenger(people={"U0ANA0001": Person("U0ANA0001", "ana", timezone="Europe/Lisbon")})
    services = _services(services, messenger)
    contexts = [
        await context_for(services, team_id=TEAM, user_id="U0ANA0001", channel_id=CHANNEL, command="/phasegate")
        for _ in range(3)
    ]
    assert [await c.zone() for c in contexts] == ["Europe/Lisbon"] * 3
    assert messenger.asked == 1


async def test_a_person_slack_gives_no_zone_is_asked_once_and_reads_utc(services: Services) -> None:
    messenger = CountingMessenger(people={"U0RAJ0001": Person("U0RAJ0001", "raj", timezone=None)})
    services = _services(services, messenger)
    for _ in range(3):
        ctx = await context_for(services, team_id=TEAM, user_id="U0RAJ0001", channel_id=CHANNEL, command="/phasegate")
        assert await ctx.zone() == "UTC"
    assert messenger.asked == 1


async def test_a_known_persons_command_reads_nothing_before_it_runs(services: Services, clock: FakeClock) -> None:
    """Seen once with a stored profile, a person's next contexts cost no statement: the command's session is the
    only one, and the zone is read when a command asks for it. Forgotten with their workspace, and after a while."""
    messenger = CountingMessenger(people={"U0MIA0001": Person("U0MIA0001", "mia", timezone="Asia/Kolkata")})
    services = _services(services, messenger)

    async def context() -> Context:
        return await context_for(services, team_id=TEAM, user_id="U0MIA0001", channel_id=CHANNEL, command="/pg")

    assert (await context()).tz == "Asia/Kolkata"
    statements: list[str] = []
    listen = lambda *args: statements.append(args[2])  # noqa: E731 (before_cursor_execute's statement)
    event.listen(services.db.engine.sync_engine, "before_cursor_execute", listen)
    try:
        later = await context()
        assert statements == [] and later.tz is None
        assert await later.zone() == "Asia/Kolkata" and len(statements) == 1
    finally:
        event.remove(services.db.engine.sync_engine, "before_cursor_execute", listen)
    services.known_people.forget_team(TEAM)
    assert (await context()).tz == "Asia/Kolkata"  # read again (the profile is stored: Slack is not asked)
    clock.advance(KNOWN_FOR)
    assert ("TA000001", "U0MIA0001") not in services.known_people
    assert messenger.asked == 1


async def test_a_person_slack_does_not_know_is_asked_again_later(services: Services) -> None:
    messenger = CountingMessenger()
    services = _services(services, messenger)
    for _ in range(2):
        await context_for(services, team_id=TEAM, user_id="U0NEW0001", channel_id=CHANNEL, command="/phasegate")
    assert messenger.asked == 2  # nothing was stored: the next command tries again


async def test_status_only_reads_so_it_does_not_wake_the_github_sync(services: Services) -> None:
    ctx = Context(services=services, actor=Actor(TEAM, "U0LEAD0001"), channel_id=CHANNEL)
    assert (await dispatch(ctx, "init common repo=acme/common")).changed
    assert not (await dispatch(ctx, "status")).changed
    assert (await dispatch(ctx, 'task add title="Write it"')).changed


def test_a_slash_command_body_is_told_from_an_interaction_and_an_event() -> None:
    assert is_slash_command("team_id=T1&command=%2Fphasegate&text=status")
    assert not is_slash_command("payload=%7B%22type%22%3A%22block_actions%22%7D")
    assert not is_slash_command('{"type": "event_callback"}')


async def test_a_signature_is_accepted_once_and_a_request_without_one_is_never_a_replay(services: Services) -> None:
    signed = {"x-slack-signature": ["v0=abc"]}
    assert not await replayed(services, signed)
    assert await replayed(services, signed)  # the same signature again: a replay, its command must not run
    assert not await replayed(services, {})
    assert not await replayed(services, {})


async def test_answers_share_one_connection_and_a_refused_response_url_raises() -> None:
    """Through the bot's shared session, answers to response_urls reuse one keep-alive connection (Bolt's own
    respond() opened one per answer); a URL Slack no longer takes raises, so the answer goes by the Web API."""
    peers: list[object] = []

    async def response_url(request: web.Request) -> web.Response:
        peers.append(request.transport.get_extra_info("peername") if request.transport else None)
        if request.match_info["rid"] == "used":
            return web.Response(status=404, text="used_url")
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/r/{rid}", response_url)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    client = AsyncWebClient(token="xoxb-test")
    shared = SharedSession(client)
    await shared.open()
    try:
        for _ in range(3):
            respond = responder({"response_url": f"http://127.0.0.1:{port}/r/fine"}, client)
            assert respond is not None
            await respond(text="hi", blocks=None, response_type="ephemeral", replace_original=False)
        assert len(peers) == 3 and len(set(map(str, peers))) == 1  # one client port: one connection
        refused = responder({"response_url": f"http://127.0.0.1:{port}/r/used"}, client)
        assert refused is not None
        with pytest.raises(ResponseUrlRefused, match="404 used_url"):
            await refused(text="late", blocks=None, response_type="ephemeral", replace_original=False)
        assert responder({}, client) is None
    finally:
        await shared.close()
        await runner.cleanup()
    assert client.session is None  # closed at shutdown: a later call opens its own
