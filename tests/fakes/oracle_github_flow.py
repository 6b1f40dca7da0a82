"""Drives every endpoint of the fake GitHub through the oracle's validating proxy, using PyGithub.

Run from /work/main (the fake writes the proxy's address, port 8100, into absolute URLs):

    .venv/bin/python -m tests.fakes.github --port 8090 --public-url http://127.0.0.1:8100 &
    /work/shared/oracle/oracle.py --github-upstream http://127.0.0.1:8090 --github-port 8100 \
        --slack-upstream http://127.0.0.1:8091 -- .venv/bin/python -m tests.fakes.oracle_github_flow

(The Slack side is never called here, so nothing needs to listen on 8091.) The script resets the fake
through its control API (FAKE_GITHUB_URL, default http://127.0.0.1:8090) and exits non-zero if any
answer differs from what it expects; the oracle adds exit 3 for any schema violation.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import requests
from github import Auth, Github, GithubException

REPO = "acme/vision"


def expect_error(status: int, call: Callable[[], object]) -> GithubException:
    try:
        call()
    except GithubException as e:
        assert e.status == status, (e.status, e.data)
        return e
    raise AssertionError(f"expected HTTP {status}")


def main() -> None:
    fake = os.environ.get("FAKE_GITHUB_URL", "http://127.0.0.1:8090")
    requests.post(f"{fake}/_fake/reset", timeout=5).raise_for_status()
    requests.post(f"{fake}/_fake/repos", json={"full_name": REPO, "collaborators": ["alice", "bob"]},
                  timeout=5).raise_for_status()
    base = os.environ["ORACLE_GITHUB_URL"]
    g = Github(base_url=base, auth=Auth.Token("t"), seconds_between_requests=0, seconds_between_writes=0,
               retry=None, per_page=2)

    assert g.get_user().login == "phasegate-bot"
    assert g.get_rate_limit().resources.core.limit == 5000
    repo = g.get_repo(REPO)

    # milestones
    sprint = repo.create_milestone("Sprint 1", description="first", due_on=datetime(2025, 5, 10, 12, tzinfo=UTC))
    repo.create_milestone("Sprint 2")
    doomed = repo.create_milestone("Scratch")
    sprint.edit("Sprint 1", state="open", description="first, edited")
    assert repo.get_milestone(sprint.number).description == "first, edited"
    assert len(list(repo.get_milestones(state="all", sort="due_on", direction="desc"))) == 3
    doomed.edit("Scratch", state="closed")
    expect_error(422, lambda: repo.create_milestone("Scratch"))
    doomed.delete()
    expect_error(404, lambda: repo.get_milestone(doomed.number))

    # labels
    task = repo.create_label("task", "0e8a16", "A Phasegate task")
    repo.create_label("tmp", "ffffff")
    expect_error(422, lambda: repo.create_label("TASK", "000000"))
    task.edit("task", "1d76db", "A Phasegate task (blue)")
    assert repo.get_label("task").color == "1d76db"
    assert len(list(repo.get_labels())) == 2
    repo.get_label("tmp").delete()

    # issues
    marker = f"phasegate:task={uuid.uuid4()}"
    issue = repo.create_issue("Train model", body=f"Details.\n\n<!-- {marker} -->", milestone=sprint,
                              labels=["task", "auto-created"], assignees=["alice"])
    for n in range(3):
        repo.create_issue(f"Filler {n}")
    expect_error(422, lambda: repo.create_issue("Nope", assignees=["mallory"]))
    expect_error(422, lambda: g.requester.requestJsonAndCheck(
        "POST", f"/repos/{REPO}/issues", input={"title": "Nope", "milestone": 99}))
    assert len(list(repo.get_issues(state="all"))) == 4  # per_page=2: follows Link
    assert [i.number for i in repo.get_issues(milestone=sprint, labels=["task"], assignee="alice")] == [1]
    assert len(list(repo.get_issues(milestone="none", since=datetime.now(UTC) - timedelta(days=1)))) == 3
    issue = repo.get_issue(issue.number)
    issue.add_to_assignees("bob")
    issue.remove_from_assignees("alice")
    issue.edit(title="Train model v2", state="closed", state_reason="completed")
    issue.edit(state="open", milestone=None, labels=["task"])
    assert repo.has_in_assignees("bob") and not repo.has_in_assignees("mallory")
    assert [u.login for u in repo.get_assignees()] == ["alice", "bob"]
    status, _, _ = g.requester.requestJson("GET", f"/repos/{REPO}/issues/{issue.number}/assignees/bob")
    assert status == 204, status

    # comments
    comment = issue.create_comment("Started")
    issue.create_comment("Halfway")
    assert len(list(issue.get_comments())) == 2
    comment = repo.get_issue(issue.number).get_comment(comment.id)
    comment.edit("Started (edited)")
    comment.delete()

    # search
    found = list(g.search_issues(f'"{marker}"', repo=REPO, **{"is": "issue", "in": "body"}))
    assert [i.number for i in found] == [issue.number], found

    # conditional request: 304, not counted
    url = f"{base}/repos/{REPO}/issues/{issue.number}"
    first = requests.get(url, headers={"Authorization": "token t"}, timeout=5)
    again = requests.get(url, headers={"Authorization": "token t", "If-None-Match": first.headers["ETag"]},
                         timeout=5)
    assert again.status_code == 304, again.status_code
    print("oracle flow: all endpoints answered as expected", file=sys.stderr)


if __name__ == "__main__":
    main()
