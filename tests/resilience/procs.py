"""Real subprocesses for resilience tests: the fake Slack and fake GitHub standalone, and `phasegate serve`.

Typical use (from a sync or an async test; the blocking calls are short and local)::

    with Processes(tmp_path) as procs:
        github = procs.fake_github(repos={"acme/genres": ["ana-gh"]})
        slack = procs.fake_slack()
        bot = procs.bot(bot_env(database_url=url, slack=slack, github=github))
        github.wait_until(lambda s: len(github.issues("acme/genres")) > 10, timeout=30)
        bot.kill9()
        bot = bot.restart()

Every process logs to a file under the directory given; a failed wait raises with the log's tail.
Processes are stopped by their own pid only (never by name), and `Processes.close()` stops whatever is left.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")
P = TypeVar("P", bound="Proc")

SIGNING_SECRET = "resilience-signing-secret-0123456789"
BOT_TOKEN = "xoxb-resilience-test"
GITHUB_TOKEN = "ghp-resilience-test"
# Variables the bot reads; the child gets only the ones a test gives it (never the developer's own).
_OURS = ("SLACK_", "GITHUB_", "PHASEGATE_", "DATABASE_URL")


class ProcessFailed(RuntimeError):
    """A subprocess did not come up, died early, or a wait on it timed out (the message has its log tail)."""


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1 (for programs that cannot listen on port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def http_json(method: str, url: str, body: Any = None, *, timeout: float = 10.0) -> Any:
    """One JSON request with the standard library; returns the decoded body (None when empty)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


def wait_until(
    check: Callable[[], T | None], *, timeout: float, interval: float = 0.05, what: str = "a condition"
) -> T:
    """Call `check` until it returns something truthy (returned); TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


async def await_until(
    check: Callable[[], Awaitable[T | None]], *, within: float, interval: float = 0.05, what: str = "a condition"
) -> T:
    """`wait_until` for async tests: `check` is a coroutine function (wrap blocking calls in asyncio.to_thread)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        value = await check()
        if value:
            return value
        if loop.time() > deadline:
            raise TimeoutError(f"timed out after {within:.0f} s waiting for {what}")
        await asyncio.sleep(interval)


@dataclass
class Proc:
    """One running subprocess: its command, environment, log file and the base URL it serves."""

    name: str
    args: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes]
    url: str = ""
    log_offset: int = 0  # where this run's output starts in `log` (restarts append to the same file)
    ready: Callable[[Proc, float], None] | None = field(default=None, repr=False)
    on_start: Callable[[Proc], None] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def fail(self, message: str) -> ProcessFailed:
        tail = self.log_tail()
        return ProcessFailed(f"{self.name} (pid {self.pid}): {message}\n--- last lines of {self.log} ---\n{tail}")

    def kill9(self) -> int | None:
        """SIGKILL this process (no cleanup, as in a crash or an OOM kill) and reap it; returns its exit code."""
        if self.alive:
            os.kill(self.pid, signal.SIGKILL)
        return self.popen.wait(10)

    def stop(self, timeout: float = 10.0) -> int | None:
        """Ask it to stop (SIGINT: the bot and the fakes shut down cleanly), then SIGKILL after `timeout`."""
        if self.alive:
            os.kill(self.pid, signal.SIGINT)
            try:
                return self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
        return self.popen.wait(10)

    def restart(self: P, *, env: Mapping[str, str] | None = None, timeout: float = 60.0) -> P:
        """Start the same command again (same env unless `env` updates it; same log file, appended) and wait
        until it is ready. The old process must be gone (kill9 or stop it first)."""
        if self.alive:
            raise self.fail("restart() while the old process is still running")
        new_env = {**self.env, **(env or {})}
        args = list(self.args)
        if "--port" in args and self.url:  # a fake first started on port 0 comes back on the same port
            args[args.index("--port") + 1] = self.url.rsplit(":", 1)[1].split("/")[0]
        proc = spawn(self.name, args, new_env, self.log, ready=self.ready, timeout=timeout, cls=type(self))
        if self.on_start:
            self.on_start(proc)
        return proc

    def wait_for_log(self, pattern: str, *, timeout: float = 30.0) -> re.Match[str]:
        """Wait for a line matching `pattern` in this run's log output; fails early if the process dies."""
        regex = re.compile(pattern)

        def check() -> re.Match[str] | None:
            try:
                with self.log.open("rb") as fh:
                    fh.seek(self.log_offset)
                    found = regex.search(fh.read().decode(errors="replace"))
            except OSError:
                found = None
            if found is None and not self.alive:
                raise self.fail(f"exited with {self.popen.returncode} before logging /{pattern}/")
            return found

        try:
            return wait_until(check, timeout=timeout, what=f"/{pattern}/ in the log")
        except TimeoutError as exc:
            raise self.fail(str(exc)) from None


def spawn(
    name: str,
    args: Sequence[str],
    env: Mapping[str, str],
    log: Path,
    *,
    ready: Callable[[Proc, float], None] | None = None,
    timeout: float = 30.0,
    cwd: Path | None = None,
    cls: type[P],
) -> P:
    """Start `args` with exactly `env` (plus this checkout on PYTHONPATH), output appended to `log`; then run
    `ready(proc, timeout)`, which raises when it does not come up (the process is then killed)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    offset = log.stat().st_size if log.exists() else 0
    path = os.pathsep.join(x for x in (env.get("PYTHONPATH"), str(ROOT)) if x)  # a given PYTHONPATH goes first
    full_env = {**env, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1"}
    with log.open("ab") as out:
        popen = subprocess.Popen(
            list(args),
            cwd=cwd or log.parent,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C at the terminal reaches pytest only; teardown stops us
        )
    proc = cls(name, list(args), dict(env), log, popen, log_offset=offset, ready=ready)
    if ready is not None:
        try:
            ready(proc, timeout)
        except BaseException:
            proc.kill9()
            raise
    return proc


def _base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(_OURS)}


# --------------------------------------------------------------------------- the fakes


@dataclass
class FakeGitHubProc(Proc):
    """The fake GitHub (`python -m tests.fakes.github`) and its control API."""

    def state(self) -> dict[str, Any]:
        """Every repository: milestones, labels, issues, comments (`GET /_fake/state`)."""
        data: dict[str, Any] = http_json("GET", f"{self.url}/_fake/state")
        return data

    def issues(self, repo: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.state()[repo]["issues"]
        return found

    def stats(self) -> dict[str, Any]:
        """Request counters and injected faults (`GET /_fake/stats`)."""
        data: dict[str, Any] = http_json("GET", f"{self.url}/_fake/stats")
        return data

    def add_fault(self, kind: str, **spec: Any) -> list[dict[str, Any]]:
        """Inject a fault (`POST /_fake/faults`, same arguments as FakeGitHub.add_fault)."""
        data: list[dict[str, Any]] = http_json("POST", f"{self.url}/_fake/faults", {"kind": kind, **spec})
        return data

    def clear_faults(self) -> None:
        http_json("DELETE", f"{self.url}/_fake/faults")

    def config(self, **settings: Any) -> None:
        """`POST /_fake/config`: seed, rate_limit, secondary, webhook, valid_tokens, search_index_delay."""
        http_json("POST", f"{self.url}/_fake/config", settings)


@dataclass
class FakeSlackProc(Proc):
    """The fake Slack Web API (`python -m tests.fakes.slack`); `api_url` is what SLACK_API_URL takes."""

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    def messages(self, channel: str | None = None) -> list[dict[str, Any]]:
        query = f"?channel={channel}" if channel else ""
        data: list[dict[str, Any]] = http_json("GET", f"{self.url}/_fake/messages{query}")
        return data

    def calls(self) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = http_json("GET", f"{self.url}/_fake/calls")
        return data


def start_fake_github(
    log_dir: Path,
    *,
    repos: Mapping[str, Sequence[str]] | None = None,
    port: int = 0,
    public_url: str | None = None,
    seed: int = 0,
    timeout: float = 30.0,
) -> FakeGitHubProc:
    """The fake GitHub standalone on `port` (0: a free one); `repos` maps owner/name to its collaborators."""
    args = [sys.executable, "-m", "tests.fakes.github", "--port", str(port), "--seed", str(seed)]
    for name, people in (repos or {}).items():
        args += ["--repo", f"{name}:{','.join(people)}"]
    if public_url:
        args += ["--public-url", public_url]
    log = _fresh_log(log_dir, "fake-github")
    return spawn("fake GitHub", args, _base_env(), log, ready=_github_ready, timeout=timeout, cls=FakeGitHubProc)


def _github_ready(proc: Proc, timeout: float) -> None:
    proc.url = proc.wait_for_log(r"fake GitHub listening on (\S+),", timeout=timeout)[1]


def _slack_ready(proc: Proc, timeout: float) -> None:
    api = proc.wait_for_log(r"fake slack listening on (\S+)", timeout=timeout)[1]
    proc.url = api.removesuffix("/").removesuffix("/api")


def start_fake_slack(log_dir: Path, *, port: int = 0, team_id: str = "T0001", timeout: float = 30.0) -> FakeSlackProc:
    """The fake Slack Web API standalone on `port` (0: a free one)."""
    args = [sys.executable, "-m", "tests.fakes.slack", "--port", str(port), "--team-id", team_id]
    log = _fresh_log(log_dir, "fake-slack")
    return spawn("fake Slack", args, _base_env(), log, ready=_slack_ready, timeout=timeout, cls=FakeSlackProc)


def _fresh_log(log_dir: Path, stem: str) -> Path:
    n = 1
    while (log_dir / f"{stem}-{n}.log").exists():
        n += 1
    return log_dir / f"{stem}-{n}.log"


# --------------------------------------------------------------------------- the bot


def bot_env(
    *,
    database_url: str,
    slack_api_url: str,
    github_api_url: str | None,
    port: int | None = None,
    **extra: str,
) -> dict[str, str]:
    """Environment for `phasegate serve --mode http` against the fakes (extra: any other setting, by name)."""
    env = _base_env()
    env.update(
        DATABASE_URL=database_url,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=slack_api_url,
        PHASEGATE_HOST="127.0.0.1",
        PHASEGATE_PORT=str(port or free_port()),
        PHASEGATE_LOG_LEVEL="INFO",
    )
    if github_api_url:
        env.update(GITHUB_TOKEN=GITHUB_TOKEN, GITHUB_API_URL=github_api_url)
    env.update(extra)
    return env


def _bot_ready(proc: Proc, timeout: float) -> None:
    proc.url = f"http://127.0.0.1:{proc.env['PHASEGATE_PORT']}"

    def healthy() -> bool:
        if not proc.alive:
            raise proc.fail(f"exited with {proc.popen.returncode} before /healthz answered")
        try:
            return bool(http_json("GET", f"{proc.url}/healthz", timeout=2).get("ok"))
        except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
            return False

    try:
        wait_until(healthy, timeout=timeout, interval=0.1, what="/healthz")
    except TimeoutError as exc:
        raise proc.fail(str(exc)) from None


def start_bot(env: Mapping[str, str], log_dir: Path, *, timeout: float = 60.0) -> Proc:
    """`python -m bot.cli serve --mode http` with `env` (see bot_env); returns once /healthz answers ok."""
    args = [sys.executable, "-m", "bot.cli", "serve", "--mode", "http"]
    log = _fresh_log(log_dir, "phasegate")
    return spawn("phasegate serve", args, env, log, ready=_bot_ready, timeout=timeout, cls=Proc)


# --------------------------------------------------------------------------- a group, for fixtures


class Processes:
    """Starts processes for one test and stops every one still running on `close()` (or leaving `with`)."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[Proc] = []

    def _keep(self, proc: P) -> P:
        self.started.append(proc)
        proc.on_start = self.started.append
        return proc

    def fake_github(self, **options: Any) -> FakeGitHubProc:
        return self._keep(start_fake_github(self.log_dir, **options))

    def fake_slack(self, **options: Any) -> FakeSlackProc:
        return self._keep(start_fake_slack(self.log_dir, **options))

    def bot(self, env: Mapping[str, str], *, timeout: float = 60.0) -> Proc:
        return self._keep(start_bot(env, self.log_dir, timeout=timeout))

    def close(self) -> None:
        for proc in reversed(self.started):
            if proc.alive:
                proc.stop(timeout=5)

    def __enter__(self) -> Processes:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
