"""The fake GitHub's branches, files and pull requests (git refs, contents, pulls), mixed into FakeGitHub."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

Json = dict[str, Any]
_R = r"^/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"

# (method, template shown in stats, handler, regex): ref and path parameters may hold slashes
GIT_ROUTES: tuple[tuple[str, str, str, re.Pattern[str]], ...] = tuple(
    (m, t, h, re.compile(rx))
    for m, t, h, rx in (
        ("GET", "/repos/{owner}/{repo}/git/ref/{ref}", "get_ref", _R + r"/git/ref/(?P<ref>.+)$"),
        ("POST", "/repos/{owner}/{repo}/git/refs", "create_ref", _R + r"/git/refs$"),
        ("GET", "/repos/{owner}/{repo}/contents/{path}", "get_contents", _R + r"/contents/(?P<path>.+)$"),
        ("PUT", "/repos/{owner}/{repo}/contents/{path}", "put_contents", _R + r"/contents/(?P<path>.+)$"),
        ("GET", "/repos/{owner}/{repo}/pulls", "list_pulls", _R + r"/pulls$"),
        ("POST", "/repos/{owner}/{repo}/pulls", "create_pull", _R + r"/pulls$"),
        ("GET", "/repos/{owner}/{repo}/pulls/{number}", "get_pull", _R + r"/pulls/(?P<number>\d+)$"),
        ("PATCH", "/repos/{owner}/{repo}/pulls/{number}", "edit_pull", _R + r"/pulls/(?P<number>\d+)$"),
    )
)


@dataclass
class Pull:
    number: int
    id: int
    title: str
    body: str
    head: str
    base: str
    user: str
    created_at: float
    updated_at: float
    state: str = "open"
    merged_at: float | None = None


@dataclass
class GitState:
    """One repository's git side: branches → commit sha, each commit's files, pull requests."""

    branches: dict[str, str] = field(default_factory=dict)
    trees: dict[str, dict[str, bytes]] = field(default_factory=dict)  # commit sha → path → content
    pulls: dict[int, Pull] = field(default_factory=dict)


def blob_sha(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def _commit_sha(parent: str, path: str, content: bytes) -> str:
    return hashlib.sha1(parent.encode() + path.encode() + content).hexdigest()


class GitMixin:
    """Handlers `_h_<name>` for GIT_ROUTES; needs FakeGitHub's `_repo`, `_ids`, `clock`, JSON helpers."""

    _git: dict[str, GitState]

    def _reset_git(self) -> None:
        self._git = {}

    def git(self, repo: str) -> GitState:
        """The repository's git state (a `main` branch with an empty tree to start with)."""
        key = repo.lower()
        if key not in self._git:
            root = hashlib.sha1(key.encode()).hexdigest()
            self._git[key] = GitState(branches={"main": root}, trees={root: {}})
        return self._git[key]

    def merge_pull(self, repo: str, number: int) -> None:
        """A person merges a pull request: the base branch gets the head's files."""
        g = self.git(repo)
        pull = g.pulls[number]
        g.branches[pull.base] = g.branches[pull.head]
        pull.state, pull.merged_at = "closed", self.clock()  # type: ignore[attr-defined]

    def file_on(self, repo: str, branch: str, path: str) -> str | None:
        g = self.git(repo)
        content = g.trees[g.branches[branch]].get(path) if branch in g.branches else None
        return content.decode() if content is not None else None

    def pulls(self, repo: str) -> list[Pull]:
        return list(self.git(repo).pulls.values())

    # ------------------------------------------------------------------ handlers

    def _gitc(self, c: Any) -> tuple[Any, GitState]:
        repo = self._repo(c)  # type: ignore[attr-defined]
        return repo, self.git(repo.full_name)

    def _ref_json(self, repo: Any, branch: str, sha: str) -> Json:
        base = f"{self.base_url}/repos/{repo.full_name}"  # type: ignore[attr-defined]
        return {"ref": f"refs/heads/{branch}", "node_id": f"REF_fake{hashlib.sha1(branch.encode()).hexdigest()[:8]}",
                "url": f"{base}/git/refs/heads/{branch}",
                "object": {"type": "commit", "sha": sha, "url": f"{base}/git/commits/{sha}"}}

    def _h_get_ref(self, c: Any) -> Any:
        from tests.fakes.github import ApiError, Reply

        repo, g = self._gitc(c)
        ref = c.params["ref"]
        branch = ref.removeprefix("heads/")
        if not ref.startswith("heads/") or branch not in g.branches:
            raise ApiError(404)
        return Reply(200, self._ref_json(repo, branch, g.branches[branch]))

    def _h_create_ref(self, c: Any) -> Any:
        from tests.fakes.github import ApiError, Reply

        repo, g = self._gitc(c)
        ref, sha = str(c.body.get("ref") or ""), str(c.body.get("sha") or "")
        if not ref.startswith("refs/heads/") or ref.count("/") < 2:
            raise ApiError(422, "Reference name is not valid")
        branch = ref.removeprefix("refs/heads/")
        if branch in g.branches:
            raise ApiError(422, "Reference already exists")
        if sha not in g.trees:
            raise ApiError(422, "Object does not exist")
        g.branches[branch] = sha
        return Reply(201, self._ref_json(repo, branch, sha))

    def _content_json(self, repo: Any, path: str, content: bytes, branch: str) -> Json:
        base = f"{self.base_url}/repos/{repo.full_name}"  # type: ignore[attr-defined]
        sha = blob_sha(content)
        html = f"https://github.com/{repo.full_name}/blob/{branch}/{path}"
        url = f"{base}/contents/{path}?ref={branch}"
        return {"type": "file", "encoding": "base64", "size": len(content), "name": path.rsplit("/", 1)[-1],
                "path": path, "content": base64.b64encode(content).decode(), "sha": sha, "url": url,
                "git_url": f"{base}/git/blobs/{sha}", "html_url": html,
                "download_url": f"https://raw.githubusercontent.com/{repo.full_name}/{branch}/{path}",
                "_links": {"self": url, "git": f"{base}/git/blobs/{sha}", "html": html}}

    def _h_get_contents(self, c: Any) -> Any:
        from tests.fakes.github import ApiError, Reply

        repo, g = self._gitc(c)
        branch = c.query.get("ref") or "main"
        if branch not in g.branches:
            raise ApiError(404, f"No commit found for the ref {branch}")
        content = g.trees[g.branches[branch]].get(c.params["path"])
        if content is None:
            raise ApiError(404)
        return Reply(200, self._content_json(repo, c.params["path"], content, branch))

    def _h_put_contents(self, c: Any) -> Any:
        from tests.fakes.github import ApiError, Reply, _invalid

        repo, g = self._gitc(c)
        self._require_push(repo)  # type: ignore[attr-defined]
        path, branch = c.params["path"], str(c.body.get("branch") or "main")
        if not c.body.get("message"):
            raise _invalid("Contents", "message", "missing_field")
        try:
            content = base64.b64decode(str(c.body.get("content") or ""), validate=True)
        except ValueError:
            raise ApiError(422, "content is not valid Base64") from None
        if branch not in g.branches:
            raise ApiError(404, f"Branch {branch} not found")
        tree = g.trees[g.branches[branch]]
        there = tree.get(path)
        if there is not None and c.body.get("sha") != blob_sha(there):
            raise ApiError(409, f"{path} does not match {c.body.get('sha') or 'nothing'}")
        if there is None and c.body.get("sha"):
            raise ApiError(409, f"{path} does not match {c.body.get('sha')}")
        commit = _commit_sha(g.branches[branch], path, content)
        g.trees[commit] = {**tree, path: content}
        g.branches[branch] = commit
        base = f"{self.base_url}/repos/{repo.full_name}"  # type: ignore[attr-defined]
        now = self._iso_now()
        person = {"name": "phasegate-bot", "email": "bot@example.com", "date": now}
        return Reply(200 if there is not None else 201, {
            "content": self._content_json(repo, path, content, branch),
            "commit": {"sha": commit, "node_id": f"C_fake{commit[:8]}", "url": f"{base}/git/commits/{commit}",
                       "html_url": f"https://github.com/{repo.full_name}/commit/{commit}", "author": person,
                       "committer": person, "message": str(c.body["message"]),
                       "tree": {"url": f"{base}/git/trees/{commit}", "sha": commit},
                       "parents": [], "verification": {"verified": False, "reason": "unsigned", "signature": None,
                                                       "payload": None, "verified_at": None}}})

    def _iso_now(self) -> str:
        from tests.fakes.github import _iso

        return str(_iso(self.clock()))  # type: ignore[attr-defined]

    def _pull_json(self, repo: Any, p: Pull, g: GitState) -> Json:
        from tests.fakes.github import _iso

        base = f"{self.base_url}/repos/{repo.full_name}"  # type: ignore[attr-defined]
        url, html = f"{base}/pulls/{p.number}", f"https://github.com/{repo.full_name}/pull/{p.number}"
        repo_json = self._repo_json(repo)  # type: ignore[attr-defined]
        user = self._user_json(p.user)  # type: ignore[attr-defined]

        def side(branch: str) -> Json:
            return {"label": f"{repo.owner}:{branch}", "ref": branch, "sha": g.branches.get(branch, "0" * 40),
                    "user": self._user_json(repo.owner, "Organization"),  # type: ignore[attr-defined]
                    "repo": repo_json}

        link = {"href": url}
        return {
            "url": url, "id": p.id, "node_id": f"PR_fake{p.id}", "html_url": html, "diff_url": f"{html}.diff",
            "patch_url": f"{html}.patch", "issue_url": f"{base}/issues/{p.number}", "commits_url": f"{url}/commits",
            "review_comments_url": f"{url}/comments", "review_comment_url": f"{base}/pulls/comments{{/number}}",
            "comments_url": f"{base}/issues/{p.number}/comments", "statuses_url": f"{base}/statuses/{side(p.head)['sha']}",
            "number": p.number, "state": p.state, "locked": False, "title": p.title, "user": user, "body": p.body,
            "labels": [], "milestone": None, "active_lock_reason": None, "created_at": _iso(p.created_at),
            "updated_at": _iso(p.updated_at), "closed_at": _iso(p.merged_at), "merged_at": _iso(p.merged_at),
            "merge_commit_sha": None, "assignee": None, "assignees": [], "requested_reviewers": [],
            "requested_teams": [], "head": side(p.head), "base": side(p.base),
            "_links": {"self": link, "html": {"href": html}, "issue": {"href": f"{base}/issues/{p.number}"},
                       "comments": {"href": f"{base}/issues/{p.number}/comments"},
                       "review_comments": {"href": f"{url}/comments"},
                       "review_comment": {"href": f"{base}/pulls/comments{{/number}}"},
                       "commits": {"href": f"{url}/commits"}, "statuses": {"href": f"{base}/statuses/x"}},
            "author_association": "NONE", "auto_merge": None, "draft": False,
            "merged": p.merged_at is not None, "mergeable": None, "rebaseable": None, "mergeable_state": "unknown",
            "merged_by": None, "comments": 0, "review_comments": 0, "maintainer_can_modify": False,
            "commits": 1, "additions": 0, "deletions": 0, "changed_files": 1,
        }

    def _h_list_pulls(self, c: Any) -> Any:
        repo, g = self._gitc(c)
        state, head = c.query.get("state", "open"), c.query.get("head")
        found = [p for p in g.pulls.values() if (state == "all" or p.state == state)
                 and (head is None or f"{repo.owner}:{p.head}".lower() == head.lower())]
        return self._paginate(c, found, lambda p: self._pull_json(repo, p, g))  # type: ignore[attr-defined]

    def _h_get_pull(self, c: Any) -> Any:
        from tests.fakes.github import ApiError, Reply

        repo, g = self._gitc(c)
        pull = g.pulls.get(int(c.params["number"]))
        if pull is None:
            raise ApiError(404)
        return Reply(200, self._pull_json(repo, pull, g))

    def _h_create_pull(self, c: Any) -> Any:
        from tests.fakes.github import ApiError, Reply

        repo, g = self._gitc(c)
        head, base = str(c.body.get("head") or ""), str(c.body.get("base") or "")
        head = head.split(":", 1)[1] if ":" in head else head
        errors: list[Json] = []
        if head not in g.branches:
            errors.append({"resource": "PullRequest", "field": "head", "code": "invalid"})
        if base not in g.branches:
            errors.append({"resource": "PullRequest", "field": "base", "code": "invalid"})
        if errors:
            raise ApiError(422, "Validation Failed", errors=errors)
        if any(p.head == head and p.base == base and p.state == "open" for p in g.pulls.values()):
            raise ApiError(422, "Validation Failed", errors=[{"resource": "PullRequest", "code": "custom",
                           "message": f"A pull request already exists for {repo.owner}:{head}."}])
        if g.trees[g.branches[head]] == g.trees[g.branches[base]]:
            raise ApiError(422, "Validation Failed", errors=[{"resource": "PullRequest", "code": "custom",
                           "message": f"No commits between {base} and {head}"}])
        number = repo.next_issue  # pull requests and issues share the numbers
        repo.next_issue += 1
        now = self.clock()  # type: ignore[attr-defined]
        pull = Pull(number, next(self._ids), str(c.body.get("title") or ""),  # type: ignore[attr-defined]
                    str(c.body.get("body") or ""), head, base, c.actor, now, now)
        g.pulls[number] = pull
        return Reply(201, self._pull_json(repo, pull, g))

    def _h_edit_pull(self, c: Any) -> Any:
        from tests.fakes.github import ApiError, Reply

        repo, g = self._gitc(c)
        pull = g.pulls.get(int(c.params["number"]))
        if pull is None:
            raise ApiError(404)
        for key in ("title", "body"):
            if key in c.body:
                setattr(pull, key, str(c.body[key] or ""))
        if c.body.get("state") in ("open", "closed") and pull.merged_at is None:
            pull.state = str(c.body["state"])
        pull.updated_at = self.clock()  # type: ignore[attr-defined]
        return Reply(200, self._pull_json(repo, pull, g))
