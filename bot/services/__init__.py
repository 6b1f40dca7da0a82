"""Use cases, grouped by area; `Services` bundles them for the handlers, the CLI and the shell."""

from __future__ import annotations

from dataclasses import dataclass

from bot.clock import Clock
from bot.db.session import Database
from bot.services.artifacts import ArtifactService
from bot.services.audit import AuditService
from bot.services.base import Actor
from bot.services.gates import GateService
from bot.services.projects import ProjectService
from bot.services.tasks import TaskService

__all__ = ["Actor", "Services"]


@dataclass
class Services:
    db: Database
    clock: Clock
    projects: ProjectService
    tasks: TaskService
    artifacts: ArtifactService
    gates: GateService
    audit: AuditService

    @classmethod
    def build(cls, db: Database, clock: Clock) -> Services:
        return cls(
            db=db,
            clock=clock,
            projects=ProjectService(db, clock),
            tasks=TaskService(db, clock),
            artifacts=ArtifactService(db, clock),
            gates=GateService(db, clock),
            audit=AuditService(db, clock),
        )
