"""A server's threads share a few malloc arenas instead of keeping one each (glibc)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

# Eight threads allocate at once, then glibc's malloc_stats() lists the arenas (one "Arena N:" line each).
PROBE = """
import ctypes, sys, threading
from bot.malloc import limit_arenas
print(limit_arenas(), file=sys.stderr) if sys.argv[1] == "limit" else None
barrier, kept = threading.Barrier(8), []
def allocate():
    barrier.wait()
    kept.extend(bytearray(200_000) for _ in range(50))
threads = [threading.Thread(target=allocate) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
ctypes.CDLL(None).malloc_stats()
"""


def arenas(how: str, **env: str) -> tuple[int, str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, how], cwd=ROOT, capture_output=True, text=True, check=True,
        env={k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"} | env,
    )  # fmt: skip
    return sum(line.startswith("Arena ") for line in out.stderr.splitlines()), out.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_stats")
def test_the_threads_share_two_arenas_once_limited_and_an_operators_setting_wins() -> None:
    unlimited, _ = arenas("none")
    limited, said = arenas("limit")
    assert said.startswith("True")
    assert unlimited > 2 and limited <= 2, (unlimited, limited)
    operators, said = arenas("limit", MALLOC_ARENA_MAX="4")
    assert said.startswith("False") and 2 < operators <= 4, operators
