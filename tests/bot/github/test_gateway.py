"""The PyGithub gateway against the fake GitHub: our types out, our errors, no retried POSTs, free 304s."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator
from datetime import date

import pytest
from github import Auth

from bot.config import Settings
from bot.github.gateway import (
    AuthError,
    GhIssue,
    NotFoundError,
    PyGithubGateway,
    RateLimited,
    Transient,
    Unprocessable,
    _error,
)
from tests.bot.github.conftest import REPO, make_gateway
from tests.fakes.github import FakeGitHub


@pytest.fixture
async def gateway(github: FakeGitHub) -> AsyncIterator[PyGithubGateway]:
    gw = make_gateway(github)
    yield gw
    await gw.close()


async def test_writes_and_reads_return_our_own_types(gateway: PyGithubGateway, github: FakeGitHub) -> None:
    ms = await gateway.create_milestone(
        REPO, title="genres · Develop", description="d", due_on=date(2026, 5, 10), state="open"
    )
    assert (ms.number, ms.title, ms.due_on) == (1, "genres · Develop", date(2026, 5, 10))
    assert github.milestones(REPO)[0]["due_on"] == "2026-05-10T07:00:00Z"  # midnight Pacific: the same day
    issue = await gateway.create_issue(REPO, title="T", body="b", milestone=1, labels=["x"], assignees=["ana-gh"])
    assert isinstance(issue, GhIssue) and issue.assignees == ("ana-gh",) and issue.milestone_number == 1
    issue = await gateway.update_issue(REPO, issue.number, state="closed")
    assert issue.state == "closed" and github.issue(REPO, issue.number)["state_reason"] == "completed"
    assert await gateway.is_assignable(REPO, "ana-gh") and not await gateway.is_assignable(REPO, "mallory")


async def test_errors_become_ours(gateway: PyGithubGateway, github: FakeGitHub) -> None:
    await gateway.create_milestone(REPO, title="M", description="", due_on=None, state="closed")
    with pytest.raises(Unprocessable) as taken:
        await gateway.create_milestone(REPO, title="M", description="", due_on=None, state="open")
    assert taken.value.codes == {"already_exists"} and taken.value.fields == {"title"}
    with pytest.raises(NotFoundError):
        await gateway.update_issue(REPO, 99, title="nope")
    github.add_fault("429", retry_after=7)
    with pytest.raises(RateLimited) as limited:
        await gateway.list_labels(REPO)
    assert limited.value.wait_seconds(0) == 7
    github.set_rate_limit(1)
    await gateway.list_labels(REPO)
    with pytest.raises(RateLimited) as primary:
        await gateway.list_milestones(REPO)
    assert primary.value.reset_at is not None and primary.value.retry_after is None
    github.set_rate_limit(5000)
    github.valid_tokens = {"another"}
    with pytest.raises(AuthError):
        await gateway.list_labels(REPO)


async def test_a_failed_or_dropped_post_is_never_retried_by_pygithub(
    gateway: PyGithubGateway, github: FakeGitHub
) -> None:
    github.add_fault("502", method="POST")
    with pytest.raises(Transient):
        await gateway.create_issue(REPO, title="T", body="", milestone=None, labels=[], assignees=[])
    github.add_fault("drop_after_commit", method="POST")
    with pytest.raises(Transient):
        await gateway.create_issue(REPO, title="T", body="", milestone=None, labels=[], assignees=[])
    assert github.stats.by_route["POST /repos/{owner}/{repo}/issues"] == 2 and len(github.issues(REPO)) == 1


async def test_unchanged_reads_are_304s_that_cost_nothing(gateway: PyGithubGateway, github: FakeGitHub) -> None:
    for n in range(150):
        github.open_issue(REPO, f"issue {n}")
    first = await gateway.list_issues(REPO)
    assert len(first.value) == 150 and not first.not_modified
    github.reset_stats()
    again = await gateway.list_issues(REPO)
    assert again.not_modified and again.value == first.value
    assert github.stats.requests == github.stats.not_modified == 2 and github.stats.counted == 0
    github.close_issue(REPO, 140)
    changed = await gateway.list_issues(REPO)
    assert not changed.not_modified and changed.value[139].state == "closed"
    assert github.stats.counted == 1  # only the page that changed


async def test_an_upstream_that_never_answers_is_a_transient_error_after_the_timeout() -> None:
    """A GitHub (or proxy) that accepts the connection and then says nothing cannot hold a sync: each read and
    each write gives up after the gateway's timeout as Transient, which the sync retries with backoff."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.listen(8)
        held: list[socket.socket] = []

        def accept() -> None:
            with contextlib.suppress(OSError):
                while True:
                    held.append(server.accept()[0])  # read nothing, answer nothing

        acceptor = threading.Thread(target=accept, daemon=True)
        acceptor.start()
        port = server.getsockname()[1]
        gw = PyGithubGateway(auth=Auth.Token("t"), base_url=f"http://127.0.0.1:{port}", timeout=1)
        try:
            for call in (
                lambda: gw.default_branch(REPO),
                lambda: gw.create_pull(REPO, title="t", body="b", head="x", base="main"),
                lambda: gw.put_file(REPO, "docs/decisions/0001-a.md", branch="x", message="m", text="t", sha=None),
            ):
                started = time.monotonic()
                with pytest.raises(Transient, match="Timeout"):
                    await asyncio.wait_for(call(), timeout=30)
                assert time.monotonic() - started < 10
        finally:
            await gw.close()
            for conn in held:
                conn.close()
            server.shutdown(socket.SHUT_RDWR)  # wakes the accept() (closing alone leaves the thread blocked in it)
            acceptor.join(5)
            assert not acceptor.is_alive()


def test_the_app_gateway_has_a_finite_timeout() -> None:
    settings = Settings(GITHUB_TOKEN="t")
    gw = PyGithubGateway.from_settings(settings)
    assert gw is not None and 0 < gw._options["timeout"] <= 30


def test_a_proxys_problem_json_names_what_went_wrong() -> None:
    """Prism (the oracle) answers a refused response with a 500 in RFC 9457 shape: the error says its title."""
    problem = {"type": "https://stoplight.io/prism/errors#VIOLATIONS", "title": "Request/Response not valid"}
    error = _error(500, {}, problem, "GET /repos/acme/genres/pulls")
    assert isinstance(error, Transient) and str(error) == "GET /repos/acme/genres/pulls: 500 Request/Response not valid"
    assert str(_error(404, {}, {"message": "Not Found"}, "GET /x")) == "GET /x: 404 Not Found"
    assert str(_error(502, {}, {}, "GET /x")) == "GET /x: 502"


async def test_the_conditional_get_cache_keeps_at_most_its_bytes(github: FakeGitHub) -> None:
    """Pages of issues grow with every issue: the cache drops the least recently used pages beyond its byte budget
    (so a long-running bot's memory does not grow with its repositories), and reads stay right."""
    for n in range(150):
        github.open_issue(REPO, f"issue {n}")
    assert github._own_url is not None
    whole = PyGithubGateway(auth=Auth.Token("test-token"), base_url=github._own_url)
    try:
        await whole.list_issues(REPO)
        two_pages = whole.cached_bytes
    finally:
        await whole.close()
    gateway = PyGithubGateway(auth=Auth.Token("test-token"), base_url=github._own_url, cache_bytes=two_pages - 1)
    try:
        first = await gateway.list_issues(REPO)
        assert 0 < gateway.cached_bytes < two_pages  # the second page only: the first was dropped for it
        github.reset_stats()
        again = await gateway.list_issues(REPO)
        assert [i.number for i in again.value] == [i.number for i in first.value] and not again.not_modified
        assert github.stats.counted == 2 and gateway.cached_bytes < two_pages
        tiny = PyGithubGateway(auth=Auth.Token("test-token"), base_url=github._own_url, cache_bytes=10)
        try:
            assert len((await tiny.list_issues(REPO)).value) == 150 and tiny.cached_bytes == 0  # too big: not kept
        finally:
            await tiny.close()
    finally:
        await gateway.close()
