"""Settings: public names, secrets hidden, bad values reported by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    import os

    for name in list(os.environ):
        if name.startswith(("SLACK_", "GITHUB_", "PHASEGATE_", "DATABASE_URL")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(str(tmp_path))  # no stray .env


def test_defaults_match_the_architecture() -> None:
    s = load_settings()
    assert s.database_url == "sqlite:///./phasegate.db"
    assert s.slack_api_url == "https://slack.com/api/"
    assert s.github_api_url == "https://api.github.com"
    assert (s.phasegate_host, s.phasegate_port, s.phasegate_slash_command) == ("0.0.0.0", 3000, "/phasegate")
    assert s.slack_bot_token is None and not s.github_configured


def test_secrets_are_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-123-hunter2")
    monkeypatch.setenv("GITHUB_TOKEN", "github_pat_abc")
    s = load_settings()
    assert "hunter2" not in repr(s) and "github_pat_abc" not in str(s)
    assert s.slack_bot_token is not None and s.slack_bot_token.get_secret_value() == "xoxb-123-hunter2"
    assert s.github_configured


def test_dotenv_is_read(tmp_path: object) -> None:
    from pathlib import Path

    Path(".env").write_text("PHASEGATE_PORT=4000\nDATABASE_URL=postgresql://u@db/phasegate\n")
    s = load_settings()
    assert s.phasegate_port == 4000 and s.database_url.startswith("postgresql://")


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("PHASEGATE_PORT", "http", "PHASEGATE_PORT"),
        ("DATABASE_URL", "mysql://x", "sqlite:///"),
        ("SLACK_BOT_TOKEN", "xoxp-user", "xoxb-"),
        ("SLACK_APP_TOKEN", "xoxb-1", "xapp-"),
        ("PHASEGATE_SLASH_COMMAND", "phasegate", "starting with /"),
        ("GITHUB_APP_ID", "123", "set GITHUB_APP_PRIVATE_KEY as well"),
        ("GITHUB_APP_INSTALLATION_ID", "9", "set GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY as well"),
    ],
)
def test_bad_values_are_named_with_what_to_set(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, words: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as exc:
        load_settings()
    assert words in str(exc.value) and "Traceback" not in str(exc.value)


def test_an_app_without_installation_id_lets_workspaces_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_APP_ID", "123")
    monkeypatch.setenv("GITHUB_APP_PRIVATE_KEY", "-----BEGIN PRIVATE KEY-----")
    with pytest.raises(ConfigError, match="GITHUB_APP_STATE_SECRET"):
        load_settings()
    monkeypatch.setenv("GITHUB_APP_STATE_SECRET", "0123456789abcdef-long-enough")
    settings = load_settings()
    assert settings.github_app_many_installations and settings.github_configured
    monkeypatch.setenv("GITHUB_APP_INSTALLATION_ID", "42")
    assert not load_settings().github_app_many_installations  # one installation, as before


def test_a_dot_env_copied_from_the_example_loads_with_every_blank_unset(tmp_path: Path) -> None:
    """`cp .env.example .env` then `make run`: each `NAME=` line reads as not set (it used to fail on the blank
    GITHUB_APP_INSTALLATION_ID, "not a valid integer")."""
    (tmp_path / ".env").write_text((Path(__file__).resolve().parents[2] / ".env.example").read_text())
    s = load_settings()
    assert s.github_app_installation_id is None and s.slack_bot_token is None and not s.github_configured
    assert s.phasegate_slash_command == "/phasegate"


def test_a_blank_environment_variable_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_APP_INSTALLATION_ID", "")
    monkeypatch.setenv("PHASEGATE_PORT", "")
    s = load_settings()
    assert s.github_app_installation_id is None and s.phasegate_port == 3000
