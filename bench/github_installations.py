"""Many GitHub App installations writing at once: 3 installations × N new issues against the fake GitHub with
per-token secondary limits. Each installation has its own pacer (PacerPool) and its own token (GitHubApp);
elapsed is compared with ONE installation's pacing minimum (N writes at its spacing), goal ≤ 1.1×.

Time runs on a scaled clock (real time × `scale`) for the fake and the pacers alike, so the fake's per-minute
limits hold in that time and the run takes minimum/scale seconds of wall time. This drives the gateway and
pacer layer directly (one write per issue), not SyncService."""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bench.common import report
from bot.github.gateway import RateLimited
from bot.github.installations import GitHubApp
from bot.github.pacing import PacerPool
from tests.fakes.github import FakeGitHub

APP_ID = 777
OWNERS = ("acme", "globex", "initech")
PER_MINUTE, PER_HOUR = 80, 500


class ScaledClock:
    """Real time, sped up `scale` times (a compressed pacing interval that still lets requests overlap)."""

    def __init__(self, scale: float) -> None:
        self.scale = scale
        self.start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
        self.t0 = time.monotonic()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(time.monotonic() - self.t0) * self.scale)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0.0) / self.scale)


def _keys() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    return private, public


async def run(issues: int, *, scale: float) -> dict[str, Any]:
    clock = ScaledClock(scale)
    private, public = _keys()
    fake = FakeGitHub(clock=lambda: clock.now().timestamp())
    await fake.start()
    fake.add_app(APP_ID, "phasegate-bench", public)
    for n, owner in enumerate(OWNERS, start=1):
        fake.add_installation(n, owner)
        fake.add_repo(f"{owner}/bench")
    fake.enforce_secondary(per_minute=PER_MINUTE, per_hour=PER_HOUR, per_token=True)
    assert fake._own_url is not None
    app = GitHubApp(APP_ID, private, clock, base_url=fake._own_url)
    pool = PacerPool(clock, clock.sleep, per_minute=PER_MINUTE, per_hour=PER_HOUR)
    routes: dict[str, int] = {}
    for owner in OWNERS:  # discovery (GET /repos/{o}/{r}/installation) and token minting, before the clock starts
        found = await app.installation_for(f"{owner}/bench")
        assert found is not None
        routes[f"{owner}/bench"] = found[0]
        await asyncio.to_thread(getattr, app.auth(found[0]), "token")  # mint it now, off the event loop
    fake.reset_stats()
    fake.write_log.clear()
    retried = 0

    async def one_installation(repo: str, installation: int) -> None:
        nonlocal retried
        pacer, gateway = pool.pacer(GitHubApp.identity(installation)), app.gateway(installation)
        for i in range(issues):
            while True:
                try:
                    async with pacer.write():
                        await gateway.create_issue(
                            repo, title=f"Issue {i}", body="bench", milestone=None, labels=(), assignees=()
                        )
                    break
                except RateLimited as exc:
                    retried += 1
                    pacer.pause(exc.wait_seconds(clock.now().timestamp()))

    began = clock.now()
    await asyncio.gather(*(one_installation(repo, inst) for repo, inst in routes.items()))
    elapsed = (clock.now() - began).total_seconds()
    # one installation's minimum: its first write at once, then one every 60/PER_MINUTE s (and ≤ PER_HOUR per hour)
    minimum = (issues - 1) * 60.0 / PER_MINUTE if issues <= PER_HOUR else float("nan")
    owner_of = {inst: repo.split("/")[0] for repo, inst in routes.items()}
    writes = [(inst, path) for inst, _, path in fake.write_log if path.startswith("/repos/")]
    wrong = sum(1 for inst, path in writes if inst is None or path.split("/")[2] != owner_of[inst])
    created = {repo: len((await app.gateway(inst).list_issues(repo)).value) for repo, inst in routes.items()}
    await fake.stop()
    return {
        "installations": len(OWNERS), "issues_each": issues, "scale": scale,
        "elapsed_s": round(elapsed, 1), "one_installation_min_s": round(minimum, 1),
        "ratio": round(elapsed / minimum, 3) if minimum else None,
        "refusals": fake.stats.secondary_refusals + fake.stats.primary_refusals, "retried": retried,
        "wrong_token_writes": wrong, "issues_created": sum(created.values()),
        "tokens_minted": sum(app.auth(i).minted for i in routes.values()),
    }


def main(*, quick: bool = False) -> dict[str, Any]:
    row = asyncio.run(run(12 if quick else 300, scale=40.0 if quick else 10.0))
    return report("github_installations", [row], {
        "limits": f"{PER_MINUTE}/min, {PER_HOUR}/h per token (fake GitHub, scaled clock)", "goal": "ratio ≤ 1.1",
    })


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    main(quick=ap.parse_args().quick)
