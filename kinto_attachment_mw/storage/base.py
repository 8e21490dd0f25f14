"""The storage interface every backend implements.

Request code writes a file through a :class:`FileWriter` (write chunks, then commit or
abort) and later deletes it by key. Backends translate their library's errors into
:class:`StorageUnavailable`. A new backend subclasses :class:`Storage` and joins the
contract tests (``tests/storage/test_contract.py``).
"""

from __future__ import annotations

import abc
import posixpath
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urljoin

from .metadata import StoredFileMetadata


class StorageUnavailable(Exception):
    """The storage backend failed (disk full, permission denied, unreachable service)."""


#: How many free variants of a key a backend tries before giving up.
MAX_NAME_ATTEMPTS = 100


def candidate_keys(key: str, attempts: int = MAX_NAME_ATTEMPTS) -> Iterator[str]:
    """``key``, then ``stem-1.ext``, ``stem-2.ext``...: the names a backend tries, in
    order, so that a new file never overwrites another."""
    stem, extension = posixpath.splitext(key)
    yield key
    for attempt in range(1, attempts):
        yield f"{stem}-{attempt}{extension}"


def is_hidden(key: str) -> bool:
    """Whether a key is one of the storage's own (metadata, temporary files, heartbeat
    probes): any segment starting with ``.``. Such a key is never an attachment."""
    return any(segment.startswith(".") for segment in key.split("/"))


#: Where private files are stored: one prefix that public paths (nginx, a CDN, a bucket
#: policy) leave out. Stored names never start with ``_`` (see ``upload/naming.py``).
PRIVATE_FOLDER = "_private"


def private_key(key: str) -> str:
    """Where the private copy of a public file's ``key`` goes."""
    return key if is_private_key(key) else f"{PRIVATE_FOLDER}/{key}"


def public_key(key: str) -> str:
    """Where the public copy of a private file's ``key`` goes."""
    return key[len(PRIVATE_FOLDER) + 1 :] if is_private_key(key) else key


def is_private_key(key: str) -> bool:
    """Whether ``key`` is in the private folder, however cased (a case-insensitive disk
    would find ``_PRIVATE/...`` there; no stored name starts with ``_`` otherwise)."""
    return key.casefold().startswith(PRIVATE_FOLDER + "/")


def is_attachment_key(key: str) -> bool:
    """Whether ``key`` may name an attachment: relative, no empty segment (a folder), not
    hidden (metadata, temporary files)."""
    if not key or "://" in key or key.startswith("/"):
        return False
    return all(key.split("/")) and not is_hidden(key)


@dataclass(frozen=True)
class StoredFileInfo:
    """What a listing tells of a stored file, without reading it."""

    key: str
    size: int
    modified: float  # seconds since the epoch


class FileWriter(abc.ABC):
    """A file being stored. Invisible to readers until :meth:`commit`."""

    @abc.abstractmethod
    def write(self, chunk: bytes) -> None: ...

    @abc.abstractmethod
    def commit(self, metadata: StoredFileMetadata) -> str:
        """Make the file visible; return its final key (never overwrites another file).

        ``metadata`` (owner record, hash, size) is kept beside the file, so that checking
        who may remove it costs no read of the file itself.
        """

    @abc.abstractmethod
    def abort(self) -> None:
        """Drop everything written so far. Safe to call more than once, or after commit."""


def copy_through(
    storage: Storage,
    chunks: Iterator[bytes],
    new_key: str,
    content_type: str | None,
    metadata: StoredFileMetadata,
) -> str:
    """A copy written as an upload is, from ``chunks`` of the source (see
    :meth:`Storage.copy`)."""
    writer = storage.open_writer(
        new_key, content_type or "application/octet-stream", private=metadata.private
    )
    try:
        for chunk in chunks:
            writer.write(chunk)
        return writer.commit(metadata)
    finally:
        writer.abort()


class Storage(abc.ABC):
    """Where attachment files live. Keys are relative, ``/``-separated paths."""

    #: How much of a request body is read at once on its way here. Larger reads cost
    #: less CPU per byte; the server holds a few reads' worth of copies meanwhile.
    upload_read_size = 1024 * 1024

    def __init__(self, base_url: str = ""):
        self.base_url = base_url

    @abc.abstractmethod
    def open_writer(
        self, key: str, content_type: str, size_hint: int | None = None, *, private: bool = False
    ) -> FileWriter:
        """Start storing a file under ``key`` (or a free variant of it).

        ``size_hint``, when known, is an upper bound of the file's size (the request's
        Content-Length, the size limit): a backend that sends files in parts picks a part
        size from it. Writing more than that is not refused by the writer. A ``private``
        file gets no public ACL (S3, GCS).
        """

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove a stored file; a missing file is not an error."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool: ...

    @abc.abstractmethod
    def metadata(self, key: str) -> StoredFileMetadata | None:
        """What :meth:`FileWriter.commit` kept beside the file; ``None`` when unknown
        (a file stored by something else, such as the older plugin, or no file). Raises
        :class:`StorageUnavailable` when the storage cannot answer: that is not "unknown"."""

    @abc.abstractmethod
    def stat(self, key: str) -> StoredFileInfo | None:
        """Size and age of a stored file, ``None`` when there is none."""

    @abc.abstractmethod
    def update_metadata(
        self, key: str, change: Callable[[StoredFileMetadata], StoredFileMetadata]
    ) -> None:
        """Replace what :meth:`FileWriter.commit` kept beside the file with
        ``change(current)``, never undoing a concurrent update. No-op for a file without
        metadata, or no file."""

    def note_reference(self, key: str, shared: bool) -> None:
        """A record was just given this file: note when (``referenced_at``), and that
        other records reference it too (``shared``) when that record is not its owner.
        Request code never removes a shared file; neither request code nor garbage
        collection removes a file referenced after they planned to."""
        moment = time.time()
        self.update_metadata(key, lambda metadata: metadata.referenced(moment, shared))

    @abc.abstractmethod
    def copy(self, key: str, new_key: str, metadata: StoredFileMetadata) -> str:
        """Store a copy of ``key`` under ``new_key`` (or a free variant of it, never
        overwriting), with ``metadata`` and the ACL it calls for; return its final key."""

    @abc.abstractmethod
    def scan(self) -> Iterator[StoredFileInfo]:
        """Every stored file, in no particular order, streamed (never a full list in
        memory). Metadata and the leftovers of unfinished uploads are not files."""

    @abc.abstractmethod
    def sweep_leftovers(self, older_than: float, dry_run: bool = False) -> Iterator[StoredFileInfo]:
        """Remove (unless ``dry_run``) what unfinished uploads left behind before
        ``older_than`` (epoch seconds): temporary files, metadata without its file,
        pending multipart uploads. Yields each one."""

    def download_url(
        self, key: str, content_type: str, disposition: str, expires_seconds: int
    ) -> str | None:
        """A URL that serves ``key`` for ``expires_seconds`` to whoever holds it, with
        these ``Content-Type`` and ``Content-Disposition`` (a presigned URL); ``None``
        when the middleware serves the bytes itself (local storage)."""
        return None

    @property
    def location_prefix(self) -> str:
        """What :meth:`url` puts before a key: ``base_url`` up to its last ``/``, as
        ``urljoin`` reads it (the plugin's behaviour, kept for identical locations)."""
        return urljoin(self.base_url, "x")[:-1] if self.base_url else ""

    def url(self, key: str) -> str:
        """The ``location`` recorded for ``key``."""
        return self.location_prefix + key

    def key_for(self, location: str) -> str | None:
        """The key behind a ``location`` this storage produced, else ``None``."""
        prefix = self.location_prefix
        if not location.startswith(prefix):
            return None
        key = location[len(prefix) :]
        return key if is_attachment_key(key) else None
