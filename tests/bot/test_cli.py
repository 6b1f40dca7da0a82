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


def test_the_manifest_is_a_valid_slack_app_manifest(tmp_path: Path) -> None:
    import yaml

    out = _run(["manifest", "--url", "https://phasegate.example.com/"], tmp_path)
    assert out.returncode == 0, out.stderr
    manifest = yaml.safe_load(out.stdout)
    assert manifest["_metadata"]["major_version"] == 1
    command = manifest["features"]["slash_commands"][0]
    assert command["command"] == "/phasegate" and command["should_escape"] is True
    assert command["url"] == "https://phasegate.example.com/slack/events"
    assert manifest["settings"]["interactivity"]["request_url"] == "https://phasegate.example.com/slack/events"
    assert {"app_home_opened", "app_mention"} <= set(manifest["settings"]["event_subscriptions"]["bot_events"])
    assert {"commands", "chat:write", "im:write", "users:read", "files:write"} <= set(
        manifest["oauth_config"]["scopes"]["bot"]
    )
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    socket = yaml.safe_load(_run(["manifest", "--socket"], tmp_path, PHASEGATE_SLASH_COMMAND="/pg").stdout)
    assert socket["settings"]["socket_mode_enabled"] is True
    assert socket["features"]["slash_commands"][0]["command"] == "/pg"
    assert "url" not in socket["features"]["slash_commands"][0]


def test_serve_says_which_token_is_missing(tmp_path: Path) -> None:
    socket = _run(["serve", "--mode", "socket", "--no-migrate"], tmp_path, SLACK_BOT_TOKEN="xoxb-1")
    assert socket.returncode == 2 and "SLACK_APP_TOKEN" in socket.stderr
    http = _run(["serve", "--mode", "http", "--no-migrate"], tmp_path, SLACK_BOT_TOKEN="xoxb-1")
    assert http.returncode == 2 and "SLACK_SIGNING_SECRET" in http.stderr
    bad = _run(["serve", "--mode", "carrier-pigeon", "--no-migrate"], tmp_path)
    assert bad.returncode == 2 and "--mode must be http or socket" in bad.stderr
