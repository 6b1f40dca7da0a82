"""The `phasegate` command: migrations applied, clear messages, config errors without tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, inspect


def _run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "GITHUB_", "PHASEGATE_", "DATABASE"))}
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        cwd=tmp_path,
        env={**base, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), **env},
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def test_db_upgrade_creates_the_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    out = _run(["db", "upgrade"], tmp_path, DATABASE_URL=url)
    assert out.returncode == 0, out.stderr
    engine = create_engine(url)
    assert "projects" in inspect(engine).get_table_names()
    engine.dispose()


def test_a_bad_setting_is_named_not_a_traceback(tmp_path: Path) -> None:
    out = _run(["db", "upgrade"], tmp_path, PHASEGATE_PORT="eighty")
    assert out.returncode == 2
    assert "PHASEGATE_PORT" in out.stderr and "Traceback" not in out.stderr
