"""Typed errors raised by services; handlers turn them into messages that say what to do."""

from __future__ import annotations


class PhasegateError(Exception):
    """Base class: `str(error)` is a complete sentence addressed to the user."""

    def __init__(self, message: str, *, field: str | None = None, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        # Per-field messages, for modal `response_action: errors`.
        self.fields: dict[str, str] = dict(fields or {})
        if field and field not in self.fields:
            self.fields[field] = message


class InvalidInput(PhasegateError):
    """The user's input is malformed or incomplete."""


class NotAllowed(PhasegateError):
    """The acting user may not do this (e.g. only the lead may override a gate)."""


class NotFound(PhasegateError):
    """The thing named does not exist in this workspace."""


class GateNotMet(PhasegateError):
    """A phase gate is not met; `missing` lists what to do."""

    def __init__(self, message: str, *, missing: list[str]) -> None:
        super().__init__(message)
        self.missing = missing


class Conflict(PhasegateError):
    """The request conflicts with the current state (e.g. a meeting already cancelled)."""
