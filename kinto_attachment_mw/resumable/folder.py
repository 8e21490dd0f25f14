"""The spool's folder and its files, trusted only when they are the service's own.

The spool may sit in a shared place (``$TMPDIR``): a folder that someone else owns, or
may write to, lets them swap an upload's file for a link to any other file, which the
service would then read into an attachment or append to. So the folder must be owned by
the service's user and closed to group and others (checked at start-up and whenever it
is created again), files are created new (``O_EXCL``, mode 0600), and every open refuses
a symbolic link (``O_NOFOLLOW``) or anything but a plain file with one name.
"""

from __future__ import annotations

import errno
import os
import stat

from ..config.values import ConfigurationError
from ..storage import StorageUnavailable

SETTING = "kinto.attachment.resumable.spool_path"
_NOFOLLOW = os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


class UnsafeSpoolFile(StorageUnavailable):
    """A spool file is a link, or not a plain file: refused, never followed."""


def folder_problem(path: str) -> str | None:
    """What makes an existing folder unfit for the spool, ``None`` when it is fit."""
    info = os.stat(path)
    if not stat.S_ISDIR(info.st_mode):
        return "it is not a folder"
    if info.st_uid != os.geteuid():
        return f"it is owned by uid {info.st_uid}, not by this service's user (uid {os.geteuid()})"
    if info.st_mode & 0o022:
        return f"group or others may write to it (mode {stat.S_IMODE(info.st_mode):04o})"
    return None


def check_folder(path: str) -> None:
    """At start-up: create the spool folder (mode 0700), or refuse an existing one that is
    not the service's own."""
    try:
        _create(path)
        problem = folder_problem(path)
    except OSError as error:
        raise ConfigurationError(f"{SETTING}: cannot create {path!r}: {error}") from None
    if problem is not None:
        raise ConfigurationError(
            f"{SETTING}: {path!r} cannot hold unfinished uploads safely: {problem}. "
            "Give it to this service's user with mode 0700 (chown, chmod 700), "
            "or choose a folder of its own."
        )


def make_folder(path: str) -> None:
    """The folder, created with mode 0700 when missing (again, after a cleaner removed
    it); :class:`UnsafeSpoolFile` when it is someone else's or writable by others."""
    _create(path)
    problem = folder_problem(path)
    if problem is not None:
        raise UnsafeSpoolFile(f"spool folder {path!r}: {problem}")


def _create(path: str) -> None:
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.mkdir(path, 0o700)


def open_new(path: str) -> int:
    """A new file, ours alone: fails when anything (a link included) has that name."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)


def open_existing(path: str, flags: int) -> int:
    """An existing plain file of the spool, never through a link (``FileNotFoundError``
    when it is missing)."""
    try:
        fd = os.open(path, flags | _NOFOLLOW | os.O_NONBLOCK)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise UnsafeSpoolFile(f"{path} is a symbolic link: refused") from error
        raise
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        os.close(fd)
        raise UnsafeSpoolFile(f"{path} is not a plain file of the spool: refused")
    return fd


def file_size(path: str) -> int:
    """Size of a plain file of the spool (``FileNotFoundError`` when it is missing), a
    link refused."""
    info = os.lstat(path)
    if not stat.S_ISREG(info.st_mode):
        raise UnsafeSpoolFile(f"{path} is not a plain file of the spool: refused")
    return info.st_size
