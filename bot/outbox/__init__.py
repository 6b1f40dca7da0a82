"""The Slack outbox: messages written in the transaction that causes them, delivered after commit, retried."""

from bot.outbox.errors import DeliveryError, classify
from bot.outbox.store import Outbox, OutboxSender, Problem, backoff, undelivered

__all__ = ["DeliveryError", "Outbox", "OutboxSender", "Problem", "backoff", "classify", "undelivered"]
