"""Resumable uploads' spool seen by the tests: what it still holds, and uploads aged by
writing their state, never by waiting for the clock."""

from __future__ import annotations

import json
import time
from pathlib import Path


def expire_uploads(spool: Path, seconds_ago: float = 60.0) -> list[str]:
    """Set every unfinished upload's recorded expiry ``seconds_ago`` in the past, as its
    ``ID.json`` keeps it; the ids of the uploads changed."""
    changed = []
    for state_file in sorted(spool.glob("*.json")):
        state = json.loads(state_file.read_text(encoding="utf-8"))
        state["expires_at"] = time.time() - seconds_ago
        state_file.write_text(json.dumps(state), encoding="utf-8")
        changed.append(state["id"])
    return changed


def spool_leftovers(spool: Path) -> list[str]:
    """Every upload's state, part or mark still in the spool, as relative paths (not the
    spool's own lock and ledger)."""
    if not spool.exists():
        return []
    found = [path for path in spool.rglob("*") if path.is_file() or path.is_symlink()]
    names = [str(path.relative_to(spool)) for path in found]
    return sorted(name for name in names if not name.startswith("room."))
