"""Drives the fake GitHub with the real PyGithub to show it answers like GitHub does."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
import requests
from aiohttp import web
from github import Auth, Github, GithubException, GithubRetry
from github.GithubException import BadCredentialsException, RateLimitExceededException

from tests.fakes.github import FakeGitHub

REPO = "acme/vision"
ISSUES = "/repos/{owner}/{repo}/issues"


class Clock:
    """A hand-moved clock (epoch seconds)."""

    def __init__(self) -> None:
        self.now = 1_750_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake(clock: Clock) -> Iterator[FakeGitHub]:
    fake = FakeGitHub(clock=clock)
    fake.add_repo(REPO, collaborators=["alice", "bob"], push=True)
    fake.run_in_thread()
    yield fake
    fake.stop_thread()


GH = Callable[..., Github]


@pytest.fixture
def gh(fake: FakeGitHub) -> GH:
    def make(retry: Any = None, per_page: int = 30, token: str = "t") -> Github:
        return Github(base_url=fake.base_url, auth=Auth.Token(token), seconds_between_requests=0,
                      seconds_between_writes=0, retry=retry, per_page=per_page)

    return make


def quick_retry() -> GithubRetry:
    """PyGithub's own retry policy, minus the waiting (faults here say Retry-After: 0)."""
    return GithubRetry(total=3, secondary_rate_wait=0, backoff_factor=0)


def headers(error: GithubException) -> dict[str, str]:
    assert error.headers is not None
    return error.headers


def raw(fake: FakeGitHub, method: str, path: str, **kw: Any) -> requests.Response:
    headers = {"Authorization": "token t", **kw.pop("headers", {})}
    return requests.request(method, fake.base_url + path, headers=headers, timeout=5, **kw)


def test_repo_user_and_rate_limit(fake: FakeGitHub, gh: GH) -> None:
    g = gh()
    repo = g.get_repo(REPO)
    assert (repo.full_name, repo.owner.login, repo.permissions.push) == (REPO, "acme", True)
    assert g.get_user().login == fake.bot_login
    overview = g.get_rate_limit()
    assert overview.resources.core.limit == 5000
    assert overview.resources.core.used == 2  # /rate_limit itself is free
    with pytest.raises(GithubException) as missing:
        g.get_repo("acme/nope")
    assert missing.value.status == 404


def test_milestones(fake: FakeGitHub, gh: GH) -> None:
    repo = gh().get_repo(REPO)
    m1 = repo.create_milestone("Sprint 1", description="first", due_on=datetime(2025, 5, 10, 12, tzinfo=UTC))
    m2 = repo.create_milestone("Sprint 2", due_on=datetime(2025, 5, 10, 0, tzinfo=UTC))
    assert (m1.number, m2.number, m1.state, m1.open_issues) == (1, 2, "open", 0)
    # GitHub keeps the US-Pacific day: midnight UTC slips to the day before, noon UTC does not
    assert m1.due_on and m2.due_on
    assert (m1.due_on.date(), m2.due_on.date()) == (date(2025, 5, 10), date(2025, 5, 9))
    assert repo.get_milestone(1).title == "Sprint 1"
    m1.edit("Sprint 1", state="closed")
    assert repo.get_milestone(1).closed_at is not None
    assert [m.title for m in repo.get_milestones()] == ["Sprint 2"]
    assert [m.title for m in repo.get_milestones(state="closed")] == ["Sprint 1"]
    assert len(list(repo.get_milestones(state="all"))) == 2
    with pytest.raises(GithubException) as dup:
        repo.create_milestone("Sprint 1")  # closed, still taken
    assert dup.value.status == 422
    assert dup.value.data["errors"] == [{"resource": "Milestone", "code": "already_exists", "field": "title"}]
    with pytest.raises(GithubException) as missing:
        repo.get_milestone(99)
    assert missing.value.status == 404


def test_labels(fake: FakeGitHub, gh: GH) -> None:
    repo = gh().get_repo(REPO)
    label = repo.create_label("phase:design", "1d76db", "Design phase")
    assert (label.name, label.color, label.description) == ("phase:design", "1d76db", "Design phase")
    assert repo.get_label("PHASE:design").color == "1d76db"
    label.edit("phase/design", "5319e7", "renamed")
    assert [x.name for x in repo.get_labels()] == ["phase/design"]
    assert repo.get_label("phase/design").description == "renamed"
    with pytest.raises(GithubException) as dup:
        repo.create_label("Phase/Design", "000000")
    assert (dup.value.status, dup.value.data["errors"][0]["code"]) == (422, "already_exists")


def test_create_issue_with_milestone_labels_assignees(fake: FakeGitHub, gh: GH) -> None:
    repo = gh().get_repo(REPO)
    repo.create_label("task", "0e8a16")
    ms = repo.create_milestone("Sprint 1")
    issue = repo.create_issue("Train model", body="details", milestone=ms, labels=["task", "brand-new"],
                              assignees=["alice", "bob"])
    assert issue.number == 1
    assert issue.milestone.title == "Sprint 1"
    assert {lb.name: lb.color for lb in issue.labels} == {"task": "0e8a16", "brand-new": "ededed"}
    assert [a.login for a in issue.assignees] == ["alice", "bob"]
    assert issue.user.login == fake.bot_login
    assert repo.get_milestone(ms.number).open_issues == 1
    assert repo.get_issue(1).html_url == "https://github.com/acme/vision/issues/1"


def test_issue_validation(fake: FakeGitHub, gh: GH) -> None:
    repo = gh().get_repo(REPO)
    with pytest.raises(GithubException) as bad:
        repo.create_issue("Nope", assignees=["alice", "mallory"])
    assert bad.value.status == 422
    assert bad.value.data["errors"] == [
        {"resource": "Issue", "code": "invalid", "field": "assignees", "value": ["mallory"]}]
    r = raw(fake, "POST", f"/repos/{REPO}/issues", json={"title": "x", "milestone": 7})
    assert (r.status_code, r.json()["errors"][0]["field"]) == (422, "milestone")
    r = raw(fake, "POST", f"/repos/{REPO}/issues", json={"body": "no title"})
    assert (r.status_code, r.json()["errors"][0]["code"]) == (422, "missing_field")
    assert fake.issues(REPO) == []  # nothing half-created
    assert repo.has_in_assignees("alice") and not repo.has_in_assignees("mallory")
    assert [u.login for u in repo.get_assignees()] == ["alice", "bob"]


def test_without_push_access_fields_are_dropped(fake: FakeGitHub, gh: GH) -> None:
    fake.add_repo("acme/public", collaborators=["alice"], push=False)
    issue = gh().get_repo("acme/public").create_issue("t", labels=["x"], assignees=["nobody"])
    assert not issue.labels and not issue.assignees and issue.milestone is None


def test_edit_issue_and_assignee_endpoints(fake: FakeGitHub, gh: GH) -> None:
    repo = gh().get_repo(REPO)
    ms = repo.create_milestone("Sprint 1")
    issue = repo.create_issue("Task", milestone=ms)
    issue.add_to_assignees("bob", "mallory")  # the assignees endpoint ignores unassignable users
    assert [a.login for a in issue.assignees] == ["bob"]
    issue.remove_from_assignees("bob")
    assert issue.assignees == []
    issue.edit(title="Task v2", state="closed", state_reason="not_planned", labels=["x"])
    got = repo.get_issue(issue.number)
    assert got.closed_by is not None and got.closed_by.login == fake.bot_login
    assert (got.title, got.state, got.state_reason) == ("Task v2", "closed", "not_planned")
    assert repo.get_milestone(ms.number).closed_issues == 1
    got.edit(state="open", milestone=None)
    got = repo.get_issue(issue.number)
    assert (got.state, got.state_reason) == ("open", "reopened")
    assert got.closed_at is None and got.milestone is None


def test_issue_list_filters(fake: FakeGitHub, gh: GH, clock: Clock) -> None:
    repo = gh().get_repo(REPO)
    ms = repo.create_milestone("Sprint 1")
    repo.create_issue("a", milestone=ms, labels=["task"], assignees=["alice"])
    clock.now += 100
    repo.create_issue("b", labels=["task", "bug"])
    repo.create_issue("c").edit(state="closed")

    def titles(**kw: Any) -> list[str]:
        return sorted(i.title for i in repo.get_issues(**kw))

    assert titles() == ["a", "b"]
    assert titles(state="all") == ["a", "b", "c"]
    assert titles(milestone=ms) == titles(milestone="*") == ["a"]
    assert titles(milestone="none") == ["b"]
    assert titles(labels=["task", "bug"]) == ["b"]
    assert titles(assignee="alice") == ["a"]
    assert titles(since=datetime.fromtimestamp(clock.now - 1, UTC)) == ["b"]


def test_pagination_follows_link_header(fake: FakeGitHub, gh: GH) -> None:
    for n in range(35):
        fake.open_issue(REPO, f"issue {n}", body="made by hand")
    fake.reset_stats()
    issues = list(gh().get_repo(REPO).get_issues(state="all"))
    assert len(issues) == 35 and len({i.number for i in issues}) == 35
    assert fake.stats.by_route["GET /repos/{owner}/{repo}/issues"] == 2
    r = raw(fake, "GET", f"/repos/{REPO}/issues", params={"per_page": 10, "page": 2})
    assert [i["number"] for i in r.json()] == list(range(25, 15, -1))
    links = {part.split("; ")[1]: part.split("; ")[0] for part in r.headers["Link"].split(", ")}
    assert set(links) == {'rel="prev"', 'rel="next"', 'rel="last"', 'rel="first"'}
    assert links['rel="last"'] == f"<{fake.base_url}/repos/{REPO}/issues?per_page=10&page=4>"
    assert len(raw(fake, "GET", f"/repos/{REPO}/issues", params={"per_page": 500}).json()) == 35


def test_search_finds_marker_in_body(fake: FakeGitHub, gh: GH, clock: Clock) -> None:
    g = gh()
    repo = g.get_repo(REPO)
    task = uuid.uuid4()
    repo.create_issue("Train model", body=f"Do it.\n\n<!-- phasegate:task={task} -->")
    repo.create_issue("Other", body=f"<!-- phasegate:task={uuid.uuid4()} -->")
    qualifiers = {"repo": REPO, "is": "issue", "in": "body"}
    found = list(g.search_issues(f'"phasegate:task={task}"', **qualifiers))
    assert [i.title for i in found] == ["Train model"]
    assert g.search_issues("train model", repo=REPO).totalCount == 1
    assert g.search_issues("Train", repo="acme/other").totalCount == 0
    fake.search_index_delay = 30  # GitHub's search index lags behind writes
    repo.create_issue("Fresh", body="<!-- phasegate:task=fresh -->")
    assert g.search_issues('"phasegate:task=fresh"', repo=REPO).totalCount == 0
    clock.now += 31
    assert g.search_issues('"phasegate:task=fresh"', repo=REPO).totalCount == 1


def test_etag_304_is_free(fake: FakeGitHub, gh: GH) -> None:
    gh().get_repo(REPO).create_issue("Watch me")
    first = raw(fake, "GET", f"/repos/{REPO}/issues/1")
    etag = first.headers["ETag"]
    assert etag.startswith('W/"')
    counted = fake.stats.counted
    again = raw(fake, "GET", f"/repos/{REPO}/issues/1", headers={"If-None-Match": etag})
    assert (again.status_code, again.content, again.headers["ETag"]) == (304, b"", etag)
    assert again.headers["x-ratelimit-remaining"] == first.headers["x-ratelimit-remaining"]
    assert (fake.stats.counted, fake.stats.not_modified) == (counted, 1)
    fake.close_issue(REPO, 1, by="alice")  # a human closes it in the UI
    changed = raw(fake, "GET", f"/repos/{REPO}/issues/1", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert changed.json()["closed_by"]["login"] == "alice"


def test_headers_unknown_route_and_auth(fake: FakeGitHub, gh: GH) -> None:
    r = raw(fake, "GET", "/repos/acme/vision/releases")
    assert r.status_code == 404 and r.json()["message"] == "Not Found" and "documentation_url" in r.json()
    for name in ("limit", "remaining", "reset", "used", "resource"):
        assert f"x-ratelimit-{name}" in r.headers
    assert r.headers["x-github-request-id"]
    assert raw(fake, "GET", "/user", headers={"Authorization": "Bearer t"}).status_code == 200
    assert requests.get(fake.base_url + "/user", timeout=5).status_code == 401
    fake.valid_tokens = {"good"}
    assert gh(token="good").get_user().login == fake.bot_login
    with pytest.raises(BadCredentialsException):
        gh(token="bad").get_user().login  # noqa: B018 (the attribute access makes the request)


@pytest.mark.parametrize(("kind", "status"), [("500", 500), ("502", 502), ("503", 503),
                                              ("secondary_403", 403), ("429", 429)])
def test_error_faults(fake: FakeGitHub, gh: GH, kind: str, status: int) -> None:
    repo = gh().get_repo(REPO)
    fake.add_fault(kind, route=ISSUES, method="POST", retry_after=0)
    with pytest.raises(GithubException) as err:
        repo.create_issue("fails once")
    assert err.value.status == status
    if kind in ("secondary_403", "429"):
        assert headers(err.value)["retry-after"] == "0"
        assert err.value.data["message"].startswith("You have exceeded a secondary rate limit")
    assert fake.issues(REPO) == []
    fake.add_fault(kind, route=ISSUES, method="POST", retry_after=0)
    assert gh(retry=quick_retry()).get_repo(REPO).create_issue("retried").number == 1  # PyGithub retries it
    assert [f["kind"] for f in fake.stats.faults] == [kind, kind]


def test_secondary_403_is_a_rate_limit_error_for_pygithub(fake: FakeGitHub, gh: GH) -> None:
    fake.add_fault("secondary_403", route="/repos/*/milestones")
    with pytest.raises(RateLimitExceededException):
        gh().get_repo(REPO).create_milestone("x")


def test_slow_fault(fake: FakeGitHub, gh: GH) -> None:
    fake.add_fault("slow", route="/repos/{owner}/{repo}", delay=0.2)
    started = time.monotonic()
    assert gh().get_repo(REPO).name == "vision"
    assert time.monotonic() - started >= 0.2


def test_probability_faults_are_reproducible(fake: FakeGitHub) -> None:
    def pattern() -> list[int]:
        fake.clear_faults()
        fake.seed(7)
        fake.add_fault("503", probability=0.5)
        return [raw(fake, "GET", f"/repos/{REPO}").status_code for _ in range(12)]

    first = pattern()
    assert set(first) == {200, 503}
    assert pattern() == first


def test_drop_after_commit(fake: FakeGitHub, gh: GH) -> None:
    fake.add_fault("drop_after_commit", route=ISSUES, method="POST")
    with pytest.raises(requests.exceptions.ConnectionError):
        gh().get_repo(REPO).create_issue("Exactly once?")
    assert [i["title"] for i in fake.issues(REPO)] == ["Exactly once?"]  # applied nonetheless
    # PyGithub's default retry policy resends the POST: a silent duplicate
    fake.add_fault("drop_after_commit", route=ISSUES, method="POST")
    gh(retry=quick_retry()).get_repo(REPO).create_issue("Twice")
    assert [i["title"] for i in fake.issues(REPO)] == ["Exactly once?", "Twice", "Twice"]


def test_secondary_limit_on_fake_clock(fake: FakeGitHub, gh: GH, clock: Clock) -> None:
    fake.enforce_secondary(per_minute=3, per_hour=4)
    repo = gh().get_repo(REPO)
    for n in range(3):
        repo.create_issue(f"ok {n}")
        clock.now += 1
    with pytest.raises(RateLimitExceededException) as limited:
        repo.create_issue("too fast")
    assert int(headers(limited.value)["retry-after"]) == 57  # the oldest write leaves the window
    assert repo.get_issue(1).title == "ok 0"  # reads are not content-creating
    clock.now += 57
    repo.create_issue("after a minute")
    clock.now += 60
    with pytest.raises(RateLimitExceededException) as hourly:
        repo.create_issue("hourly cap")
    assert int(headers(hourly.value)["retry-after"]) == 3600 - 120
    assert fake.stats.secondary_refusals == 2
    assert len(fake.issues(REPO)) == 4


def test_primary_limit(fake: FakeGitHub, gh: GH, clock: Clock) -> None:
    fake.set_rate_limit(3)
    g = gh()
    repo = g.get_repo(REPO)
    repo.get_issues(state="all").totalCount  # noqa: B018
    repo.has_in_assignees("alice")
    with pytest.raises(RateLimitExceededException) as exhausted:
        repo.get_issue(1)
    assert exhausted.value.status == 403 and headers(exhausted.value)["x-ratelimit-remaining"] == "0"
    assert g.get_rate_limit().resources.core.remaining == 0
    clock.now += 3600
    assert repo.has_in_assignees("bob")
    assert fake.stats.primary_refusals == 1 and fake.stats.counted == 4


def test_comments(fake: FakeGitHub, gh: GH) -> None:
    issue = gh().get_repo(REPO).create_issue("Discuss")
    issue.create_comment("first")
    fake.comment(REPO, issue.number, "from a human", by="bob")
    comments = list(issue.get_comments())
    assert [(c.body, c.user.login) for c in comments] == [("first", fake.bot_login), ("from a human", "bob")]
    assert gh().get_repo(REPO).get_issue(issue.number).comments == 2


def test_control_http_api(fake: FakeGitHub) -> None:
    base = fake.base_url
    assert requests.post(f"{base}/_fake/repos", json={"full_name": "acme/x", "collaborators": ["zoe"]},
                         timeout=5).ok
    assert raw(fake, "GET", "/repos/acme/x/assignees/zoe").status_code == 204
    requests.post(f"{base}/_fake/faults", json={"kind": "500", "route": "/repos/acme/x"}, timeout=5)
    assert raw(fake, "GET", "/repos/acme/x").status_code == 500
    raw(fake, "POST", "/repos/acme/x/issues", json={"title": "hi"})
    closed = requests.post(f"{base}/_fake/issues/acme/x/1", json={"state": "closed", "by": "zoe"}, timeout=5)
    assert closed.json()["closed_by"]["login"] == "zoe"
    stats = requests.get(f"{base}/_fake/stats", timeout=5).json()
    assert (stats["requests"], stats["writes"], stats["by_status"]["500"]) == (3, 1, 1)
    state = requests.get(f"{base}/_fake/state", timeout=5).json()
    assert [i["state"] for i in state["acme/x"]["issues"]] == ["closed"]
    requests.post(f"{base}/_fake/reset", timeout=5)
    assert requests.get(f"{base}/_fake/state", timeout=5).json() == {}


async def test_in_process_with_webhooks() -> None:
    received: list[tuple[dict[str, str], bytes]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append((dict(request.headers), await request.read()))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    fake = FakeGitHub()
    fake.add_repo(REPO, collaborators=["alice"])
    url = await fake.start()
    try:
        fake.webhook_target(f"http://127.0.0.1:{runner.addresses[0][1]}/hook", "It's a Secret to Everybody")
        g = Github(base_url=url, auth=Auth.Token("t"), seconds_between_requests=0, seconds_between_writes=0,
                   retry=None)
        issue = await asyncio.to_thread(lambda: g.get_repo(REPO).create_issue("Hello"))
        fake.close_issue(REPO, issue.number, by="alice")
        await fake.flush_webhooks()
    finally:
        await fake.stop()
        await runner.cleanup()
    events = [(h["X-GitHub-Event"], json.loads(body)) for h, body in received]
    assert [(e, p["action"], p["sender"]["login"]) for e, p in events] == [
        ("issues", "opened", fake.bot_login), ("issues", "closed", "alice")]
    assert events[1][1]["issue"]["state"] == "closed"
    for headers, body in received:
        digest = hmac.new(b"It's a Secret to Everybody", body, hashlib.sha256).hexdigest()
        assert headers["X-Hub-Signature-256"] == f"sha256={digest}"
        assert uuid.UUID(headers["X-GitHub-Delivery"])
