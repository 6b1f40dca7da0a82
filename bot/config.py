"""Settings: every public configuration name, read from the environment and `.env`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConfigError(Exception):
    """A setting is missing or malformed; the message names it and says what to set."""


class Settings(BaseSettings):
    """Phasegate's configuration. Build it with `load_settings()`; there is no module-level instance."""

    # env_ignore_empty: `NAME=` (as in .env.example) means "not set", in the environment and in .env alike.
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True, env_ignore_empty=True
    )

    database_url: str = Field(default="sqlite:///./phasegate.db", alias="DATABASE_URL")
    slack_bot_token: SecretStr | None = Field(default=None, alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(default=None, alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(default=None, alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field(default="https://slack.com/api/", alias="SLACK_API_URL")
    # Many workspaces (Slack OAuth distribution): client id + secret, no SLACK_BOT_TOKEN; each workspace installs
    # the app through /slack/install and its bot token is kept in the database.
    slack_client_id: str | None = Field(default=None, alias="SLACK_CLIENT_ID")
    slack_client_secret: SecretStr | None = Field(default=None, alias="SLACK_CLIENT_SECRET")
    # Days the data of a workspace that uninstalled Phasegate is kept before `phasegate purge` deletes it.
    retention_days: int = Field(default=30, ge=0, alias="PHASEGATE_RETENTION_DAYS")
    # Seals the Slack tokens kept in the database (bot/token_cipher.py); unset: they are stored as given.
    secret_key: SecretStr | None = Field(default=None, alias="PHASEGATE_SECRET_KEY")
    github_token: SecretStr | None = Field(default=None, alias="GITHUB_TOKEN")
    github_app_id: str | None = Field(default=None, alias="GITHUB_APP_ID")
    github_app_private_key: SecretStr | None = Field(default=None, alias="GITHUB_APP_PRIVATE_KEY")
    github_app_installation_id: int | None = Field(default=None, alias="GITHUB_APP_INSTALLATION_ID")
    # Many installations (App id and key without an installation id): workspaces install the App themselves.
    github_app_slug: str | None = Field(default=None, alias="GITHUB_APP_SLUG")  # else asked of GET /app
    github_app_state_secret: SecretStr | None = Field(default=None, alias="GITHUB_APP_STATE_SECRET")
    github_api_url: str = Field(default="https://api.github.com", alias="GITHUB_API_URL")
    github_webhook_secret: SecretStr | None = Field(default=None, alias="GITHUB_WEBHOOK_SECRET")
    # Single-token mode: the repositories any project may name (comma-separated owner/repo or owner/*; empty = any).
    github_repos: str | None = Field(default=None, alias="PHASEGATE_GITHUB_REPOS")
    phasegate_host: str = Field(default="0.0.0.0", alias="PHASEGATE_HOST")
    phasegate_port: int = Field(default=3000, ge=1, le=65535, alias="PHASEGATE_PORT")
    phasegate_slash_command: str = Field(default="/phasegate", alias="PHASEGATE_SLASH_COMMAND")
    # Pacing of GitHub content-creating requests (GitHub's secondary limits are 80/min and 500/h).
    github_writes_per_minute: int = Field(default=80, ge=1, alias="PHASEGATE_GITHUB_WRITES_PER_MINUTE")
    github_writes_per_hour: int = Field(default=500, ge=1, alias="PHASEGATE_GITHUB_WRITES_PER_HOUR")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(default="INFO", alias="PHASEGATE_LOG_LEVEL")

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if not value.startswith(("sqlite:", "postgresql:", "postgresql+", "postgres:")):
            raise ValueError("must start with sqlite:/// or postgresql://")
        return value

    @field_validator("slack_bot_token")
    @classmethod
    def _bot_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value() and not value.get_secret_value().startswith("xoxb-"):
            raise ValueError("must be a bot token starting with xoxb-")
        return value or None

    @field_validator("slack_app_token")
    @classmethod
    def _app_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value() and not value.get_secret_value().startswith("xapp-"):
            raise ValueError("must be an app-level token starting with xapp-")
        return value or None

    @field_validator("secret_key")
    @classmethod
    def _secret_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and 0 < len(value.get_secret_value().strip()) < 32:
            raise ValueError(
                'must be at least 32 characters; make one with python -c "import secrets; '
                'print(secrets.token_urlsafe(32))"'
            )
        return value if value is not None and value.get_secret_value().strip() else None

    @field_validator("slack_client_id", "github_app_slug")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @field_validator("phasegate_slash_command")
    @classmethod
    def _slash(cls, value: str) -> str:
        if not value.startswith("/") or " " in value or len(value) < 2:
            raise ValueError("must be a single word starting with /, like /phasegate")
        return value

    @field_validator("slack_api_url")
    @classmethod
    def _slack_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value if value.endswith("/") else value + "/"

    @field_validator("github_api_url")
    @classmethod
    def _github_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")

    @property
    def slack_many_workspaces(self) -> bool:
        """SLACK_CLIENT_ID + SLACK_CLIENT_SECRET without SLACK_BOT_TOKEN: workspaces install through OAuth."""
        secret = self.slack_client_secret is not None and self.slack_client_secret.get_secret_value()
        return bool(self.slack_client_id and secret and self.slack_bot_token is None)

    def check_slack_oauth(self) -> None:
        """Refuse half of the OAuth settings, or OAuth settings next to a bot token, naming what to change."""
        secret = self.slack_client_secret is not None and self.slack_client_secret.get_secret_value()
        if bool(self.slack_client_id) != bool(secret):
            missing = "SLACK_CLIENT_SECRET" if self.slack_client_id else "SLACK_CLIENT_ID"
            raise ConfigError(
                f"Slack OAuth settings are incomplete: set {missing} as well (Basic Information → App Credentials) "
                "to let many workspaces install Phasegate, or remove the other one."
            )
        if self.slack_client_id and self.slack_bot_token is not None:
            raise ConfigError(
                "SLACK_BOT_TOKEN and SLACK_CLIENT_ID are both set: keep SLACK_BOT_TOKEN for one workspace, or "
                "remove it to let many workspaces install Phasegate through /slack/install."
            )

    @property
    def github_configured(self) -> bool:
        """True when GitHub credentials (a token or a complete App) are present."""
        app = self.github_app_id and self.github_app_private_key
        return bool(self.github_token or app)

    @property
    def github_app_many_installations(self) -> bool:
        """The App without GITHUB_APP_INSTALLATION_ID (and no GITHUB_TOKEN): each workspace installs it."""
        token = self.github_token is not None and self.github_token.get_secret_value()
        return bool(
            self.github_app_id and self.github_app_private_key and not self.github_app_installation_id and not token
        )

    def check_github_app(self) -> None:
        """Refuse a half-configured GitHub App, naming what is missing."""
        parts = {
            "GITHUB_APP_ID": self.github_app_id,
            "GITHUB_APP_PRIVATE_KEY": self.github_app_private_key,
        }
        given = [k for k, v in parts.items() if v] + (["id"] if self.github_app_installation_id else [])
        if given and not all(parts.values()):
            missing = ", ".join(k for k, v in parts.items() if not v)
            raise ConfigError(
                f"GitHub App settings are incomplete: set {missing} as well (with GITHUB_APP_INSTALLATION_ID for "
                "one installation, or without it to let each workspace install the App), or use GITHUB_TOKEN."
            )
        secret = self.github_app_state_secret
        if self.github_app_many_installations and (secret is None or len(secret.get_secret_value()) < 16):
            raise ConfigError(
                "GITHUB_APP_STATE_SECRET: set a random string of at least 16 characters; it signs the install "
                "links that `github connect` gives (or set GITHUB_APP_INSTALLATION_ID for one installation)."
            )


_HINTS = {
    "DATABASE_URL": "e.g. sqlite:///./phasegate.db or postgresql://user@host:5432/phasegate",
    "PHASEGATE_PORT": "a TCP port number, e.g. 3000",
    "GITHUB_APP_INSTALLATION_ID": "the numeric installation id from the App's installation URL",
}


def load_settings(**overrides: Any) -> Settings:
    """Read Settings from the environment (and `.env`); raise ConfigError naming any bad value."""
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            name = str(err["loc"][0]) if err["loc"] else "?"
            msg = str(err["msg"]).removeprefix("Value error, ")
            hint = _HINTS.get(name)
            lines.append(f"{name}: {msg}" + (f" ({hint})" if hint else ""))
        raise ConfigError("Invalid configuration:\n  " + "\n  ".join(lines)) from None
    settings.check_github_app()
    settings.check_slack_oauth()
    return settings
