"""Local disk storage: files under ``base_path``, written to a temporary name and linked
into place, so readers never see half a file and an existing file is never overwritten."""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import stat
import uuid
from collections.abc import Callable, Iterator

from .base import (
    FileWriter,
    Storage,
    StorageUnavailable,
    StoredFileInfo,
    candidate_keys,
    copy_through,
    is_hidden,
)
from .local_modes import LocalModes
from .metadata import StoredFileMetadata

logger = logging.getLogger(__name__)

#: Each stored file ``name`` has its metadata in ``.name.meta`` beside it. A stored name
#: never starts with a dot, so temporary files, which start with two, can never be taken
#: for metadata, nor metadata for a temporary file (``.upload-report.txt.meta`` is the
#: metadata of ``upload-report.txt``).
TEMP_PREFIX = "..upload-"
META_SUFFIX = ".meta"
_COPY_BLOCK = 1024 * 1024
_MAX_FOLDER_ATTEMPTS = 100  # a folder is pruned by deletes only while empty


class UnsafePath(ValueError):
    """A key that would resolve outside the storage root."""


class LocalStorage(Storage):
    def __init__(self, base_path: str, base_url: str = "", private_gid: int | None = None):
        super().__init__(base_url)
        self.base_path = os.path.realpath(base_path)
        self.modes = LocalModes(private_gid)

    def ensure_root(self) -> None:
        try:
            os.makedirs(self.base_path, exist_ok=True)
        except OSError as error:
            raise StorageUnavailable(f"cannot create {self.base_path}: {error}") from error

    def path_of(self, key: str) -> str:
        """The absolute path of ``key``; raises :class:`UnsafePath` outside the root."""
        if "\x00" in key or "\\" in key or key.startswith("/"):
            raise UnsafePath(key)
        parts = key.split("/")
        if any(part in ("", ".", "..") for part in parts):
            raise UnsafePath(key)
        path = os.path.realpath(os.path.join(self.base_path, *parts))
        if os.path.commonpath([path, self.base_path]) != self.base_path or path == self.base_path:
            raise UnsafePath(key)
        return path

    def open_writer(
        self, key: str, content_type: str, size_hint: int | None = None, *, private: bool = False
    ) -> FileWriter:
        path = self.path_of(key)
        for _ in range(_MAX_FOLDER_ATTEMPTS):
            try:
                self.modes.make_folders(self.base_path, os.path.dirname(path), private)
                return _LocalWriter(self, key, path, private)
            except (FileNotFoundError, FileExistsError):
                continue  # another request pruned the folder meanwhile: make it again
            except OSError as error:
                raise StorageUnavailable(f"cannot write {key}: {error}") from error
        raise StorageUnavailable(f"cannot write {key}: its folder keeps vanishing")

    def prune_empty_folders(self, path: str) -> None:
        """Remove the folders above ``path`` that are left empty, up to the root."""
        folder = os.path.dirname(path)
        while folder != self.base_path and folder.startswith(self.base_path + os.sep):
            try:
                os.rmdir(folder)
            except OSError:  # not empty, or already gone: either way, done
                return
            folder = os.path.dirname(folder)

    def delete(self, key: str) -> None:
        try:
            path = self.path_of(key)
            for doomed in (path, _meta_path(path)):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(doomed)
        except (OSError, UnsafePath) as error:
            raise StorageUnavailable(f"cannot delete {key}: {error}") from error
        self.prune_empty_folders(path)

    def exists(self, key: str) -> bool:
        try:
            return os.path.isfile(self.path_of(key))
        except UnsafePath:
            return False

    def metadata(self, key: str) -> StoredFileMetadata | None:
        """A sidecar is a regular file this storage wrote: anything else found in its
        place (a folder, a symlink, a named pipe, JSON nested past the recursion limit)
        is no metadata, never followed, waited on or taken for a failing disk."""
        try:
            fd = os.open(_meta_path(self.path_of(key)), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            with open(fd, encoding="utf-8") as sidecar:
                if not stat.S_ISREG(os.fstat(sidecar.fileno()).st_mode):
                    return None
                value = json.load(sidecar)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError, UnsafePath):
            return None
        except (ValueError, RecursionError):  # not JSON, or nested past the limit
            return None
        except OSError as error:
            if error.errno == errno.ELOOP:
                return None  # a symlink
            # A disk that fails must not pass for "no metadata".
            raise StorageUnavailable(f"cannot read the metadata of {key}: {error}") from error
        return StoredFileMetadata.from_dict(value)

    def stat(self, key: str) -> StoredFileInfo | None:
        try:
            status = os.stat(self.path_of(key))
        except (OSError, UnsafePath):
            return None
        if not stat.S_ISREG(status.st_mode):
            return None  # a folder is not a stored file
        return StoredFileInfo(key, status.st_size, status.st_mtime)

    def update_metadata(
        self, key: str, change: Callable[[StoredFileMetadata], StoredFileMetadata]
    ) -> None:
        """Callers hold the file's lock: no other update runs meanwhile."""
        metadata = self.metadata(key)
        if metadata is None:
            return
        meta_path = _meta_path(self.path_of(key))
        temp_path = os.path.join(
            os.path.dirname(meta_path), f"{TEMP_PREFIX}{uuid.uuid4().hex}{META_SUFFIX}"
        )
        try:
            fd = self.modes.create_file(temp_path, metadata.private)
            with open(fd, "w", encoding="utf-8") as sidecar:
                json.dump(change(metadata).to_dict(), sidecar)
            os.replace(temp_path, meta_path)
        except OSError as error:
            with contextlib.suppress(OSError):
                os.unlink(temp_path)
            raise StorageUnavailable(f"cannot update the metadata of {key}: {error}") from error

    def copy(self, key: str, new_key: str, metadata: StoredFileMetadata) -> str:
        """Through a writer, as an upload: a temporary file renamed into place."""
        try:
            with open(self.path_of(key), "rb") as source:
                chunks = iter(lambda: source.read(_COPY_BLOCK), b"")
                return copy_through(self, chunks, new_key, None, metadata)
        except OSError as error:
            raise StorageUnavailable(f"cannot copy {key}: {error}") from error

    def scan(self) -> Iterator[StoredFileInfo]:
        for entry, status in self._files():
            key = self._key_of(entry.path)
            if not is_hidden(key):
                yield StoredFileInfo(key, status.st_size, status.st_mtime)

    def sweep_leftovers(self, older_than: float, dry_run: bool = False) -> Iterator[StoredFileInfo]:
        """Temporary files, metadata whose file is gone, heartbeat probes: every hidden
        file that is not the metadata of a stored file."""
        for entry, status in self._files():
            if not entry.name.startswith(".") or status.st_mtime >= older_than:
                continue
            stored_name = _file_of_meta(entry.name)
            if stored_name and os.path.isfile(
                os.path.join(os.path.dirname(entry.path), stored_name)
            ):
                continue
            if not dry_run:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                self.prune_empty_folders(entry.path)
            yield StoredFileInfo(self._key_of(entry.path), status.st_size, status.st_mtime)

    def _files(self) -> Iterator[tuple[os.DirEntry, os.stat_result]]:
        """Every regular file under the root, streamed folder by folder (a folder of a
        million files is never listed whole); symlinks are not followed. A folder that
        cannot be read raises :class:`StorageUnavailable`."""
        folders = [self.base_path]
        while folders:
            try:
                with os.scandir(folders.pop()) as entries:
                    for entry in entries:
                        try:
                            if entry.is_dir(follow_symlinks=False):
                                folders.append(entry.path)
                            elif entry.is_file(follow_symlinks=False):
                                yield entry, entry.stat(follow_symlinks=False)
                        except FileNotFoundError:
                            continue  # removed meanwhile
            except FileNotFoundError:
                continue  # a folder pruned meanwhile
            except OSError as error:  # unreadable: not the same as "no files"
                raise StorageUnavailable(f"cannot list {self.base_path}: {error}") from error

    def _key_of(self, path: str) -> str:
        return os.path.relpath(path, self.base_path).replace(os.sep, "/")


def _file_of_meta(name: str) -> str | None:
    """``name`` for a metadata file ``.name.meta`` (not a temporary one), else ``None``."""
    if name.startswith(TEMP_PREFIX) or not name.endswith(META_SUFFIX):
        return None
    return name[1 : -len(META_SUFFIX)] or None


def _meta_path(path: str) -> str:
    folder, name = os.path.split(path)
    return os.path.join(folder, f".{name}{META_SUFFIX}")


class _LocalWriter(FileWriter):
    def __init__(self, storage: LocalStorage, key: str, path: str, private: bool):
        self._storage = storage
        self._private = private
        self._key = key
        self._path = path
        folder = os.path.dirname(path)
        self._temp_path = os.path.join(folder, f"{TEMP_PREFIX}{uuid.uuid4().hex}")
        self._temp_meta_path = self._temp_path + META_SUFFIX
        fd = storage.modes.create_file(self._temp_path, private)
        self._file = open(fd, "wb")  # noqa: SIM115 (closed in commit/abort)

    def write(self, chunk: bytes) -> None:
        try:
            self._file.write(chunk)
        except OSError as error:
            self.abort()
            raise StorageUnavailable(f"cannot write {self._key}: {error}") from error

    def commit(self, metadata: StoredFileMetadata) -> str:
        try:
            self._file.close()
            fd = self._storage.modes.create_file(self._temp_meta_path, self._private)
            with open(fd, "w", encoding="utf-8") as sidecar:
                json.dump(metadata.to_dict(), sidecar)
            key = self._link_into_place()
        except OSError as error:
            self.abort()
            raise StorageUnavailable(f"cannot store {self._key}: {error}") from error
        self._remove_temps()
        return key

    def _link_into_place(self) -> str:
        """Claim the first free name with the metadata, then give it the file.

        Both are hard links, atomic and never overwriting. Should the process die between
        the two, a sidecar is left without its file, never a file without its sidecar.
        """
        for key in candidate_keys(self._key):
            path = self._storage.path_of(key)
            meta_path = _meta_path(path)
            try:
                os.link(self._temp_meta_path, meta_path)
            except FileExistsError:
                continue
            try:
                os.link(self._temp_path, path)
            except BaseException as error:
                os.unlink(meta_path)
                if isinstance(error, FileExistsError):
                    continue  # a file stored by something else, without metadata
                raise
            return key
        raise OSError(errno.EEXIST, f"no free name for {self._key}")

    def abort(self) -> None:
        if not self._file.closed:
            self._file.close()
        self._remove_temps()

    def _remove_temps(self) -> None:
        for temp_path in (self._temp_path, self._temp_meta_path):
            try:
                os.unlink(temp_path)
            except FileNotFoundError:
                pass
            except OSError as error:  # pragma: no cover - disk-level failure
                logger.warning("Could not remove temporary file %s: %s", temp_path, error)
        self._storage.prune_empty_folders(self._temp_path)
