"""Garbage collection: stored files no record references, records whose file is missing.

A crash between storing a file and updating its record, a failed delete, a client that
drops the ``attachment`` field: each leaves a file nobody references. This finds them
(and the reverse, records pointing at a missing file) by comparing both sides in full.

Both sides are streamed into a temporary SQLite database on disk and compared there with
SQL, so memory stays bounded at millions of records and files.

Records are read through Kinto's storage backend (see :mod:`.kinto_records`); an orphan
goes only if the one deletion rule (:mod:`..files.remover`) says so, under its lock.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..files.locations import key_for
from ..files.remover import FileRemover, Removal, Verdict
from ..locks import ProcessLocks
from ..storage import Storage, StoredFileInfo
from ..storage.metadata import CLOCK_MARGIN_SECONDS
from .kinto_records import iter_attachments

DEFAULT_PAGE_SIZE = 1000
_INSERT_BATCH = 1000


@dataclass
class Report:
    """What one run found, and did unless ``dry_run``."""

    dry_run: bool
    records: int = 0  # records with an attachment
    outside: int = 0  # of which the location is not in this storage
    files: int = 0
    orphans: int = 0
    orphan_bytes: int = 0
    removed: int = 0
    removed_bytes: int = 0
    leftovers: int = 0
    leftover_bytes: int = 0
    dangling: int = 0
    failures: int = 0  # orphans that could not be removed
    kept: int = 0  # orphans that keep_old_files protects


@dataclass
class Listener:
    """Called for each finding, so that callers can list them without keeping them."""

    orphan: Callable[[StoredFileInfo], None] = lambda info: None
    dangling: Callable[[str, str], None] = lambda record_uri, location: None
    leftover: Callable[[StoredFileInfo], None] = lambda info: None


def collect_garbage(
    kinto_storage,
    storage: Storage,
    grace_seconds: float,
    dry_run: bool = False,
    listener: Listener | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
    now: float | None = None,
    remover: FileRemover | None = None,
) -> Report:
    """Remove (unless ``dry_run``) stored files that no record references and that are
    older than ``grace_seconds``; report records whose location has no file.

    Files younger than the grace period may belong to an upload whose record is not
    written yet, so they are never orphans. ``kinto_storage`` is Kinto's storage backend.
    ``remover`` is the middleware's (its locks, its ``keep_old_files``: files it keeps are
    counted, never removed); without one, nothing is kept.
    """
    listener = listener or Listener()
    report = Report(dry_run=dry_run)
    cutoff = (time.time() if now is None else now) - grace_seconds
    started = time.time()
    remover = remover or FileRemover(storage, ProcessLocks(timeout_seconds=60))
    with tempfile.TemporaryDirectory(prefix="kinto-attachment-gc-") as folder:
        database = sqlite3.connect(os.path.join(folder, "gc.sqlite"))
        try:
            _create_tables(database)
            # Records first: a file stored after they were read is too young to be an orphan.
            _load_refs(database, kinto_storage, storage, page_size, report)
            _load_files(database, storage, report)
            # Kinto's clock is its database's: allow for a difference.
            since_ms = int((started - CLOCK_MARGIN_SECONDS) * 1000)
            recent = _RecentReferences(kinto_storage, storage, page_size, since_ms)
            orphans = _Orphans(remover, started, cutoff, dry_run, listener, report)
            orphans.remove(_candidates(database, cutoff), recent)
            _list_dangling(database, storage, listener, report)
        finally:
            database.close()
    for info in storage.sweep_leftovers(cutoff, dry_run=dry_run):
        report.leftovers += 1
        report.leftover_bytes += info.size
        listener.leftover(info)
    return report


def _create_tables(database: sqlite3.Connection) -> None:
    database.executescript(
        """
        PRAGMA journal_mode = OFF;
        PRAGMA synchronous = OFF;
        CREATE TABLE refs (
            key TEXT NOT NULL, record TEXT NOT NULL, location TEXT NOT NULL,
            foreign_location INTEGER NOT NULL
        );
        CREATE TABLE files (key TEXT PRIMARY KEY, size INTEGER, modified REAL);
        """
    )


def _load_refs(database, kinto_storage, storage: Storage, page_size: int, report: Report):
    def rows():
        for record_uri, attachment in iter_attachments(kinto_storage, page_size):
            report.records += 1
            location = attachment.get("location")
            if not isinstance(location, str):
                report.outside += 1
                continue
            key = key_for(storage, location)
            if key is not None:
                yield key, record_uri, location, 0
                continue
            # Another storage, or this one under a former base_url (http before https, an
            # old CDN host): whichever stored file its path ends with stays.
            report.outside += 1
            for tail in _tail_keys(location):
                yield tail, record_uri, location, 1

    _insert_all(database, "INSERT INTO refs VALUES (?, ?, ?, ?)", rows())
    database.execute("CREATE INDEX refs_key ON refs (key)")


def _tail_keys(location: str) -> list[str]:
    """``a/b/c.txt``, ``b/c.txt``, ``c.txt`` for ``https://old.example/a/b/c.txt``."""
    path = urlsplit(location).path if "://" in location else location
    parts = [part for part in path.split("/") if part]
    return ["/".join(parts[start:]) for start in range(len(parts))]


def _load_files(database, storage: Storage, report: Report) -> None:
    def rows():
        for info in storage.scan():
            report.files += 1
            yield info.key, info.size, info.modified

    _insert_all(database, "INSERT OR REPLACE INTO files VALUES (?, ?, ?)", rows())


def _insert_all(database, statement: str, rows: Iterable[tuple]) -> None:
    """Insert a batch at a time: memory holds one batch whatever the total."""
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) >= _INSERT_BATCH:
            database.executemany(statement, batch)
            batch.clear()
    database.executemany(statement, batch)


def _candidates(database, cutoff: float) -> Iterator[StoredFileInfo]:
    """Stored files older than ``cutoff`` that no record read references."""
    rows = database.execute(
        "SELECT key, size, modified FROM files WHERE modified < ?"
        " AND NOT EXISTS (SELECT 1 FROM refs WHERE refs.key = files.key) ORDER BY key",
        (cutoff,),
    )
    for key, size, modified in rows:
        yield StoredFileInfo(key, size, modified)


@dataclass
class _Orphans:
    """Hands each orphan to the deletion rule, as request code does, and counts."""

    remover: FileRemover
    started: float
    cutoff: float
    dry_run: bool
    listener: Listener
    report: Report

    def remove(self, candidates: Iterable[StoredFileInfo], recent: _RecentReferences) -> None:
        report = self.report
        for info in candidates:
            if info.key in recent:
                continue
            # A copy accepted since the scan began has noted it beside the file.
            removal = Removal(info.key, planned_at=self.started, written_before=self.cutoff)
            verdict = self.remover.remove(removal, dry_run=self.dry_run)
            if verdict is Verdict.REFERENCED_AGAIN:
                continue
            if verdict is Verdict.KEPT_BY_SETTING:
                report.kept += 1
                continue
            if verdict is Verdict.UNCHECKED:
                report.failures += 1
                continue
            report.orphans += 1
            report.orphan_bytes += info.size
            self.listener.orphan(info)
            if verdict is Verdict.FAILED:
                report.failures += 1
            elif verdict is Verdict.REMOVED:
                report.removed += 1
                report.removed_bytes += info.size


class _RecentReferences:
    """The files referenced by records changed since the scan began, read once, when the
    first orphan candidate shows up.

    The scan is not a snapshot: while it ran, a record already read may have been given
    a copy of an attachment that a record read later dropped. Those records were changed
    after the scan began, so reading them again closes the gap; they are few, being only
    the writes of the last minutes, so the cost does not grow with the database.
    """

    def __init__(self, kinto_storage, storage: Storage, page_size: int, since_ms: int):
        self.kinto_storage, self.storage = kinto_storage, storage
        self.page_size, self.since_ms = page_size, since_ms
        self._keys: set[str] | None = None

    def __contains__(self, key: str) -> bool:
        if self._keys is None:
            changed = iter_attachments(self.kinto_storage, self.page_size, self.since_ms)
            locations = (attachment.get("location") for _, attachment in changed)
            self._keys = {key_for(self.storage, location) for location in locations}
        return key in self._keys


def _list_dangling(database, storage: Storage, listener: Listener, report: Report) -> None:
    dangling = database.execute(
        "SELECT record, location, key FROM refs"
        " WHERE foreign_location = 0"
        " AND NOT EXISTS (SELECT 1 FROM files WHERE files.key = refs.key) ORDER BY record"
    )
    for record_uri, location, key in dangling:
        if storage.exists(key):
            continue  # stored after the scan of files
        report.dangling += 1
        listener.dangling(record_uri, location)
