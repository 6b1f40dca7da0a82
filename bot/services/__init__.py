"""Use cases, grouped by area; `Services` bundles them for the handlers, the CLI and the shell."""

from __future__ import annotations

from dataclasses import dataclass

from bot.clock import Clock
from bot.db.session import Database
from bot.messaging import Messenger, RecordingMessenger
from bot.services.artifacts import ArtifactService
from bot.services.audit import AuditService
from bot.services.base import Actor
from bot.services.deliveries import DeliveryService
from bot.services.gates import GateService
from bot.services.projects import ProjectService
from bot.services.reports import ReportService
from bot.services.tasks import TaskService

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
    preview_mode: bool = True  # no GitHub credentials: sync only shows its plan

    @classmethod
    def build(cls, db: Database, clock: Clock, messenger: Messenger | None = None) -> Services:
        return cls(
            db=db,
            clock=clock,
            messenger=messenger or RecordingMessenger(),
            projects=ProjectService(db, clock),
            tasks=TaskService(db, clock),
            artifacts=ArtifactService(db, clock),
            gates=GateService(db, clock),
            audit=AuditService(db, clock),
            reports=ReportService(db, clock),
            deliveries=DeliveryService(db, clock),
        )
