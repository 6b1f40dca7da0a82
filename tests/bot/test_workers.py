"""`phasegate serve --workers N`: refused without PostgreSQL; the supervisor keeps N workers and stops them all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.bot.test_cli import _run

ROOT = Path(__file__).resolve().parents[2]


def test_several_workers_on_sqlite_are_refused_with_what_to_do(tmp_path: Path) -> None:
    out = _run(
        ["serve", "--workers", "2"],
        tmp_path,
        DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}",
        SLACK_BOT_TOKEN="xoxb-test",
        SLACK_SIGNING_SECRET="secret",
    )
    assert out.returncode == 2
    assert "--workers 2 needs PostgreSQL" in out.stderr and "Traceback" not in out.stderr


def _pids(folder: Path) -> set[int]:
    return {int(p.name) for p in folder.iterdir()}


def _wait(predicate: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_the_supervisor_runs_n_workers_replaces_one_that_died_and_stops_all_on_sigterm(tmp_path: Path) -> None:
    seen = tmp_path / "pids"
    seen.mkdir()
    worker = (
        "import os, pathlib, signal, sys, time; "
        f"pathlib.Path({str(seen)!r}, str(os.getpid())).touch(); "
        "signal.signal(signal.SIGTERM, lambda *_: sys.exit(0)); time.sleep(60)"
    )
    supervisor = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import sys; from bot.workers import supervise; sys.exit(supervise(2, [sys.executable, '-c', {worker!r}]))",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        _wait(lambda: len(_pids(seen)) == 2)
        first = min(_pids(seen))
        os.kill(first, signal.SIGKILL)
        _wait(lambda: len(_pids(seen)) == 3)  # a third worker replaced the killed one
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=10) == 0
        for pid in _pids(seen) - {first}:  # every worker has exited (reaped by the supervisor)
            assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait()
