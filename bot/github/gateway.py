"""GitHub gateway: the Protocol the sync uses, our own result/error types, and the PyGithub implementation."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar
from urllib.parse import quote
from zoneinfo import ZoneInfo

from bot.config import Settings

if TYPE_CHECKING:  # PyGithub (and requests, cryptography…) load with a gateway's first request: ~25 MB less idle
    from github import Auth, Github

T = TypeVar("T")
Json = dict[str, Any]

# GitHub keeps a milestone's due date as a day in US-Pacific time (see PLATFORM.md).
PACIFIC = ZoneInfo("America/Los_Angeles")


# --------------------------------------------------------------------------- our types


@dataclass(frozen=True)
class GhLabel:
    name: str
    color: str
    description: str | None = None


@dataclass(frozen=True)
class GhMilestone:
    number: int
    title: str
    state: str  # open | closed
    description: str | None = None
    due_on: date | None = None  # the day GitHub shows (US-Pacific)


@dataclass(frozen=True)
class GhIssue:
    number: int
    title: str
    body: str
    state: str  # open | closed
    labels: tuple[str, ...] = ()
    assignees: tuple[str, ...] = ()
    milestone_number: int | None = None
    html_url: str = ""
    updated_at: datetime | None = None


@dataclass(frozen=True)
class GhComment:
    id: int
    body: str
    html_url: str = ""


@dataclass(frozen=True)
class GhPull:
    """A pull request (a decision record's): `merged` from `merged_at`, `head` the branch name."""

    number: int
    title: str
    body: str
    state: str  # open | closed
    merged: bool
    head: str
    html_url: str = ""


@dataclass(frozen=True)
class GhFile:
    """A file's blob sha and text on one branch (the sha is what a later PUT must name)."""

    sha: str
    text: str


@dataclass(frozen=True)
class Read(Generic[T]):
    """A (conditional) read: `not_modified` is True when GitHub answered 304 (free against the rate limit)."""

    value: T
    etag: str | None = None
    not_modified: bool = False


class GitHubError(Exception):
    """Any failure talking to GitHub; `status` is the HTTP status when there was one."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class RateLimited(GitHubError):
    """Primary or secondary rate limit: wait `retry_after` seconds, or until `reset_at` (epoch seconds)."""

    def __init__(
        self, message: str, *, status: int, retry_after: float | None, reset_at: float | None, resource: str | None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after
        self.reset_at = reset_at
        self.resource = resource

    def wait_seconds(self, now: float) -> float:
        """How long to pause all work, given the current epoch time (GitHub's rules, PLATFORM.md)."""
        if self.retry_after is not None:
            return max(self.retry_after, 1.0)
        if self.reset_at is not None:
            return max(self.reset_at - now, 1.0)
        return 60.0


class Transient(GitHubError):
    """5xx, a connection error or a dropped response: the request may or may not have been applied."""


class Unprocessable(GitHubError):
    """422 Validation Failed; `codes` are GitHub's error codes (e.g. `already_exists`), `fields` the fields."""

    def __init__(self, message: str, *, errors: Sequence[Mapping[str, Any]] = ()) -> None:
        super().__init__(message, status=422)
        self.errors = [dict(e) for e in errors]
        self.codes = {str(e.get("code")) for e in self.errors if e.get("code")}
        self.fields = {str(e.get("field")) for e in self.errors if e.get("field")}


class NotFoundError(GitHubError):
    """404/410: no such repository, issue or milestone (or no access to it)."""


class AuthError(GitHubError):
    """401 or a 403 that is not a rate limit: bad credentials or missing permission."""


class Gone(NotFoundError):
    """410: the issue was deleted in GitHub (`number`: which one, set by the sync when it knows)."""

    number: int | None = None


class RepoLocked(AuthError):
    """403 on a write that retrying cannot fix: the repository is archived (`reason` "archived") or the
    GitHub App may not write to it (`reason` "no_access", "Resource not accessible by integration")."""

    def __init__(self, message: str, *, status: int, reason: str) -> None:
        super().__init__(message, status=status)
        self.reason = reason


# --------------------------------------------------------------------------- the protocol


class GitHubGateway(Protocol):
    """Everything the sync needs from GitHub; every method returns our own dataclasses."""

    async def list_milestones(self, repo: str) -> Read[list[GhMilestone]]:
        """All milestones of `repo` (open and closed), conditionally."""
        ...

    async def create_milestone(
        self, repo: str, *, title: str, description: str, due_on: date | None, state: str
    ) -> GhMilestone:
        """Create a milestone (422 `already_exists` when the title is taken, even by a closed one)."""
        ...

    async def update_milestone(
        self, repo: str, number: int, *, title: str, description: str, due_on: date | None, state: str
    ) -> GhMilestone:
        """Set every field we manage on a milestone."""
        ...

    async def list_labels(self, repo: str) -> Read[list[GhLabel]]:
        """All labels of `repo`, conditionally."""
        ...

    async def create_label(self, repo: str, *, name: str, color: str, description: str) -> GhLabel:
        """Create a label (422 `already_exists` when taken)."""
        ...

    async def list_issues(
        self,
        repo: str,
        *,
        milestone: int | None = None,
        since: datetime | None = None,
        sort: str = "created",
    ) -> Read[list[GhIssue]]:
        """Issues of `repo` (open and closed), optionally of one milestone or updated since; conditionally."""
        ...

    async def search_issues(self, query: str) -> list[GhIssue]:
        """Search issues (eventually consistent: a new issue may not be found yet)."""
        ...

    async def create_issue(
        self,
        repo: str,
        *,
        title: str,
        body: str,
        milestone: int | None,
        labels: Sequence[str],
        assignees: Sequence[str],
    ) -> GhIssue:
        """Create an issue. Not idempotent: a lost response may still have created it."""
        ...

    async def update_issue(
        self,
        repo: str,
        number: int,
        *,
        title: str | None = None,
        body: str | None = None,
        state: str | None = None,
        milestone: int | None = None,
        labels: Sequence[str] | None = None,
        assignees: Sequence[str] | None = None,
        state_reason: str | None = None,
    ) -> GhIssue:
        """PATCH the given fields of an issue (None = leave as is); a close is `completed` unless `state_reason`."""
        ...

    async def list_comments(self, repo: str, number: int) -> list[GhComment]:
        """`GET /repos/{o}/{r}/issues/{number}/comments`, every page."""
        ...

    async def create_comment(self, repo: str, number: int, *, body: str) -> GhComment:
        """`POST /repos/{o}/{r}/issues/{number}/comments`. Not idempotent: a lost response may still have made it."""
        ...

    async def is_assignable(self, repo: str, login: str) -> bool:
        """`GET /repos/{o}/{r}/assignees/{login}`: 204 yes, 404 no."""
        ...

    async def default_branch(self, repo: str) -> str:
        """The repository's default branch (`GET /repos/{o}/{r}`)."""
        ...

    async def branch_sha(self, repo: str, branch: str) -> str | None:
        """The commit a branch points at (`GET /git/ref/heads/{branch}`); None when there is no such branch."""
        ...

    async def create_branch(self, repo: str, branch: str, sha: str) -> None:
        """`POST /git/refs` (422 "Reference already exists" when it does)."""
        ...

    async def get_file(self, repo: str, path: str, *, ref: str) -> GhFile | None:
        """A file on `ref`; None when it is not there."""
        ...

    async def put_file(self, repo: str, path: str, *, branch: str, message: str, text: str, sha: str | None) -> str:
        """Create (sha None) or replace a file on `branch` in one commit; returns the new blob sha."""
        ...

    async def list_pulls(self, repo: str, *, head: str) -> list[GhPull]:
        """Pull requests (open and closed) whose head is `owner:branch`."""
        ...

    async def create_pull(self, repo: str, *, title: str, body: str, head: str, base: str) -> GhPull:
        """Open a pull request (422 "A pull request already exists" for the same head and base)."""
        ...

    async def update_pull(self, repo: str, number: int, *, title: str, body: str) -> GhPull:
        """Set a pull request's title and body."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


# --------------------------------------------------------------------------- JSON → our types


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)


def parse_milestone(data: Mapping[str, Any]) -> GhMilestone:
    due = _time(data.get("due_on"))
    return GhMilestone(
        number=int(data["number"]),
        title=str(data["title"]),
        state=str(data.get("state") or "open"),
        description=data.get("description"),
        due_on=due.astimezone(PACIFIC).date() if due else None,
    )


def parse_label(data: Mapping[str, Any]) -> GhLabel:
    return GhLabel(name=str(data["name"]), color=str(data.get("color") or ""), description=data.get("description"))


def parse_issue(data: Mapping[str, Any]) -> GhIssue:
    """An issue as GitHub's REST API (and webhook payloads) describe it."""
    milestone = data.get("milestone")
    return GhIssue(
        number=int(data["number"]),
        title=str(data.get("title") or ""),
        body=str(data.get("body") or ""),
        state=str(data.get("state") or "open"),
        labels=tuple(str(x["name"] if isinstance(x, Mapping) else x) for x in data.get("labels") or ()),
        assignees=tuple(str(u["login"]) for u in data.get("assignees") or () if isinstance(u, Mapping)),
        milestone_number=int(milestone["number"]) if isinstance(milestone, Mapping) else None,
        html_url=str(data.get("html_url") or ""),
        updated_at=_time(data.get("updated_at")),
    )


def parse_pull(data: Mapping[str, Any]) -> GhPull:
    head = data.get("head")
    return GhPull(
        number=int(data["number"]),
        title=str(data.get("title") or ""),
        body=str(data.get("body") or ""),
        state=str(data.get("state") or "open"),
        merged=bool(data.get("merged_at")),
        head=str(head.get("ref") or "") if isinstance(head, Mapping) else "",
        html_url=str(data.get("html_url") or ""),
    )


def due_on_text(day: date) -> str:
    # Noon UTC is the same calendar day in US-Pacific, where GitHub truncates due_on to a day.
    return f"{day.isoformat()}T12:00:00Z"


_LINK_NEXT = re.compile(r'<([^>]+)>;\s*rel="next"')
# The conditional-GET cache keeps whole pages of JSON (issue lists grow with every issue written): bounded in bytes
# too, so a long-running bot with many large repositories stays within this, however many issues they gather.
CACHE_BYTES = 16 * 1024 * 1024


def _error(status: int, headers: Mapping[str, str], data: Any, what: str) -> GitHubError:
    if isinstance(data, Mapping):  # GitHub says `message`; a proxy's problem+json (RFC 9457) `title`/`detail`
        message = str(data.get("message") or data.get("detail") or data.get("title") or "")[:500]
    else:
        message = str(data or "")[:500]
    text = f"{what}: {status} {message}".strip()
    lowered = message.lower()
    retry_after = headers.get("retry-after")
    remaining = headers.get("x-ratelimit-remaining")
    limited = "rate limit" in lowered or retry_after is not None or (status == 429)
    if status in (403, 429) and (limited or remaining == "0"):
        reset = headers.get("x-ratelimit-reset")
        return RateLimited(
            text,
            status=status,
            retry_after=float(retry_after) if retry_after and retry_after.isdigit() else None,
            reset_at=float(reset) if remaining == "0" and reset else None,
            resource=headers.get("x-ratelimit-resource"),
        )
    if status >= 500:
        return Transient(text, status=status)
    if status == 422:
        errors = data.get("errors") if isinstance(data, Mapping) else None
        return Unprocessable(text, errors=[e for e in errors or () if isinstance(e, Mapping)])
    if status == 410:
        return Gone(text, status=status)
    if status == 404:
        return NotFoundError(text, status=status)
    if status == 403 and "archived" in lowered:
        return RepoLocked(text, status=status, reason="archived")
    if status == 403 and "not accessible by integration" in lowered:
        return RepoLocked(text, status=status, reason="no_access")
    if status in (401, 403):
        return AuthError(text, status=status)
    return GitHubError(text, status=status)


# --------------------------------------------------------------------------- PyGithub implementation


class PyGithubGateway:
    """The gateway over PyGithub's Requester (auth, base URL, App token refresh), called via `to_thread`.

    PyGithub's own retry is off (`retry=None`): its default GithubRetry retries POSTs, which can create
    duplicate issues, and sleeps for real. We retry (exactly once, by marker) and pace ourselves.
    GETs are conditional: the gateway remembers each URL's ETag and body, so an unchanged read is a 304.
    """

    def __init__(
        self,
        *,
        auth: Auth.Auth | Callable[[], Auth.Auth],
        base_url: str = "https://api.github.com",
        seconds_between_requests: float = 0.0,
        seconds_between_writes: float = 0.0,
        timeout: int = 15,
        per_page: int = 100,
        cache_size: int = 2048,
        cache_bytes: int = CACHE_BYTES,
        conditional: bool = True,
    ) -> None:
        """`auth` may be a function that makes it: PyGithub (~25 MB with requests and its crypto) is then imported
        by the first request, not when the server starts."""
        self._auth_source = auth
        self._options: dict[str, Any] = {
            "base_url": base_url,
            "seconds_between_requests": seconds_between_requests,
            "seconds_between_writes": seconds_between_writes,
            "timeout": timeout,
            "per_page": per_page,
        }
        self._connected: tuple[Github, Auth.Auth] | None = None
        self._per_page = per_page
        # Conditional GETs: url -> (etag, body, next page, body size); at most `cache_size` pages and `cache_bytes`
        # of JSON, least recently used dropped first (a dropped page is read in full once more, then kept again).
        self._cache: OrderedDict[str, tuple[str, Any, str | None, int]] = OrderedDict()
        self._cache_size = cache_size if conditional else 0
        self._cache_bytes = cache_bytes
        self._cached_bytes = 0
        self._lock = threading.Lock()
        self._connect_lock = threading.Lock()

    def _connection(self) -> tuple[Github, Auth.Auth]:
        """PyGithub's client and the auth it uses, made on first use (from a worker thread)."""
        with self._connect_lock:
            if self._connected is None:
                from github import Auth, Github

                source = self._auth_source
                auth = source if isinstance(source, Auth.Auth) else source()
                self._connected = (Github(auth=auth, retry=None, lazy=True, **self._options), auth)
            return self._connected

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> PyGithubGateway | None:
        """A gateway from GITHUB_TOKEN or the GITHUB_APP_* settings; None without credentials (preview mode)."""
        token = settings.github_token.get_secret_value() if settings.github_token is not None else ""
        app_id, key, installation = (
            settings.github_app_id,
            settings.github_app_private_key,
            settings.github_app_installation_id,
        )
        if not token and not (app_id and key and installation):
            return None  # preview mode

        def auth() -> Auth.Auth:
            from github import Auth

            if token:
                return Auth.Token(token)
            assert app_id and key and installation
            return Auth.AppAuth(app_id, key.get_secret_value()).get_installation_auth(installation)

        return cls(auth=auth, base_url=settings.github_api_url, **options)

    # ------------------------------------------------------------------ plumbing (worker threads)

    def _request(
        self, verb: str, url: str, *, params: Mapping[str, Any] | None = None, body: Any = None, etag: str | None = None
    ) -> tuple[int, dict[str, str], Any]:
        try:
            return self._request_once(verb, url, params=params, body=body, etag=etag)
        except AuthError as exc:
            # An App installation token that expired early (or was revoked): GitHub answered 401 before doing
            # anything, so the request is sent once more with a freshly minted token.
            invalidate = getattr(self._connection()[1], "invalidate", None)
            if exc.status != 401 or invalidate is None:
                raise
            invalidate()
            return self._request_once(verb, url, params=params, body=body, etag=etag)

    def _request_once(
        self, verb: str, url: str, *, params: Mapping[str, Any] | None = None, body: Any = None, etag: str | None = None
    ) -> tuple[int, dict[str, str], Any]:
        import requests
        from github import GithubException

        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
        if etag:
            headers["If-None-Match"] = etag
        try:
            status, raw_headers, output = self._connection()[0].requester.requestJson(
                verb, url, parameters=dict(params) if params else None, headers=headers, input=body
            )
        except GithubException as exc:  # e.g. fetching a GitHub App installation token failed
            raise _error(
                exc.status, {k.lower(): str(v) for k, v in (exc.headers or {}).items()}, exc.data, f"{verb} {url}"
            ) from exc
        except (requests.RequestException, OSError) as exc:
            raise Transient(f"{verb} {url}: {exc.__class__.__name__}: {exc}") from exc
        lowered = {str(k).lower(): str(v) for k, v in raw_headers.items()}
        try:
            data = json.loads(output) if output else None
        except ValueError:
            if status < 400:
                raise Transient(f"{verb} {url}: {status} with a body that is not JSON", status=status) from None
            data = {"message": output[:200]}
        if status >= 400:
            raise _error(status, lowered, data, f"{verb} {url}")
        return status, lowered, data

    def _get(self, url: str, params: Mapping[str, Any] | None = None) -> tuple[Any, str | None, bool, str | None]:
        """A conditional GET: (body, etag, not_modified, next page URL)."""
        key = url + ("?" + "&".join(f"{k}={params[k]}" for k in sorted(params)) if params else "")
        with self._lock:
            cached = self._cache.get(key)
        status, headers, data = self._request("GET", url, params=params, etag=cached[0] if cached else None)
        if status == 304 and cached is not None:
            with self._lock:
                if key in self._cache:
                    self._cache.move_to_end(key)
            return cached[1], cached[0], True, cached[2]
        match = _LINK_NEXT.search(headers.get("link", ""))
        next_url = match.group(1) if match else None
        etag = headers.get("etag")
        if etag and self._cache_size:
            self._keep(key, (etag, data, next_url, len(json.dumps(data, separators=(",", ":")))))
        return data, etag, False, next_url

    def _keep(self, key: str, entry: tuple[str, Any, str | None, int]) -> None:
        """Cache a page (replacing its older copy), then drop the least recently used pages beyond the limits."""
        with self._lock:
            old = self._cache.pop(key, None)
            if old is not None:
                self._cached_bytes -= old[3]
            if entry[3] > self._cache_bytes:
                return  # larger than the whole budget: read in full each time
            self._cache[key] = entry
            self._cached_bytes += entry[3]
            while len(self._cache) > self._cache_size or self._cached_bytes > self._cache_bytes:
                self._cached_bytes -= self._cache.popitem(last=False)[1][3]

    @property
    def cached_bytes(self) -> int:
        """The JSON size of the pages kept for conditional GETs (at most `cache_bytes`)."""
        return self._cached_bytes

    def _get_all(self, url: str, params: Mapping[str, Any]) -> Read[list[Json]]:
        items: list[Json] = []
        data, etag, all_cached, next_url = self._get(url, {**params, "per_page": self._per_page})
        items.extend(data or [])
        while next_url:
            data, _, cached, next_url = self._get(next_url)
            all_cached = all_cached and cached
            items.extend(data or [])
        return Read(items, etag, all_cached)

    async def _run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(fn, *args, **kwargs)

    @staticmethod
    def _repo(repo: str) -> str:
        owner, _, name = repo.partition("/")
        return f"/repos/{quote(owner, safe='')}/{quote(name, safe='')}"

    # ------------------------------------------------------------------ milestones

    async def list_milestones(self, repo: str) -> Read[list[GhMilestone]]:
        """All milestones of `repo` (open and closed), conditionally."""
        read: Read[list[Json]] = await self._run(self._get_all, f"{self._repo(repo)}/milestones", {"state": "all"})
        return Read([parse_milestone(m) for m in read.value], read.etag, read.not_modified)

    def _milestone_body(self, title: str, description: str, due_on: date | None, state: str) -> Json:
        body: Json = {"title": title, "description": description, "state": state}
        if due_on is not None:
            # GitHub accepts null to clear a due date, but its published description only allows a string.
            body["due_on"] = due_on_text(due_on)
        return body

    async def create_milestone(
        self, repo: str, *, title: str, description: str, due_on: date | None, state: str
    ) -> GhMilestone:
        """Create a milestone (422 `already_exists` when the title is taken, even by a closed one)."""
        body = self._milestone_body(title, description, due_on, state)
        _, _, data = await self._run(self._request, "POST", f"{self._repo(repo)}/milestones", body=body)
        return parse_milestone(data)

    async def update_milestone(
        self, repo: str, number: int, *, title: str, description: str, due_on: date | None, state: str
    ) -> GhMilestone:
        """Set every field we manage on a milestone."""
        body = self._milestone_body(title, description, due_on, state)
        _, _, data = await self._run(self._request, "PATCH", f"{self._repo(repo)}/milestones/{number}", body=body)
        return parse_milestone(data)

    # ------------------------------------------------------------------ labels

    async def list_labels(self, repo: str) -> Read[list[GhLabel]]:
        """All labels of `repo`, conditionally."""
        read: Read[list[Json]] = await self._run(self._get_all, f"{self._repo(repo)}/labels", {})
        return Read([parse_label(x) for x in read.value], read.etag, read.not_modified)

    async def create_label(self, repo: str, *, name: str, color: str, description: str) -> GhLabel:
        """Create a label (422 `already_exists` when taken)."""
        body = {"name": name, "color": color, "description": description}
        _, _, data = await self._run(self._request, "POST", f"{self._repo(repo)}/labels", body=body)
        return parse_label(data)

    # ------------------------------------------------------------------ issues

    async def list_issues(
        self,
        repo: str,
        *,
        milestone: int | None = None,
        since: datetime | None = None,
        sort: str = "created",
    ) -> Read[list[GhIssue]]:
        """Issues of `repo` (open and closed), optionally of one milestone or updated since; conditionally."""
        params: dict[str, Any] = {"state": "all", "sort": sort, "direction": "asc"}
        if milestone is not None:
            params["milestone"] = milestone
        if since is not None:
            params["since"] = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        read: Read[list[Json]] = await self._run(self._get_all, f"{self._repo(repo)}/issues", params)
        # The issues endpoint also lists pull requests; we only ever manage issues.
        issues = [parse_issue(i) for i in read.value if "pull_request" not in i]
        return Read(issues, read.etag, read.not_modified)

    async def search_issues(self, query: str) -> list[GhIssue]:
        """Search issues (eventually consistent: a new issue may not be found yet)."""
        _, _, data = await self._run(self._request, "GET", "/search/issues", params={"q": query, "per_page": 100})
        return [parse_issue(i) for i in (data or {}).get("items", [])]

    async def create_issue(
        self,
        repo: str,
        *,
        title: str,
        body: str,
        milestone: int | None,
        labels: Sequence[str],
        assignees: Sequence[str],
    ) -> GhIssue:
        """Create an issue. Not idempotent: a lost response may still have created it."""
        payload: Json = {"title": title, "body": body, "labels": list(labels), "assignees": list(assignees)}
        if milestone is not None:
            payload["milestone"] = milestone
        _, _, data = await self._run(self._request, "POST", f"{self._repo(repo)}/issues", body=payload)
        return parse_issue(data)

    async def update_issue(
        self,
        repo: str,
        number: int,
        *,
        title: str | None = None,
        body: str | None = None,
        state: str | None = None,
        milestone: int | None = None,
        labels: Sequence[str] | None = None,
        assignees: Sequence[str] | None = None,
        state_reason: str | None = None,
    ) -> GhIssue:
        """PATCH the given fields of an issue (None = leave as is); a close is `completed` unless `state_reason`."""
        payload: Json = {}
        for key, value in (("title", title), ("body", body), ("state", state), ("milestone", milestone)):
            if value is not None:
                payload[key] = value
        if state == "closed":
            payload["state_reason"] = state_reason or "completed"
        if labels is not None:
            payload["labels"] = list(labels)
        if assignees is not None:
            payload["assignees"] = list(assignees)
        _, _, data = await self._run(self._request, "PATCH", f"{self._repo(repo)}/issues/{number}", body=payload)
        return parse_issue(data)

    async def list_comments(self, repo: str, number: int) -> list[GhComment]:
        """`GET /repos/{o}/{r}/issues/{number}/comments`, every page."""
        read: Read[list[Json]] = await self._run(self._get_all, f"{self._repo(repo)}/issues/{number}/comments", {})
        return [GhComment(int(c["id"]), str(c.get("body") or ""), str(c.get("html_url") or "")) for c in read.value]

    async def create_comment(self, repo: str, number: int, *, body: str) -> GhComment:
        """`POST /repos/{o}/{r}/issues/{number}/comments`. Not idempotent: a lost response may still have made it."""
        _, _, data = await self._run(
            self._request, "POST", f"{self._repo(repo)}/issues/{number}/comments", body={"body": body}
        )
        return GhComment(int(data["id"]), str(data.get("body") or ""), str(data.get("html_url") or ""))

    async def is_assignable(self, repo: str, login: str) -> bool:
        """`GET /repos/{o}/{r}/assignees/{login}`: 204 yes, 404 no."""
        try:
            await self._run(self._request, "GET", f"{self._repo(repo)}/assignees/{quote(login, safe='')}")
        except NotFoundError:
            return False
        return True

    # ------------------------------------------------------------------ branches, files, pull requests

    @staticmethod
    def _path(path: str) -> str:
        return "/".join(quote(part, safe="") for part in path.split("/"))

    async def default_branch(self, repo: str) -> str:
        """The repository's default branch (`GET /repos/{o}/{r}`)."""
        data, _, _, _ = await self._run(self._get, self._repo(repo))
        return str((data or {}).get("default_branch") or "main")

    async def branch_sha(self, repo: str, branch: str) -> str | None:
        """The commit a branch points at (`GET /git/ref/heads/{branch}`); None when there is no such branch."""
        try:
            _, _, data = await self._run(self._request, "GET", f"{self._repo(repo)}/git/ref/heads/{self._path(branch)}")
        except NotFoundError:
            return None
        return str(data["object"]["sha"])

    async def create_branch(self, repo: str, branch: str, sha: str) -> None:
        """`POST /git/refs` (422 "Reference already exists" when it does)."""
        body = {"ref": f"refs/heads/{branch}", "sha": sha}
        await self._run(self._request, "POST", f"{self._repo(repo)}/git/refs", body=body)

    async def get_file(self, repo: str, path: str, *, ref: str) -> GhFile | None:
        """A file on `ref`; None when it is not there."""
        try:
            _, _, data = await self._run(
                self._request, "GET", f"{self._repo(repo)}/contents/{self._path(path)}", params={"ref": ref}
            )
        except NotFoundError:
            return None
        if not isinstance(data, Mapping) or data.get("type") != "file":
            return None
        raw = base64.b64decode(str(data.get("content") or "")) if data.get("encoding") == "base64" else b""
        return GhFile(sha=str(data["sha"]), text=raw.decode("utf-8", errors="replace"))

    async def put_file(self, repo: str, path: str, *, branch: str, message: str, text: str, sha: str | None) -> str:
        """Create (sha None) or replace a file on `branch` in one commit; returns the new blob sha."""
        body: Json = {"message": message, "content": base64.b64encode(text.encode()).decode(), "branch": branch}
        if sha is not None:
            body["sha"] = sha
        _, _, data = await self._run(self._request, "PUT", f"{self._repo(repo)}/contents/{self._path(path)}", body=body)
        return str(data["content"]["sha"])

    async def list_pulls(self, repo: str, *, head: str) -> list[GhPull]:
        """Pull requests (open and closed) whose head is `owner:branch`."""
        params = {"state": "all", "head": head}
        read: Read[list[Json]] = await self._run(self._get_all, f"{self._repo(repo)}/pulls", params)
        return [parse_pull(p) for p in read.value]

    async def create_pull(self, repo: str, *, title: str, body: str, head: str, base: str) -> GhPull:
        """Open a pull request (422 "A pull request already exists" for the same head and base)."""
        payload = {"title": title, "body": body, "head": head, "base": base}
        _, _, data = await self._run(self._request, "POST", f"{self._repo(repo)}/pulls", body=payload)
        return parse_pull(data)

    async def update_pull(self, repo: str, number: int, *, title: str, body: str) -> GhPull:
        """Set a pull request's title and body."""
        payload = {"title": title, "body": body}
        _, _, data = await self._run(self._request, "PATCH", f"{self._repo(repo)}/pulls/{number}", body=payload)
        return parse_pull(data)

    async def close(self) -> None:
        """Release connections."""
        if self._connected is not None:
            await asyncio.to_thread(self._connected[0].close)


def build_gateway(settings: Settings) -> GitHubGateway | None:
    """The app's gateway from Settings; None (preview mode) without GitHub credentials. With an App of many
    installations, each repository's calls go to the installation that covers it."""
    if settings.github_app_many_installations and settings.github_app_id and settings.github_app_private_key:
        from bot.clock import SystemClock
        from bot.github.installations import GitHubApp, InstallationRoutingGateway  # it builds on this module

        app = GitHubApp(
            settings.github_app_id,
            settings.github_app_private_key.get_secret_value(),
            SystemClock(),
            base_url=settings.github_api_url,
            slug=settings.github_app_slug,
        )
        return InstallationRoutingGateway(app)
    return PyGithubGateway.from_settings(settings)
