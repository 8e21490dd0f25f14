"""Garbage collection: stored files no record references, records whose file is missing.

A crash between storing a file and updating its record, a failed delete, a client that
drops the ``attachment`` field: each leaves a file nobody references. This finds them
(and the reverse, records pointing at a missing file) by comparing both sides in full.

Both sides are streamed into a temporary SQLite database on disk and compared there with
SQL, so memory stays bounded at millions of records and files.

Records are read through Kinto's storage backend (``registry.storage``), not its HTTP
API: this runs as an operator's command next to Kinto, not on the request path, it must
see every record whatever the permissions, and it reads only records that have an
attachment, one page at a time.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from kinto.core.storage import Filter, Sort
from kinto.core.utils import COMPARISON

from . import errors
from .guard import file_lock
from .locks import ProcessLocks, RecordLocks
from .multipart import FILE_FIELD
from .releasing import CLOCK_MARGIN_SECONDS, referenced_since
from .storage import Storage
from .storage.base import StoredFileInfo

logger = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 1000
_INSERT_BATCH = 1000


@dataclass(frozen=True)
class _Scan:
    started: float  # seconds since the epoch, this host's clock
    locks: RecordLocks

    @property
    def since_ms(self) -> int:
        """Kinto's timestamp from which a record counts as changed during the scan (its
        clock is its database's: allow for a difference)."""
        return int((self.started - CLOCK_MARGIN_SECONDS) * 1000)


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
    kept: Callable[[str], bool] = lambda key: False,
    locks: RecordLocks | None = None,
) -> Report:
    """Remove (unless ``dry_run``) stored files that no record references and that are
    older than ``grace_seconds``; report records whose location has no file.

    Files younger than the grace period may belong to an upload whose record is not
    written yet, so they are never orphans. ``kinto_storage`` is Kinto's storage backend.
    ``kept(key)`` says which unreferenced files ``keep_old_files`` protects: they are
    counted, never removed. ``locks`` are the middleware's (files are removed under their
    lock, as request code removes them).
    """
    listener = listener or Listener()
    report = Report(dry_run=dry_run)
    cutoff = (time.time() if now is None else now) - grace_seconds
    scan = _Scan(time.time(), locks or ProcessLocks(timeout_seconds=60))
    with tempfile.TemporaryDirectory(prefix="kinto-attachment-gc-") as folder:
        database = sqlite3.connect(os.path.join(folder, "gc.sqlite"))
        try:
            _create_tables(database)
            # Records first: a file stored after they were read is too young to be an orphan.
            _load_refs(database, kinto_storage, storage, page_size, report)
            _load_files(database, storage, report)
            recent = _RecentReferences(kinto_storage, storage, page_size, scan.since_ms)
            _remove_orphans(
                database, storage, cutoff, dry_run, listener, report, kept, recent, scan
            )
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
            key = storage.key_for(location)
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


def _remove_orphans(database, storage, cutoff, dry_run, listener, report, kept, recent, scan):
    candidates = database.execute(
        "SELECT key, size, modified FROM files WHERE modified < ?"
        " AND NOT EXISTS (SELECT 1 FROM refs WHERE refs.key = files.key) ORDER BY key",
        (cutoff,),
    )
    for key, size, modified in candidates:
        if key in recent:
            continue
        # Under the file's lock, as request code removes files and accepts copies of them:
        # a copy accepted since the scan began has noted it beside the file.
        with scan.locks.hold(file_lock(key)):
            try:
                if referenced_since(storage.metadata(key), scan.started):
                    continue
                if kept(key):
                    report.kept += 1
                    continue
            except errors.StorageUnavailable as error:
                logger.error("Could not check orphan %s: %s", key, error)
                report.failures += 1
                continue
            _remove_orphan(
                storage, StoredFileInfo(key, size, modified), cutoff, dry_run, listener, report
            )


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
            self._keys = {
                self.storage.key_for(location)
                for location in locations
                if isinstance(location, str)
            }
        return key in self._keys


def _remove_orphan(storage, info: StoredFileInfo, cutoff, dry_run, listener, report) -> None:
    report.orphans += 1
    report.orphan_bytes += info.size
    listener.orphan(info)
    if dry_run:
        return
    current = storage.stat(info.key)
    if current is None or current.modified >= cutoff:
        return  # gone meanwhile, or replaced by a new upload under the same name
    try:
        storage.delete(info.key)
    except errors.StorageUnavailable as error:
        logger.error("Could not remove orphan %s: %s", info.key, error)
        report.failures += 1
        return
    report.removed += 1
    report.removed_bytes += info.size


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


def iter_attachments(
    kinto_storage, page_size: int, changed_since_ms: int | None = None
) -> Iterator[tuple[str, dict]]:
    """``(record URI, attachment)`` of every record that has one (and was changed after
    ``changed_since_ms``, when given), bucket by bucket, collection by collection, a page
    at a time."""
    for bucket in _paginate(kinto_storage, "bucket", "", page_size):
        bucket_uri = f"/buckets/{bucket['id']}"
        for collection in _paginate(kinto_storage, "collection", bucket_uri, page_size):
            collection_uri = f"{bucket_uri}/collections/{collection['id']}"
            filters = [Filter(FILE_FIELD, True, COMPARISON.HAS)]
            if changed_since_ms is not None:
                filters.append(Filter("last_modified", changed_since_ms, COMPARISON.GT))
            records = _paginate(kinto_storage, "record", collection_uri, page_size, filters)
            for record in records:
                attachment = record.get(FILE_FIELD)
                if isinstance(attachment, dict):  # null is stored by plain-JSON removals
                    yield f"{collection_uri}/records/{record['id']}", attachment


def _paginate(kinto_storage, resource_name, parent_id, page_size, filters=None) -> Iterator[dict]:
    """Objects under one parent, oldest first, by keyset on ``(last_modified, id)``.

    Oldest first: an object modified while this runs moves to the end and is read again,
    with its new attachment. Timestamps are unique under one parent in Kinto; the ``id``
    tie-break only makes that assumption unnecessary.
    """
    sorting = [Sort("last_modified", 1), Sort("id", 1)]
    after: list[list[Filter]] | None = None
    while True:
        page = kinto_storage.list_all(
            resource_name=resource_name,
            parent_id=parent_id,
            filters=filters,
            sorting=sorting,
            pagination_rules=after,
            limit=page_size,
        )
        if not page:  # not a short page: Kinto may cap pages below page_size
            return
        yield from page
        last = page[-1]
        after = [
            [Filter("last_modified", last["last_modified"], COMPARISON.GT)],
            [
                Filter("last_modified", last["last_modified"], COMPARISON.EQ),
                Filter("id", last["id"], COMPARISON.GT),
            ],
        ]
