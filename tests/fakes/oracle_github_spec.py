"""GitHub's bot subset with `304 Not Modified` on the GET endpoints we read conditionally.

GitHub answers any GET carrying a matching `If-None-Match` with 304 (docs: "Use conditional requests
if appropriate"; a 304 does not count against the rate limit), but the generated OpenAPI description
lists 304 only on a few operations (single issue, search, /user, /rate_limit). Without this the oracle
reports our fake's correct 304s on list endpoints as violations. Nothing else is changed.

    python -m tests.fakes.oracle_github_spec /tmp/github_bot_subset_304.json
    ../shared/oracle/oracle.py --github-spec /tmp/github_bot_subset_304.json --github-upstream … -- …
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

SOURCE = Path(__file__).resolve().parents[2].parent / "shared" / "oracle" / "specs" / "github_bot_subset.json"
CONDITIONAL_GETS = (
    "/repos/{owner}/{repo}",
    "/repos/{owner}/{repo}/issues",
    "/repos/{owner}/{repo}/labels",
    "/repos/{owner}/{repo}/milestones",
    "/repos/{owner}/{repo}/milestones/{milestone_number}",
    "/repos/{owner}/{repo}/labels/{name}",
    "/repos/{owner}/{repo}/assignees",
)


def augmented(source: Path = SOURCE) -> dict[str, object]:
    spec: dict[str, Any] = json.loads(source.read_text())
    for path in CONDITIONAL_GETS:
        responses = spec["paths"][path]["get"]["responses"]
        responses.setdefault("304", {"description": "Not modified"})
    return spec


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/github_bot_subset_304.json")
    out.write_text(json.dumps(augmented()))
    print(out)
