"""Where the project's non-Python files live (templates, migrations)."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(os.environ.get("PHASEGATE_ROOT") or Path(__file__).resolve().parents[1])
TEMPLATES = ROOT / "templates"
MIGRATIONS = ROOT / "migrations"
