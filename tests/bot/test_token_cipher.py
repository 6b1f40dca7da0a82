"""Slack tokens at rest: sealed with PHASEGATE_SECRET_KEY, plain without it, and plain rows read either way."""

from __future__ import annotations

import pytest

from bot.config import ConfigError
from bot.token_cipher import PREFIX, TokenCipher

KEY = "tests-only-secret-key-0123456789abcdef"


def test_a_sealed_token_opens_with_the_same_key_only() -> None:
    cipher = TokenCipher(KEY)
    sealed = cipher.seal("xoxb-1-2-abc")
    assert sealed.startswith(PREFIX) and "xoxb" not in sealed
    assert sealed != cipher.seal("xoxb-1-2-abc")  # a fresh IV each time
    assert cipher.open(sealed) == "xoxb-1-2-abc"
    assert TokenCipher(KEY).open(sealed) == "xoxb-1-2-abc"  # the key is derived the same way after a restart
    with pytest.raises(ConfigError, match="does not decrypt with this PHASEGATE_SECRET_KEY"):
        TokenCipher(KEY + "x").open(sealed)
    with pytest.raises(ConfigError, match="PHASEGATE_SECRET_KEY is not set"):
        TokenCipher().open(sealed)


def test_without_a_key_tokens_stay_as_given_and_plain_rows_open_with_a_key_too() -> None:
    assert TokenCipher().seal("xoxb-plain") == "xoxb-plain"
    assert TokenCipher().open("xoxb-plain") == "xoxb-plain"
    assert TokenCipher(KEY).open("xoxb-plain") == "xoxb-plain"
    assert TokenCipher(KEY).seal("") == ""
