"""Shared by the benchmarks: percentiles, a printed table, and JSON results in bench/results/."""

from __future__ import annotations

import json
import operator
import os
import platform
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def fresh_pg_schema(base: str, schema: str = "phasegate_bench") -> str:
    """A clean schema of its own on the PostgreSQL server, so the benchmark touches nothing else."""
    import psycopg
    from sqlalchemy.engine import make_url

    libpq = make_url(base).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(libpq, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        conn.execute(f'CREATE SCHEMA "{schema}"')
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


def machine() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load": round(os.getloadavg()[0], 1),  # 1-minute load average: a shared machine's figures say so
    }


def rss_kib(pid: int) -> int:
    """Resident set size of a process, in KiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, summed over its cores (Linux /proc/stat)."""
    jiffies = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = jiffies[3] + jiffies[4]  # idle + iowait
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(jiffies[:8]) - idle) / tick, sum(jiffies[:8]) / tick


class Statements:
    """Counts the SQL statements an engine runs while inside `with` (a before_cursor_execute listener);
    `count` can be read and reset meanwhile."""

    def __init__(self, engine: Any) -> None:
        self.engine, self.count = engine, 0

    def _one(self, *_: Any) -> None:
        self.count += 1

    def __enter__(self) -> Statements:
        from sqlalchemy import event

        event.listen(self.engine, "before_cursor_execute", self._one)
        return self

    def __exit__(self, *_: object) -> None:
        from sqlalchemy import event

        event.remove(self.engine, "before_cursor_execute", self._one)


Goal = tuple[str, float]  # ("<=", 250.0): the figure must be at most 250
_OPS = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt, "==": operator.eq}


def meets(value: Any, goal: Goal) -> bool:
    op, target = goal
    return isinstance(value, int | float) and not isinstance(value, bool) and bool(_OPS[op](value, target))


def where(row: dict[str, Any], keys: list[str] | None, figure: str) -> list[str]:
    """The columns that say which row a figure is from: `keys` (the configuration a benchmark varies), else the
    first three columns but the figure itself."""
    return [c for c in (keys or list(row)[:3]) if c != figure and c in row]


def report(
    name: str,
    rows: list[dict[str, Any]],
    extra: dict[str, Any] | None = None,
    goals: dict[str, Goal] | None = None,
    keys: list[str] | None = None,
) -> dict[str, Any]:
    """Print rows as a table, each figure that has a goal with the goal beside it, and write
    bench/results/<name>.json (goals included, so the README table can show them). `keys`: the columns that
    name a row (what the benchmark varies), by which a figure with a goal is labelled."""
    goals = goals or {}
    result = {
        "benchmark": name,
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "rows": rows,
        **(extra or {}),
        "goals": {k: list(v) for k, v in goals.items()},
        **({"keys": keys} if keys else {}),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    if rows:
        cols = list(rows[0])
        widths = {c: max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in cols}
        print(f"\n{name}  ({result['machine']['cores']} cores)")
        print("  ".join(c.ljust(widths[c]) for c in cols))
        for r in rows:
            print("  ".join(_fmt(r.get(c)).ljust(widths[c]) for c in cols))
    for k, v in (extra or {}).items():
        print(f"{k}: {v}")
    for figure, goal in goals.items():
        for r in rows:
            if figure in r:
                at = ", ".join(f"{c}={r[c]}" for c in where(r, keys, figure))
                verdict = "met" if meets(r[figure], goal) else "MISSED"
                print(f"  {figure} [{at}] = {_fmt(r[figure])}   goal {goal[0]} {goal[1]:g}   {verdict}")
        if figure in result and figure not in ("rows", "goals"):
            verdict = "met" if meets(result[figure], goal) else "MISSED"
            print(f"  {figure} = {_fmt(result[figure])}   goal {goal[0]} {goal[1]:g}   {verdict}")
    return result


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 100 else f"{v:.1f}"
    return str(v)
