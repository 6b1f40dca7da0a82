"""The decision meeting's agenda carries a PNG of its proposals (benefit against cost, size by risk, ranked)."""

from __future__ import annotations

import io

from PIL import Image

from bot.charts import PhaseSpan, ProposalPoint, ProposalsInput, TimelineInput, proposals_chart, timeline_chart
from bot.commands import Context
from bot.messaging import Delivery, RecordingMessenger
from bot.scheduler import ReminderScheduler
from bot.services import Services
from tests.bot.rituals.helpers import CHANNEL, GOOD, LEAD, Member, Timeline, new_team, press, utc
from tests.conftest import actor

TEAM: dict[str, Member] = {
    "UANA": {"tz": "Europe/Berlin"},
    "URAJ": {"tz": "Europe/Berlin"},
    "UMIA": {"tz": "Europe/Berlin"},
}


def png(content: bytes | None) -> Image.Image:
    assert content is not None and content.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(content))
    image.verify()  # a whole, valid PNG (checksums), not a placeholder
    image = Image.open(io.BytesIO(content))
    assert image.format == "PNG" and image.width >= 400 and image.height >= 150
    return image


async def test_the_agenda_upload_is_a_png_that_grows_with_the_proposals(
    services: Services, scheduler: ReminderScheduler, timeline: Timeline, messenger: RecordingMessenger
) -> None:
    pid = await new_team(services, people=TEAM)
    sizes: dict[int, Delivery] = {}
    meetings = {}
    for day, authors in ((5, ["UANA"]), (6, ["UANA", "URAJ", "UMIA"])):
        m = await services.meetings.schedule(
            actor=LEAD, project_id=pid, kind="model-decision", starts_at=utc(2026, 3, day, 14), attendees=authors
        )
        for user, key in zip(authors, ("transformer", "boosting", "cnn"), strict=False):
            await services.proposals.submit(actor=actor(user), project_id=None, meeting_id=m.meeting.id, fields=GOOD[key])
        meetings[len(authors)] = m.meeting.id
    await timeline.run_until(scheduler, utc(2026, 3, 4, 15))  # the one-proposal meeting is not ready: hold it anyway
    await press(Context(services=services, actor=LEAD, channel_id=None), "phasegate:escalation_hold", str(meetings[1]))
    await timeline.run_until(scheduler, utc(2026, 3, 6, 15))
    for n, mid in meetings.items():
        name = f"phasegate-meeting-{mid}-proposals.png"
        upload = next(d for _, d in timeline.entries if d.kind == "upload" and d.filename == name)
        assert upload.target == CHANNEL and upload.thread_ts is not None  # in the meeting's thread
        png(upload.content)
        sizes[n] = upload
        assert upload.message is not None and f"Chart of {n} proposal" in upload.message.text
    assert len(sizes[3].content or b"") > len(sizes[1].content or b"")
    alt = sizes[3].message.text if sizes[3].message else ""
    assert "#1 " in alt and "#3 " in alt and "benefit" in alt and "risk" in alt


def test_charts_grow_with_their_content_and_describe_it() -> None:
    def points(n: int) -> ProposalsInput:
        return ProposalsInput("Model decision #1", [ProposalPoint(i, f"Idea {i}", i % 5 + 1, 2.0 * i, i % 3 + 1)
                                                     for i in range(1, n + 1)])

    small, large = proposals_chart(points(1)), proposals_chart(points(8))
    png(small.png), png(large.png)
    assert len(large.png) > len(small.png)
    assert "#8 Idea 8: benefit 4, cost 16 days, risk 3" in large.alt
    empty = proposals_chart(ProposalsInput("Model decision #2", []))
    png(empty.png)
    assert "there are none yet" in empty.alt
    from datetime import date

    chart = timeline_chart(
        TimelineInput(
            "genres",
            [PhaseSpan("Discovery", date(2026, 3, 2), date(2026, 3, 9), date(2026, 3, 6)),
             PhaseSpan("Develop", date(2026, 3, 9), None, date(2026, 3, 30))],
            date(2026, 3, 16),
        )
    )
    png(chart.png)
    assert chart.alt == (
        "Phase timeline of genres up to 2026-03-16: Discovery from 2026-03-02 to 2026-03-09, target 2026-03-06; "
        "Develop from 2026-03-09 (current), target 2026-03-30."
    )
