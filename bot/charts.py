"""Charts as PNG: the decision meeting's proposals and a project's phase timeline.

matplotlib (Agg backend) is imported inside the drawing functions only, so a bot that never draws a chart never
loads it (the idle-RSS budget); callers on the event loop draw through `render_off_loop` (a worker thread).
"""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, TypeVar

T = TypeVar("T")
_LOCK = threading.Lock()  # pyplot's state is global: one chart at a time


@dataclass(frozen=True)
class Chart:
    png: bytes
    alt: str  # what the chart shows, for people who cannot see it


@dataclass(frozen=True)
class ProposalPoint:
    rank: int
    label: str
    benefit: int
    cost_days: float
    risk: int


@dataclass(frozen=True)
class ProposalsInput:
    title: str
    proposals: Sequence[ProposalPoint]


@dataclass(frozen=True)
class PhaseSpan:
    label: str
    started: date
    ended: date | None  # None: the current phase
    target: date | None


@dataclass(frozen=True)
class TimelineInput:
    project: str
    spans: Sequence[PhaseSpan]
    today: date


async def render_off_loop(draw: Callable[[T], Chart], data: T) -> Chart:
    """Draw in a worker thread: a chart takes tens of milliseconds the event loop should not wait."""
    return await asyncio.to_thread(draw, data)


def _figure(width: float, height: float) -> tuple[Any, Any]:
    """A figure on the Agg canvas, without pyplot (no global state, no GUI backend), and its axes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _png(fig: Any) -> bytes:
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=DPI, pil_kwargs={"compress_level": 3})
    return out.getvalue()


DPI = 90


def _short(text: str, n: int = 28) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def proposals_chart(data: ProposalsInput) -> Chart:
    """Benefit (up) against cost in days (right), marker size by risk, each point labelled with its rank."""
    points = list(data.proposals)
    with _LOCK:
        fig, ax = _figure(7.5, 4.8)
        if points:
            xs = [p.cost_days for p in points]
            ys = [p.benefit for p in points]
            sizes = [80 + 90 * max(p.risk, 1) for p in points]
            colours = ["#2e7d32" if p.rank == 1 else "#1565c0" for p in points]
            ax.scatter(xs, ys, s=sizes, c=colours, alpha=0.55, edgecolors="black", linewidths=0.8)
            for p in points:
                ax.annotate(
                    f"#{p.rank} {_short(p.label, 24)}",
                    (p.cost_days, p.benefit),
                    xytext=(8, 7 if p.rank % 2 else -13),  # alternate above and below
                    textcoords="offset points",
                    fontsize=8,
                    fontweight="bold" if p.rank == 1 else "normal",
                )
            span = max(xs) - min(xs)
            ax.set_xlim(max(min(xs) - span * 0.15 - 0.5, 0), max(xs) + span * 0.4 + 1)
            ax.set_ylim(0, max(max(ys) + 1, 5.5))
        else:
            ax.text(0.5, 0.5, "no proposals", ha="center", va="center", transform=ax.transAxes)
        ax.set_xlabel("cost (days)")
        ax.set_ylabel("benefit (1–5)")
        ax.set_title(f"{_short(data.title, 60)}: proposals (marker size = risk; #1 ranks first)", fontsize=10)
        ax.grid(True, alpha=0.3)
        fig.subplots_adjust(left=0.09, right=0.97, top=0.92, bottom=0.11)
        png = _png(fig)
    if points:
        ranked = "; ".join(
            f"#{p.rank} {p.label}: benefit {p.benefit}, cost {p.cost_days:g} days, risk {p.risk}"
            for p in sorted(points, key=lambda p: p.rank)
        )
        alt = f"Chart of {len(points)} proposals for {data.title}, benefit against cost, marker size by risk. {ranked}."
    else:
        alt = f"Chart of the proposals for {data.title}: there are none yet."
    return Chart(png, alt[:1000])


def timeline_chart(data: TimelineInput) -> Chart:
    """Each phase's actual span (bar) and planned target (marker), today marked by a line."""
    spans = list(data.spans)
    with _LOCK:
        import matplotlib.dates as dates

        mdates: Any = dates
        height = 0.45 * max(len(spans), 2) + 1.3
        fig, ax = _figure(7.5, height)
        for i, sp in enumerate(spans):
            end = sp.ended or data.today
            width = max((end - sp.started).days, 0.5)
            ax.barh(
                i,
                width,
                left=mdates.date2num(sp.started),
                height=0.5,
                color="#90caf9" if sp.ended else "#1565c0",
                edgecolor="black",
                linewidth=0.6,
            )
            if sp.target is not None:
                late = (sp.ended or data.today) > sp.target
                ax.plot(mdates.date2num(sp.target), i, marker="D", color="#c62828" if late else "#2e7d32", markersize=7)
        ax.axvline(mdates.date2num(data.today), color="#c62828", linestyle="--", linewidth=1)
        ax.text(mdates.date2num(data.today), -0.55, " today", color="#c62828", fontsize=8, va="bottom")
        ax.set_yticks(range(len(spans)), [_short(sp.label, 24) for sp in spans])
        ax.invert_yaxis()
        ax.xaxis_date()
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b"))
        first = min((sp.started for sp in spans), default=data.today)
        last = max([data.today, *(sp.target for sp in spans if sp.target)])
        ax.set_xlim(mdates.date2num(first - timedelta(days=1)), mdates.date2num(last + timedelta(days=3)))
        ax.set_title(f"{_short(data.project, 40)}: phases (bar = actual, ◆ = target date)", fontsize=10)
        ax.grid(True, axis="x", alpha=0.3)
        fig.subplots_adjust(left=0.2, right=0.97, top=1 - 0.45 / height, bottom=0.5 / height)
        png = _png(fig)
    parts = []
    for sp in spans:
        part = f"{sp.label} from {sp.started.isoformat()} " + (
            f"to {sp.ended.isoformat()}" if sp.ended else "(current)"
        )
        if sp.target:
            part += f", target {sp.target.isoformat()}"
        parts.append(part)
    alt = f"Phase timeline of {data.project} up to {data.today.isoformat()}: " + ("; ".join(parts) or "no phases") + "."
    return Chart(png, alt[:1000])
