"""Subcommands about the project itself: help, init, status, roles, brief, baseline, tasks, advance, settings."""

from __future__ import annotations

import json
import re

from bot.commands.base import (
    REGISTRY,
    Args,
    Context,
    Form,
    FormField,
    OpenForm,
    Reply,
    UsageError,
    notice,
    parse_date,
    subcommand,
    user_id,
)
from bot.db.models import Brief, Project
from bot.errors import InvalidInput, PhasegateError
from bot.process import PHASES, Outcome, Phase, Role, parse_phase, parse_role
from bot.rendering import mention, render_message, render_view
from bot.services.audit import KINDS, PAGE_SIZE, SYSTEM_ACTOR, parse_kind, parse_page, parse_who
from bot.services.base import Announce
from bot.services.decisions import configure_records, records_settings
from bot.services.digest import parse_digest
from bot.services.gates import AdvanceResult
from bot.services.projects import REPO_RE

ROLE_OPTIONS = tuple((r.value, r.value) for r in Role)
PHASE_OPTIONS = tuple((p.value, p.label) for p in Phase)


async def project_id(ctx: Context, args: Args) -> int:
    """The project a command is about: project=<name>, else the channel's, else the user's only one."""
    project = await ctx.services.projects.resolve(
        actor=ctx.actor, channel_id=ctx.channel_id, name=args.options.pop("project", None)
    )
    assert project.id is not None
    return project.id


def mention_or_id(value: str, field: str) -> str:
    """A user from text (`<@U1|ana>`) or from a modal's picker (`U1`)."""
    uid = user_id(value) or (value.strip() if value.strip()[:1] in ("U", "W") and value.strip().isalnum() else None)
    if uid is None:
        raise InvalidInput(f"`{value[:40]}` is not a Slack user: mention them with @.", field=field)
    return uid


def render_form(open_form: OpenForm) -> dict[str, object]:
    """The Slack modal for a form (prefilled; meta carried in private_metadata)."""
    return render_view(
        "blocks/modal_form.json.j2",
        form=open_form.form,
        prefill=open_form.prefill,
        private_metadata=json.dumps(open_form.meta, separators=(",", ":"))[:3000],
    )


# --- help ---------------------------------------------------------------------------------------


@subcommand("help", usage="help [subcommand]", summary="What each subcommand does and how to type it.")
async def help_(ctx: Context, args: Args) -> Reply:
    topic = " ".join(args.positional).lower().strip()
    if topic:
        sub = REGISTRY.get(topic)
        group = sorted(s for s in REGISTRY if s.startswith(topic + " "))
        if sub is None and not group:
            raise UsageError(f"There is no subcommand `{topic[:40]}`. `{ctx.command} help` lists them all.")
        subs = [sub] if sub else [REGISTRY[g] for g in group]
    else:
        subs = list(REGISTRY.values())
    return Reply(
        message=render_message(
            "blocks/help.json.j2",
            text=f"{ctx.command} help",
            command=ctx.command,
            subs=subs,
            detailed=bool(topic),
        )
    )


# --- init ---------------------------------------------------------------------------------------

INIT_FORM = Form(
    name="init",
    title="New Phasegate project",
    submit="Create",
    intro="A project runs Discovery → Define → Develop → Deliver → Deployment in this channel.",
    fields=(
        FormField("name", "Project name", placeholder="genre-classifier", max_length=80),
        FormField("repo", "GitHub repository", optional=True, placeholder="acme/genre-classifier", hint="owner/name"),
        FormField("lead", "Project lead", kind="user", optional=True, hint="Leave empty to lead it yourself."),
    ),
)


@subcommand(
    "init",
    usage="init <name> repo=<owner/repo> [lead=@user]",
    summary="Start a project in this channel (it begins in Discovery).",
    form=INIT_FORM,
    examples=("init genre-classifier repo=acme/genres lead=@ana",),
)
async def init(ctx: Context, args: Args) -> Reply:
    name = args.positional[0] if args.positional else args.get("name")
    if not name:
        raise UsageError("Give the project a name: `init <name> repo=<owner/repo>`.", field="name")
    if len(args.positional) > 1:
        raise UsageError(
            f"Unexpected `{args.positional[1][:40]}`: the name is one word (use - or _), options are key=value.",
            field="name",
        )
    if not ctx.channel_id:
        raise InvalidInput("Run `init` in the channel the project will live in.")
    repo = args.get("repo")
    if repo is not None and not REPO_RE.match(repo.strip().removeprefix("https://github.com/").rstrip("/")):
        raise InvalidInput(f"`{repo[:100]}` is not a repository: write repo=owner/name.", field="repo")
    lead = mention_or_id(args.options["lead"], "lead") if args.get("lead") else None
    spec = PHASES[Phase.DISCOVERY]
    announce: Announce[Project] = Announce(
        lambda project: render_message(
            "blocks/project_created.json.j2",
            text=f"Project {project.name} started in Discovery",
            project=project,
            actor=ctx.actor.user_id,
            spec=spec,
            command=ctx.command,
        )
    )
    project = await ctx.services.projects.create(
        actor=ctx.actor, name=name, channel_id=ctx.channel_id, repo=repo, lead_user_id=lead, announce=announce
    )
    return Reply(
        message=notice(
            f"Created *{project.name}*. It starts in Discovery: {spec.gate} `{ctx.command} status` shows the checklist."
        ),
        announcements=[announce.row] if announce.row else [],
        refresh_home={ctx.actor.user_id, project.lead_user_id},
    )


# --- status -------------------------------------------------------------------------------------


@subcommand("status", usage="status [project=<name>]", summary="Phase, gate checklist, meetings, tasks, GitHub sync.")
async def status(ctx: Context, args: Args) -> Reply:
    report = await ctx.services.reports.status_here(
        actor=ctx.actor, channel_id=ctx.channel_id, name=args.options.pop("project", None)
    )
    phase = Phase(report.project.phase)
    return Reply(
        message=render_message(
            "blocks/status.json.j2",
            text=f"{report.project.name}: {phase.label}",
            r=report,
            stage=PHASES[phase].stage,
            preview=ctx.services.preview_mode,
            command=ctx.command,
        ),
        changed=False,
    )


# --- people -------------------------------------------------------------------------------------


@subcommand(
    "role",
    usage="role @user <role> [remove]",
    summary="Give someone a role: lead, business-owner, ml-engineer, data-engineer, software-engineer.",
    examples=("role @raj ml-engineer", "role @ana business-owner"),
)
async def role(ctx: Context, args: Args) -> Reply:
    pid = await project_id(ctx, args)
    if len(args.positional) < 2:
        raise UsageError("Say who and which role: `role @user ml-engineer`.")
    who = mention_or_id(args.positional[0], "user")
    parsed = parse_role(args.positional[1])
    if parsed is None:
        raise InvalidInput(
            f"`{args.positional[1][:40]}` is not a role. Roles: {', '.join(r.value for r in Role)}.", field="role"
        )
    remove = len(args.positional) > 2 and args.positional[2].lower() in ("remove", "rm", "off", "-")
    roles = await ctx.services.projects.set_role(
        actor=ctx.actor, project_id=pid, user_id=who, role=parsed, remove=remove
    )
    now_has = ", ".join(sorted(roles.get(who, set()))) or "no role"
    verb = "no longer has" if remove else "is now"
    return Reply(message=notice(f"{mention(who)} {verb} {parsed.value} (roles: {now_has})."), refresh_home={who})


@subcommand(
    "github",
    usage="github @user <login> | github connect",
    summary="Link a Slack user to a GitHub login (for assigning issues), or connect this workspace's GitHub.",
    examples=("github @me octocat", "github connect"),
)
async def github(ctx: Context, args: Args) -> Reply:
    if args.positional and args.positional[0].lower() == "connect":
        return await github_connect(ctx)
    if len(args.positional) < 2:
        raise UsageError("Say who and which login: `github @user octocat`.")
    who_word = args.positional[0]
    who = ctx.actor.user_id if who_word.lower() in ("@me", "me") else mention_or_id(who_word, "user")
    try:
        pid: int | None = await project_id(ctx, args)
    except PhasegateError:  # linking a login needs no project; a lead linking others does
        pid = None
    member = await ctx.services.projects.link_github(
        actor=ctx.actor, user_id=who, login=args.positional[1], project_id=pid
    )
    return Reply(
        message=notice(
            f"{mention(who)} is `{member.github_login}` on GitHub; their tasks will be assigned to them there."
        )
    )


async def github_connect(ctx: Context) -> Reply:
    """The install link of the Phasegate GitHub App, for this person and workspace (many installations)."""
    connect = ctx.services.github_connect
    if connect is None:
        return Reply(
            message=notice(
                "This Phasegate uses one GitHub identity set up by whoever runs it, so there is nothing to "
                f"connect here: name your repository with `{ctx.command} init <name> repo=<owner/repo>`."
            )
        )
    return Reply(message=notice(await connect.connect(ctx.actor)))


@subcommand(
    "share",
    usage="share repo=<owner/repo> with=<project>",
    summary="Let another project sync this project's GitHub repository too (lead of the project holding it).",
    examples=("share repo=acme/genres with=genres-eval",),
)
async def share(ctx: Context, args: Args) -> Reply:
    repo, other = args.get("repo"), args.get("with")
    if not repo or not other:
        raise UsageError("Say which repository and which project: `share repo=acme/genres with=genres-eval`.")
    pid = await project_id(ctx, args)
    target = await ctx.services.projects.share_repo(actor=ctx.actor, project_id=pid, repo=repo, with_project=other)
    return Reply(message=notice(f"Project {target.name} may now sync `{repo}` too."))


@subcommand(
    "away",
    usage="away until=<YYYY-MM-DD> | away off",
    summary="Declare an absence: you are excused from proposals and not reminded until then.",
)
async def away(ctx: Context, args: Args) -> Reply:
    if args.positional[:1] == ["off"]:
        await ctx.services.projects.set_away(actor=ctx.actor, until=None)
        return Reply(message=notice("Welcome back: you are no longer marked away."), refresh_home={ctx.actor.user_id})
    until = parse_date(args.require("until", "until=2026-03-20"), "until")
    await ctx.services.projects.set_away(actor=ctx.actor, until=until)
    return Reply(
        message=notice(f"You are away until {until.isoformat()} (inclusive): no proposal reminders until then."),
        refresh_home={ctx.actor.user_id},
    )


# --- gate artifacts -----------------------------------------------------------------------------

BRIEF_FORM = Form(
    name="brief",
    title="Project brief",
    submit="Save brief",
    intro="Discovery's gate: a problem statement and a success criterion that is checked in real conditions.",
    fields=(
        FormField("problem", "Problem statement", kind="multiline", optional=True, max_length=3000),
        FormField(
            "criterion",
            "Success criterion",
            optional=True,
            placeholder="skip rate < 20%; A/B test on 5% of users",
            hint="<metric> <comparison> <target>; <how it is checked in real conditions>",
            max_length=500,
        ),
    ),
)


@subcommand(
    "brief",
    usage='brief problem="…" criterion="<metric> <op> <target>; <real-conditions check>" | brief ack',
    summary="Write the brief and success criteria; a business owner acknowledges it with `brief ack`.",
    form=BRIEF_FORM,
    examples=('brief problem="Tag songs by genre" criterion="skip rate < 20%; A/B test"', "brief ack"),
)
async def brief(ctx: Context, args: Args) -> Reply:
    pid = await project_id(ctx, args)
    if args.positional[:1] == ["ack"]:
        acked: Announce[Brief] = Announce(lambda _: notice(f"{mention(ctx.actor.user_id)} acknowledged the brief."))
        await ctx.services.artifacts.acknowledge_brief(actor=ctx.actor, project_id=pid, announce=acked)
        return Reply(message=notice("Brief acknowledged."), announcements=[acked.row] if acked.row else [])
    if args.positional:
        raise UsageError(f'Unexpected `{args.positional[0][:40]}`: use problem="…" and criterion="…", or `brief ack`.')
    problem, criterion = args.get("problem"), args.get("criterion")
    if problem is None and criterion is None:
        raise UsageError('Give problem="…" and/or criterion="…".', field="problem")
    b, criteria = await ctx.services.artifacts.set_brief(
        actor=ctx.actor, project_id=pid, problem=problem, criterion=criterion
    )
    return Reply(
        message=render_message(
            "blocks/brief.json.j2", text="Brief saved", brief=b, criteria=criteria, command=ctx.command
        )
    )


BASELINE_FORM = Form(
    name="baseline",
    title="Baseline result",
    submit="Record",
    intro="Define's gate: a baseline result and the automated evaluation pipeline that produced it.",
    fields=(
        FormField("metric", "Metric", placeholder="macro-F1", max_length=200),
        FormField("value", "Value", kind="number"),
        FormField(
            "pipeline", "Evaluation pipeline link", optional=True, placeholder="https://github.com/acme/x/actions"
        ),
    ),
)


@subcommand(
    "baseline",
    usage="baseline metric=<name> value=<number> pipeline=<url>",
    summary="Record the baseline result and the evaluation pipeline (Define's gate).",
    form=BASELINE_FORM,
)
async def baseline(ctx: Context, args: Args) -> Reply:
    pid = await project_id(ctx, args)
    row = await ctx.services.artifacts.record_baseline(
        actor=ctx.actor,
        project_id=pid,
        metric=args.require("metric", "name the metric, e.g. metric=f1"),
        value=args.require("value", "give the number, e.g. value=0.61"),
        pipeline=args.get("pipeline"),
    )
    tail = f" Pipeline: {row.pipeline_url}" if row.pipeline_url else " Add pipeline=<url> to meet Define's gate."
    return Reply(message=notice(f"Baseline recorded: {row.metric} = {row.value:g}.{tail}"))


EVALUATE_FORM = Form(
    name="evaluate",
    title="Evaluation result",
    submit="Record",
    intro="Deliver's gate: the result against the success criteria, and a check in real conditions.",
    fields=(
        FormField("metric", "Metric", max_length=200),
        FormField("value", "Value", kind="number"),
        FormField(
            "check",
            "Real-conditions check",
            kind="multiline",
            optional=True,
            hint="A/B test, demo or focus group — and what it showed.",
            max_length=2000,
        ),
    ),
)


@subcommand(
    "evaluate",
    usage='evaluate metric=<criterion metric> value=<number> check="<A/B test, demo or focus group: result>" '
    "[evidence=<link>]",
    summary="Record a Deliver result for a success criterion, and the real-conditions check with its evidence.",
    form=EVALUATE_FORM,
)
async def evaluate(ctx: Context, args: Args) -> Reply:
    pid = await project_id(ctx, args)
    row = await ctx.services.artifacts.record_evaluation(
        actor=ctx.actor,
        project_id=pid,
        metric=args.require("metric", "name the metric"),
        value=args.require("value", "give the number"),
        check=args.get("check"),
        evidence=args.get("evidence"),
    )
    tail = "" if row.real_check else ' Add check="…" (A/B test, demo or focus group) to meet the gate.'
    return Reply(message=notice(f"Evaluation recorded: {row.metric} = {row.value:g}.{tail}"))


# --- tasks --------------------------------------------------------------------------------------


@subcommand(
    "task add",
    usage='task add "<title>" [@user] [phase=<phase>] [role=<role>]',
    summary="Add a task (it becomes a GitHub issue in the phase's milestone).",
    examples=('task add "Label 500 more songs" @raj phase=define role=ml-engineer',),
)
async def task_add(ctx: Context, args: Args) -> Reply:
    pid = await project_id(ctx, args)
    words = [w for w in args.positional if not user_id(w)]
    mentions = [mention_or_id(w, "assignee") for w in args.positional if user_id(w)]
    if not words:
        raise UsageError('Give the task a title in quotes: `task add "Label 500 songs" @raj`.', field="title")
    if len(mentions) > 1:
        raise InvalidInput("A task has one assignee; add one task per person.", field="assignee")
    phase = None
    if args.get("phase"):
        phase = parse_phase(args.options["phase"])
        if phase is None:
            raise InvalidInput(
                f"`{args.options['phase'][:30]}` is not a phase: {', '.join(p.value for p in Phase)}.", field="phase"
            )
    task_role = None
    if args.get("role"):
        task_role = parse_role(args.options["role"])
        if task_role is None:
            raise InvalidInput(f"`{args.options['role'][:30]}` is not a role.", field="role")
    task = await ctx.services.tasks.add(
        actor=ctx.actor,
        project_id=pid,
        title=" ".join(words),
        assignee=mentions[0] if mentions else None,
        phase=phase,
        role=task_role,
        body=args.get("body") or "",
    )
    who = f" for {mention(task.assignee_user_id)}" if task.assignee_user_id else ""
    return Reply(
        message=notice(f"Task #{task.number} added to {task.phase.capitalize()}{who}: {task.title}"),
        refresh_home={u for u in (ctx.actor.user_id, task.assignee_user_id) if u},
    )


async def _task_status(ctx: Context, args: Args, status: str) -> Reply:
    pid = await project_id(ctx, args)
    if not args.positional or not args.positional[0].lstrip("#").isdecimal():
        raise UsageError("Give the task's number: `task done 7` (`status` lists them).", field="number")
    task = await ctx.services.tasks.set_status(
        actor=ctx.actor, project_id=pid, number=int(args.positional[0].lstrip("#")), status=status
    )
    verb = "closed" if status == "closed" else "reopened"
    return Reply(
        message=notice(f"Task #{task.number} {verb}: {task.title}"),
        refresh_home={u for u in (ctx.actor.user_id, task.assignee_user_id) if u},
    )


@subcommand("task done", usage="task done <number>", summary="Close a task (its GitHub issue closes too).")
async def task_done(ctx: Context, args: Args) -> Reply:
    return await _task_status(ctx, args, "closed")


@subcommand("task reopen", usage="task reopen <number>", summary="Reopen a closed task.")
async def task_reopen(ctx: Context, args: Args) -> Reply:
    return await _task_status(ctx, args, "open")


_WHICH_WORDS = {"mine": "mine", "me": "mine", "my": "mine", "open": "open", "all": "all"}


@subcommand(
    "task list",
    usage="task list [mine|open|all] [phase=<phase>] [role=<role>]",
    summary="List tasks: open ones (default), all, or mine (assigned to me or to a role I hold).",
    examples=("task list", "task list mine", "task list all phase=develop role=ml-engineer"),
)
async def task_list(ctx: Context, args: Args) -> Reply:
    pid = await project_id(ctx, args)
    if len(args.positional) > 1:
        raise InvalidInput("Say one of mine, open or all: `task list mine phase=develop`.", field="which")
    word = args.positional[0] if args.positional else "open"
    which = _WHICH_WORDS.get(word.lower())
    if which is None:
        raise InvalidInput(
            f"`{word[:30]}` is not a task list: say mine, open or all (`task list mine`).", field="which"
        )
    unknown = sorted(set(args.options) - {"phase", "role"})
    if unknown:
        raise InvalidInput(
            f"`{unknown[0][:20]}=` is not a filter for tasks: use phase= or role= (`task list all phase=develop`).",
            field="filter",
        )
    phase = None
    if args.get("phase"):
        phase = parse_phase(args.options["phase"])
        if phase is None:
            raise InvalidInput(
                f"`{args.options['phase'][:30]}` is not a phase: {', '.join(p.value for p in Phase)}.", field="phase"
            )
    task_role = None
    if args.get("role"):
        task_role = parse_role(args.options["role"])
        if task_role is None:
            raise InvalidInput(
                f"`{args.options['role'][:30]}` is not a role: {', '.join(r.value for r in Role)}.", field="role"
            )
    lines = await ctx.services.reports.find_tasks(
        actor=ctx.actor, project_id=pid, which=which, phase=phase, role=task_role
    )
    scope = {"mine": "Your open tasks", "open": "Open tasks", "all": "All tasks"}[which]
    if phase is not None:
        scope += f" in {phase.label}"
    if task_role is not None:
        scope += f" for {task_role.value}"
    if not lines:
        return Reply(message=notice(f"{scope}: none. `{ctx.command} task list all` shows closed ones too."))
    shown = lines[:TASK_LIST_SHOWN]
    more = f" (first {len(shown)}; narrow it with phase= or role=)" if len(lines) > len(shown) else ""
    return Reply(
        message=render_message(
            "blocks/task_list.json.j2",
            text=f"{scope} ({len(lines)})",
            heading=f"*{scope}* ({len(lines)}){more}",
            tasks=shown,
        )
    )


TASK_LIST_SHOWN = 45


@subcommand(
    "plan",
    usage="plan <phase> due=<date>",
    summary="Set a phase's target date (lead): the GitHub milestone's due date; status says when it is overdue.",
    examples=("plan develop due=2026-04-30",),
)
async def plan(ctx: Context, args: Args) -> Reply:
    pid = await project_id(ctx, args)
    if len(args.positional) != 1 or not args.get("due"):
        raise InvalidInput("Say which phase and its date: `plan develop due=2026-04-30`.", field="due")
    phase = parse_phase(args.positional[0])
    if phase is None:
        raise InvalidInput(
            f"`{args.positional[0][:30]}` is not a phase: {', '.join(p.value for p in Phase)}.", field="phase"
        )
    due = parse_date(args.options["due"], "due")
    await ctx.services.gates.plan(actor=ctx.actor, project_id=pid, phase=phase, due=due)
    return Reply(message=notice(f"{phase.label} is due {due.isoformat()}; its GitHub milestone gets that due date."))


# --- phases -------------------------------------------------------------------------------------


@subcommand(
    "advance",
    usage='advance [outcome=ship|iterate [keep=tasks]] [override="reason"]',
    summary="Leave the current phase when its gate is met (lead); override an unmet gate with a kept reason. "
    "Iterating closes the open Deliver tasks as superseded unless keep=tasks.",
    examples=(
        "advance",
        "advance outcome=iterate",
        "advance outcome=iterate keep=tasks",
        'advance override="brief agreed by email with the CEO"',
    ),
)
async def advance(ctx: Context, args: Args) -> Reply:
    pid = await project_id(ctx, args)
    outcome = None
    if args.get("outcome"):
        try:
            outcome = Outcome(args.options["outcome"].strip().lower())
        except ValueError:
            raise InvalidInput("outcome must be `ship` or `iterate`.", field="outcome") from None
    keep = (args.get("keep") or "").strip().lower()
    if keep and keep != "tasks":
        raise InvalidInput(
            f"keep={keep[:30]} is not understood: `advance outcome=iterate keep=tasks` keeps the open Deliver "
            "tasks open; without it they are closed as superseded.",
            field="keep",
        )
    announce: Announce[AdvanceResult] = Announce(
        lambda result: render_message(
            "blocks/phase_advanced.json.j2",
            text=f"{result.from_phase.label} → {result.to_phase.label if result.to_phase else 'complete'}",
            result=result,
            actor=ctx.actor.user_id,
            spec=PHASES[result.to_phase] if result.to_phase else None,
            command=ctx.command,
        )
    )
    await ctx.services.gates.advance(
        actor=ctx.actor,
        project_id=pid,
        outcome=outcome,
        override_reason=args.get("override"),
        keep_tasks=bool(keep),
        announce=announce,
    )
    return Reply(
        message=notice("Done — the channel has been told."),
        announcements=[announce.row] if announce.row else [],
        refresh_home={ctx.actor.user_id},
    )


@subcommand(
    "settings",
    usage="settings [hours=09:00-17:00] [tz=<zone>] [deadline=<hours>] [min_proposals=<n>] "
    "[policy=escalate|postpone] [postpone_days=<n>] [max_postpones=<n>] [repo=<owner/repo>] "
    '[decision_records=on|off] [path=<folder>] [digest="mon 09:00"|off]',
    summary="Show or change the project's settings (lead).",
    examples=('settings digest="mon 09:00"', "settings digest=off"),
)
async def settings(ctx: Context, args: Args) -> Reply:
    pid = await project_id(ctx, args)
    if "deadline_hours" in args.options and "deadline" not in args.options:  # what people also type for it
        args.options["deadline"] = args.options.pop("deadline_hours")
    known = {"hours", "tz", "deadline", "min_proposals", "policy", "postpone_days", "max_postpones", "repo"}
    known |= {"decision_records", "path", "digest"}
    unknown = sorted(set(args.options) - known)
    if unknown or args.positional:
        bad = unknown[0] if unknown else args.positional[0]
        raise UsageError(f"`{bad[:40]}` is not a setting. Settings: {', '.join(sorted(known))}.")

    def number(key: str) -> int | None:
        raw = args.get(key)
        if raw is None:
            return None
        if not raw.strip().isdecimal():
            raise InvalidInput(f"{key} must be a whole number.", field=key)
        return int(raw)

    records_flag = args.get("decision_records")
    if records_flag is not None and records_flag.strip().lower() not in ("on", "off"):
        raise InvalidInput("decision_records must be `on` or `off`.", field="decision_records")
    if args.get("digest") is not None:  # refused before anything else changes, with an example
        parse_digest(args.options["digest"])
    if set(args.options) - {"decision_records", "path", "digest"}:
        project = await ctx.services.projects.configure(
            actor=ctx.actor,
            project_id=pid,
            working_hours=args.get("hours"),
            timezone=args.get("tz"),
            proposal_deadline_hours=number("deadline"),
            min_proposals=number("min_proposals"),
            readiness_policy=args.get("policy"),
            postpone_days=number("postpone_days"),
            max_postpones=number("max_postpones"),
            repo=args.get("repo"),
        )
    else:
        project = await ctx.services.projects.get(actor=ctx.actor, project_id=pid)
    if records_flag is not None or args.get("path") is not None:
        await configure_records(
            ctx.services.decisions,
            actor=ctx.actor,
            project_id=pid,
            enabled=records_flag.strip().lower() == "on" if records_flag is not None else None,
            path=args.get("path"),
        )
    if args.get("digest") is not None:
        slot, zone = await ctx.services.digests.configure(actor=ctx.actor, project_id=pid, raw=args.options["digest"])
    else:
        slot, zone = await ctx.services.digests.setting(actor=ctx.actor, project_id=pid)
    records = await records_settings(ctx.services.decisions, actor=ctx.actor, project_id=pid)
    digest = f"{slot.text} ({zone}, the lead's time zone)" if slot else "off"
    return Reply(
        message=render_message(
            "blocks/settings.json.j2",
            text=f"{project.name} settings",
            project=project,
            records=records,
            digest=digest,
            command=ctx.command,
        )
    )


@subcommand(
    "audit",
    usage="audit [page=<n>] [who=@person] [kind=<kind>]",
    summary="Changes to the project, newest first, 15 a page: who did what, when; by person or kind.",
    examples=("audit", "audit page=2", "audit who=@ana", "audit kind=meeting"),
)
async def audit(ctx: Context, args: Args) -> Reply:
    pid = await project_id(ctx, args)
    unknown = sorted(set(args.options) - {"page", "who", "kind", "project"})
    if unknown:
        raise UsageError(
            f"`{unknown[0][:30]}` is not an option of audit: say page=, who= or kind=, "
            f"e.g. `{ctx.command} audit who=@ana kind=meeting`."
        )
    page, size = 1, PAGE_SIZE
    first = args.positional[0] if args.positional else ""
    if first:  # `audit 30`: the last 30 (as before pages existed), at most 40
        if not (first.isascii() and first.isdecimal() and len(first) <= 4) or len(args.positional) > 1:
            raise UsageError(
                f"`{first[:30]}` is not an audit option. Say `{ctx.command} audit page=2`, "
                f"`{ctx.command} audit who=@ana` or `{ctx.command} audit kind=meeting`."
            )
        size = min(max(int(first), 1), 40)
    if args.get("page") is not None:
        page = parse_page(args.options["page"], ctx.command)
    who = parse_who(args.options["who"], ctx.command) if args.get("who") is not None else None
    kind = parse_kind(args.options["kind"], ctx.command) if args.get("kind") is not None else None
    found = await ctx.services.audit.page(
        actor=ctx.actor, project_id=pid, page=page, who=who, kind=kind, page_size=size
    )
    entries = found.entries
    # People by name, never a raw id: the actor and any person a detail names (user=, coauthors=…).
    ids = {e.actor for e in entries} | ({who} if who else set())
    for e in entries:
        for v in e.detail.values():
            for x in v if isinstance(v, list) else [v]:
                if isinstance(x, str) and USER_ID_RE.fullmatch(x):
                    ids.add(x)
    known = await ctx.services.projects.members(team_id=ctx.actor.team_id, user_ids=sorted(ids))
    people = {u: (known[u].display_name or "") if u in known else "" for u in ids if USER_ID_RE.fullmatch(u)}
    scope = []
    if who:
        scope.append(f"by <@{who}>" if who != SYSTEM_ACTOR else "by Phasegate itself")
    if kind:
        scope.append(f"{kind} changes ({KINDS[kind]})")
    heading = "*Audit log*" + (" — " + ", ".join(scope) if scope else "")
    heading += f" · page {found.page} of {found.pages} ({found.total} entr{'y' if found.total == 1 else 'ies'})"
    more = None
    if found.page < found.pages:
        more = (
            f"Older: `{ctx.command} audit page={found.page + 1}"
            + "".join(f" {k}={args.options[k]}" for k in ("who", "kind") if args.get(k) is not None)
            + "`"
        )
    return Reply(
        message=render_message(
            "blocks/audit.json.j2", text="Audit log", entries=entries, people=people, heading=heading, more=more
        )
    )


USER_ID_RE = re.compile(r"[UW][A-Z0-9]{2,31}")
