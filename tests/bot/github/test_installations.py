"""GitHub App with many installations, against the fake's App endpoints: each repository written with the
token of the installation that covers it, uncovered repositories answered with the install link, expiry."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from functools import cache
from urllib.parse import unquote

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bot.clock import FakeClock
from bot.db.session import Database
from bot.github.installations import REFRESH_BEFORE, GitHubApp, InstallationRoutingGateway
from bot.github.setup_state import SetupStateSigner
from bot.messaging import RecordingMessenger
from bot.services import Services
from bot.services.base import Actor
from bot.services.github_connect import GitHubConnectService
from bot.sync.service import SyncService
from tests.bot.github.conftest import LEAD, add_tasks, new_project
from tests.fakes.github import FakeGitHub

APP_ID = 4242


@cache
def keypair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    return private, public


@pytest.fixture
async def app_github(clock: FakeClock) -> AsyncIterator[FakeGitHub]:
    fake = FakeGitHub(clock=lambda: clock.now().timestamp())
    await fake.start()
    fake.add_app(APP_ID, "phasegate-test", keypair()[1])
    fake.add_installation(11, "acme")
    fake.add_installation(22, "globex")
    for repo in ("acme/web", "globex/api", "initech/tps"):
        fake.add_repo(repo)
    yield fake
    await fake.stop()


def make_app(fake: FakeGitHub, clock: FakeClock) -> GitHubApp:
    assert fake._own_url is not None
    return GitHubApp(APP_ID, keypair()[0], clock, base_url=fake._own_url)


async def test_each_repository_is_written_with_its_own_installations_token(
    app_github: FakeGitHub, clock: FakeClock
) -> None:
    app = make_app(app_github, clock)
    assert await app.installation_for("acme/web") == (11, "acme")
    assert await app.installation_for("globex/api") == (22, "globex")
    for repo, installation in (("acme/web", 11), ("globex/api", 22), ("acme/web", 11)):
        await app.gateway(installation).create_issue(repo, title=f"t {repo}", body="b", milestone=None, labels=(), assignees=())
    assert [(i, p) for i, _, p in app_github.write_log if p.startswith("/repos/")] == [
        (11, "/repos/acme/web/issues"), (22, "/repos/globex/api/issues"), (11, "/repos/acme/web/issues")
    ]
    assert app.auth(11).minted == 1 and app.auth(22).minted == 1
    # a token is never accepted for another installation's owner
    from bot.github.gateway import RepoLocked

    with pytest.raises(RepoLocked):
        await app.gateway(11).create_issue("globex/api", title="wrong", body="b", milestone=None, labels=(), assignees=())


async def test_an_uncovered_repository_gets_the_install_link(app_github: FakeGitHub, clock: FakeClock) -> None:
    app = make_app(app_github, clock)
    assert await app.installation_for("initech/tps") is None
    assert await app.installation_for("acme/missing") is None
    assert await app.slug() == "phasegate-test"  # from GET /app
    assert await app.install_url("a.b") == "https://github.com/apps/phasegate-test/installations/new?state=a.b"


async def test_tokens_are_refreshed_before_expiry_and_after_an_early_expiry(
    app_github: FakeGitHub, clock: FakeClock
) -> None:
    app = make_app(app_github, clock)
    gw = app.gateway(11)
    await gw.create_issue("acme/web", title="one", body="b", milestone=None, labels=(), assignees=())
    clock.advance(timedelta(seconds=app_github.token_ttl) - REFRESH_BEFORE)
    await gw.create_issue("acme/web", title="two", body="b", milestone=None, labels=(), assignees=())
    assert app.auth(11).minted == 2  # refreshed on its own before it expired
    app_github.expire_tokens()  # revoked / expired early: the write answers 401, is re-sent with a new token
    await gw.create_issue("acme/web", title="three", body="b", milestone=None, labels=(), assignees=())
    assert app.auth(11).minted == 3
    titles = [i.title for i in (await gw.list_issues("acme/web")).value]
    assert sorted(titles) == ["one", "three", "two"]  # nothing lost, nothing duplicated
    assert app.auth(22).minted == 0


async def test_setup_links_an_installation_and_projects_may_name_only_covered_repositories(
    app_github: FakeGitHub, clock: FakeClock, db: Database
) -> None:
    service = GitHubConnectService(db, clock, make_app(app_github, clock), SetupStateSigner(b"secret", clock))
    lead = Actor(team_id="TA000001", user_id="U1")
    answer = await service.connect(lead)
    assert "https://github.com/apps/phasegate-test/installations/new?state=" in answer
    state = unquote(answer.split("state=")[1].split("|")[0])
    refused, why = await service.installation_for_project(lead, "acme/web")
    assert refused is None and why is not None and "not connected to this workspace" in why
    assert "installations/new?state=" in why
    done = await service.setup("11", "install", state)
    assert done.ok and done.team_id == "TA000001" and done.installation_id == 11
    again = await service.setup("22", "install", state)  # a reused state links nothing
    assert not again.ok and "already been used" in again.message and "/phasegate github connect" in again.message
    forged = await service.setup("22", "install", SetupStateSigner(b"other", clock).issue("TA000001", "U1"))
    assert not forged.ok and "not made by Phasegate" in forged.message
    assert await service.linked("TA000001") == [11]
    assert await service.installation_for_project(lead, "acme/web") == (11, None)
    none, why = await service.installation_for_project(lead, "initech/tps")
    assert none is None and why is not None and "not installed on `initech`" in why
    other = Actor(team_id="TB000002", user_id="U2")  # installation 11 is not linked to another workspace
    assert (await service.installation_for_project(other, "acme/web"))[0] is None


async def test_a_full_sync_writes_each_projects_issues_with_its_own_installations_token(
    app_github: FakeGitHub, clock: FakeClock, db: Database, services: Services,
    fake_sleep: Callable[[float], Awaitable[None]],
) -> None:
    app = make_app(app_github, clock)
    sync = SyncService(db, clock, InstallationRoutingGateway(app), RecordingMessenger(), sleep=fake_sleep)
    try:
        web, api = await new_project(services, "web", "acme/web"), await new_project(services, "api", "globex/api")
        await add_tasks(services, web, 4)
        await add_tasks(services, api, 3)
        await sync.run(actor=LEAD, project_id=web)
        await sync.run(actor=LEAD, project_id=api)
        await add_tasks(services, web, 2)
        await add_tasks(services, api, 2)
        app_github.expire_tokens()  # both tokens die early: each sync's first request gets 401 and is re-sent
        await sync.run(actor=LEAD, project_id=web)
        await sync.run(actor=LEAD, project_id=api)
    finally:
        await sync.aclose()
    writes = [(i, p.split("/")[2]) for i, _, p in app_github.write_log if p.startswith("/repos/")]
    assert writes and {i for i, o in writes if o == "acme"} == {11} and {i for i, o in writes if o == "globex"} == {22}
    for repo, inst, tasks in (("acme/web", 11, 4 + 2 + 2), ("globex/api", 22, 3 + 2 + 2)):  # + Discovery's two defaults
        titles = [i.title for i in (await app.gateway(inst).list_issues(repo)).value]
        assert len(titles) == tasks  # one issue per task: none lost, none written twice
    assert app.auth(22).minted == 2 and app.auth(11).minted == 2
