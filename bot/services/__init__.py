"""Use cases, grouped by area; `Services` bundles them for the handlers, the CLI and the shell."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot.clock import Clock
from bot.db.session import Database
from bot.messaging import Messenger, RecordingMessenger
from bot.outbox import Outbox
from bot.services.artifacts import ArtifactService
from bot.services.audit import AuditService
from bot.services.base import Actor, AdminCheck, ServiceBase
from bot.services.decisions import DecisionService
from bot.services.deliveries import DeliveryService
from bot.services.digest import DigestService
from bot.services.gates import GateService
from bot.services.hours import HoursService
from bot.services.known_people import KnownPeople
from bot.services.meetings import MeetingService
from bot.services.projects import ProjectService
from bot.services.proposals import ProposalService
from bot.services.reports import ReportService
from bot.services.rituals import RitualService
from bot.services.tasks import TaskService

if TYPE_CHECKING:
    from bot.services.github_connect import GitHubConnectService
    from bot.sync.service import SyncService

__all__ = ["Actor", "Services"]


@dataclass
class Services:
    db: Database
    clock: Clock
    messenger: Messenger
    projects: ProjectService
    tasks: TaskService
    artifacts: ArtifactService
    gates: GateService
    audit: AuditService
    reports: ReportService
    deliveries: DeliveryService
    meetings: MeetingService
    proposals: ProposalService
    decisions: DecisionService
    rituals: RitualService
    hours: HoursService
    digests: DigestService
    sync: SyncService | None = None  # set by the composition (it needs settings and a GitHub gateway)
    preview_mode: bool = True  # no GitHub credentials: sync only shows its plan
    outbox: Outbox | None = None  # every message the bot sends on its own (set by build)
    # A GitHub App of many installations: `github connect` and GitHub's setup redirect (set by the composition).
    github_connect: GitHubConnectService | None = None
    known_people: KnownPeople = field(init=False)  # whose profile is stored: their commands skip that read

    def __post_init__(self) -> None:
        self.known_people = KnownPeople(self.clock)

    def changed(self) -> None:
        """Something may need syncing: wake the GitHub sync worker now rather than at its next interval."""
        if self.sync is not None:
            self.sync.kick()

    @classmethod
    def build(cls, db: Database, clock: Clock, messenger: Messenger | None = None) -> Services:
        messenger = messenger or RecordingMessenger()
        outbox = Outbox(db, clock, messenger)
        meetings = MeetingService(db, clock, messenger, outbox)
        built = cls(
            db=db,
            clock=clock,
            messenger=messenger,
            projects=ProjectService(db, clock),
            tasks=TaskService(db, clock),
            artifacts=ArtifactService(db, clock, messenger),
            gates=GateService(db, clock),
            audit=AuditService(db, clock),
            reports=ReportService(db, clock),
            deliveries=DeliveryService(db, clock),
            meetings=meetings,
            proposals=ProposalService(db, clock, messenger, outbox),
            decisions=DecisionService(db, clock, messenger, meetings),
            rituals=RitualService(db, clock, messenger, meetings, outbox),
            hours=HoursService(db, clock, outbox),
            digests=DigestService(db, clock, messenger, outbox),
            outbox=outbox,
        )
        built.use(admins=AdminCheck(messenger, clock), outbox=outbox)
        return built

    def use(
        self, *, admins: AdminCheck | None = None, command: str | None = None, outbox: Outbox | None = None
    ) -> None:
        """Share the admin check (Slack's current flag), the configured command name and the outbox with every
        service."""
        for box in (self.outbox, outbox):
            if command is not None and box is not None:
                box.command = command
        for svc in vars(self).values():
            if isinstance(svc, ServiceBase):
                if admins is not None:
                    svc.admins = admins
                if outbox is not None:
                    svc.outbox = outbox
                if command is not None:
                    svc.command = command
