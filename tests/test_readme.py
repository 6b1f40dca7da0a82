"""The README shows what the reports look like: its pictures are charts committed in the repository."""

from __future__ import annotations

import re
import struct
import subprocess

from tests.conftest import ROOT

IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)")


def test_every_picture_in_the_readme_is_a_committed_png_chart_with_alt_text() -> None:
    readme = (ROOT / "README.md").read_text()
    images = IMAGE.findall(readme)
    assert {path for _, path in images} >= {"docs/chart-proposals.png", "docs/chart-timeline.png"}
    tracked = set(
        subprocess.run(
            ["git", "ls-files", "--", *(path for _, path in images)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
    )
    for alt, path in images:
        assert path in tracked, f"{path} is linked from the README but not committed"
        data = (ROOT / path).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", path
        width, height = struct.unpack(">II", data[16:24])
        assert width >= 400 and height >= 200 and len(data) > 5_000, (path, width, height, len(data))
        assert len(alt) > 20, f"{path} needs alt text that says what the chart shows"
