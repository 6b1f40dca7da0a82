"""CPU per `status` and App Home as instructions executed (valgrind's callgrind), at 10 and 1,000 tasks.

db_statements' CPU-time figures move by tens of percent between runs on a shared 2-core VM; an instruction count
does not (the same code, data and interpreter execute the same instructions whatever else the machine does), so it
is the figure to compare two versions by. Each view runs warm `runs` times in a child process under
`valgrind --tool=callgrind --instr-atstart=no`; a three-line C helper (callgrind.h's client requests, built with the
system's cc) switches instrumentation on around the measured loop only. The count covers every thread (the SQLite
driver's too). Skipped, and the row says why, where valgrind, its header or a C compiler is missing."""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.common import fresh_pg_schema, report

HELPER = """#include <valgrind/callgrind.h>
static int on = 0;
void toggle(void) { if (on) { CALLGRIND_STOP_INSTRUMENTATION; } else { CALLGRIND_START_INSTRUMENTATION; } on = !on; }
"""
HEADER = Path("/usr/include/valgrind/callgrind.h")
VIEWS = ("status", "app home")


def _helper(folder: Path) -> Path | str:
    """The helper library, or why it cannot be built."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if shutil.which("valgrind") is None:
        return "valgrind is not installed"
    if cc is None or not HEADER.exists():
        return "no C compiler or no valgrind/callgrind.h"
    (folder / "toggle.c").write_text(HELPER)
    library = folder / "toggle.so"
    subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", str(library), str(folder / "toggle.c")], check=True)
    return library


async def _child(url: str, tasks: int, runs: int, view: str, library: str) -> None:
    """Inside valgrind: build the project, warm the view, then run it `runs` times with instrumentation on."""
    from bench.db_statements import bench_project
    from bot.clock import SystemClock
    from bot.commands import dispatch
    from bot.commands.home import home_view
    from bot.db.session import Database
    from bot.services import Services

    toggle = ctypes.CDLL(library).toggle
    db = Database(url)
    ctx, name = await bench_project(Services.build(db, SystemClock()), tasks)

    async def run() -> None:
        if view == "app home":
            await home_view(ctx)
        else:
            await dispatch(ctx, f"status project={name}")

    for _ in range(5):
        await run()
    toggle()
    for _ in range(runs):
        await run()
    toggle()
    await db.dispose()


def _count(url: str, tasks: int, runs: int, view: str, library: Path, folder: Path) -> float:
    """Million instructions per run of `view`."""
    log = folder / "valgrind.log"
    subprocess.run(
        [
            "valgrind", "--tool=callgrind", "--instr-atstart=no", f"--log-file={log}",
            f"--callgrind-out-file={folder / 'callgrind.out'}",
            sys.executable, "-m", "bench.instructions", "--child", url, str(tasks), str(runs), view, str(library),
        ],
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )  # fmt: skip
    collected = re.search(r"Collected : (\d+)", log.read_text())
    assert collected, log.read_text()[-2000:]
    return int(collected.group(1)) / runs / 1e6


def main(*, quick: bool = False) -> dict[str, Any]:
    from bot.db.migrate import upgrade

    sizes, runs, views = ((10,), 3, ("status",)) if quick else ((10, 1000), 20, VIEWS)
    folder = Path(tempfile.mkdtemp())
    library = _helper(folder)
    if isinstance(library, str):
        return report("instructions", [{"view": v, "skipped": library} for v in views])
    backends = {"sqlite": f"sqlite:///{folder}/bench.db"}
    if os.environ.get("TEST_POSTGRES_URL") and not quick:
        backends["postgresql"] = fresh_pg_schema(os.environ["TEST_POSTGRES_URL"])
    rows = []
    for backend, url in backends.items():
        upgrade(url)
        for tasks in sizes:
            for view in views:
                millions = _count(url, tasks, runs, view, library, folder)
                rows.append({"db": backend, "view": view, "tasks": tasks, "instructions_millions": round(millions, 2)})
    return report("instructions", rows, {"runs_per_view": runs})


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--child", nargs=5, metavar=("URL", "TASKS", "RUNS", "VIEW", "LIBRARY"))
    a = ap.parse_args()
    if a.child:
        url, tasks, runs, view, library = a.child
        asyncio.run(_child(url, int(tasks), int(runs), view, library))
    else:
        main(quick=a.quick)
