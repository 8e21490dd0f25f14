"""What the resumable uploads' spool holds: the uploads' own files and their marks in the
counts, not the spool's lock and ledger."""

from __future__ import annotations

from pathlib import Path


def spool_leftovers(spool: Path) -> list[str]:
    """Every upload's state, part or mark still in the spool, as relative paths."""
    if not spool.exists():
        return []
    found = [path for path in spool.rglob("*") if path.is_file() or path.is_symlink()]
    names = [str(path.relative_to(spool)) for path in found]
    return sorted(name for name in names if not name.startswith("room."))
