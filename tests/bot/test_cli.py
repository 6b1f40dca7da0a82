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


SCHEMA = Path(__file__).resolve().parents[3] / "shared" / "oracle" / "specs" / "slack_manifest_schema_v1.json"


def _schema_errors(manifest: dict[str, object]) -> list[str]:
    import json

    import jsonschema
    import pytest

    schema_path = SCHEMA if SCHEMA.exists() else Path("/work/shared/oracle/specs/slack_manifest_schema_v1.json")
    if not schema_path.exists():
        pytest.skip("Slack's manifest schema is not available here")
    validator = jsonschema.Draft7Validator(json.loads(schema_path.read_text()))
    return [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(manifest)]


def test_every_manifest_validates_against_slacks_schema_and_many_workspaces_get_the_redirect(tmp_path: Path) -> None:
    import yaml

    one = yaml.safe_load(_run(["manifest", "--url", "https://pg.example.com"], tmp_path).stdout)
    socket = yaml.safe_load(_run(["manifest", "--socket"], tmp_path).stdout)
    many_out = _run(["manifest", "--url", "https://pg.example.com", "--many-workspaces", "--token-rotation"], tmp_path)
    assert many_out.returncode == 0, many_out.stderr
    many = yaml.safe_load(many_out.stdout)
    for manifest in (one, socket, many):
        assert _schema_errors(manifest) == []
    assert "redirect_urls" not in one["oauth_config"]
    assert many["oauth_config"]["redirect_urls"] == ["https://pg.example.com/slack/oauth_redirect"]
    assert {"app_uninstalled", "tokens_revoked"} <= set(many["settings"]["event_subscriptions"]["bot_events"])
    assert many["settings"]["token_rotation_enabled"] is True and one["settings"]["token_rotation_enabled"] is False
    from bot.slack_oauth import BOT_SCOPES

    assert many["oauth_config"]["scopes"]["bot"] == list(BOT_SCOPES)  # what /slack/install asks for
    by_env = yaml.safe_load(
        _run(["manifest", "--url", "https://pg.example.com"], tmp_path, SLACK_CLIENT_ID="1.2", SLACK_CLIENT_SECRET="s")
        .stdout
    )
    assert by_env["oauth_config"]["redirect_urls"] == ["https://pg.example.com/slack/oauth_redirect"]
    refused = _run(["manifest", "--socket", "--many-workspaces"], tmp_path)
    assert refused.returncode == 2 and "--url" in refused.stderr


def test_purge_with_nothing_uninstalled_says_so(tmp_path: Path) -> None:
    out = _run(["purge"], tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'p.db'}", PHASEGATE_RETENTION_DAYS="7")
    assert out.returncode == 0, out.stderr
    assert "more than 7 days ago: nothing to delete" in out.stdout


def test_many_workspaces_need_http_mode(tmp_path: Path) -> None:
    out = _run(["serve", "--mode", "socket", "--no-migrate"], tmp_path, SLACK_CLIENT_ID="1.2", SLACK_CLIENT_SECRET="s")
    assert out.returncode == 2 and "--mode http" in out.stderr


def test_serve_says_which_token_is_missing(tmp_path: Path) -> None:
    socket = _run(["serve", "--mode", "socket", "--no-migrate"], tmp_path, SLACK_BOT_TOKEN="xoxb-1")
    assert socket.returncode == 2 and "SLACK_APP_TOKEN" in socket.stderr
    http = _run(["serve", "--mode", "http", "--no-migrate"], tmp_path, SLACK_BOT_TOKEN="xoxb-1")
    assert http.returncode == 2 and "SLACK_SIGNING_SECRET" in http.stderr
    bad = _run(["serve", "--mode", "carrier-pigeon", "--no-migrate"], tmp_path)
    assert bad.returncode == 2 and "--mode must be http or socket" in bad.stderr
