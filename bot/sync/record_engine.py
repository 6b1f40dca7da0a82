"""Apply one `decision_record` outbox item: the record's branch, file and pull request, exactly once."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlmodel import select

from bot.db.models import Decision, DecisionRecordFile, OutboxItem, Project
from bot.github.gateway import AuthError, GhPull, NotFoundError, RepoLocked, Unprocessable
from bot.services.tasks import enqueue_sync
from bot.sync.records import desired_record, ensure_row, record_marker, settings_of

if TYPE_CHECKING:
    from bot.sync.engine import SyncEngine


async def sync_decision_record(engine: SyncEngine, project: Project, ref: str, item_id: int) -> str:
    """Branch from the default branch, write the file, open (or find, or update) the pull request."""
    assert project.repo and project.id is not None
    repo = project.repo
    async with engine.db.session() as s:
        settings = await settings_of(s, project.id)
        decision = await s.get(Decision, int(ref)) if ref.isdecimal() else None
        if settings is None or decision is None:
            await engine._finish(s, item_id, True)
            return "skipped"
        row = await ensure_row(s, project, decision, settings)
        want = await desired_record(s, project, row)
        pr_number, synced, base = row.pr_number, row.synced_hash, row.base
        newer = await s.get(DecisionRecordFile, row.superseded_by) if row.superseded_by else None
        newer_branch = newer.branch if newer is not None and newer.pr_state == "open" else None
    if pr_number is not None and synced == want.hash():
        async with engine.db.session() as s:
            await engine._finish(s, item_id, True)
        return "unchanged"
    marker = record_marker(want.decision_id, project.id)
    try:
        if base is None:
            await engine.pacer.read()
            base = await engine.gateway.default_branch(repo)
        owner = repo.split("/", 1)[0]
        await engine.pacer.read()
        pulls = await engine.gateway.list_pulls(repo, head=f"{owner}:{want.branch}")
        ours: GhPull | None = next((p for p in pulls if marker in p.body or p.number == pr_number), None)
        if ours is None or ours.state == "open":
            file_branch: str | None = want.branch
            await engine.pacer.read()
            if await engine.gateway.branch_sha(repo, want.branch) is None:
                await engine.pacer.read()
                base_sha = await engine.gateway.branch_sha(repo, base)
                if base_sha is None:
                    raise NotFoundError(f"{repo} has no branch {base}", status=404)
                try:
                    async with engine.pacer.write():
                        await engine.gateway.create_branch(repo, want.branch, base_sha)
                except Unprocessable:
                    pass  # made by an attempt whose answer was lost: use it
        else:  # merged (or closed): a superseding record's open pull request carries the change
            file_branch = newer_branch if ours.merged else None
        if file_branch is not None:
            await engine.pacer.read()
            there = await engine.gateway.get_file(repo, want.path, ref=file_branch)
            if there is None or there.text != want.text:
                async with engine.pacer.write():
                    await engine.gateway.put_file(
                        repo,
                        want.path,
                        branch=file_branch,
                        message=want.pr_title,
                        text=want.text,
                        sha=there.sha if there else None,
                    )
        if ours is None:
            try:
                async with engine.pacer.write():
                    ours = await engine.gateway.create_pull(
                        repo, title=want.pr_title, body=want.pr_body, head=want.branch, base=base
                    )
                engine.counts["decision_record.proposed"] += 1
            except Unprocessable:
                await engine.pacer.read()
                pulls = await engine.gateway.list_pulls(repo, head=f"{owner}:{want.branch}")
                ours = next((p for p in pulls if marker in p.body), None)
                if ours is None:
                    raise
        elif (ours.title, ours.body) != (want.pr_title, want.pr_body):
            async with engine.pacer.write():
                ours = await engine.gateway.update_pull(repo, ours.number, title=want.pr_title, body=want.pr_body)
            engine.counts["decision_record.updated"] += 1
    except RepoLocked as exc:
        if exc.reason == "archived":
            raise  # the whole project's sync pauses
        return await _dead_end(engine, project, want.number, item_id, str(exc))
    except (AuthError, NotFoundError) as exc:
        return await _dead_end(engine, project, want.number, item_id, str(exc))
    async with engine.db.session() as s:
        stored = await s.get(DecisionRecordFile, want.decision_id)
        if stored is None:
            return "skipped"
        stored.pr_number, stored.pr_url, stored.base = ours.number, ours.html_url, base
        stored.pr_state = "merged" if ours.merged else ours.state
        stored.synced_hash, stored.synced_at, stored.last_error = want.hash(), engine.clock.now(), None
        await s.flush()
        current = await desired_record(s, project, stored)
        await engine._finish(s, item_id, current.hash() == want.hash())
        previous = (
            await s.execute(select(DecisionRecordFile).where(DecisionRecordFile.superseded_by == want.decision_id))
        ).scalar_one_or_none()
        if previous is not None:  # the superseded record now links here
            await enqueue_sync(
                s, project=project, kind="decision_record", ref=str(previous.decision_id), now=engine.clock.now()
            )
    return "done"


async def _dead_end(engine: SyncEngine, project: Project, number: int, item_id: int, error: str) -> str:
    """No access, or no such repository: tell the lead once and stop retrying until the next `sync`."""
    assert project.id is not None
    async with engine.db.session() as s:
        item = await s.get(OutboxItem, item_id)
        if item is not None:
            engine._mark_done(item, note=error[:1000])
    engine.counts["decision_record.refused"] += 1
    if engine.notify is not None:
        await engine.notify(
            project_id=project.id,
            key=f"decision-record-refused:{project.id}:{number}",
            text=(
                f"Decision record {number:04d} of {project.name} could not be proposed in {project.repo}: "
                f"{error[:200]}. To fix it: give the Phasegate GitHub App Contents and Pull requests read & "
                "write on that repository (or check it exists), then run `/phasegate sync`."
            ),
        )
    return "refused"
