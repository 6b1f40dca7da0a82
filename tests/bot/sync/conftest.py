"""The sync tests use the fake GitHub fixtures of tests/bot/github/conftest.py (and its SyncService on it)."""

from __future__ import annotations

from tests.bot.github.conftest import fake_sleep, github, messenger, sync

__all__ = ["fake_sleep", "github", "messenger", "sync"]
