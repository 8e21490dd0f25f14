"""The storage interface every backend implements.

Request code writes a file through a :class:`FileWriter` (write chunks, then commit or
abort) and later deletes it by key. Backends translate their library's errors into
:class:`~kinto_attachment_mw.errors.StorageUnavailable`.
"""

from __future__ import annotations

import abc
from urllib.parse import urljoin


class FileWriter(abc.ABC):
    """A file being stored. Invisible to readers until :meth:`commit`."""

    @abc.abstractmethod
    def write(self, chunk: bytes) -> None: ...

    @abc.abstractmethod
    def commit(self) -> str:
        """Make the file visible; return its final key (never overwrites another file)."""

    @abc.abstractmethod
    def abort(self) -> None:
        """Drop everything written so far. Safe to call more than once, or after commit."""


class Storage(abc.ABC):
    """Where attachment files live. Keys are relative, ``/``-separated paths."""

    def __init__(self, base_url: str = ""):
        self.base_url = base_url

    @abc.abstractmethod
    def open_writer(self, key: str, content_type: str) -> FileWriter:
        """Start storing a file under ``key`` (or a free variant of it)."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove a stored file; a missing file is not an error."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool: ...

    def url(self, key: str) -> str:
        """The ``location`` recorded for ``key``."""
        return urljoin(self.base_url, key) if self.base_url else key

    def key_for(self, location: str) -> str | None:
        """The key behind a ``location`` this storage produced, else ``None``."""
        if self.base_url:
            if not location.startswith(self.base_url):
                return None
            location = location[len(self.base_url) :]
        if not location or "://" in location:
            return None
        return location.lstrip("/")
