"""Drive every Web API method of the fake Slack with slack_sdk through the oracle (Prism + Slack's spec).

The script serves the fake itself on 127.0.0.1:$FAKE_SLACK_PORT (default 8091). From /work/main, with node
and npm on PATH:

    /work/shared/oracle/oracle.py --no-errors --slack-upstream http://127.0.0.1:8091 -- \
        .venv/bin/python -m tests.fakes.oracle_slack_flow

Expected: exit 3 with exactly these 4 violations, all about the *requests* slack_sdk sends or routes the 2021
description lacks; none about the fake's responses:
  POST /api/reactions.add: request Body parameter is required      (slack_sdk sends `params=` as a query
                                                                    string on POST; Slack accepts it)
  GET /api/conversations.info: include_num_members must be boolean (slack_sdk sends true as "1")
  POST /api/files.getUploadURLExternal, files.completeUploadExternal: Selected route not found (not in spec)
To get a clean strict run (exit 0, "no violations") leave those four out:

    ORACLE_SKIP_KNOWN_GAPS=1 /work/shared/oracle/oracle.py --slack-upstream http://127.0.0.1:8091 -- \
        .venv/bin/python -m tests.fakes.oracle_slack_flow

IDs are realistic on purpose: Slack's description checks their patterns (e.g. team ids T + 8 or more).
"""

from __future__ import annotations

import asyncio
import os
import re

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack import FakeSlack

SKIP_KNOWN_GAPS = bool(os.environ.get("ORACLE_SKIP_KNOWN_GAPS"))
ALICE, BOB, GENERAL = "U0ALICE001", "U0BOB00001", "C0GENERAL1"
MODAL = {"type": "modal", "callback_id": "kickoff", "title": {"type": "plain_text", "text": "Kick-off"},
         "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Ready?"}}]}
HOME = {"type": "home", "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "Phasegate"}}]}


async def expect_error(call: object, error: str) -> None:
    try:
        await call  # type: ignore[misc]
    except SlackApiError as e:
        assert e.response["error"] == error, e.response.data
    else:
        raise AssertionError(f"expected {error}")


async def flow(fake: FakeSlack, url: str) -> None:
    slack = AsyncWebClient(token="xoxb-oracle", base_url=url)
    assert (await slack.auth_test())["team_id"] == fake.team_id
    await expect_error(AsyncWebClient(token="bogus", base_url=url).auth_test(), "invalid_auth")

    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Kick-off* at 10:00"}}]
    post = await slack.chat_postMessage(channel=GENERAL, text="Kick-off at 10:00", blocks=blocks)
    ts = post["ts"]
    await slack.chat_postMessage(channel=GENERAL, text="details in thread", thread_ts=ts)
    dm = await slack.chat_postMessage(channel=ALICE, text="psst")
    await expect_error(slack.chat_postMessage(channel="C0MISSING1", text="x"), "channel_not_found")
    await slack.chat_postEphemeral(channel=GENERAL, user=ALICE, text="only you")
    plain = (await slack.chat_postMessage(channel=GENERAL, text="v1"))["ts"]
    await slack.chat_update(channel=GENERAL, ts=plain, text="v2")
    missing = slack.chat_update(channel=GENERAL, ts="1111111111.000001", text="x")
    await expect_error(missing, "message_not_found")
    assert (await slack.chat_getPermalink(channel=GENERAL, message_ts=ts))["permalink"].startswith("https://")
    if not SKIP_KNOWN_GAPS:
        await slack.reactions_add(channel=GENERAL, name="eyes", timestamp=ts)
    await slack.chat_delete(channel=GENERAL, ts=plain)

    opened = await slack.conversations_open(users=BOB)
    await slack.conversations_open(users=[BOB], return_im=True)
    assert re.match(r"^D[A-Z0-9]{8,}$", opened["channel"]["id"])
    assert dm["channel"] == fake.dm_channel_of(ALICE)
    await slack.conversations_info(channel=GENERAL, include_num_members=None if SKIP_KNOWN_GAPS else True)
    await slack.conversations_info(channel=opened["channel"]["id"])
    page = await slack.conversations_members(channel=GENERAL, limit=2)
    await slack.conversations_members(channel=GENERAL, cursor=page["response_metadata"]["next_cursor"])

    await slack.users_info(user=ALICE)
    await expect_error(slack.users_info(user="U0NOBODY01"), "user_not_found")
    await slack.users_list(limit=2)
    await slack.users_lookupByEmail(email="bob@example.com")
    await expect_error(slack.users_lookupByEmail(email="nobody@example.com"), "users_not_found")
    await slack.users_getPresence(user=ALICE)

    view = (await slack.views_open(trigger_id=fake.new_trigger_id(ALICE), view=MODAL))["view"]
    await slack.views_push(trigger_id=fake.new_trigger_id(ALICE), view=MODAL)
    await slack.views_update(view_id=view["id"], view=MODAL, hash=view["hash"])
    await slack.views_publish(user_id=BOB, view=HOME)
    await expect_error(slack.views_open(trigger_id="1.2.abc", view=MODAL), "invalid_trigger_id")

    if not SKIP_KNOWN_GAPS:
        await slack.files_upload_v2(channel=GENERAL, content="minutes", filename="minutes.md",
                                    initial_comment="Minutes", thread_ts=ts)
    print(f"[flow] {len(fake.calls)} calls, statuses {sorted({c.status for c in fake.calls})}")


async def main() -> None:
    fake = FakeSlack(team_id="T0PHASE001", team_domain="phasegate-oracle")
    fake.add_user(ALICE, "alice", tz="Europe/Berlin", status_text="Reviewing", away=True)
    fake.add_user(BOB, "bob", tz="America/New_York", is_admin=True)
    fake.add_channel(GENERAL, "general", members=[ALICE, BOB, fake.bot_user_id])
    await fake.start("127.0.0.1", int(os.environ.get("FAKE_SLACK_PORT", "8091")))
    try:
        await flow(fake, os.environ.get("ORACLE_SLACK_URL", fake.api_url))
    finally:
        await fake.stop()


if __name__ == "__main__":
    asyncio.run(main())
