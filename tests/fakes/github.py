"""Local fake of the GitHub REST API (state, rate limits, faults, webhooks) for tests and benchmarks."""

from __future__ import annotations

import argparse
import asyncio
import fnmatch
import hashlib
import hmac
import itertools
import json
import math
import random
import re
import signal
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from datetime import time as dtime
from typing import Any, TypeVar
from urllib.parse import quote, unquote, urlencode
from zoneinfo import ZoneInfo

from aiohttp import ClientError, ClientSession, ClientTimeout, web

from tests.fakes.github_git import GIT_ROUTES, GitMixin

Json = dict[str, Any]
T = TypeVar("T")

DOCS = "https://docs.github.com/rest"
HTML = "https://github.com"
WRITES = frozenset({"POST", "PATCH", "PUT", "DELETE"})
FAULT_KINDS = frozenset({"500", "502", "503", "secondary_403", "429", "drop_after_commit", "slow"})
PACIFIC = ZoneInfo("America/Los_Angeles")
SECONDARY_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "
    "If you reach out to GitHub Support for help, please include the request ID {rid}."
)
PRIMARY_MESSAGE = (
    "API rate limit exceeded for user ID {uid}. If you reach out to GitHub Support for help, "
    "please include the request ID {rid} and timestamp {ts}."
)
RATE_DOCS = f"{DOCS}/overview/rate-limits-for-the-rest-api"
AUTH_DOCS = f"{DOCS}/overview/authenticating-to-the-rest-api"
ISSUE_STATE_REASONS = frozenset({"completed", "not_planned", "reopened", "duplicate"})
_UNSET: Any = object()


class ApiError(Exception):
    """An error answer as GitHub gives it: status, message, validation errors, extra headers."""

    def __init__(
        self,
        status: int = 404,
        message: str = "Not Found",
        errors: list[Json] | None = None,
        headers: dict[str, str] | None = None,
        docs: str | None = None,
    ) -> None:
        super().__init__(f"{status} {message}")
        self.status, self.message, self.errors = status, message, errors
        self.headers, self.docs = headers or {}, docs


def _invalid(resource: str, field_name: str, code: str = "invalid", value: Any = _UNSET) -> ApiError:
    error: Json = {"resource": resource, "code": code, "field": field_name}
    if value is not _UNSET:
        error["value"] = value
    return ApiError(422, "Validation Failed", [error])


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(value: Any) -> datetime | None:
    """ISO 8601 (`Z` or offset) or a bare date; None when unparseable."""
    try:
        if isinstance(value, str) and len(value) == 10:
            return datetime.combine(date.fromisoformat(value), dtime(0), UTC)
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _pacific_midnight(when: datetime, bare_date: bool) -> float:
    # GitHub keeps only the day of due_on, taken in US-Pacific time, and answers midnight Pacific in UTC
    # (07:00Z or 08:00Z): 2024-05-10T00:00:00Z comes back as 2024-05-09T07:00:00Z.
    day = when.date() if bare_date else when.astimezone(PACIFIC).date()
    return datetime.combine(day, dtime(0), PACIFIC).timestamp()


# --------------------------------------------------------------------------- state


@dataclass
class Label:
    id: int
    name: str
    color: str = "ededed"
    description: str | None = None
    default: bool = False


@dataclass
class Milestone:
    id: int
    number: int
    title: str
    creator: str
    created_at: float
    updated_at: float
    state: str = "open"
    description: str | None = None
    due_on: float | None = None
    closed_at: float | None = None


@dataclass
class Issue:
    id: int
    number: int
    title: str
    user: str
    created_at: float
    updated_at: float
    body: str | None = None
    state: str = "open"
    state_reason: str | None = None
    closed_at: float | None = None
    closed_by: str | None = None
    labels: list[int] = field(default_factory=list)
    assignees: list[str] = field(default_factory=list)
    milestone: int | None = None


@dataclass
class Comment:
    id: int
    issue: int
    body: str
    user: str
    created_at: float
    updated_at: float


@dataclass
class Repo:
    id: int
    owner: str
    name: str
    collaborators: list[str]
    push: bool
    private: bool
    created_at: float
    milestones: dict[int, Milestone] = field(default_factory=dict)
    labels: dict[int, Label] = field(default_factory=dict)
    issues: dict[int, Issue] = field(default_factory=dict)
    comments: dict[int, Comment] = field(default_factory=dict)
    next_issue: int = 1
    next_milestone: int = 1
    archived: bool = False  # writes answer 403 "Repository was archived so is read-only."
    integration_denied: bool = False  # writes answer 403 "Resource not accessible by integration"
    deleted: set[int] = field(default_factory=set)  # issue numbers deleted: 410 "This issue was deleted"
    moved: dict[int, str] = field(default_factory=dict)  # issue number → the transferred issue's API URL

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    def assignable(self, login: str) -> str | None:
        """The collaborator's login as stored, or None when `login` cannot be assigned."""
        return next((c for c in self.collaborators if c.lower() == str(login).lower()), None)

    def label_named(self, name: str) -> Label | None:
        return next((lb for lb in self.labels.values() if lb.name.lower() == str(name).lower()), None)


@dataclass
class Fault:
    """One injected fault; `fired` counts how often it has struck."""

    kind: str
    route: str | None = None
    method: str | None = None
    count: int | None = None
    probability: float | None = None
    retry_after: int = 1
    delay: float = 0.0
    fired: int = 0

    def matches(self, method: str, template: str, path: str) -> bool:
        if self.count is not None and self.fired >= self.count:
            return False
        if self.method and self.method.upper() != method:
            return False
        return self.route is None or self.route == template or fnmatch.fnmatchcase(path, self.route)


@dataclass
class Stats:
    """Request counters. `counted` = requests charged to the primary limit (not 304s, 401s, /rate_limit,
    injected 5xx/403/429 answers or secondary-limit refusals)."""

    requests: int = 0
    counted: int = 0
    writes: int = 0
    not_modified: int = 0
    primary_refusals: int = 0
    secondary_refusals: int = 0
    by_route: Counter[str] = field(default_factory=Counter)
    by_status: Counter[int] = field(default_factory=Counter)
    faults: list[Json] = field(default_factory=list)

    def as_dict(self) -> Json:
        data = asdict(self)
        data["by_route"], data["by_status"] = dict(self.by_route), {str(k): v for k, v in self.by_status.items()}
        return data


@dataclass
class _Bucket:
    limit: int
    window: float
    used: int = 0
    reset_at: float = 0.0

    def roll(self, now: float) -> None:
        if now >= self.reset_at:
            self.used, self.reset_at = 0, now + self.window

    @property
    def remaining(self) -> int:
        return max(self.limit - self.used, 0)

    def as_json(self, resource: str) -> Json:
        reset = math.ceil(self.reset_at)
        return {"limit": self.limit, "remaining": self.remaining, "reset": reset, "used": self.used,
                "resource": resource}


@dataclass
class _Secondary:
    per_minute: int | None
    per_hour: int | None
    concurrent: int | None


@dataclass
class Call:
    """What a route handler sees of a request."""

    method: str
    path: str
    params: dict[str, str]
    query: dict[str, str]
    body: Json
    actor: str
    installation: int | None = None  # the App installation whose token made the request


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    handler: str
    docs: str
    regex: re.Pattern[str]


_R = "/repos/{owner}/{repo}"
ROUTES: tuple[Route, ...] = tuple(
    Route(m, t, h, f"{DOCS}/{d}", re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", t) + "$"))
    for m, t, h, d in (
        ("GET", _R, "get_repo", "repos/repos#get-a-repository"),
        ("GET", _R + "/milestones", "list_milestones", "issues/milestones#list-milestones"),
        ("POST", _R + "/milestones", "create_milestone", "issues/milestones#create-a-milestone"),
        ("GET", _R + "/milestones/{number}", "get_milestone", "issues/milestones#get-a-milestone"),
        ("PATCH", _R + "/milestones/{number}", "edit_milestone", "issues/milestones#update-a-milestone"),
        ("DELETE", _R + "/milestones/{number}", "delete_milestone", "issues/milestones#delete-a-milestone"),
        ("GET", _R + "/labels", "list_labels", "issues/labels#list-labels-for-a-repository"),
        ("POST", _R + "/labels", "create_label", "issues/labels#create-a-label"),
        ("GET", _R + "/labels/{name}", "get_label", "issues/labels#get-a-label"),
        ("PATCH", _R + "/labels/{name}", "edit_label", "issues/labels#update-a-label"),
        ("DELETE", _R + "/labels/{name}", "delete_label", "issues/labels#delete-a-label"),
        ("GET", _R + "/issues", "list_issues", "issues/issues#list-repository-issues"),
        ("POST", _R + "/issues", "create_issue", "issues/issues#create-an-issue"),
        ("GET", _R + "/issues/comments/{id}", "get_comment", "issues/comments#get-an-issue-comment"),
        ("PATCH", _R + "/issues/comments/{id}", "edit_comment", "issues/comments#update-an-issue-comment"),
        ("DELETE", _R + "/issues/comments/{id}", "delete_comment", "issues/comments#delete-an-issue-comment"),
        ("GET", _R + "/issues/{number}", "get_issue", "issues/issues#get-an-issue"),
        ("PATCH", _R + "/issues/{number}", "edit_issue", "issues/issues#update-an-issue"),
        ("POST", _R + "/issues/{number}/assignees", "add_assignees", "issues/assignees#add-assignees-to-an-issue"),
        ("DELETE", _R + "/issues/{number}/assignees", "remove_assignees",
         "issues/assignees#remove-assignees-from-an-issue"),
        ("GET", _R + "/issues/{number}/assignees/{login}", "check_issue_assignee",
         "issues/assignees#check-if-a-user-can-be-assigned-to-a-issue"),
        ("GET", _R + "/issues/{number}/comments", "list_comments", "issues/comments#list-issue-comments"),
        ("POST", _R + "/issues/{number}/comments", "create_comment", "issues/comments#create-an-issue-comment"),
        ("GET", _R + "/assignees", "list_assignees", "issues/assignees#list-assignees"),
        ("GET", _R + "/assignees/{login}", "check_assignee", "issues/assignees#check-if-a-user-can-be-assigned"),
        ("GET", "/search/issues", "search_issues", "search/search#search-issues-and-pull-requests"),
        ("GET", "/rate_limit", "rate_limit", "rate-limit/rate-limit#get-rate-limit-status-for-the-authenticated-user"),
        ("GET", "/user", "get_user", "users/users#get-the-authenticated-user"),
        ("GET", "/app", "get_app", "apps/apps#get-the-authenticated-app"),
        ("POST", "/app/installations/{id}/access_tokens", "create_installation_token",
         "apps/apps#create-an-installation-access-token-for-an-app"),
        ("GET", _R + "/installation", "get_repo_installation", "apps/apps#get-a-repository-installation-for-the-authenticated-app"),
    )
)

# `repo:o/r is:issue in:body "phrase" word` → (qualifier, value) pairs and free terms
_QUERY_TOKEN = re.compile(r'(?P<key>[A-Za-z_]+):(?P<val>"[^"]*"|\S+)|"(?P<phrase>[^"]*)"|(?P<word>\S+)')
_QUALIFIERS = frozenset({"repo", "is", "state", "in", "label", "milestone", "assignee", "author", "no", "type"})


class FakeGitHub(GitMixin):
    """An aiohttp server speaking the subset of GitHub's REST API the bot uses, with inspectable state.

    Tests mutate state directly through the helpers (`add_repo`, `close_issue`, …: a human in GitHub's
    UI), inject faults (`add_fault`), limits (`enforce_secondary`, `set_rate_limit`) and read `stats`.
    All state lives on the fake's event loop; helpers called from another thread are run there.
    """

    def __init__(
        self,
        public_url: str | None = None,
        *,
        rate_limit: int = 5000,
        search_rate_limit: int = 30,
        bot_login: str = "phasegate-bot",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.public_url = public_url.rstrip("/") if public_url else None
        self.bot_login = bot_login
        self.clock = clock
        self.valid_tokens: set[str] | None = None
        self.search_index_delay = 0.0  # seconds before a new issue shows up in search (GitHub indexes lazily)
        self.deliveries: list[Json] = []
        self._limits = (rate_limit, search_rate_limit)
        self._own_url: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._session: ClientSession | None = None
        self._thread: threading.Thread | None = None
        self._thread_loop: asyncio.AbstractEventLoop | None = None
        self._hook_lock: asyncio.Lock | None = None
        self._hook_tasks: set[asyncio.Task[None]] = set()
        self._inflight = 0
        self.reset()

    # ------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        """The address written into absolute URLs in responses (public_url, else our own)."""
        return self.public_url or self._own_url or "http://127.0.0.1"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on host:port (0 = any free port); returns the address the fake listens on."""
        self._loop = asyncio.get_running_loop()
        self._session = ClientSession()
        self._hook_lock = asyncio.Lock()
        app = web.Application()
        for method, path, handler in (
            ("POST", "/_fake/reset", self._c_reset), ("GET", "/_fake/stats", self._c_stats),
            ("POST", "/_fake/faults", self._c_faults), ("DELETE", "/_fake/faults", self._c_faults),
            ("POST", "/_fake/repos", self._c_repos), ("GET", "/_fake/state", self._c_state),
            ("POST", "/_fake/config", self._c_config),
            ("POST", "/_fake/issues/{owner}/{repo}/{number}", self._c_issue),
        ):
            app.router.add_route(method, path, handler)
        app.router.add_route("*", "/{tail:.*}", self._serve)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        self._own_url = f"http://{host}:{self._runner.addresses[0][1]}"
        return self._own_url

    async def stop(self) -> None:
        await self.flush_webhooks()
        if self._runner:
            await self._runner.cleanup()
        if self._session:
            await self._session.close()
        self._runner = self._session = self._loop = None

    def run_in_thread(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Run the fake on its own event loop in a daemon thread (for sync tests); returns its address."""
        loop = asyncio.new_event_loop()
        self._thread_loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="fake-github", daemon=True)
        self._thread.start()
        return asyncio.run_coroutine_threadsafe(self.start(host, port), loop).result(30)

    def stop_thread(self) -> None:
        loop, thread = self._thread_loop, self._thread
        if loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(self.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()
        self._thread = self._thread_loop = None

    def _on_loop(self, fn: Callable[[], T]) -> T:
        """Run a state mutation on the fake's loop (directly when already there or not started)."""
        loop = self._loop
        try:
            here = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        if loop is None or here is loop or not loop.is_running():
            return fn()

        async def call() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(call(), loop).result(30)

    # ------------------------------------------------------------------ control API (Python)

    def reset(self) -> None:
        """Forget all state, faults, limits, webhooks and counters."""
        self._on_loop(self._reset)

    def _reset(self) -> None:
        self._repos: dict[str, Repo] = {}
        self._users: dict[str, int] = {}
        self._ids = itertools.count(1_000_001)
        self._buckets = {"core": _Bucket(self._limits[0], 3600.0), "search": _Bucket(self._limits[1], 60.0)}
        self._secondary: _Secondary | None = None
        self._writes: deque[float] = deque()
        self._writes_by: dict[str, deque[float]] = {}  # per-token secondary limits (enforce_secondary(per_token=True))
        self._per_token = False
        self._app: Json | None = None  # {"id", "slug", "public_key"} once add_app() is called
        self._installations: dict[int, str] = {}  # installation id -> account login it is installed on
        self._install_tokens: dict[str, tuple[int, float]] = {}  # token -> (installation id, expires at)
        self.token_ttl = 3600.0
        self.write_log: list[tuple[int | None, str, str]] = []  # (installation, method, path) of every write
        self._faults: list[Fault] = []
        self._rng = random.Random(0)
        self._hooks: list[tuple[str, str]] = []
        self.deliveries = []
        self._reset_git()
        self.reset_stats()

    def reset_stats(self) -> None:
        self.stats = Stats()

    def seed(self, n: int) -> None:
        """Seed the generator behind probability faults, so runs are reproducible."""
        self._rng.seed(n)

    def add_repo(
        self, full_name: str, *, collaborators: Iterable[str] = (), push: bool = True, private: bool = True
    ) -> None:
        """Create a repository; `collaborators` are the assignable users; without `push` the token's
        milestone/labels/assignees on issues are silently dropped, as on GitHub."""
        owner, name = full_name.split("/")

        def add() -> None:
            self._repos[full_name.lower()] = Repo(
                next(self._ids), owner, name, list(collaborators), push, private, self.clock())

        self._on_loop(add)

    def archive_repo(self, repo: str, archived: bool = True) -> None:
        """Archive (or unarchive) a repository: every write answers 403 read-only, as on GitHub."""
        self._on_loop(lambda: setattr(self._repo_named(repo), "archived", archived))

    def deny_integration(self, repo: str, denied: bool = True) -> None:
        """The App lost its permission on `repo`: writes answer 403 "Resource not accessible by integration"."""
        self._on_loop(lambda: setattr(self._repo_named(repo), "integration_denied", denied))

    def delete_issue(self, repo: str, number: int) -> None:
        """Delete an issue as an admin would: gone from lists and search, 410 on the issue itself."""

        def delete() -> None:
            r = self._repo_named(repo)
            r.issues.pop(number, None)
            r.deleted.add(number)

        self._on_loop(delete)

    def transfer_issue(self, repo: str, number: int, to_repo: str) -> int:
        """Transfer an issue to `to_repo`: the old URL answers 301 with Location to the new issue."""

        def transfer() -> int:
            src, dst = self._repo_named(repo), self._repo_named(to_repo)
            issue = src.issues.pop(number)
            issue.number, dst.next_issue = dst.next_issue, dst.next_issue + 1
            dst.issues[issue.number] = issue
            src.moved[number] = f"{self.base_url}/repos/{dst.full_name}/issues/{issue.number}"
            return issue.number

        return self._on_loop(transfer)

    def set_rate_limit(self, limit: int, *, resource: str = "core", used: int = 0) -> None:
        """Set the primary limit of `resource` ("core" or "search") and start a fresh window."""

        def apply() -> None:
            bucket = self._buckets[resource]
            bucket.limit, bucket.reset_at = limit, 0.0
            bucket.roll(self.clock())
            bucket.used = used

        self._on_loop(apply)

    def enforce_secondary(
        self, per_minute: int | None = 80, per_hour: int | None = 500, concurrent: int | None = None,
        *, per_token: bool = False
    ) -> None:
        """Refuse content-creating requests (POST/PATCH/PUT/DELETE) beyond these rates with 403 +
        Retry-After (and any request beyond `concurrent` in flight); all None switches it off.
        `per_token`: the write rates are counted per token (as GitHub does), not over all requests."""
        on = any(v is not None for v in (per_minute, per_hour, concurrent))
        self._secondary = _Secondary(per_minute, per_hour, concurrent) if on else None
        self._per_token = per_token

    # ------------------------------------------------------------------ GitHub App

    def add_app(self, app_id: int, slug: str, public_key_pem: str) -> None:
        """Register the GitHub App: its JWTs (RS256, `iss` = app id) are checked with `public_key_pem`."""
        self._on_loop(lambda: setattr(self, "_app", {"id": app_id, "slug": slug, "public_key": public_key_pem}))

    def add_installation(self, installation_id: int, account: str) -> None:
        """Install the App on `account` (a user or organization): it covers all of that owner's repositories."""
        self._on_loop(lambda: self._installations.__setitem__(installation_id, account))

    def expire_tokens(self) -> None:
        """Every installation token minted so far expires now (answers 401 Bad credentials from here on)."""
        def apply() -> None:
            now = self.clock()
            self._install_tokens = {t: (i, min(e, now)) for t, (i, e) in self._install_tokens.items()}
        self._on_loop(apply)

    def installation_of_token(self, token: str) -> int | None:
        found = self._install_tokens.get(token)
        return found[0] if found else None

    def add_fault(
        self,
        kind: str,
        *,
        route: str | None = None,
        method: str | None = None,
        count: int | None = None,
        probability: float | None = None,
        retry_after: int = 1,
        delay: float = 0.0,
    ) -> Fault:
        """Inject a fault into matching requests.

        kind: "500" | "502" | "503" | "secondary_403" | "429" (both with Retry-After) | "slow" (answer after
        `delay` s) | "drop_after_commit" (apply the write, then abort the connection without answering).
        route: a route template ("/repos/{owner}/{repo}/issues") or a glob on the path ("/repos/*/issues").
        count: how many times it strikes; default once, or unlimited when `probability` is given.
        probability: strike each matching request with this chance (seeded generator, see `seed`).
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(FAULT_KINDS)}")
        fault = Fault(kind, route, method, count if count is not None or probability else 1, probability,
                      retry_after, delay)
        self._on_loop(lambda: self._faults.append(fault))
        return fault

    def clear_faults(self) -> None:
        self._on_loop(self._faults.clear)

    def webhook_target(self, url: str, secret: str) -> None:
        """Deliver `issues` / `milestone` / `issue_comment` events for every change (API or helpers)."""
        self._on_loop(lambda: self._hooks.append((url, secret)))

    async def flush_webhooks(self) -> None:
        """Wait until every scheduled webhook delivery has finished."""
        while self._hook_tasks:
            await asyncio.gather(*list(self._hook_tasks), return_exceptions=True)

    def flush_webhooks_sync(self, timeout: float = 30.0) -> None:
        """`flush_webhooks` for a fake started with `run_in_thread`, from another thread."""
        if self._loop is not None:
            asyncio.run_coroutine_threadsafe(self.flush_webhooks(), self._loop).result(timeout)

    def add_label(self, repo: str, name: str, *, color: str = "ededed", description: str | None = None) -> None:
        self._on_loop(lambda: self._apply_label(self._repo_named(repo), None,
                                                {"name": name, "color": color, "description": description}))

    def add_milestone(self, repo: str, title: str, *, by: str = "alice", **fields: Any) -> int:
        """Create a milestone as a human would (fields as in the REST API: state, description, due_on)."""
        return self._on_loop(
            lambda: self._apply_milestone(self._repo_named(repo), None, {"title": title, **fields}, by).number)

    def edit_milestone(self, repo: str, number: int, *, by: str = "alice", **fields: Any) -> None:
        def edit() -> None:
            r = self._repo_named(repo)
            self._apply_milestone(r, self._milestone(r, str(number)), fields, by)

        self._on_loop(edit)

    def open_issue(self, repo: str, title: str, *, by: str = "alice", **fields: Any) -> int:
        """Open an issue as a human would (fields as in the REST API: body, labels, assignees, milestone)."""
        return self._on_loop(lambda: self._create_issue(self._repo_named(repo), {"title": title, **fields}, by).number)

    def edit_issue(self, repo: str, number: int, *, by: str = "alice", **fields: Any) -> None:
        """Change an issue as a human in GitHub's UI would (fields as in PATCH /issues/{n})."""

        def edit() -> None:
            r = self._repo_named(repo)
            self._apply_issue(r, self._issue(r, str(number)), fields, by)

        self._on_loop(edit)

    def close_issue(self, repo: str, number: int, *, by: str = "alice", reason: str = "completed") -> None:
        self.edit_issue(repo, number, by=by, state="closed", state_reason=reason)

    def reopen_issue(self, repo: str, number: int, *, by: str = "alice") -> None:
        self.edit_issue(repo, number, by=by, state="open")

    def assign_issue(self, repo: str, number: int, logins: str | Iterable[str], *, by: str = "alice") -> None:
        """Add assignees (the REST API would silently ignore non-assignable ones; this raises 422)."""
        new = [logins] if isinstance(logins, str) else list(logins)
        current = self.issue(repo, number)["assignees"]
        self.edit_issue(repo, number, by=by, assignees=[u["login"] for u in current] + new)

    def comment(self, repo: str, number: int, body: str, *, by: str = "alice") -> int:
        def add() -> int:
            r = self._repo_named(repo)
            return self._create_comment(r, self._issue(r, str(number)), body, by).id

        return self._on_loop(add)

    def issue(self, repo: str, number: int) -> Json:
        """The issue as GET /repos/{o}/{r}/issues/{n} would answer it."""
        return self._on_loop(lambda: self._issue_json(r := self._repo_named(repo), self._issue(r, str(number))))

    def issues(self, repo: str) -> list[Json]:
        """Every issue of the repository (open and closed), oldest first."""
        return self._on_loop(lambda: self.state()[self._repo_named(repo).full_name]["issues"])

    def milestones(self, repo: str) -> list[Json]:
        return self._on_loop(lambda: self.state()[self._repo_named(repo).full_name]["milestones"])

    def state(self) -> Json:
        """Dump of every repository: milestones, labels, issues and comments, as the API shows them."""

        def dump() -> Json:
            return {r.full_name: {
                "milestones": [self._milestone_json(r, m) for m in r.milestones.values()],
                "labels": [self._label_json(r, lb) for lb in r.labels.values()],
                "issues": [self._issue_json(r, i) for i in r.issues.values()],
                "comments": [self._comment_json(r, c) for c in r.comments.values()],
            } for r in self._repos.values()}

        return self._on_loop(dump)

    # ------------------------------------------------------------------ control API (HTTP)

    async def _c_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"ok": True})

    async def _c_stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats.as_dict())

    async def _c_faults(self, request: web.Request) -> web.Response:
        if request.method == "DELETE":
            self.clear_faults()
            return web.json_response({"ok": True})
        data = await request.json()
        faults = [self.add_fault(**spec) for spec in (data if isinstance(data, list) else [data])]
        return web.json_response([asdict(f) for f in faults])

    async def _c_repos(self, request: web.Request) -> web.Response:
        data = await request.json()
        self.add_repo(data["full_name"], collaborators=data.get("collaborators", ()),
                      push=data.get("push", True), private=data.get("private", True))
        return web.json_response({"ok": True})

    async def _c_state(self, request: web.Request) -> web.Response:
        return web.json_response(self.state())

    async def _c_config(self, request: web.Request) -> web.Response:
        """Body keys (all optional): seed, rate_limit, secondary {per_minute, per_hour, concurrent} or
        null, webhook {url, secret}, valid_tokens, search_index_delay."""
        data = await request.json()
        if "seed" in data:
            self.seed(data["seed"])
        if "rate_limit" in data:
            self.set_rate_limit(data["rate_limit"])
        if "secondary" in data:
            self.enforce_secondary(**(data["secondary"] or {"per_minute": None, "per_hour": None}))
        if "webhook" in data:
            self.webhook_target(data["webhook"]["url"], data["webhook"]["secret"])
        if "valid_tokens" in data:
            self.valid_tokens = None if data["valid_tokens"] is None else set(data["valid_tokens"])
        if "search_index_delay" in data:
            self.search_index_delay = float(data["search_index_delay"])
        return web.json_response({"ok": True})

    async def _c_issue(self, request: web.Request) -> web.Response:
        """A human edits an issue: body = PATCH fields plus optional "by"."""
        data = await request.json()
        full, number = f"{request.match_info['owner']}/{request.match_info['repo']}", request.match_info["number"]
        try:
            self.edit_issue(full, int(number), by=data.pop("by", "alice"), **data)
        except ApiError as e:
            return web.json_response({"message": e.message, "errors": e.errors}, status=e.status)
        return web.json_response(self.issue(full, int(number)))

    # ------------------------------------------------------------------ request pipeline

    def _match(self, method: str, path: str) -> tuple[Route | None, dict[str, str]]:
        for verb, template, handler, regex in GIT_ROUTES:
            if verb == method and (m := regex.match(path)):
                return Route(verb, template, handler, DOCS, regex), {k: unquote(v) for k, v in m.groupdict().items()}
        for route in ROUTES:
            if route.method == method and (m := route.regex.match(path)):
                return route, {k: unquote(v) for k, v in m.groupdict().items()}
        return None, {}

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        method, path = request.method, request.rel_url.raw_path
        route, params = self._match(method, path)
        template = route.template if route else "(unknown)"
        st = self.stats
        st.requests += 1
        st.by_route[f"{method} {template}"] += 1
        st.writes += method in WRITES
        bucket = self._buckets["search" if path.startswith("/search/") else "core"]
        now = self.clock()
        bucket.roll(now)
        rid = uuid.uuid4().hex[:20].upper()
        fault: Fault | None = None
        chargeable = False
        self._inflight += 1
        try:
            actor, installation, token = self._identify(request.headers.get("Authorization"), template, now)
            fault = self._pick_fault(method, template, path)
            if fault and fault.delay:
                await asyncio.sleep(fault.delay)
            if fault and fault.kind not in ("slow", "drop_after_commit"):
                raise self._fault_error(fault, rid)
            self._check_secondary(method, now, rid, token)
            chargeable = route is None or route.handler != "rate_limit"
            if chargeable and bucket.remaining == 0:
                chargeable = False
                st.primary_refusals += 1
                raise ApiError(403, PRIMARY_MESSAGE.format(uid=self._uid(actor), rid=rid, ts=_iso(now)),
                               docs=RATE_DOCS)
            if route is None:
                raise ApiError(404, docs=DOCS)
            body = await self._read_json(request) if method in WRITES else {}
            if method in WRITES and params.get("owner") and (locked := self._repos.get(
                    f"{params['owner']}/{params.get('repo', '')}".lower())) is not None:
                if locked.archived:
                    raise ApiError(403, "Repository was archived so is read-only.")
                if locked.integration_denied:
                    raise ApiError(403, "Resource not accessible by integration")
            if installation is not None and params.get("owner") and template != _R + "/installation" and (
                    self._installations.get(installation, "").lower() != params["owner"].lower()):
                raise ApiError(403 if method in WRITES else 404,
                               "Resource not accessible by integration" if method in WRITES else "Not Found")
            query = dict(request.rel_url.query.items())
            if method in WRITES:
                self.write_log.append((installation, method, path))
            reply: Reply = getattr(self, f"_h_{route.handler}")(
                Call(method, path, params, query, body, actor, installation))
        except ApiError as e:
            reply = Reply(e.status, {"message": e.message, **({"errors": e.errors} if e.errors else {}),
                                     "documentation_url": e.docs or (route.docs if route else DOCS),
                                     "status": str(e.status)}, e.headers)
        finally:
            self._inflight -= 1
        raw = b"" if reply.body is None else json.dumps(reply.body).encode()
        if method == "GET" and reply.status == 200:
            # weak ETag over the body; a matching If-None-Match gets 304 and costs no rate limit
            etag = f'W/"{hashlib.sha256(raw).hexdigest()[:40]}"'
            reply.headers["ETag"] = etag
            if self._etag_matches(request.headers.get("If-None-Match"), etag):
                reply, raw, chargeable = Reply(304, None, {"ETag": etag}), b"", False
                st.not_modified += 1
        if chargeable:
            bucket.used += 1
            st.counted += 1
        resource = "search" if bucket is self._buckets["search"] else "core"
        headers = {f"x-ratelimit-{k}": str(v) for k, v in bucket.as_json(resource).items()}
        headers.update({"x-github-request-id": rid, "x-github-api-version-selected": "2022-11-28",
                        "x-github-media-type": "github.v3; format=json", **reply.headers})
        if fault and fault.kind == "drop_after_commit" and request.transport is not None:
            # The write has been applied; the client gets no answer at all (connection reset).
            request.transport.abort()
            raise asyncio.CancelledError
        st.by_status[reply.status] += 1
        if reply.body is None:
            return web.Response(status=reply.status, headers=headers)
        return web.Response(status=reply.status, body=raw, headers=headers, content_type="application/json",
                            charset="utf-8")

    def _identify(self, header: str | None, template: str, now: float) -> tuple[str, int | None, str]:
        """(actor, installation, token) of a request: a token, an App installation token or the App's JWT
        (which GitHub accepts only on the App's own endpoints)."""
        _, _, token = (header or "").partition(" ")
        token = token.strip()
        app_route = template.startswith("/app") or template == _R + "/installation"
        if self._app is not None and token.count(".") == 2:
            import jwt  # PyJWT, a PyGithub dependency

            try:
                claims = jwt.decode(token, self._app["public_key"], algorithms=["RS256"],
                                    options={"verify_exp": False, "verify_iat": False})
            except jwt.PyJWTError as exc:
                raise ApiError(401, "A JSON web token could not be decoded", docs=AUTH_DOCS) from exc
            if str(claims.get("iss")) != str(self._app["id"]):
                raise ApiError(401, "'Issuer' claim ('iss') must be an Integer", docs=AUTH_DOCS)
            exp, iat = float(claims.get("exp", 0)), float(claims.get("iat", 0))
            if exp <= now or exp - iat > 600 + 60:
                raise ApiError(401, "'Expiration time' claim ('exp') is too far in the future"
                               if exp > now else "'Expiration time' claim ('exp') must be a numeric value "
                               "representing the future time at which the assertion expires", docs=AUTH_DOCS)
            if not app_route:
                raise ApiError(401, "A JSON web token could not be decoded", docs=AUTH_DOCS)
            return f"{self._app['slug']}[bot]", None, token
        if token in self._install_tokens:
            installation, expires = self._install_tokens[token]
            if now >= expires or installation not in self._installations:
                raise ApiError(401, "Bad credentials", docs=AUTH_DOCS)
            if app_route:
                raise ApiError(401, "A JSON web token could not be decoded", docs=AUTH_DOCS)
            return self.bot_login, installation, token
        return self._authenticate(header), None, token

    def _h_get_app(self, c: Call) -> Reply:
        assert self._app is not None
        return Reply(body={"id": self._app["id"], "slug": self._app["slug"], "name": self._app["slug"],
                           "node_id": f"A_{self._app['id']}", "owner": self._user_json("phasegate"),
                           "permissions": {"issues": "write", "metadata": "read"}, "events": ["issues"],
                           "installations_count": len(self._installations),
                           "html_url": f"https://github.com/apps/{self._app['slug']}"})

    def _installation_json(self, installation: int) -> Json:
        account = self._installations[installation]
        return {"id": installation, "account": self._user_json(account), "app_id": self._app["id"] if self._app
                else None, "app_slug": self._app["slug"] if self._app else None, "target_type": "Organization",
                "repository_selection": "all", "permissions": {"issues": "write", "metadata": "read"},
                "access_tokens_url": f"{self.base_url}/app/installations/{installation}/access_tokens",
                "html_url": f"https://github.com/settings/installations/{installation}"}

    def _h_create_installation_token(self, c: Call) -> Reply:
        installation = int(c.params["id"]) if c.params["id"].isdecimal() else -1
        if installation not in self._installations:
            raise ApiError(404, "Not Found")
        token = f"ghs_{uuid.uuid4().hex}"
        expires = self.clock() + self.token_ttl
        self._install_tokens[token] = (installation, expires)
        return Reply(201, {"token": token, "expires_at": _iso(expires),
                           "permissions": {"issues": "write", "metadata": "read"}, "repository_selection": "all"})

    def _h_get_repo_installation(self, c: Call) -> Reply:
        owner = c.params["owner"].lower()
        if f"{owner}/{c.params['repo'].lower()}" in self._repos:
            for installation, account in sorted(self._installations.items()):
                if account.lower() == owner:
                    return Reply(body=self._installation_json(installation))
        raise ApiError(404, "Not Found")

    def _authenticate(self, header: str | None) -> str:
        scheme, _, token = (header or "").partition(" ")
        token = token.strip()
        if scheme.lower() not in ("token", "bearer") or not token:
            raise ApiError(401, "Requires authentication", docs=AUTH_DOCS)
        if self.valid_tokens is not None and token not in self.valid_tokens:
            raise ApiError(401, "Bad credentials", docs=AUTH_DOCS)
        return self.bot_login

    def _pick_fault(self, method: str, template: str, path: str) -> Fault | None:
        for fault in self._faults:
            if not fault.matches(method, template, path):
                continue
            if fault.probability is not None and self._rng.random() >= fault.probability:
                continue
            fault.fired += 1
            self.stats.faults.append({"kind": fault.kind, "method": method, "path": path, "at": self.clock()})
            return fault
        return None

    def _fault_error(self, fault: Fault, rid: str) -> ApiError:
        retry = {"Retry-After": str(fault.retry_after)}
        return {
            "500": ApiError(500, "Server Error"),
            "502": ApiError(502, "Server Error"),
            "503": ApiError(503, "Service Unavailable"),
            "secondary_403": ApiError(403, SECONDARY_MESSAGE.format(rid=rid), headers=retry, docs=RATE_DOCS),
            "429": ApiError(429, SECONDARY_MESSAGE.format(rid=rid), headers=retry, docs=RATE_DOCS),
        }[fault.kind]

    def _check_secondary(self, method: str, now: float, rid: str, token: str = "") -> None:
        limits = self._secondary
        if limits is None:
            return
        writes = self._writes_by.setdefault(token, deque()) if self._per_token else self._writes
        wait = 60 if limits.concurrent is not None and self._inflight > limits.concurrent else 0
        if method in WRITES:
            while writes and writes[0] <= now - 3600:
                writes.popleft()
            for limit, span in ((limits.per_minute, 60), (limits.per_hour, 3600)):
                recent = [t for t in writes if t > now - span]
                if limit is not None and len(recent) >= limit:
                    wait = max(wait, math.ceil(recent[0] + span - now), 1)
        if wait:
            self.stats.secondary_refusals += 1
            raise ApiError(403, SECONDARY_MESSAGE.format(rid=rid), headers={"Retry-After": str(wait)},
                           docs=RATE_DOCS)
        if method in WRITES:
            writes.append(now)

    @staticmethod
    def _etag_matches(header: str | None, etag: str) -> bool:
        if not header:
            return False
        tags = {t.strip().removeprefix("W/") for t in header.split(",")}
        return "*" in tags or etag.removeprefix("W/") in tags

    @staticmethod
    async def _read_json(request: web.Request) -> Json:
        raw = await request.read()
        if not raw:
            return {}
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise ApiError(400, "Problems parsing JSON")
        return data

    def _paginate(self, c: Call, items: Sequence[T], render: Callable[[T], Json],
                  wrap: Callable[[list[Json]], Any] = lambda page: page) -> Reply:
        """Slice by page/per_page (default 30, max 100) and add GitHub's Link header."""

        def number(key: str, default: int) -> int:
            try:
                return int(c.query.get(key, default))
            except ValueError:
                return default

        per_page, page = min(max(number("per_page", 30), 1), 100), max(number("page", 1), 1)
        last = max(math.ceil(len(items) / per_page), 1)

        def link(p: int, rel: str) -> str:
            return f'<{self.base_url}{c.path}?{urlencode({**c.query, "page": p})}>; rel="{rel}"'

        links = ([link(page - 1, "prev")] if page > 1 else []) + (
            [link(page + 1, "next"), link(last, "last")] if page < last else []) + (
            [link(1, "first")] if page > 1 else [])
        body = wrap([render(x) for x in items[(page - 1) * per_page: page * per_page]])
        return Reply(200, body, {"Link": ", ".join(links)} if links else {})

    # ------------------------------------------------------------------ lookups

    def _uid(self, login: str) -> int:
        return self._users.setdefault(login.lower(), 100 + len(self._users))

    def _repo_named(self, full_name: str) -> Repo:
        repo = self._repos.get(full_name.lower())
        if repo is None:
            raise ApiError(404)
        return repo

    def _repo(self, c: Call) -> Repo:
        return self._repo_named(f"{c.params['owner']}/{c.params['repo']}")

    @staticmethod
    def _find(table: dict[int, T], key: str) -> T:
        found = table.get(int(key)) if key.isdigit() else None
        if found is None:
            raise ApiError(404)
        return found

    def _issue(self, repo: Repo, number: str) -> Issue:
        if number.isdigit() and int(number) in repo.moved:
            raise ApiError(301, "Moved Permanently", headers={"Location": repo.moved[int(number)]})
        if number.isdigit() and int(number) in repo.deleted:
            raise ApiError(410, "This issue was deleted")
        return self._find(repo.issues, number)

    def _milestone(self, repo: Repo, number: str) -> Milestone:
        return self._find(repo.milestones, number)

    def _label(self, repo: Repo, name: str) -> Label:
        label = repo.label_named(name)
        if label is None:
            raise ApiError(404)
        return label

    # ------------------------------------------------------------------ JSON shapes

    def _user_json(self, login: str, kind: str = "User") -> Json:
        uid, url = self._uid(login), f"{self.base_url}/users/{quote(login)}"
        return {
            "login": login, "id": uid, "node_id": f"U_fake{uid}",
            "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?v=4", "gravatar_id": "",
            "url": url, "html_url": f"{HTML}/{quote(login)}", "followers_url": f"{url}/followers",
            "following_url": f"{url}/following{{/other_user}}", "gists_url": f"{url}/gists{{/gist_id}}",
            "starred_url": f"{url}/starred{{/owner}}{{/repo}}", "subscriptions_url": f"{url}/subscriptions",
            "organizations_url": f"{url}/orgs", "repos_url": f"{url}/repos",
            "events_url": f"{url}/events{{/privacy}}", "received_events_url": f"{url}/received_events",
            "type": "Bot" if login.endswith("[bot]") else kind, "user_view_type": "public", "site_admin": False,
        }

    def _repo_json(self, repo: Repo) -> Json:
        url, html, now = f"{self.base_url}/repos/{repo.full_name}", f"{HTML}/{repo.full_name}", _iso(self.clock())
        templated = {
            "archive": "/{archive_format}{/ref}", "assignees": "/assignees{/user}", "blobs": "/git/blobs{/sha}",
            "branches": "/branches{/branch}", "collaborators": "/collaborators{/collaborator}",
            "comments": "/comments{/number}", "commits": "/commits{/sha}", "compare": "/compare/{base}...{head}",
            "contents": "/contents/{+path}", "git_commits": "/git/commits{/sha}", "git_refs": "/git/refs{/sha}",
            "git_tags": "/git/tags{/sha}", "issue_comment": "/issues/comments{/number}",
            "issue_events": "/issues/events{/number}", "issues": "/issues{/number}", "keys": "/keys{/key_id}",
            "labels": "/labels{/name}", "milestones": "/milestones{/number}",
            "notifications": "/notifications{?since,all,participating}", "pulls": "/pulls{/number}",
            "releases": "/releases{/id}", "statuses": "/statuses/{sha}", "trees": "/git/trees{/sha}",
        }
        plain = ("contributors", "deployments", "downloads", "events", "forks", "hooks", "languages", "merges",
                 "stargazers", "subscribers", "subscription", "tags", "teams")
        open_issues = sum(i.state == "open" for i in repo.issues.values())
        return {
            "id": repo.id, "node_id": f"R_fake{repo.id}", "name": repo.name, "full_name": repo.full_name,
            "owner": self._user_json(repo.owner, "Organization"), "private": repo.private,
            "visibility": "private" if repo.private else "public", "html_url": html, "description": None,
            "fork": False, "url": url,
            **{f"{k}_url": url + v for k, v in templated.items()}, **{f"{k}_url": f"{url}/{k}" for k in plain},
            "clone_url": f"{html}.git", "git_url": f"git://github.com/{repo.full_name}.git",
            "ssh_url": f"git@github.com:{repo.full_name}.git", "svn_url": html, "mirror_url": None,
            "homepage": None, "language": None, "license": None, "default_branch": "main",
            "forks": 0, "forks_count": 0, "stargazers_count": 0, "watchers": 0, "watchers_count": 0,
            "network_count": 0, "subscribers_count": 0, "size": 0,
            "open_issues": open_issues, "open_issues_count": open_issues,
            "has_issues": True, "has_projects": True, "has_wiki": True, "has_pages": False, "has_downloads": True,
            "has_discussions": False, "archived": repo.archived, "disabled": False, "is_template": False,
            "topics": [], "pushed_at": _iso(repo.created_at), "created_at": _iso(repo.created_at),
            "updated_at": now,
            "permissions": {"admin": False, "maintain": False, "push": repo.push, "triage": repo.push,
                            "pull": True},
        }

    def _milestone_json(self, repo: Repo, m: Milestone) -> Json:
        url = f"{self.base_url}/repos/{repo.full_name}/milestones/{m.number}"
        issues = [i for i in repo.issues.values() if i.milestone == m.number]
        return {
            "url": url, "html_url": f"{HTML}/{repo.full_name}/milestone/{m.number}", "labels_url": f"{url}/labels",
            "id": m.id, "node_id": f"MI_fake{m.id}", "number": m.number, "title": m.title,
            "description": m.description, "creator": self._user_json(m.creator),
            "open_issues": sum(i.state == "open" for i in issues),
            "closed_issues": sum(i.state == "closed" for i in issues), "state": m.state,
            "created_at": _iso(m.created_at), "updated_at": _iso(m.updated_at), "due_on": _iso(m.due_on),
            "closed_at": _iso(m.closed_at),
        }

    def _label_json(self, repo: Repo, label: Label) -> Json:
        return {
            "id": label.id, "node_id": f"LA_fake{label.id}",
            "url": f"{self.base_url}/repos/{repo.full_name}/labels/{quote(label.name, safe='')}",
            "name": label.name, "color": label.color, "default": label.default, "description": label.description,
        }

    def _issue_json(self, repo: Repo, issue: Issue) -> Json:
        url = f"{self.base_url}/repos/{repo.full_name}/issues/{issue.number}"
        assignees = [self._user_json(a) for a in issue.assignees]
        milestone = repo.milestones.get(issue.milestone) if issue.milestone else None
        return {
            "url": url, "repository_url": f"{self.base_url}/repos/{repo.full_name}",
            "labels_url": f"{url}/labels{{/name}}", "comments_url": f"{url}/comments", "events_url": f"{url}/events",
            "html_url": f"{HTML}/{repo.full_name}/issues/{issue.number}", "id": issue.id,
            "node_id": f"I_fake{issue.id}", "number": issue.number, "title": issue.title,
            "user": self._user_json(issue.user),
            "labels": [self._label_json(repo, repo.labels[lid]) for lid in issue.labels if lid in repo.labels],
            "state": issue.state, "locked": False, "assignee": assignees[0] if assignees else None,
            "assignees": assignees, "milestone": self._milestone_json(repo, milestone) if milestone else None,
            "comments": sum(c.issue == issue.number for c in repo.comments.values()),
            "created_at": _iso(issue.created_at), "updated_at": _iso(issue.updated_at),
            "closed_at": _iso(issue.closed_at),
            "closed_by": self._user_json(issue.closed_by) if issue.closed_by else None,
            "author_association": "COLLABORATOR" if repo.assignable(issue.user) else "NONE",
            "active_lock_reason": None, "body": issue.body, "state_reason": issue.state_reason,
            "timeline_url": f"{url}/timeline", "performed_via_github_app": None,
            "reactions": {"url": f"{url}/reactions", "total_count": 0, "+1": 0, "-1": 0, "laugh": 0,
                          "hooray": 0, "confused": 0, "heart": 0, "rocket": 0, "eyes": 0},
        }

    def _comment_json(self, repo: Repo, comment: Comment) -> Json:
        base = f"{self.base_url}/repos/{repo.full_name}/issues"
        return {
            "id": comment.id, "node_id": f"IC_fake{comment.id}", "url": f"{base}/comments/{comment.id}",
            "html_url": f"{HTML}/{repo.full_name}/issues/{comment.issue}#issuecomment-{comment.id}",
            "body": comment.body, "user": self._user_json(comment.user),
            "created_at": _iso(comment.created_at), "updated_at": _iso(comment.updated_at),
            "issue_url": f"{base}/{comment.issue}",
            "author_association": "COLLABORATOR" if repo.assignable(comment.user) else "NONE",
            "performed_via_github_app": None,
        }

    def _private_user_json(self, login: str) -> Json:
        return {**self._user_json(login), "user_view_type": "private", "name": login, "company": None,
                "blog": "", "location": None, "email": None, "hireable": None, "bio": None,
                "twitter_username": None, "public_repos": 0, "public_gists": 0, "followers": 0, "following": 0,
                "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z",
                "private_gists": 0, "total_private_repos": len(self._repos), "owned_private_repos": 0,
                "disk_usage": 0, "collaborators": 0, "two_factor_authentication": True}

    # ------------------------------------------------------------------ mutations (shared by API and helpers)

    def _apply_milestone(self, repo: Repo, m: Milestone | None, data: Json, actor: str) -> Milestone:
        title = data.get("title")
        if m is None and not (isinstance(title, str) and title.strip()):
            raise _invalid("Milestone", "title", "missing_field")
        if title is not None and any(o.title == title and o is not m for o in repo.milestones.values()):
            raise _invalid("Milestone", "title", "already_exists")  # closed milestones count too
        if data.get("state") not in (None, "open", "closed"):
            raise _invalid("Milestone", "state", value=data["state"])
        due_on = m.due_on if m else None
        if data.get("due_on") is not None:
            when = _parse_time(data["due_on"])
            if when is None:
                raise _invalid("Milestone", "due_on", value=data["due_on"])
            due_on = _pacific_midnight(when, len(str(data["due_on"])) == 10)
        elif "due_on" in data:
            due_on = None
        now = self.clock()
        created = m is None
        if m is None:
            m = Milestone(next(self._ids), repo.next_milestone, str(title), actor, now, now)
            repo.milestones[m.number] = m
            repo.next_milestone += 1
        before = (m.title, m.description, m.due_on, m.state)
        if title is not None:
            m.title = str(title)
        if "description" in data:
            m.description = data["description"]
        m.due_on = due_on
        state = data.get("state") or m.state
        if state != m.state:
            m.state, m.closed_at = state, now if state == "closed" else None
        m.updated_at = now
        if created:
            self._emit(repo, "milestone", "created", actor, milestone=self._milestone_json(repo, m))
            return m
        changes = {k: {"from": old} for k, old, new in (
            ("title", before[0], m.title), ("description", before[1], m.description),
            ("due_on", _iso(before[2]), _iso(m.due_on))) if old != new}
        if changes:
            self._emit(repo, "milestone", "edited", actor, milestone=self._milestone_json(repo, m), changes=changes)
        if before[3] != m.state:
            self._emit(repo, "milestone", "closed" if m.state == "closed" else "opened", actor,
                       milestone=self._milestone_json(repo, m))
        return m

    def _apply_label(self, repo: Repo, label: Label | None, data: Json) -> Label:
        name = data.get("new_name") if label else data.get("name")
        if label is None and not (isinstance(name, str) and name.strip()):
            raise _invalid("Label", "name", "missing_field")
        if name is not None and (other := repo.label_named(name)) is not None and other is not label:
            raise _invalid("Label", "name", "already_exists")
        color = str(data["color"]).removeprefix("#") if data.get("color") is not None else None
        if color is not None and not re.fullmatch(r"[0-9a-fA-F]{6}", color):
            raise _invalid("Label", "color", value=data["color"])
        if label is None:
            label = Label(next(self._ids), str(name))
            repo.labels[label.id] = label
        label.name = str(name) if name is not None else label.name
        label.color = color or label.color
        if "description" in data:
            label.description = data["description"]
        return label

    def _create_issue(self, repo: Repo, data: Json, actor: str) -> Issue:
        title = data.get("title")
        if title is None or str(title) == "":
            raise _invalid("Issue", "title", "missing_field")
        now = self.clock()
        issue = Issue(next(self._ids), repo.next_issue, str(title), actor, now, now)
        self._apply_issue(repo, issue, data, actor, new=True)
        return issue

    def _apply_issue(self, repo: Repo, issue: Issue, data: Json, actor: str, *, new: bool = False) -> None:
        """Validate create/PATCH fields, then apply them all (or nothing) and emit webhook events."""
        if data.get("state") is not None and data["state"] not in ("open", "closed"):
            raise _invalid("Issue", "state", value=data["state"])
        if data.get("state_reason") is not None and data["state_reason"] not in ISSUE_STATE_REASONS:
            raise _invalid("Issue", "state_reason", value=data["state_reason"])
        labels = assignees = milestone = _UNSET
        # Without push access GitHub drops these silently. `push` describes the token (bot_login);
        # people acting through the helpers have full access.
        if repo.push or actor != self.bot_login:
            if data.get("labels") is not None:
                labels = [x.get("name") if isinstance(x, dict) else str(x) for x in data["labels"]]
            if data.get("assignees") is not None or "assignee" in data:
                key = "assignees" if data.get("assignees") is not None else "assignee"
                wanted = data["assignees"] if key == "assignees" else [a for a in [data["assignee"]] if a]
                bad = [a for a in wanted if repo.assignable(a) is None]
                if bad:
                    raise _invalid("Issue", key, value=bad if key == "assignees" else bad[0])
                assignees = list(dict.fromkeys(repo.assignable(a) for a in wanted))
            if "milestone" in data:
                value = data["milestone"] if data["milestone"] != "" else None  # PyGithub clears with ""
                if value is not None and not (str(value).isdigit() and int(value) in repo.milestones):
                    raise _invalid("Issue", "milestone", value=value)
                milestone = None if value is None else int(value)
        before = (issue.title, issue.body, issue.state, list(issue.labels), list(issue.assignees), issue.milestone)
        now = self.clock()
        if data.get("title") is not None:
            issue.title = str(data["title"])
        if "body" in data:
            issue.body = data["body"]
        if labels is not _UNSET:  # unknown labels are created, grey
            issue.labels = list(dict.fromkeys(
                (repo.label_named(n) or self._apply_label(repo, None, {"name": n})).id for n in labels))
        if assignees is not _UNSET:
            issue.assignees = assignees
        if milestone is not _UNSET:
            issue.milestone = milestone
        state = data.get("state") or issue.state
        if state == "closed" and issue.state == "open":
            issue.state, issue.closed_at, issue.closed_by = "closed", now, actor
            issue.state_reason = data.get("state_reason") or "completed"
        elif state == "open" and issue.state == "closed":
            issue.state, issue.closed_at, issue.closed_by, issue.state_reason = "open", None, None, "reopened"
        elif data.get("state_reason") and issue.state == "closed":
            issue.state_reason = data["state_reason"]
        issue.updated_at = now
        if new:
            repo.issues[issue.number] = issue
            repo.next_issue += 1
            self._emit(repo, "issues", "opened", actor, issue=self._issue_json(repo, issue))
        else:
            self._emit_issue_changes(repo, issue, before, actor)

    def _emit_issue_changes(self, repo: Repo, issue: Issue, before: tuple[Any, ...], actor: str) -> None:
        title, body, state, labels, assignees, milestone = before
        payload = self._issue_json(repo, issue)
        changes = {k: {"from": old} for k, old, new in (("title", title, issue.title), ("body", body, issue.body))
                   if old != new}
        if changes:
            self._emit(repo, "issues", "edited", actor, issue=payload, changes=changes)
        if state != issue.state:
            self._emit(repo, "issues", "closed" if issue.state == "closed" else "reopened", actor, issue=payload)
        for action, logins in (("assigned", [a for a in issue.assignees if a not in assignees]),
                               ("unassigned", [a for a in assignees if a not in issue.assignees])):
            for login in logins:
                self._emit(repo, "issues", action, actor, issue=payload, assignee=self._user_json(login))
        for action, ids in (("labeled", [x for x in issue.labels if x not in labels]),
                            ("unlabeled", [x for x in labels if x not in issue.labels])):
            for lid in ids:
                if lid in repo.labels:
                    self._emit(repo, "issues", action, actor, issue=payload,
                               label=self._label_json(repo, repo.labels[lid]))
        if milestone != issue.milestone:
            if milestone in repo.milestones:
                self._emit(repo, "issues", "demilestoned", actor, issue=payload,
                           milestone=self._milestone_json(repo, repo.milestones[milestone]))
            if issue.milestone is not None:
                self._emit(repo, "issues", "milestoned", actor, issue=payload,
                           milestone=self._milestone_json(repo, repo.milestones[issue.milestone]))

    def _create_comment(self, repo: Repo, issue: Issue, body: Any, actor: str) -> Comment:
        if not isinstance(body, str) or not body:
            raise _invalid("IssueComment", "body", "missing_field")
        now = self.clock()
        comment = Comment(next(self._ids), issue.number, body, actor, now, now)
        repo.comments[comment.id] = comment
        issue.updated_at = now
        self._emit(repo, "issue_comment", "created", actor, issue=self._issue_json(repo, issue),
                   comment=self._comment_json(repo, comment))
        return comment

    # ------------------------------------------------------------------ webhooks

    def _emit(self, repo: Repo, event: str, action: str, actor: str, **extra: Any) -> None:
        if not self._hooks:
            return
        payload = {"action": action, **extra, "repository": self._repo_json(repo),
                   "sender": self._user_json(actor)}
        for url, secret in self._hooks:
            if self._loop is None:
                self.deliveries.append({"event": event, "action": action, "url": url, "status": None,
                                        "error": "fake not started", "payload": payload})
                continue
            task = self._loop.create_task(self._deliver(url, secret, event, payload))
            self._hook_tasks.add(task)
            task.add_done_callback(self._hook_tasks.discard)

    async def _deliver(self, url: str, secret: str, event: str, payload: Json) -> None:
        raw = json.dumps(payload).encode()
        guid = str(uuid.uuid4())
        record: Json = {"event": event, "action": payload["action"], "delivery": guid, "url": url,
                        "status": None, "error": None, "payload": payload}
        headers = {
            "Content-Type": "application/json", "User-Agent": "GitHub-Hookshot/fake", "X-GitHub-Event": event,
            "X-GitHub-Delivery": guid, "X-GitHub-Hook-ID": "1",
            "X-GitHub-Hook-Installation-Target-Type": "repository",
            "X-GitHub-Hook-Installation-Target-ID": str(payload["repository"]["id"]),
            "X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest(),
            "X-Hub-Signature": "sha1=" + hmac.new(secret.encode(), raw, hashlib.sha1).hexdigest(),
        }
        assert self._hook_lock is not None and self._session is not None
        async with self._hook_lock:  # one at a time, in order of the changes
            self.deliveries.append(record)
            try:
                async with self._session.post(url, data=raw, headers=headers,
                                              timeout=ClientTimeout(total=10)) as resp:
                    record["status"] = resp.status
            except (ClientError, TimeoutError) as e:
                record["error"] = repr(e)

    # ------------------------------------------------------------------ route handlers

    def _h_get_repo(self, c: Call) -> Reply:
        return Reply(body=self._repo_json(self._repo(c)))

    def _h_list_milestones(self, c: Call) -> Reply:
        repo, state = self._repo(c), c.query.get("state", "open")
        found = [m for m in repo.milestones.values() if state == "all" or m.state == state]
        if c.query.get("sort") == "completeness":
            def key(m: Milestone) -> Any:
                done = [i.state == "closed" for i in repo.issues.values() if i.milestone == m.number]
                return (sum(done) / len(done) if done else 0.0, m.number)
        else:
            def key(m: Milestone) -> Any:
                return (m.due_on is None, m.due_on or 0.0, m.number)
        found.sort(key=key, reverse=c.query.get("direction", "asc") == "desc")
        return self._paginate(c, found, lambda m: self._milestone_json(repo, m))

    def _created(self, body: Json) -> Reply:
        return Reply(201, body, {"Location": body["url"]})

    def _require_push(self, repo: Repo) -> Repo:
        if not repo.push:
            raise ApiError(403, "Resource not accessible by personal access token")
        return repo

    def _h_create_milestone(self, c: Call) -> Reply:
        repo = self._require_push(self._repo(c))
        return self._created(self._milestone_json(repo, self._apply_milestone(repo, None, c.body, c.actor)))

    def _h_get_milestone(self, c: Call) -> Reply:
        repo = self._repo(c)
        return Reply(body=self._milestone_json(repo, self._milestone(repo, c.params["number"])))

    def _h_edit_milestone(self, c: Call) -> Reply:
        repo = self._require_push(self._repo(c))
        m = self._apply_milestone(repo, self._milestone(repo, c.params["number"]), c.body, c.actor)
        return Reply(body=self._milestone_json(repo, m))

    def _h_delete_milestone(self, c: Call) -> Reply:
        repo = self._require_push(self._repo(c))
        m = self._milestone(repo, c.params["number"])
        for issue in repo.issues.values():
            issue.milestone = None if issue.milestone == m.number else issue.milestone
        del repo.milestones[m.number]
        self._emit(repo, "milestone", "deleted", c.actor, milestone=self._milestone_json(repo, m))
        return Reply(204)

    def _h_list_labels(self, c: Call) -> Reply:
        repo = self._repo(c)
        return self._paginate(c, list(repo.labels.values()), lambda lb: self._label_json(repo, lb))

    def _h_create_label(self, c: Call) -> Reply:
        repo = self._require_push(self._repo(c))
        return self._created(self._label_json(repo, self._apply_label(repo, None, c.body)))

    def _h_get_label(self, c: Call) -> Reply:
        repo = self._repo(c)
        return Reply(body=self._label_json(repo, self._label(repo, c.params["name"])))

    def _h_edit_label(self, c: Call) -> Reply:
        repo = self._require_push(self._repo(c))
        return Reply(body=self._label_json(repo, self._apply_label(repo, self._label(repo, c.params["name"]),
                                                                     c.body)))

    def _h_delete_label(self, c: Call) -> Reply:
        repo = self._require_push(self._repo(c))
        label = self._label(repo, c.params["name"])
        for issue in repo.issues.values():
            issue.labels = [x for x in issue.labels if x != label.id]
        del repo.labels[label.id]
        return Reply(204)

    def _issue_matches(self, repo: Repo, issue: Issue, q: dict[str, str]) -> bool:
        state, milestone, assignee = q.get("state", "open"), q.get("milestone"), q.get("assignee")
        names = {repo.labels[x].name.lower() for x in issue.labels if x in repo.labels}
        since = _parse_time(q["since"]) if "since" in q else None
        return (
            (state == "all" or issue.state == state)
            and (milestone is None or (milestone == "*" and issue.milestone is not None)
                 or (milestone == "none" and issue.milestone is None) or milestone == str(issue.milestone))
            and (assignee is None or (assignee == "*" and bool(issue.assignees))
                 or (assignee == "none" and not issue.assignees)
                 or assignee.lower() in (a.lower() for a in issue.assignees))
            and ("creator" not in q or q["creator"].lower() == issue.user.lower())
            and all(n.strip().lower() in names for n in q.get("labels", "").split(",") if n.strip())
            and (since is None or issue.updated_at >= since.timestamp())
        )

    def _sorted_issues(self, repo: Repo, issues: list[Issue], sort: str | None, desc: bool) -> list[Issue]:
        def key(i: Issue) -> Any:
            if sort == "comments":
                return (sum(c.issue == i.number for c in repo.comments.values()), i.number)
            return (i.updated_at if sort == "updated" else i.created_at, i.number)

        return sorted(issues, key=key, reverse=desc)

    def _h_list_issues(self, c: Call) -> Reply:
        repo = self._repo(c)
        found = [i for i in repo.issues.values() if self._issue_matches(repo, i, c.query)]
        found = self._sorted_issues(repo, found, c.query.get("sort"), c.query.get("direction", "desc") != "asc")
        return self._paginate(c, found, lambda i: self._issue_json(repo, i))

    def _h_create_issue(self, c: Call) -> Reply:
        repo = self._repo(c)
        return self._created(self._issue_json(repo, self._create_issue(repo, c.body, c.actor)))

    def _h_get_issue(self, c: Call) -> Reply:
        repo = self._repo(c)
        return Reply(body=self._issue_json(repo, self._issue(repo, c.params["number"])))

    def _h_edit_issue(self, c: Call) -> Reply:
        repo = self._repo(c)
        issue = self._issue(repo, c.params["number"])
        self._apply_issue(repo, issue, c.body, c.actor)
        return Reply(body=self._issue_json(repo, issue))

    def _h_add_assignees(self, c: Call) -> Reply:
        repo = self._repo(c)
        issue = self._issue(repo, c.params["number"])
        wanted = [x.get("login") if isinstance(x, dict) else x for x in c.body.get("assignees") or []]
        # non-assignable users are silently ignored here (unlike create/update, which fail with 422)
        added = [a for a in (repo.assignable(str(w)) for w in wanted) if a]
        self._apply_issue(repo, issue, {"assignees": issue.assignees + added}, c.actor)
        return Reply(201, self._issue_json(repo, issue))

    def _h_remove_assignees(self, c: Call) -> Reply:
        repo = self._repo(c)
        issue = self._issue(repo, c.params["number"])
        gone = {str(a).lower() for a in c.body.get("assignees") or []}
        self._apply_issue(repo, issue, {"assignees": [a for a in issue.assignees if a.lower() not in gone]},
                          c.actor)
        return Reply(200, self._issue_json(repo, issue))

    def _h_check_assignee(self, c: Call) -> Reply:
        if self._repo(c).assignable(c.params["login"]) is None:
            raise ApiError(404)
        return Reply(204)

    def _h_check_issue_assignee(self, c: Call) -> Reply:
        self._issue(self._repo(c), c.params["number"])
        return self._h_check_assignee(c)

    def _h_list_assignees(self, c: Call) -> Reply:
        return self._paginate(c, self._repo(c).collaborators, self._user_json)

    def _h_list_comments(self, c: Call) -> Reply:
        repo = self._repo(c)
        issue = self._issue(repo, c.params["number"])
        since = _parse_time(c.query["since"]) if "since" in c.query else None
        found = [x for x in repo.comments.values()
                 if x.issue == issue.number and (since is None or x.updated_at >= since.timestamp())]
        return self._paginate(c, found, lambda x: self._comment_json(repo, x))

    def _h_create_comment(self, c: Call) -> Reply:
        repo = self._repo(c)
        issue = self._issue(repo, c.params["number"])
        return self._created(self._comment_json(repo, self._create_comment(repo, issue, c.body.get("body"),
                                                                            c.actor)))

    def _h_get_comment(self, c: Call) -> Reply:
        repo = self._repo(c)
        return Reply(body=self._comment_json(repo, self._find(repo.comments, c.params["id"])))

    def _h_edit_comment(self, c: Call) -> Reply:
        repo = self._repo(c)
        comment = self._find(repo.comments, c.params["id"])
        if not isinstance(c.body.get("body"), str) or not c.body["body"]:
            raise _invalid("IssueComment", "body", "missing_field")
        comment.body, comment.updated_at = c.body["body"], self.clock()
        return Reply(body=self._comment_json(repo, comment))

    def _h_delete_comment(self, c: Call) -> Reply:
        repo = self._repo(c)
        del repo.comments[self._find(repo.comments, c.params["id"]).id]
        return Reply(204)

    def _h_search_issues(self, c: Call) -> Reply:
        query = c.query.get("q", "").strip()
        if not query:
            raise _invalid("Search", "q", "missing")
        quals: dict[str, list[str]] = {}
        terms: list[str] = []
        for m in _QUERY_TOKEN.finditer(query):
            if m["key"] and m["key"].lower() in _QUALIFIERS:
                quals.setdefault(m["key"].lower(), []).append(m["val"].strip('"').lower())
            else:
                terms.append((m["phrase"] if m["phrase"] is not None else m[0]).lower())
        where = {w for v in quals.get("in", ["title,body,comments"]) for w in v.split(",")}
        kinds = set(quals.get("is", [])) | set(quals.get("type", []))
        repos = [r for r in self._repos.values()
                 if "repo" not in quals or r.full_name.lower() in quals["repo"]]
        cutoff = self.clock() - self.search_index_delay

        def hit(repo: Repo, i: Issue) -> bool:
            labels = {repo.labels[x].name.lower() for x in i.labels if x in repo.labels}
            ms = repo.milestones.get(i.milestone) if i.milestone else None
            text = " ".join(
                ([i.title] if "title" in where else []) + ([i.body or ""] if "body" in where else [])
                + ([x.body for x in repo.comments.values() if x.issue == i.number] if "comments" in where else [])
            ).lower()
            return (
                i.created_at <= cutoff
                and not kinds & {"pr", "pull-request", "merged", "unmerged", "draft"}
                and all(k not in kinds for k in ("open", "closed") if k != i.state)
                and all(s == i.state for s in quals.get("state", []))
                and all(x in labels for x in quals.get("label", []))
                and all(ms is not None and ms.title.lower() == x for x in quals.get("milestone", []))
                and all(x in (a.lower() for a in i.assignees) for x in quals.get("assignee", []))
                and all(x == i.user.lower() for x in quals.get("author", []))
                and all({"milestone": i.milestone is None, "assignee": not i.assignees, "label": not i.labels}
                        .get(x, True) for x in quals.get("no", []))
                and all(t in text for t in terms)
            )

        found = [(r, i) for r in repos for i in r.issues.values() if hit(r, i)]
        sort, desc = c.query.get("sort"), c.query.get("order", "desc") != "asc"
        found.sort(key=lambda ri: (ri[1].updated_at if sort == "updated" else ri[1].created_at, ri[1].id),
                   reverse=desc)
        return self._paginate(
            c, found, lambda ri: {**self._issue_json(*ri), "score": 1.0},
            lambda items: {"total_count": len(found), "incomplete_results": False, "items": items,
                           "search_type": "lexical"})

    def _h_rate_limit(self, c: Call) -> Reply:
        now = self.clock()
        for bucket in self._buckets.values():
            bucket.roll(now)
        core = self._buckets["core"].as_json("core")
        graphql = {**core, "limit": 5000, "used": 0, "remaining": 5000, "resource": "graphql"}
        return Reply(body={"resources": {"core": core, "search": self._buckets["search"].as_json("search"),
                                         "graphql": graphql}, "rate": core})

    def _h_get_user(self, c: Call) -> Reply:
        return Reply(body=self._private_user_json(c.actor))


# --------------------------------------------------------------------------- standalone


async def _serve_forever(args: argparse.Namespace) -> None:
    fake = FakeGitHub(args.public_url, rate_limit=args.rate_limit)
    fake.seed(args.seed)
    if args.token:
        fake.valid_tokens = set(args.token)
    for spec in args.repo or []:
        name, _, people = spec.partition(":")
        fake.add_repo(name, collaborators=[p for p in people.split(",") if p])
    url = await fake.start(args.host, args.port)
    print(f"fake GitHub listening on {url}, writing URLs as {fake.base_url}", flush=True)
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopped.set)
    await stopped.wait()
    await fake.stop()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--public-url", help="address to write into absolute URLs (a proxy in front of us)")
    parser.add_argument("--repo", action="append", help="owner/name[:alice,bob] (collaborators); repeatable")
    parser.add_argument("--token", action="append", help="accept only these tokens; repeatable")
    parser.add_argument("--rate-limit", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    asyncio.run(_serve_forever(parser.parse_args(argv)))


if __name__ == "__main__":
    # Run the module's own copy, `tests.fakes.github`, not `__main__`: the git routes (tests/fakes/github_git.py)
    # raise `tests.fakes.github.ApiError`, which `__main__`'s handler would not catch (a 500 instead of a 404).
    from tests.fakes import github as fake_github

    fake_github.main()
