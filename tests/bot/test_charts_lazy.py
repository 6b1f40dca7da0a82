"""matplotlib is loaded only when a chart is drawn: importing the app, the digest and the charts module does not."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_app_does_not_load_matplotlib() -> None:
    code = (
        "import sys, bot.app, bot.cli, bot.charts, bot.services.digest, bot.services.project_report; "
        "assert 'matplotlib' not in sys.modules, 'matplotlib loaded at import'; "
        "assert 'numpy' not in sys.modules, 'numpy loaded at import'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
