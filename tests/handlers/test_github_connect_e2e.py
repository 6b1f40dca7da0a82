"""`/phasegate github connect` and GitHub's setup redirect over HTTP (a GitHub App of many installations): the
link is signed for the workspace and the person; forged, tampered, expired or reused states are refused."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlencode

from sqlmodel import select

from bot.clock import FakeClock
from bot.db.models import GitHubInstallation, Project
from bot.github.setup_state import STATE_TTL
from tests.bot.github.test_installations import keypair
from tests.handlers.harness import TEAM, SlackHarness, running_app

APP_ENV = {
    "GITHUB_APP_ID": "4711",
    "GITHUB_APP_PRIVATE_KEY": keypair()[0],
    "GITHUB_APP_SLUG": "phasegate-test",
    "GITHUB_APP_STATE_SECRET": "a-long-random-state-secret-0123456789",
    "GITHUB_API_URL": "http://127.0.0.1:9",  # never called: the slug is given, no project names a repository
}


async def connect_link(h: SlackHarness, user: str = "U0LEAD0001") -> str:
    answer = h.text_of(await h.answer(await h.command("github connect", user=user)))
    found = re.search(r"https://github\.com/apps/phasegate-test/installations/new\?state=([^|>\s]+)", answer)
    assert found is not None, answer
    assert "works once" in answer
    return unquote(found[1])


async def setup(h: SlackHarness, **query: str) -> tuple[int, str]:
    async with h.session.get(f"{h.url}/github/setup?{urlencode(query)}") as resp:
        return resp.status, await resp.text()


async def linked(h: SlackHarness) -> list[tuple[str, int, str]]:
    async with h.app.db.session() as s:
        rows = (await s.execute(select(GitHubInstallation))).scalars().all()
        return [(r.team_id, r.installation_id, r.linked_by) for r in rows]


async def test_connect_links_the_installation_to_the_workspace_once(database_url: str, clock: FakeClock) -> None:
    env = APP_ENV
    async with running_app(
        database_url, clock=clock, GITHUB_APP_ID=env["GITHUB_APP_ID"], GITHUB_APP_PRIVATE_KEY=env["GITHUB_APP_PRIVATE_KEY"],
        GITHUB_APP_SLUG=env["GITHUB_APP_SLUG"], GITHUB_APP_STATE_SECRET=env["GITHUB_APP_STATE_SECRET"],
        GITHUB_API_URL=env["GITHUB_API_URL"],
    ) as h:
        state = await connect_link(h)
        status, page = await setup(h, installation_id="77", setup_action="install", state=state)
        assert status == 200 and "GitHub is connected" in page
        assert await linked(h) == [(TEAM, 77, "U0LEAD0001")]

        again, page = await setup(h, installation_id="78", setup_action="install", state=state)
        assert again == 400 and "already been used" in page and "github connect" in page

        body, _, mac = state.partition(".")
        forged, page = await setup(h, installation_id="79", setup_action="install", state=f"{body}x.{mac}")
        assert forged == 400 and "not made by Phasegate" in page
        nonsense, _ = await setup(h, installation_id="80", setup_action="install", state="garbage")
        assert nonsense == 400
        no_id, page = await setup(h, installation_id="not-a-number", setup_action="install", state=await connect_link(h))
        assert no_id == 400 and "install the App again" in page

        late = await connect_link(h, user="U0MLEN0001")
        clock.advance(STATE_TTL)
        expired, page = await setup(h, installation_id="81", setup_action="install", state=late)
        assert expired == 400 and "expired" in page
        assert await linked(h) == [(TEAM, 77, "U0LEAD0001")]  # nothing but the one good redirect linked anything


async def test_connect_without_an_app_of_many_installations_says_there_is_nothing_to_connect(
    database_url: str, clock: FakeClock
) -> None:
    async with running_app(database_url, clock=clock) as h:
        answer = h.text_of(await h.answer(await h.command("github connect")))
        assert "nothing to connect" in answer and "/phasegate init" in answer
        async with h.session.get(f"{h.url}/github/setup?installation_id=1&state=x") as resp:
            assert resp.status == 404


async def test_a_project_names_only_repositories_a_linked_installation_covers(
    database_url: str, clock: FakeClock
) -> None:
    from tests.bot.github.test_installations import APP_ID
    from tests.fakes.github import FakeGitHub

    github = FakeGitHub(clock=lambda: clock.now().timestamp())
    await github.start()
    try:
        github.add_app(APP_ID, "phasegate-test", keypair()[1])
        github.add_installation(11, "acme")
        github.add_repo("acme/web")
        github.add_repo("initech/tps")
        assert github._own_url is not None
        async with running_app(
            database_url, clock=clock, GITHUB_APP_ID=str(APP_ID), GITHUB_APP_PRIVATE_KEY=keypair()[0],
            GITHUB_APP_SLUG="phasegate-test", GITHUB_APP_STATE_SECRET=APP_ENV["GITHUB_APP_STATE_SECRET"],
            GITHUB_API_URL=github._own_url,
        ) as h:
            before = h.text_of(await h.answer(await h.command("init web repo=acme/web")))
            assert "not connected to this workspace" in before and "installations/new?state=" in before
            state = await connect_link(h)
            assert (await setup(h, installation_id="11", setup_action="install", state=state))[0] == 200
            uncovered = h.text_of(await h.answer(await h.command("init tps repo=initech/tps")))
            assert "not installed on `initech`" in uncovered
            created = h.text_of(await h.answer(await h.command("init web repo=acme/web")))
            assert "Created *web*" in created and "not connected" not in created
            async with h.app.db.session() as s:
                assert [p.repo for p in (await s.execute(select(Project))).scalars()] == ["acme/web"]
    finally:
        await github.stop()
