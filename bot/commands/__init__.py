"""The command layer shared by Slack and the local shell; importing it registers every subcommand."""

from bot.commands import (
    hours,  # noqa: F401
    membership,  # noqa: F401
    project,  # noqa: F401  (registers subcommands)
    report,  # noqa: F401
    rituals,  # noqa: F401
    sync,  # noqa: F401
)
from bot.commands.base import (
    ACTIONS,
    FORMS,
    REGISTRY,
    Args,
    Context,
    Form,
    FormField,
    OpenForm,
    Reply,
    dispatch,
    run_action,
    submit_form,
)
from bot.commands.project import render_form

__all__ = [
    "ACTIONS",
    "FORMS",
    "REGISTRY",
    "Args",
    "Context",
    "Form",
    "FormField",
    "OpenForm",
    "Reply",
    "dispatch",
    "render_form",
    "run_action",
    "submit_form",
]
