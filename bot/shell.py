"""The local terminal backend: the same commands, forms and buttons as Slack, with people and a movable clock."""

from __future__ import annotations

import re
import shlex
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Protocol, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.clock import FakeClock
from bot.commands import Context, FormField, OpenForm, Reply, dispatch, run_action, submit_form
from bot.commands.home import home_view
from bot.messaging import Delivery, Person, RecordingMessenger
from bot.process import parse_role
from bot.rendering import swap_command, with_command
from bot.services import Actor, Services
from bot.textrender import buttons_of, format_when, render_blocks

TEAM = "TSHELL0001"
CHANNEL = "CSHELL0001"
CHANNEL_NAME = "project"

Ask = Callable[[str], Awaitable[str | None]]


class ShellExit(Exception):
    """`:quit`, or the end of a script."""


class UnknownMeta(Exception):
    """A `:word` the shell does not know (a script stops with a non-zero status)."""


class TimeDriver(Protocol):
    """Something that acts when time passes (the reminder scheduler, the GitHub sync worker)."""

    async def next_due(self) -> datetime | None: ...

    async def run_due(self, now: datetime) -> int: ...


def user_id_for(name: str) -> str:
    return "U" + (re.sub(r"[^A-Z0-9]", "", name.upper()) or "X")[:20]


@dataclass
class ShellPerson:
    user_id: str
    name: str
    tz: str = "UTC"


@dataclass
class ShellMessenger(RecordingMessenger):
    """Prints every delivery as it happens, marking who sees it, and keeps each person's inbox."""

    shell: Shell | None = None  # set once the shell exists (it needs the services this messenger serves)

    def record(self, delivery: Delivery) -> None:
        super().record(delivery)
        if self.shell is not None:
            self.shell.show(delivery)

    async def person(self, *, team_id: str, user_id: str) -> Person | None:
        p = self.shell.by_id.get(user_id) if self.shell else None
        if p is None:
            return None
        return Person(user_id=p.user_id, name=p.name, timezone=p.tz)


HELP = """Meta-commands (anything else is typed as Slack would: /phasegate …):
  :user <name> [tz=<IANA zone>] [role=<role>] [github=<login>]   create or change a person
  :as <name>                 switch who is typing
  :clock                     show the simulated time
  :clock +<N>(m|h|d)         move time forward, running everything that falls due, in order
  :clock <ISO datetime>      move time to that moment (same)
  :press <label> [n]         press a button (the n-th with that label) in the latest message that has it
  :inbox <name>              replay what a person received (DMs and messages only they see)
  :home                      show your App Home
  :help                      this text
  :quit                      leave
Mention people as @name. In a script, a form takes its fields from the next line: key=value …"""


@dataclass
class Shell:
    """One terminal session over the real services (same parsing, services and templates as Slack)."""

    services: Services
    clock: FakeClock
    out: TextIO = field(default_factory=lambda: sys.stdout)
    drivers: Sequence[TimeDriver] = ()
    command: str = "/phasegate"
    interactive: bool = False
    people: dict[str, ShellPerson] = field(default_factory=dict)  # by lower-case name
    current: str = ""
    pending_header: str | None = None
    ask: Ask = field(default=lambda prompt: _none())  # how to read the next answer (None: no more input)
    files_dir: Path | None = None  # shared images are written here (next to the database) so they can be opened

    @property
    def by_id(self) -> dict[str, ShellPerson]:
        return {p.user_id: p for p in self.people.values()}

    @property
    def names(self) -> dict[str, str]:
        names = {p.user_id: p.name for p in self.people.values()}
        names[CHANNEL] = CHANNEL_NAME
        return names

    # --- output ---------------------------------------------------------------------------------

    def write(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def _tz(self, user_id: str | None) -> str:
        p = self.by_id.get(user_id or "")
        return p.tz if p else "UTC"

    def show(self, d: Delivery) -> None:
        if d.kind == "home":
            return
        if self.pending_header:  # the time something happened, shown once before what it sent
            self.write(self.pending_header)
            self.pending_header = None
        name = self.names.get(d.user_id or d.target, d.user_id or d.target)
        if d.kind == "dm":
            head, tz = f"[DM to @{name}]", self._tz(d.user_id)
        elif d.kind == "ephemeral":
            head, tz = f"[only @{name} sees this, in #{CHANNEL_NAME}]", self._tz(d.user_id)
        elif d.kind == "upload":
            head, tz = f"[#{CHANNEL_NAME}] file {d.filename} shared", self._tz(self.current)
            saved = self._save(d)
            if saved is not None:
                head += f" (written to {saved})"
        elif d.kind == "update":  # Slack edits the message in place; a one-line note is enough here
            title = (
                render_blocks(d.message.blocks[:1], names=self.names, tz=self._tz(self.current)) if d.message else ""
            )
            self.write(
                f"[#{CHANNEL_NAME}] an earlier message now reads: {title.strip() or (d.message and d.message.text)}"
            )
            self.write()
            return
        else:
            where = f"#{CHANNEL_NAME}" + (" thread" if d.thread_ts else "")
            head, tz = f"[{where}]", self._tz(self.current)
        self.write(head)
        if d.message is not None:
            body = render_blocks(d.message.blocks, names=self.names, tz=tz) if d.message.blocks else d.message.text
            self.write("\n".join("  " + line for line in body.splitlines()))
        self.write()

    def _save(self, d: Delivery) -> Path | None:
        """A shared image written into `files_dir` under its own name (no directories: only the last part)."""
        if self.files_dir is None or not d.content or not (d.filename or "").lower().endswith(".png"):
            return None
        name = Path(d.filename or "chart.png").name
        path = self.files_dir / name
        try:
            path.write_bytes(d.content)
        except OSError:
            return None
        return path

    # --- people ---------------------------------------------------------------------------------

    async def load_people(self) -> None:
        """People from earlier sessions on this database."""
        from sqlmodel import select

        from bot.db.models import Member

        async with self.services.db.session() as s:
            rows = (await s.execute(select(Member).where(Member.team_id == TEAM))).scalars()
            for m in rows:
                if m.display_name:
                    self.people[m.display_name.lower()] = ShellPerson(m.user_id, m.display_name, m.timezone or "UTC")

    async def ensure_default_person(self) -> None:
        if not self.people:
            person = ShellPerson(user_id_for("you"), "you")
            self.people["you"] = person
            await self.services.projects.update_profile(
                team_id=TEAM, user_id=person.user_id, display_name="you", timezone="UTC"
            )
        if not self.current:
            self.current = next(iter(self.people.values())).user_id

    def actor(self) -> Actor:
        return Actor(team_id=TEAM, user_id=self.current)

    def context(self) -> Context:
        return Context(
            services=self.services,
            actor=self.actor(),
            channel_id=CHANNEL,
            tz=self._tz(self.current),
            command=self.command,
        )

    def mentions(self, text: str) -> str:
        """`@ana` → `<@UANA|ana>` as Slack sends mentions (unknown names stay as typed)."""

        def sub(m: re.Match[str]) -> str:
            p = self.people.get(m[1].lower())
            return f"<@{p.user_id}|{p.name}>" if p else m[0]

        return re.sub(r"(?<![<\w])@([A-Za-z][\w.-]*)", sub, text)

    # --- the loop -------------------------------------------------------------------------------

    async def handle(self, line: str) -> None:
        """One typed line: a meta-command, a slash command, or a form's fields."""
        line = line.strip()
        if not line or line.startswith("#"):
            return
        if line.startswith(":"):
            await self.meta(line)
            return
        if line.startswith("/"):
            cmd, _, rest = line.partition(" ")
            if cmd != self.command:
                self.write(f"Only {self.command} is installed here. `:help` lists the shell's own commands.")
                return
            await self.deliver(await dispatch(self.context(), self.mentions(rest)))
            await self.run_drivers()
            return
        self.write(f"Type {self.command} … for the bot, or :help for the shell.")

    async def deliver(self, reply: Reply) -> None:
        """Show a reply the way Slack would, then open its form (asked field by field)."""
        if reply.message is not None:
            await self.services.messenger.ephemeral(
                team_id=TEAM,
                channel_id=CHANNEL,
                user_id=self.current,
                message=with_command(reply.message, self.command),
            )
        if reply.public is not None:
            await self.services.messenger.post(
                team_id=TEAM, channel_id=CHANNEL, message=with_command(reply.public, self.command)
            )
        if reply.form is not None:
            await self.fill_form(reply.form)

    async def fill_form(self, form: OpenForm) -> None:
        spec = form.form
        values = dict(form.prefill)
        self.write(f"[form: {spec.title}] {spec.intro}".rstrip())
        if not self.interactive:
            line = await self.ask("")
            if line is None or "=" not in line:
                self.write("  (form cancelled: in a script, give its fields on the next line as key=value …)")
                if line is not None and line.strip():
                    await self.handle(line)
                return
            try:
                words = shlex.split(self.mentions(line))
            except ValueError:
                self.write("  (form cancelled: a quote is not closed)")
                return
            for word in words:
                key, _, value = word.partition("=")
                values[key] = value
            await self.submit(form, values, retry=False)
            return
        self.write("  (press Enter to skip an optional field, type . to cancel)")
        if await self._ask_fields(spec.fields, values):
            await self.submit(form, values, retry=True)

    async def _ask_fields(self, fields: Sequence[FormField], values: dict[str, str]) -> bool:
        """Ask each field in turn (Enter keeps what is there); False when the person cancels."""
        for f in fields:
            current = values.get(f.name, "")
            extra = f" ({f.hint})" if f.hint else ""
            shown = f" [{current}]" if current else ""
            answer = await self.ask(f"  {f.label}{' (optional)' if f.optional else ''}{extra}{shown}: ")
            if answer is None or answer.strip() == ".":
                self.write("  (form cancelled)")
                return False
            values[f.name] = self.mentions(answer.strip()) if answer.strip() else current
        return True

    async def submit(self, form: OpenForm, values: dict[str, str], *, retry: bool) -> None:
        reply = await submit_form(self.context(), form.form.name, values, form.meta)
        if reply.field_errors:
            labels = {f.name: f.label for f in form.form.fields}
            for key, msg in reply.field_errors.items():
                self.write(f"  ✗ {labels.get(key, key)}: {msg}")
            if not retry:
                return
            self.write("  (fix the marked fields; the others keep what you typed)")
            if await self._ask_fields([f for f in form.form.fields if f.name in reply.field_errors], values):
                await self.submit(form, values, retry=True)
            return
        reply.form = None
        await self.deliver(reply)
        await self.run_drivers()

    # --- meta-commands --------------------------------------------------------------------------

    async def meta(self, line: str) -> None:
        try:
            words = shlex.split(line)
        except ValueError:
            self.write("A quote is not closed.")
            return
        name, args = words[0].lower(), words[1:]
        handlers: dict[str, Callable[[list[str]], Awaitable[None]]] = {
            ":user": self.meta_user,
            ":as": self.meta_as,
            ":clock": self.meta_clock,
            ":press": self.meta_press,
            ":inbox": self.meta_inbox,
            ":home": self.meta_home,
            ":help": self.meta_help,
            ":quit": self.meta_quit,
            ":exit": self.meta_quit,
        }
        handler = handlers.get(name)
        if handler is None:
            raise UnknownMeta(f"Unknown shell command {name}: :help lists them.")
        await handler(args)

    async def meta_help(self, args: list[str]) -> None:
        self.write(swap_command(HELP, self.command))

    async def meta_quit(self, args: list[str]) -> None:
        raise ShellExit()

    async def meta_user(self, args: list[str]) -> None:
        if not args or "=" in args[0]:
            self.write("Usage: :user <name> [tz=<IANA zone>] [role=<role>] [github=<login>]")
            return
        name = args[0].lstrip("@")
        opts = dict(a.split("=", 1) for a in args[1:] if "=" in a)
        person = self.people.get(name.lower()) or ShellPerson(user_id_for(name), name)
        if "tz" in opts:
            try:
                ZoneInfo(opts["tz"])
            except (ZoneInfoNotFoundError, ValueError):
                self.write(f"`{opts['tz']}` is not a time zone: use an IANA name like Europe/Berlin.")
                return
            person.tz = opts["tz"]
        self.people[name.lower()] = person
        await self.services.projects.update_profile(
            team_id=TEAM, user_id=person.user_id, display_name=person.name, timezone=person.tz
        )
        said = [f"@{person.name} ({person.tz})"]
        if not self.current:
            self.current = person.user_id
        if "github" in opts:
            await self.services.projects.link_github(
                actor=Actor(TEAM, person.user_id), user_id=person.user_id, login=opts["github"]
            )
            said.append(f"GitHub {opts['github']}")
        if "role" in opts:
            said.append(await self._give_role(person, opts["role"]))
        self.write("Person: " + ", ".join(said))

    async def _give_role(self, person: ShellPerson, text: str) -> str:
        role = parse_role(text)
        if role is None:
            return f"`{text}` is not a role (lead, business-owner, ml-engineer, data-engineer, software-engineer)"
        projects = await self.services.projects.list_all(team_id=TEAM)
        here = [p for p in projects if p.channel_id == CHANNEL]
        if not here:
            return f"role {role.value} not set: create a project first (/phasegate init …)"
        project = here[-1]
        assert project.id is not None
        await self.services.projects.set_role(
            actor=Actor(TEAM, project.lead_user_id), project_id=project.id, user_id=person.user_id, role=role
        )
        return f"{role.value} in {project.name}"

    async def meta_as(self, args: list[str]) -> None:
        person = self.people.get(args[0].lstrip("@").lower()) if args else None
        if person is None:
            self.write(f"No such person. People: {', '.join(p.name for p in self.people.values())} (:user adds one).")
            return
        self.current = person.user_id
        self.write(f"You are now @{person.name} ({person.tz}).")

    async def meta_clock(self, args: list[str]) -> None:
        now = self.clock.now()
        if not args:
            self.write(f"It is {format_when(int(now.timestamp()), self._tz(self.current))} ({now.isoformat()}).")
            return
        target = parse_clock(args[0], now)
        if target is None:
            self.write("Usage: :clock +<N>(m|h|d) or :clock <ISO datetime> (time only moves forward).")
            return
        fired = await self.advance(target)
        self.write(
            f"Clock moved to {format_when(int(target.timestamp()), self._tz(self.current))}; {fired} event(s) ran."
        )

    async def advance(self, target: datetime) -> int:
        """Move time forward, running everything that falls due, in order, at its own time."""
        fired = 0
        while True:
            dues = [d for d in [await drv.next_due() for drv in self.drivers] if d is not None]
            due = min(dues) if dues else None
            if due is None or due > target:
                break
            self.clock.set(max(due, self.clock.now()))
            self.pending_header = f"-- {format_when(int(self.clock.now().timestamp()), self._tz(self.current))} --"
            ran = await self.run_drivers()
            self.pending_header = None
            if ran == 0:  # nothing ran at its due time: avoid spinning
                break
            fired += ran
        self.clock.set(max(target, self.clock.now()))
        return fired + await self.run_drivers()

    async def run_drivers(self) -> int:
        total = 0
        for drv in self.drivers:
            total += await drv.run_due(self.clock.now())
        return total

    async def meta_press(self, args: list[str]) -> None:
        nth = int(args.pop()) if len(args) > 1 and args[-1].isdecimal() else 1
        label = " ".join(args).strip().strip("[]").lower()
        if not label:
            self.write("Usage: :press <button label> [n]   (n: the n-th button with that label)")
            return
        messenger = self.services.messenger
        deliveries = messenger.deliveries if isinstance(messenger, RecordingMessenger) else []
        for d in reversed(deliveries):
            if d.message is None or not self._visible(d):
                continue
            matching = [b for b in buttons_of(d.message.blocks) if b[0].lower().startswith(label)]
            if len(matching) < nth:
                continue
            text, action_id, value = matching[nth - 1]
            self.write(f"(@{self.names.get(self.current)} pressed [{text}])")
            await self.deliver(await run_action(self.context(), action_id, value))
            await self.run_drivers()
            return
        self.write(f"No button [{label}] in what @{self.names.get(self.current)} can see.")

    def _visible(self, d: Delivery) -> bool:
        if d.kind in ("dm", "ephemeral"):
            return d.user_id == self.current
        return d.kind in ("post", "update")

    async def meta_inbox(self, args: list[str]) -> None:
        person = self.people.get(args[0].lstrip("@").lower()) if args else self.by_id.get(self.current)
        if person is None:
            self.write("Usage: :inbox <name>")
            return
        messenger = self.services.messenger
        items = [
            d
            for d in (messenger.deliveries if isinstance(messenger, RecordingMessenger) else [])
            if d.kind in ("dm", "ephemeral") and d.user_id == person.user_id
        ]
        self.write(f"Inbox of @{person.name}: {len(items)} message(s)")
        for d in items:
            self.show(d)

    async def meta_home(self, args: list[str]) -> None:
        view = await home_view(self.context())
        self.write(f"[App Home of @{self.names.get(self.current)}]")
        body = render_blocks(view["blocks"], names=self.names, tz=self._tz(self.current))
        self.write("\n".join("  " + line for line in body.splitlines()))


async def _none() -> str | None:
    return None


async def run(shell: Shell, stdin: TextIO, *, interactive: bool) -> int:
    """Read lines until :quit or the end of input. Returns the exit status (2: unknown meta-command in a script)."""
    import asyncio

    shell.interactive = interactive

    async def read(prompt: str) -> str | None:
        if interactive:
            try:
                return await asyncio.to_thread(input, prompt)
            except EOFError:
                return None
        line = await asyncio.to_thread(stdin.readline)
        if not line:
            return None
        line = line.rstrip("\n")
        shell.write(f"> {line}")
        return line

    shell.ask = read
    await shell.load_people()
    await shell.ensure_default_person()
    if interactive:
        shell.write(f"Phasegate shell — you are @{shell.names[shell.current]}. Try {shell.command} help, or :help.")
    while True:
        name = shell.names.get(shell.current, "?")
        line = await read(f"{name}> ")
        if line is None:
            return 0
        try:
            await shell.handle(line)
        except ShellExit:
            return 0
        except UnknownMeta as exc:
            shell.write(str(exc))
            if not interactive:
                return 2


def parse_clock(text: str, now: datetime) -> datetime | None:
    m = re.fullmatch(r"\+(\d+(?:\.\d+)?)([mhd])", text.strip())
    if m:
        amount = float(m[1])
        unit = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}[m[2]]
        return now + unit * amount
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        try:
            when = datetime.combine(date.fromisoformat(text.strip()), datetime.min.time())
        except ValueError:
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when if when >= now else None
