"""Tests of the fake Slack Web API, driven by slack_sdk's real AsyncWebClient / AsyncWebhookClient."""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import builtin_async_handlers
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from tests.fakes.slack import FakeSlack

SUMMER = 1_750_000_000.0  # 2025-06-15 15:06:40 UTC: Berlin is on CEST (+2 h)
WINTER = 1_735_000_000.0  # 2024-12-24 00:26:40 UTC: Berlin is on CET (+1 h)
ALICE, BOB, CAROL, GENERAL = "U0ALICE01", "U0BOB0001", "U0CAROL01", "C0GENERAL1"
PROJECT = Path(__file__).resolve().parents[2]
TS = re.compile(r"^\d{10}\.\d{6}$")
MODAL = {"type": "modal", "callback_id": "kickoff", "title": {"type": "plain_text", "text": "Kick-off"},
         "submit": {"type": "plain_text", "text": "Start"},
         "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Ready?"}}]}
HOME = {"type": "home", "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "Phasegate"}}]}


class Clock:
    def __init__(self, now: float = SUMMER) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def fake(clock: Clock) -> AsyncIterator[FakeSlack]:
    fake = FakeSlack(clock=clock)
    await fake.start()
    fake.add_user(ALICE, "alice", tz="Europe/Berlin", status_text="On vacation", away=True)
    fake.add_user(BOB, "bob", tz="America/New_York", is_admin=True)
    fake.add_user(CAROL, "carol")
    fake.add_channel(GENERAL, "general", members=[ALICE, BOB, fake.bot_user_id])
    yield fake
    await fake.stop()


@pytest.fixture
def client(fake: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token="xoxb-test", base_url=fake.api_url)


async def slack_error(call: Any) -> SlackApiError:
    with pytest.raises(SlackApiError) as info:
        await call
    return info.value


async def error_of(call: Any) -> str:
    return str((await slack_error(call)).response["error"])


# ---- auth -----------------------------------------------------------------------------------------
async def test_auth_test_names_the_bot_and_team(client: AsyncWebClient, fake: FakeSlack) -> None:
    r = await client.auth_test()
    assert (r["team_id"], r["user_id"], r["bot_id"]) == ("T0001", fake.bot_user_id, fake.bot_id)
    assert r["url"] == "https://phasegate-test.slack.com/"
    assert fake.calls_to("auth.test")[0].headers["Authorization"] == "Bearer xoxb-test"


async def test_missing_or_bad_token_is_refused(fake: FakeSlack) -> None:
    assert await error_of(AsyncWebClient(base_url=fake.api_url).auth_test()) == "not_authed"
    bad = AsyncWebClient(token="nope", base_url=fake.api_url)
    assert await error_of(bad.chat_postMessage(channel=GENERAL, text="x")) == "invalid_auth"
    fake.valid_tokens = {"xoxb-only-this"}
    other = AsyncWebClient(token="xoxb-other", base_url=fake.api_url)
    assert await error_of(other.auth_test()) == "invalid_auth"
    assert (await AsyncWebClient(token="xoxb-only-this", base_url=fake.api_url).auth_test())["ok"]
    assert fake.messages() == []


# ---- chat.* ---------------------------------------------------------------------------------------
async def test_post_message_is_stored_and_echoed(client: AsyncWebClient, fake: FakeSlack) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Kick-off* today"}}]
    r = await client.chat_postMessage(channel=GENERAL, text="Kick-off today", blocks=blocks)
    assert r["channel"] == GENERAL and TS.match(r["ts"])
    assert r["message"]["text"] == "Kick-off today" and r["message"]["blocks"] == blocks
    reply = await client.chat_postMessage(channel=GENERAL, text="in thread", thread_ts=r["ts"])
    assert float(reply["ts"]) > float(r["ts"])
    stored = fake.messages(GENERAL)
    assert [m["text"] for m in stored] == ["Kick-off today", "in thread"]
    assert stored[1]["thread_ts"] == r["ts"] and stored[0]["user"] == fake.bot_user_id
    call = fake.calls_to("chat.postMessage")[0]
    assert call.headers["Content-Type"].startswith("application/json") and call.params["channel"] == GENERAL


async def test_post_message_to_a_user_id_lands_in_their_dm(client: AsyncWebClient, fake: FakeSlack) -> None:
    r = await client.chat_postMessage(channel=ALICE, text="psst")
    assert r["channel"] == fake.dm_channel_of(ALICE) and r["channel"].startswith("D")
    assert fake.messages(r["channel"])[0]["text"] == "psst"


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"channel": "C0MISSING1", "text": "x"}, "channel_not_found"),
    ({"channel": GENERAL, "text": "x", "blocks": [{"text": "no type"}]}, "invalid_blocks"),
    ({"channel": GENERAL, "text": "x", "blocks": [{"type": "header", "text": {"type": "plain_text",
                                                                              "text": "h" * 151}}]},
     "invalid_blocks"),
    ({"channel": GENERAL, "text": "x", "blocks": [{"type": "divider"}] * 51}, "invalid_blocks"),
    ({"channel": GENERAL, "text": "x", "blocks": "not json"}, "invalid_blocks_format"),
    ({"channel": GENERAL, "text": ""}, "no_text"),
    ({"channel": GENERAL, "text": "x" * 40_001}, "msg_too_long"),
    ({"channel": GENERAL, "text": "x", "attachments": [{"text": "a"}] * 101}, "too_many_attachments"),
])
@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
async def test_post_message_errors(client: AsyncWebClient, fake: FakeSlack, kwargs: dict[str, Any],
                                   error: str) -> None:
    e = await slack_error(client.chat_postMessage(**kwargs))
    assert e.response.status_code == 200 and e.response["error"] == error
    assert fake.messages() == []


async def test_invalid_blocks_say_what_is_wrong(client: AsyncWebClient) -> None:
    button = {"type": "button", "text": {"type": "plain_text", "text": "b" * 76}, "action_id": "go"}
    e = await slack_error(client.chat_postMessage(channel=GENERAL, text="x",
                                                  blocks=[{"type": "actions", "elements": [button]}]))
    assert "75" in e.response["response_metadata"]["messages"][0]


async def test_post_ephemeral_only_to_channel_members(client: AsyncWebClient, fake: FakeSlack) -> None:
    r = await client.chat_postEphemeral(channel=GENERAL, user=ALICE, text="only you")
    assert TS.match(r["message_ts"])
    assert fake.ephemerals(user=ALICE)[0]["text"] == "only you" and fake.ephemerals(user=BOB) == []
    e = await slack_error(client.chat_postEphemeral(channel=GENERAL, user=CAROL, text="x"))
    assert e.response["error"] == "user_not_in_channel"
    assert fake.messages() == []


async def test_update_permalink_reaction_delete(client: AsyncWebClient, fake: FakeSlack) -> None:
    ts = (await client.chat_postMessage(channel=GENERAL, text="v1"))["ts"]
    r = await client.chat_update(channel=GENERAL, ts=ts, text="v2")
    assert (r["ts"], r["text"], r["message"]["text"]) == (ts, "v2", "v2")
    assert fake.messages(GENERAL)[0]["text"] == "v2" and "edited" in fake.messages(GENERAL)[0]
    link = (await client.chat_getPermalink(channel=GENERAL, message_ts=ts))["permalink"]
    assert link == f"https://phasegate-test.slack.com/archives/{GENERAL}/p{ts.replace('.', '')}"
    await client.reactions_add(channel=GENERAL, name="white_check_mark", timestamp=ts)
    assert fake.messages(GENERAL)[0]["reactions"] == [
        {"name": "white_check_mark", "users": [fake.bot_user_id], "count": 1}]
    e = await slack_error(client.reactions_add(channel=GENERAL, name="white_check_mark", timestamp=ts))
    assert e.response["error"] == "already_reacted"
    assert (await client.chat_delete(channel=GENERAL, ts=ts))["ts"] == ts
    assert fake.messages(GENERAL) == [] and fake.messages(GENERAL, include_deleted=True)[0]["deleted"]
    for call in (client.chat_update(channel=GENERAL, ts=ts, text="v3"),
                 client.chat_delete(channel=GENERAL, ts=ts),
                 client.chat_getPermalink(channel=GENERAL, message_ts=ts)):
        assert await error_of(call) == "message_not_found"


# ---- conversations.* / users.* --------------------------------------------------------------------
async def test_conversations_open_is_deterministic(client: AsyncWebClient, fake: FakeSlack) -> None:
    first = await client.conversations_open(users=ALICE)
    again = await client.conversations_open(users=[ALICE])
    assert first["channel"]["id"] == again["channel"]["id"] == fake.dm_channel_of(ALICE)
    assert (first["already_open"], again["already_open"]) == (False, True)
    full = await client.conversations_open(users=ALICE, return_im=True)
    assert full["channel"]["is_im"] and full["channel"]["user"] == ALICE
    group = await client.conversations_open(users=[BOB, ALICE])
    assert group["channel"]["id"] == (await client.conversations_open(users=[ALICE, BOB]))["channel"]["id"]
    assert group["channel"]["id"] != first["channel"]["id"]
    assert await error_of(client.conversations_open(users="U0NOBODY1")) == "user_not_found"
    fake.reset()
    fake.add_user(ALICE, "alice")
    assert (await client.conversations_open(users=ALICE))["channel"]["id"] == first["channel"]["id"]


async def test_conversations_info_and_paginated_members(client: AsyncWebClient, fake: FakeSlack) -> None:
    info = (await client.conversations_info(channel=GENERAL, include_num_members=True))["channel"]
    assert (info["name"], info["is_channel"], info["is_member"]) == ("general", True, True)
    assert info["num_members"] == 3
    page1 = await client.conversations_members(channel=GENERAL, limit=2)
    cursor = page1["response_metadata"]["next_cursor"]
    assert page1["members"] == [ALICE, BOB] and cursor
    page2 = await client.conversations_members(channel=GENERAL, limit=2, cursor=cursor)
    assert page2["members"] == [fake.bot_user_id] and page2["response_metadata"]["next_cursor"] == ""
    e = await slack_error(client.conversations_members(channel=GENERAL, cursor="garbage"))
    assert e.response["error"] == "invalid_cursor"
    assert await error_of(client.conversations_info(channel="C0MISSING1")) == "channel_not_found"


async def test_users_info_tz_offset_follows_the_clock(client: AsyncWebClient, clock: Clock) -> None:
    alice = (await client.users_info(user=ALICE))["user"]
    assert (alice["tz"], alice["tz_offset"]) == ("Europe/Berlin", 7200)
    assert alice["profile"]["status_text"] == "On vacation" and alice["is_bot"] is False
    clock.now = WINTER
    assert (await client.users_info(user=ALICE))["user"]["tz_offset"] == 3600
    assert (await client.users_info(user=BOB))["user"]["tz_offset"] == -5 * 3600
    assert (await client.users_info(user=BOB))["user"]["is_admin"] is True
    assert await error_of(client.users_info(user="U0NOBODY1")) == "user_not_found"


async def test_users_list_lookup_and_presence(client: AsyncWebClient, fake: FakeSlack) -> None:
    members = (await client.users_list())["members"]
    assert {m["id"] for m in members} == {fake.bot_user_id, ALICE, BOB, CAROL}
    page = await client.users_list(limit=3)
    rest = await client.users_list(limit=3, cursor=page["response_metadata"]["next_cursor"])
    assert len(page["members"]) == 3 and len(rest["members"]) == 1
    assert (await client.users_lookupByEmail(email="bob@example.com"))["user"]["id"] == BOB
    e = await slack_error(client.users_lookupByEmail(email="nobody@example.com"))
    assert e.response["error"] == "users_not_found"
    assert (await client.users_getPresence(user=ALICE))["presence"] == "away"
    assert (await client.users_getPresence(user=BOB))["presence"] == "active"


# ---- views.* --------------------------------------------------------------------------------------
async def test_views_open_push_update_publish(client: AsyncWebClient, fake: FakeSlack) -> None:
    opened = (await client.views_open(trigger_id=fake.new_trigger_id(ALICE), view=MODAL))["view"]
    assert opened["id"].startswith("V") and opened["callback_id"] == "kickoff"
    assert opened["root_view_id"] == opened["id"]
    pushed = (await client.views_push(trigger_id=fake.new_trigger_id(ALICE), view=MODAL))["view"]
    assert pushed["previous_view_id"] == opened["id"] and pushed["root_view_id"] == opened["id"]
    assert [v["view_id"] for v in fake.views_opened()] == [opened["id"], pushed["id"]]
    assert fake.views_opened()[0]["user_id"] == ALICE
    changed = {**MODAL, "title": {"type": "plain_text", "text": "Kick-off (2)"}, "external_id": "k1"}
    updated = (await client.views_update(view_id=opened["id"], view=changed, hash=opened["hash"]))["view"]
    assert updated["id"] == opened["id"] and updated["title"]["text"] == "Kick-off (2)"
    assert updated["hash"] != opened["hash"]
    by_external = (await client.views_update(external_id="k1", view=MODAL))["view"]
    current = fake.view(opened["id"])
    assert by_external["id"] == opened["id"]
    assert current is not None and current["title"]["text"] == "Kick-off"
    e = await slack_error(client.views_update(view_id=opened["id"], view=MODAL, hash="stale.hash"))
    assert e.response["error"] == "hash_conflict"
    assert await error_of(client.views_update(view_id="V0MISSING", view=MODAL)) == "not_found"
    home = (await client.views_publish(user_id=BOB, view=HOME))["view"]
    assert fake.home_view(BOB) == home and home["type"] == "home" and fake.home_view(ALICE) is None
    again = (await client.views_publish(user_id=BOB, view=HOME))["view"]
    assert again["id"] == home["id"]
    e = await slack_error(client.views_publish(user_id=BOB, view=MODAL))
    assert e.response["error"] == "invalid_arguments"


async def test_trigger_ids_are_single_use_and_short_lived(client: AsyncWebClient, fake: FakeSlack,
                                                          clock: Clock) -> None:
    trigger = fake.new_trigger_id()
    await client.views_open(trigger_id=trigger, view=MODAL)
    assert await error_of(client.views_open(trigger_id=trigger, view=MODAL)) == "exchanged_trigger_id"
    assert await error_of(client.views_push(trigger_id=trigger, view=MODAL)) == "exchanged_trigger_id"
    e = await slack_error(client.views_open(trigger_id="123.456.abc", view=MODAL))
    assert e.response["error"] == "invalid_trigger_id"
    late = fake.new_trigger_id()
    clock.now += 3.01
    assert await error_of(client.views_open(trigger_id=late, view=MODAL)) == "expired_trigger_id"
    fake.trigger_ttl = 10
    assert (await client.views_open(trigger_id=late, view=MODAL))["ok"]
    assert len(fake.views_opened()) == 2


async def test_invalid_views_keep_the_trigger(client: AsyncWebClient, fake: FakeSlack) -> None:
    trigger = fake.new_trigger_id()
    long_title = {**MODAL, "title": {"type": "plain_text", "text": "t" * 25}}
    e = await slack_error(client.views_open(trigger_id=trigger, view=long_title))
    assert e.response["error"] == "invalid_arguments"
    assert "24" in e.response["response_metadata"]["messages"][0]
    huge = {**MODAL, "private_metadata": "m" * 260_000}
    assert await error_of(client.views_open(trigger_id=trigger, view=huge)) == "view_too_large"
    too_many = {**MODAL, "blocks": [{"type": "divider"}] * 101}
    assert await error_of(client.views_open(trigger_id=trigger, view=too_many)) == (
        "invalid_arguments")
    assert (await client.views_open(trigger_id=trigger, view=MODAL))["ok"]
    assert len(fake.views_opened()) == 1


# ---- files ----------------------------------------------------------------------------------------
async def test_files_upload_v2_end_to_end(client: AsyncWebClient, fake: FakeSlack) -> None:
    parent = (await client.chat_postMessage(channel=GENERAL, text="notes below"))["ts"]
    r = await client.files_upload_v2(channel=GENERAL, content="# Minutes\n- ship it\n", title="Minutes",
                                     filename="minutes.md", initial_comment="Here are the minutes",
                                     thread_ts=parent)
    assert r["file"]["title"] == "Minutes" and r["file"]["id"].startswith("F")
    (record,) = fake.files()
    assert record["content"] == b"# Minutes\n- ship it\n" and record["channels"] == [GENERAL]
    assert record["length"] == record["size"] == len(record["content"])
    share = fake.messages(GENERAL)[-1]
    assert share["text"] == "Here are the minutes" and share["thread_ts"] == parent
    assert share["files"][0]["id"] == record["id"]
    assert [c.method for c in fake.calls] == ["chat.postMessage", "files.getUploadURLExternal", "_upload",
                                              "files.completeUploadExternal"]
    assert fake.calls_to("_upload")[0].response == f"OK - {len(record['content'])}"


async def test_upload_url_accepts_multipart_and_completion_needs_the_upload(client: AsyncWebClient,
                                                                            fake: FakeSlack) -> None:
    ticket = await client.files_getUploadURLExternal(filename="a.txt", length=3)
    complete = client.files_completeUploadExternal(files=[{"id": ticket["file_id"]}], channel_id=GENERAL)
    assert await error_of(complete) == "file_not_found"
    form = aiohttp.FormData()
    form.add_field("file", b"abc", filename="a.txt")
    async with aiohttp.ClientSession() as http, http.post(ticket["upload_url"], data=form) as resp:
        assert (resp.status, await resp.text()) == (200, "OK - 3")
    await client.files_completeUploadExternal(files=[{"id": ticket["file_id"]}], channel_id=GENERAL)
    assert fake.files()[0]["content"] == b"abc" and fake.messages(GENERAL)[0]["files"][0]["name"] == "a.txt"
    e = await slack_error(client.files_getUploadURLExternal(filename="empty.txt", length=0))
    assert e.response["error"] == "missing_argument"


# ---- request shapes -------------------------------------------------------------------------------
async def test_form_bodies_get_queries_and_token_param(fake: FakeSlack) -> None:
    anonymous = AsyncWebClient(base_url=fake.api_url)
    form = {"token": "xoxb-form", "channel": GENERAL, "text": "form", "blocks": '[{"type": "divider"}]'}
    await anonymous.api_call("chat.postMessage", data=form)
    assert fake.messages(GENERAL)[0]["blocks"] == [{"type": "divider"}]
    assert fake.calls[-1].headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    r = await AsyncWebClient(token="xoxb-t", base_url=fake.api_url).api_call("users.info", http_verb="GET",
                                                                            params={"user": BOB})
    assert r["user"]["name"] == "bob" and fake.calls[-1].http_method == "GET"
    e = await slack_error(AsyncWebClient(token="xoxb-t", base_url=fake.api_url).api_call("chat.nope"))
    assert e.response["error"] == "unknown_method"
    async with aiohttp.ClientSession() as http:  # Slack reads no token from a JSON body, only the header
        async with http.post(fake.api_url + "auth.test", json={"token": "xoxb-in-body"}) as raw:
            assert (raw.status, (await raw.json())["error"]) == (200, "not_authed")
        async with http.post(fake.api_url + "auth.test", data="{oops", headers={
                "Authorization": "Bearer xoxb-t", "Content-Type": "application/json"}) as raw:
            assert (await raw.json())["error"] == "invalid_json"
        async with http.post(fake.api_url + "users.list", data={"token": "xoxb-t", "limit": "lots"}) as raw:
            assert (await raw.json())["error"] == "invalid_arguments"

# ---- faults ---------------------------------------------------------------------------------------
async def test_rate_limit_fault_is_a_429_with_retry_after(client: AsyncWebClient, fake: FakeSlack) -> None:
    fake.add_fault("chat.postMessage", status=429, retry_after=7)
    e = await slack_error(client.chat_postMessage(channel=GENERAL, text="x"))
    assert e.response.status_code == 429 and e.response.headers["Retry-After"] == "7"
    assert e.response["error"] == "ratelimited" and fake.messages() == []
    assert (await client.chat_postMessage(channel=GENERAL, text="x"))["ok"]
    assert [c.status for c in fake.calls_to("chat.postMessage")] == [429, 200]


async def test_rate_limit_retry_handler_retries(fake: FakeSlack, monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []

    async def no_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(builtin_async_handlers, "asyncio", SimpleNamespace(sleep=no_sleep))
    client = AsyncWebClient(token="xoxb-test", base_url=fake.api_url,
                            retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=2)])
    fake.add_fault("chat.postMessage", retry_after=2, count=2)
    assert (await client.chat_postMessage(channel=GENERAL, text="eventually"))["ok"]
    assert [c.status for c in fake.calls_to("chat.postMessage")] == [429, 429, 200]
    assert len(slept) == 2 and all(s >= 2 for s in slept)
    assert [m["text"] for m in fake.messages()] == ["eventually"]


async def test_server_error_and_ok_false_faults(client: AsyncWebClient, fake: FakeSlack) -> None:
    fake.add_fault("users.info", status=503)
    e = await slack_error(client.users_info(user=ALICE))
    assert e.response.status_code == 503 and e.response.data == "Service Unavailable"
    fake.add_fault("chat.postMessage", error="channel_not_found")
    e = await slack_error(client.chat_postMessage(channel=GENERAL, text="x"))
    assert (e.response.status_code, e.response["error"]) == (200, "channel_not_found")
    assert fake.messages() == [] and (await client.users_info(user=ALICE))["ok"]


async def test_dropped_response_still_takes_effect(client: AsyncWebClient, fake: FakeSlack) -> None:
    fake.add_fault("chat.postMessage", drop=True, count=2)  # slack_sdk retries a dropped connection once
    with pytest.raises(aiohttp.ClientError):
        await client.chat_postMessage(channel=GENERAL, text="twice")
    assert [m["text"] for m in fake.messages()] == ["twice", "twice"]


# ---- response_url ---------------------------------------------------------------------------------
async def test_response_url_takes_five_posts(fake: FakeSlack, clock: Clock) -> None:
    url = fake.new_response_url(channel=GENERAL, user=ALICE)
    hook = AsyncWebhookClient(url)
    for i in range(5):
        r = await hook.send(text=f"step {i}", response_type="ephemeral", replace_original=i > 0)
        assert (r.status_code, r.body) == (200, "ok")
    sixth = await hook.send(text="one too many")
    assert (sixth.status_code, sixth.body) == (404, "used_url")
    rid = url.rsplit("/", 1)[1]
    assert [r["body"]["text"] for r in fake.responses(rid)] == [f"step {i}" for i in range(5)]
    assert fake.responses(rid)[1]["body"]["replace_original"] is True
    assert fake.responses(rid)[0]["user"] == ALICE
    empty = await AsyncWebhookClient(fake.new_response_url()).send(response_type="ephemeral")
    assert (empty.status_code, empty.body) == (400, "no_text")
    old = AsyncWebhookClient(fake.new_response_url())
    clock.now += 30 * 60 + 1
    assert ((r := await old.send(text="late")).status_code, r.body) == (404, "expired_url")


# ---- Socket Mode ----------------------------------------------------------------------------------
APP_TOKEN = "xapp-1-A0APP0001-1-abcdef"
COMMAND = {"token": "legacy", "team_id": "T0001", "channel_id": GENERAL, "user_id": ALICE, "command": "/kickoff",
           "text": "now", "api_app_id": "A0APP0001", "response_url": "https://hooks.slack.com/commands/x",
           "trigger_id": "1.2.x"}


async def until(predicate: Callable[[], Any], within: float = 5.0) -> Any:
    """Poll (10 ms) until the asynchronous effect shows; fail after `within` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while not (result := predicate()):
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)
    return result


@pytest.fixture
async def socket_client(fake: FakeSlack) -> AsyncIterator[SimpleNamespace]:
    """slack_sdk's own aiohttp SocketModeClient (the one Bolt's AsyncSocketModeHandler uses) on the fake;
    it acks slash commands with an answer, everything else with an empty ack."""
    seen = SimpleNamespace(messages=[], requests=[])
    client = SocketModeClient(app_token=APP_TOKEN, web_client=AsyncWebClient(base_url=fake.api_url))

    async def on_message(_: Any, message: dict[str, Any], raw: str | None) -> None:
        seen.messages.append(message)

    async def on_request(c: Any, req: SocketModeRequest) -> None:
        seen.requests.append(req)
        answer = {"text": f"got {req.payload['text']}"} if req.type == "slash_commands" else None
        await c.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id, payload=answer))

    client.message_listeners.append(on_message)
    client.socket_mode_request_listeners.append(on_request)
    seen.client = client
    await client.connect()  # type: ignore[no-untyped-call]
    try:
        yield seen
    finally:
        await client.close()  # type: ignore[no-untyped-call]


async def test_socket_mode_hello_envelopes_and_acks(fake: FakeSlack, socket_client: SimpleNamespace) -> None:
    opened = fake.calls_to("apps.connections.open")
    assert len(opened) == 1 and opened[0].headers["Authorization"] == f"Bearer {APP_TOKEN}"
    assert opened[0].response["url"].startswith(fake.api_url.replace("http://", "ws://").removesuffix("api/"))
    assert fake.calls_to("_socket")[0].status == 101
    hello = (await until(lambda: socket_client.messages))[0]
    assert hello["type"] == "hello" and hello["num_connections"] == 1
    assert hello["connection_info"] == {"app_id": fake.app_id}

    command = await fake.socket_send("slash_commands", COMMAND)
    event = {"token": "legacy", "team_id": "T0001", "api_app_id": "A0APP0001", "type": "event_callback",
             "event_id": "Ev0001", "event_time": 1, "event": {"type": "app_home_opened", "user": ALICE}}
    retried = await fake.socket_send("events_api", event, retry_attempt=1, retry_reason="timeout")
    press = {"type": "block_actions", "user": {"id": ALICE}, "actions": [{"action_id": "a", "value": "1"}]}
    action = await fake.socket_send("interactive", press)
    await until(lambda: len(fake.socket_acks()) == 3)
    by_id = {r.envelope_id: r for r in socket_client.requests}
    assert (by_id[command].type, by_id[command].payload, by_id[command].accepts_response_payload) == (
        "slash_commands", COMMAND, True)
    assert (by_id[retried].retry_attempt, by_id[retried].retry_reason) == (1, "timeout")
    assert by_id[retried].accepts_response_payload is False and by_id[action].type == "interactive"
    assert fake.socket_acks(command)[0]["payload"] == {"text": "got now"} and fake.socket_acks(command)[0]["known"]
    assert fake.socket_acks(action)[0]["payload"] is None
    assert [c.params["envelope_id"] for c in fake.calls_to("_socket_ack")] == [a["envelope_id"]
                                                                             for a in fake.socket_acks()]
    assert fake.socket_envelopes(retried)[0]["retry_attempt"] == 1
    with pytest.raises(ValueError):
        await fake.socket_send("events", event)


async def test_socket_mode_disconnect_makes_the_client_reconnect(fake: FakeSlack,
                                                                 socket_client: SimpleNamespace) -> None:
    first = fake.socket_connections()[0]["id"]
    assert await fake.socket_disconnect() == 1
    # slack_sdk asks apps.connections.open for a new URL, connects to it and closes the old socket.
    await until(lambda: [c["id"] for c in fake.socket_connections(open_only=True)] not in ([], [first]))
    await until(lambda: fake.socket_connections()[0]["closed"])
    assert len(fake.calls_to("apps.connections.open")) == 2 and len(fake.calls_to("_socket")) == 2
    envelope = await fake.socket_send("slash_commands", COMMAND)
    ack = (await until(lambda: fake.socket_acks(envelope)))[0]
    assert ack["connection"] == fake.socket_connections(open_only=True)[-1]["id"] != first
    # Closed from the server side without warning: the client reconnects as well.
    assert await fake.socket_drop() == 1
    await until(lambda: len(fake.socket_connections(open_only=True)) == 1 and len(fake.socket_connections()) == 3)
    assert len(fake.calls_to("apps.connections.open")) == 3
    envelope = await fake.socket_send("events_api", {"type": "event_callback", "event": {"type": "x"}})
    await until(lambda: fake.socket_acks(envelope))


async def test_socket_mode_tokens_and_urls(fake: FakeSlack, client: AsyncWebClient) -> None:
    assert await error_of(client.apps_connections_open(app_token="xoxb-test")) == "not_allowed_token_type"
    assert await error_of(client.apps_connections_open(app_token="nope")) == "invalid_auth"
    app_client = AsyncWebClient(token=APP_TOKEN, base_url=fake.api_url)
    assert await error_of(app_client.chat_postMessage(channel=GENERAL, text="x")) == "not_allowed_token_type"
    url = (await client.apps_connections_open(app_token=APP_TOKEN))["url"]
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(url) as ws:
            assert (await ws.receive_json())["type"] == "hello"
            with pytest.raises(aiohttp.WSServerHandshakeError) as reused:
                await http.ws_connect(url)
            assert reused.value.status == 401
        with pytest.raises(aiohttp.WSServerHandshakeError) as unknown:
            await http.ws_connect(url.rsplit("/", 1)[0] + "/nope")
        assert unknown.value.status == 401
        fake.add_fault("_socket", status=503)
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect((await client.apps_connections_open(app_token=APP_TOKEN))["url"])
        assert refused.value.status == 503
    with pytest.raises(RuntimeError, match="no Socket Mode client"):
        await fake.socket_send("events_api", {}, within=0.05)


async def test_socket_mode_control_api(fake: FakeSlack, socket_client: SimpleNamespace) -> None:
    async with aiohttp.ClientSession(fake.api_url.removesuffix("/api/")) as http:
        async with http.post("/_fake/socket", json={"type": "slash_commands", "payload": COMMAND}) as r:
            envelope_id = (await r.json())["envelope_id"]
        await until(lambda: fake.socket_acks(envelope_id))
        async with http.get("/_fake/socket_acks", params={"envelope_id": envelope_id}) as r:
            assert (await r.json())[0]["payload"] == {"text": "got now"}
        async with http.post("/_fake/socket_disconnect", json={"reason": "warning"}) as r:
            assert (await r.json())["connections"] == 1
        await until(lambda: len(fake.calls_to("apps.connections.open")) == 2)
        async with http.get("/_fake/socket_connections") as r:
            assert (await r.json())[0]["refreshing"] is True


# ---- control API & standalone ---------------------------------------------------------------------
async def test_control_api(fake: FakeSlack, client: AsyncWebClient) -> None:
    base = fake.api_url.removesuffix("/api/")
    async with aiohttp.ClientSession(base) as http:
        dave = {"id": "U0DAVE001", "name": "dave", "tz": "Asia/Tokyo"}
        async with http.post("/_fake/users", json=dave) as r:
            assert r.status == 200
        async with http.post("/_fake/channels", json={"id": "C0DESIGN1", "name": "design",
                                                      "members": ["U0DAVE001"]}) as r:
            assert (await r.json())["members"] == ["U0DAVE001"]
        async with http.post("/_fake/trigger", json={}) as r:
            trigger = (await r.json())["trigger_id"]
        async with http.post("/_fake/response_url", json={}) as r:
            response_url = (await r.json())["response_url"]
        fault = {"method": "auth.test", "status": 429, "retry_after": 3}
        async with http.post("/_fake/faults", json=fault) as r:
            assert r.status == 200
        assert (await client.users_info(user="U0DAVE001"))["user"]["tz_offset"] == 9 * 3600
        await client.chat_postMessage(channel="C0DESIGN1", text="hello design")
        assert (await client.views_open(trigger_id=trigger, view=MODAL))["ok"]
        assert (await AsyncWebhookClient(response_url).send(text="done")).status_code == 200
        assert (await slack_error(client.auth_test())).response.status_code == 429
        async with http.get("/_fake/messages", params={"channel": "C0DESIGN1"}) as r:
            assert [m["text"] for m in await r.json()] == ["hello design"]
        async with http.get("/_fake/calls") as r:
            calls = await r.json()
        assert [c["method"] for c in calls] == ["users.info", "chat.postMessage", "views.open", "_response",
                                                "auth.test"]
        assert calls[-1]["status"] == 429
        async with http.get("/_fake/responses") as r:
            assert [x["body"]["text"] for x in await r.json()] == ["done"]
        async with http.post("/_fake/reset") as r:
            assert r.status == 200
    assert fake.calls == [] and fake.messages() == [] and "U0DAVE001" not in fake.users
    assert await error_of(client.users_info(user=ALICE)) == "user_not_found"


async def test_reset_keeps_settings_and_bot(fake: FakeSlack, client: AsyncWebClient) -> None:
    await client.chat_postMessage(channel=GENERAL, text="x")
    fake.reset()
    assert fake.messages() == [] and fake.calls == [] and list(fake.users) == [fake.bot_user_id]
    assert (await client.auth_test())["team_id"] == "T0001"


async def test_standalone_server() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.fakes.slack", "--port", "0", "--team-id", "T0STANDALONE",
        cwd=PROJECT, stdout=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        url = line.rsplit(" ", 1)[1].strip()
        assert url.endswith("/api/")
        assert (await AsyncWebClient(token="xoxb-x", base_url=url).auth_test())["team_id"] == "T0STANDALONE"
    finally:
        proc.terminate()
        await proc.wait()
