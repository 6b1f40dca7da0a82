"""`phasegate demo`: one project walked from Discovery to Deployment through the local shell, in a minute."""

from __future__ import annotations

import io
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from bot.config import Settings
from bot.db.migrate import upgrade

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # a Monday morning in Berlin

SCRIPT = """\
# Phasegate demo — the genre classifier. Lena (Berlin) leads; Bo (New York) owns the business problem;
# Raj (Kolkata) and Mia (Lisbon) are ML engineers; Dan (Chicago) and Sol (Sydney) ship it.
:user lena tz=Europe/Berlin
:user bo tz=America/New_York
:user raj tz=Asia/Kolkata
:user mia tz=Europe/Lisbon
:user dan tz=America/Chicago
:user sol tz=Australia/Sydney
:as lena
/phasegate init genres repo=acme/genres
:user bo role=business-owner github=bo-gh
:user raj role=ml-engineer github=raj-gh
:user mia role=ml-engineer github=mia-gh
:user dan role=data-engineer github=dan-gh
:user sol role=software-engineer
/phasegate settings digest="mon 09:00"

# --- Discovery: a brief whose success criterion is checked in real conditions -----------------------
/phasegate advance
:as bo
/phasegate brief problem="Listeners skip songs our playlists mislabel; tag each song's genre from its audio." criterion="playlist skip rate < 20%; A/B test on 5% of listeners"
/phasegate brief ack
:as lena
/phasegate advance

# --- Define: a baseline and an automated evaluation pipeline ---------------------------------------
:as raj
/phasegate baseline metric=macro-F1 value=0.61 pipeline=https://github.com/acme/genres/actions/workflows/eval.yml
:as lena
/phasegate advance

# --- Develop: a model-decision meeting nobody may attend unprepared ---------------------------------
/phasegate meeting schedule kind=model-decision window=2026-03-09..2026-03-13 attendees=@raj,@mia
:press Book
:clock +1d
:as raj
/phasegate propose meeting=1 title="Audio spectrogram transformer" approach=transformer refs=arXiv:2104.01778,https://github.com/YuanGongND/ast why="State of the art on AudioSet; our clips are 30 s" benefit=5 cost=10 risk=4
# Mia is busy. The reminder ladder takes over: DMs 48 h and 24 h before the deadline (in her working
# hours), a channel mention 2 h before, then the readiness verdict at the deadline.
:clock 2026-03-08T09:30Z
# Not ready: the lead is asked what to do.
:as lena
:press Postpone
:as mia
/phasegate propose meeting=1 title="CNN on log-mel spectrograms" approach=cnn refs=arXiv:1609.09430,arXiv:2104.01778 why="Cheap, well understood, runs on CPU" benefit=3 cost=3 risk=1
/phasegate proposals
:clock +3d
/phasegate decide meeting=1 proposal=2 rationale="Best benefit for its cost and risk; the transformer stays the runner-up" tasks="Prototype the CNN @mia; Build the log-mel feature cache @raj"
:as lena
/phasegate decide meeting=1 proposal=2 rationale="Best benefit for its cost and risk; the transformer stays the runner-up" tasks="Prototype the CNN @mia; Build the log-mel feature cache @raj"
/phasegate sync dry-run
/phasegate advance

# --- Deliver: offline results are not enough; a real-conditions check decides ------------------------
:as mia
/phasegate evaluate metric="playlist skip rate" value=24 check="A/B test on 5% of listeners, 2 weeks" evidence=https://dash.example.com/ab/genres-1
:as lena
/phasegate status
/phasegate advance outcome=ship
/phasegate advance outcome=iterate

# --- Develop again: the runner-up leads the next decision meeting ------------------------------------
/phasegate meeting schedule kind=model-decision at=2026-03-23T10:00 attendees=@raj,@mia
:as raj
/phasegate propose meeting=2 title="Fine-tune the spectrogram transformer" approach=transformer refs=arXiv:2104.01778 why="The CNN plateaued; AST adapts with little data" benefit=5 cost=6 risk=3
:as mia
/phasegate propose meeting=2 title="Gradient boosting on audio embeddings" approach="gradient boosting" refs=https://arxiv.org/abs/2002.06705 why="Cheap second opinion" benefit=2 cost=2 risk=1
:clock 2026-03-23T09:05Z
:as lena
/phasegate decide meeting=2 proposal=3 rationale="The A/B test showed the CNN cannot reach the target" tasks="Fine-tune AST on our catalogue @raj; Distil AST for CPU serving @mia"
/phasegate advance
:as mia
/phasegate evaluate metric="playlist skip rate" value=17 check="A/B test on 5% of listeners, 2 weeks" evidence=https://dash.example.com/ab/genres-2
:as lena
/phasegate status
/phasegate advance outcome=ship

# --- Deployment: four tasks in parallel, by role ----------------------------------------------------
/phasegate status
:as raj
/phasegate task done 18
/phasegate task done 20
:as dan
/phasegate task done 19
:as sol
/phasegate task done 21
:as lena
/phasegate advance
/phasegate audit 6
/phasegate report
:quit
"""


def run_demo(settings: Settings, *, out: TextIO | None = None, db: str | None = None) -> int:
    """Play the demo on a fresh SQLite file (or `db`); returns the shell's exit status."""
    import asyncio

    from bot.runtime import open_shell
    from bot.services.project_report import write_report_files
    from bot.shell import run

    path = db or str(Path(tempfile.mkdtemp(prefix="phasegate-demo-")) / "demo.db")
    settings = settings.model_copy(update={"database_url": f"sqlite:///{path}"})
    upgrade(settings.database_url)

    async def main() -> int:
        shell, close = await open_shell(settings, start=START, out=out or sys.stdout)
        try:
            status = await run(shell, io.StringIO(SCRIPT), interactive=False)
            directory = Path(path).parent
            if status == 0:  # the project on one page, as a file a lead would send on
                for report in await write_report_files(
                    shell.services.db, project_name="genres", directory=directory, now=shell.clock.now()
                ):
                    shell.write(f"Report written to {report}")
            return status
        finally:
            await close()

    return asyncio.run(main())
