"""The lock (requirements/*.txt) agrees with pyproject.toml, the Makefile, the Dockerfile and this environment."""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
RUN_LOCK = ROOT / "requirements" / "run.txt"
DEV_LOCK = ROOT / "requirements" / "dev.txt"
UV_LOCK = ROOT / "requirements" / "uv.txt"
RELOCK = "run `make lock` and commit requirements/"


@dataclass
class Pin:
    name: str
    version: Version
    marker: Marker | None
    hashes: list[str] = field(default_factory=list)


def parse_lock(text: str) -> dict[str, list[Pin]]:
    """Pins of a `uv pip compile --generate-hashes` file, by canonical name.

    A universal lock may pin one package twice, under exclusive markers (e.g. per Python version).
    """
    pins: dict[str, list[Pin]] = {}
    current: Pin | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("--hash="):
            assert current is not None, f"hash before any requirement: {raw!r}"
            current.hashes.append(line.removeprefix("--hash=").rstrip(" \\"))
            continue
        assert not raw[0].isspace(), f"unexpected indented line in lock: {raw!r}"
        req = Requirement(line.rstrip(" \\"))
        specs = list(req.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", f"not an exact pin: {raw!r}"
        current = Pin(canonicalize_name(req.name), Version(specs[0].version), req.marker)
        assert current.marker is not None or current.name not in pins, f"{req.name} pinned twice"
        pins.setdefault(current.name, []).append(current)
    return pins


def disagreements(requirements: list[str], pins: dict[str, list[Pin]]) -> list[str]:
    """What in `requirements` (PEP 508 strings) the lock lacks or pins outside the specifier."""
    problems: list[str] = []
    for text in requirements:
        req = Requirement(text)
        locked = pins.get(canonicalize_name(req.name), [])
        if not locked:
            problems.append(f"{req.name} is not in the lock")
        for pin in locked:
            if not req.specifier.contains(pin.version, prereleases=True):
                problems.append(f"{req.name} is locked at {pin.version}, outside {req.specifier}")
    return problems


def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def run_requirements() -> list[str]:
    data = pyproject()
    return [*data["project"]["dependencies"], *data["build-system"]["requires"]]


def dev_requirements() -> list[str]:
    return [*run_requirements(), *pyproject()["project"]["optional-dependencies"]["dev"]]


def test_run_lock_has_every_runtime_and_build_dependency_within_its_range() -> None:
    problems = disagreements(run_requirements(), parse_lock(RUN_LOCK.read_text()))
    assert not problems, f"requirements/run.txt: {'; '.join(problems)} ({RELOCK})"


def test_dev_lock_has_every_dependency_within_its_range() -> None:
    problems = disagreements(dev_requirements(), parse_lock(DEV_LOCK.read_text()))
    assert not problems, f"requirements/dev.txt: {'; '.join(problems)} ({RELOCK})"


def test_the_check_catches_a_dependency_added_without_relocking() -> None:
    pins = parse_lock(RUN_LOCK.read_text())
    assert disagreements(["slack-bolt>=1.20", "not-a-locked-package>=1"], pins) == [
        "not-a-locked-package is not in the lock"
    ]
    locked = pins["slack-bolt"][0].version
    assert disagreements([f"Slack_Bolt>{locked}"], pins) == [f"Slack_Bolt is locked at {locked}, outside >{locked}"]
    forked = parse_lock(
        "foo==1.0 ; python_full_version < '3.12' \\\n    --hash=sha256:aa\n"
        "foo==2.0 ; python_full_version >= '3.12' \\\n    --hash=sha256:bb\n"
    )
    assert disagreements(["foo>=1"], forked) == []
    assert disagreements(["foo>=2"], forked) == ["foo is locked at 1.0, outside >=2"]


def test_run_and_dev_locks_share_one_set_of_pins() -> None:
    run, dev = parse_lock(RUN_LOCK.read_text()), parse_lock(DEV_LOCK.read_text())
    assert sorted(set(run) - set(dev)) == []
    versions = {n: {str(p.version) for p in ps} for n, ps in dev.items()}
    assert {n: str(p.version) for n, ps in run.items() for p in ps if str(p.version) not in versions[n]} == {}
    dev_only = {canonicalize_name(Requirement(r).name) for r in pyproject()["project"]["optional-dependencies"]["dev"]}
    assert sorted(dev_only & set(run) & {"pytest", "ruff", "mypy", "hypothesis"}) == []


def test_every_pin_carries_hashes() -> None:
    for lock in (RUN_LOCK, DEV_LOCK, UV_LOCK):
        pins = [p for ps in parse_lock(lock.read_text()).values() for p in ps]
        assert [p.name for p in pins if not p.hashes] == [], f"{lock.name}: pins without --hash ({RELOCK})"
        assert all(h.startswith("sha256:") for p in pins for h in p.hashes)


def test_extras_are_locked_too() -> None:
    """`SQLAlchemy[asyncio]` needs greenlet, `psycopg[binary]` needs psycopg-binary: the lock must hold those."""
    dev = parse_lock(DEV_LOCK.read_text())
    missing: list[str] = []
    for text in dev_requirements():
        req = Requirement(text)
        for extra in sorted(req.extras):
            installed = Version(importlib.metadata.version(req.name))
            if installed not in {p.version for p in dev[canonicalize_name(req.name)]}:
                pytest.skip(f"{req.name} {installed} is installed, not the locked version (checked by the next test)")
            for dep_text in importlib.metadata.requires(req.name) or []:
                dep = Requirement(dep_text)
                if dep.marker is not None and dep.marker.evaluate({"extra": extra}) and "extra" in str(dep.marker):
                    if canonicalize_name(dep.name) not in dev:
                        missing.append(f"{dep.name} (for {req.name}[{extra}])")
    assert not missing, f"not in requirements/dev.txt: {', '.join(missing)} ({RELOCK})"


def test_the_environment_running_the_tests_has_the_locked_versions() -> None:
    """What `make test` (and so CI) installed is exactly the dev lock.

    Checked in the venv `make` built (its stamp holds the lock's sha256), and always in CI; a venv made some
    other way (an older Makefile, by hand) is not the lock's business.
    """
    stamp = Path(sys.prefix) / ".installed-dev"
    recorded = stamp.read_text().strip() if stamp.exists() else ""
    if not re.fullmatch(r"[0-9a-f]{64}", recorded) and not os.environ.get("CI"):
        pytest.skip(f"{sys.prefix} was not made by `make` from the lock")
    assert recorded == hashlib.sha256(DEV_LOCK.read_bytes()).hexdigest(), (
        f"{sys.prefix} does not hold the current requirements/dev.txt; `make test` re-syncs it"
    )
    wrong: dict[str, tuple[str, str]] = {}
    for name, pins in parse_lock(DEV_LOCK.read_text()).items():
        applying = [p for p in pins if p.marker is None or p.marker.evaluate()]
        if not applying:
            continue
        pin = applying[0]
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            installed = "missing"
        if installed == "missing" or Version(installed) != pin.version:
            wrong[name] = (installed, str(pin.version))
    assert wrong == {}, "installed vs locked; `make test` re-syncs .venv from requirements/dev.txt"


def test_uv_is_pinned_once() -> None:
    makefile = (ROOT / "Makefile").read_text()
    match = re.search(r"^UV_VERSION\s*:?=\s*(\S+)", makefile, re.M)
    assert match is not None
    pins = parse_lock(UV_LOCK.read_text())
    assert {n: [str(p.version) for p in ps] for n, ps in pins.items()} == {"uv": [match.group(1)]}, RELOCK


@pytest.mark.parametrize("lock", ["requirements/run.txt", "requirements/uv.txt"])
def test_the_docker_image_installs_from_the_lock(lock: str) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert lock in dockerfile
    assert "--require-hashes" in dockerfile
    assert "pip install ." not in dockerfile, "the image must not resolve pyproject.toml's ranges itself"
