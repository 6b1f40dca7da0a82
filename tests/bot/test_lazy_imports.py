"""Heavy libraries load only when used: matplotlib when a chart is drawn, PyGithub, psycopg and Alembic only where a
running server needs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_importing_the_app_does_not_load_matplotlib() -> None:
    code = (
        "import sys, bot.app, bot.cli, bot.charts, bot.services.digest, bot.services.project_report; "
        "assert 'matplotlib' not in sys.modules, 'matplotlib loaded at import'; "
        "assert 'numpy' not in sys.modules, 'numpy loaded at import'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_built_sqlite_app_without_github_credentials_loads_no_pygithub_psycopg_or_alembic(tmp_path: Path) -> None:
    """What `serve` holds for its whole life (bench/memory.py measures it): migrations ran in a forked child,
    PyGithub waits for a gateway's first request, psycopg for a PostgreSQL URL."""
    url = f"sqlite:///{tmp_path / 'idle.db'}"
    code = f"""
import sys
from bot.db.migrate import upgrade_in_child
assert upgrade_in_child({url!r}) is None
from bot.app import create_app
from bot.config import load_settings
create_app(load_settings(DATABASE_URL={url!r}, SLACK_BOT_TOKEN="xoxb-x", SLACK_SIGNING_SECRET="s",
                         SLACK_API_URL="http://127.0.0.1:9/api/", GITHUB_TOKEN="ghp_x"))
loaded = sorted({{m.split(".")[0] for m in sys.modules}} & {{"github", "psycopg", "alembic", "mako", "matplotlib"}})
assert not loaded, loaded
"""
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
