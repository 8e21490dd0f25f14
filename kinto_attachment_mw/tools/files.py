"""Local file work done in blocks, so memory stays flat for any file size."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

BLOCK = 1024 * 1024


def sha256_of(path: Path) -> tuple[str, int]:
    """SHA-256 hex digest and size of a file."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as source:
        while block := source.read(BLOCK):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def gzip_to_temp(path: Path) -> Path:
    """Compress ``path`` into a new temporary file; the caller removes it.

    ``mtime=0`` and no name in the header: the same input gives the same bytes.
    """
    handle, name = tempfile.mkstemp(suffix=".gz")
    with (
        os.fdopen(handle, "wb") as raw,
        open(path, "rb") as source,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as out,
    ):
        shutil.copyfileobj(source, out, BLOCK)
    return Path(name)


@contextlib.contextmanager
def temp_beside(target: Path) -> Iterator[Path]:
    """A hidden temporary path next to ``target``, removed unless renamed away.

    It gets the mode any new file gets (``0666`` less the umask), not ``mkstemp``'s
    ``0600``: once renamed, it is an ordinary downloaded file."""
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.fchmod(handle, 0o666 & ~_umask())
    os.close(handle)
    path = Path(name)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def gunzip_hashing(source: Path, target: Path) -> tuple[str, int]:
    """Decompress ``source`` into ``target``; SHA-256 and size of what was written."""
    digest = hashlib.sha256()
    size = 0
    with gzip.open(source, "rb") as unzipped, open(target, "wb") as out:
        while block := unzipped.read(BLOCK):
            digest.update(block)
            size += len(block)
            out.write(block)
    return digest.hexdigest(), size


def write_hashing(
    chunks: Iterator[bytes], target: Path, on_block: Callable[[int], None]
) -> tuple[str, int]:
    """Write ``chunks`` to ``target``; SHA-256 and size of what was written."""
    digest = hashlib.sha256()
    size = 0
    with open(target, "wb") as out:
        for block in chunks:
            digest.update(block)
            size += len(block)
            out.write(block)
            on_block(len(block))
    return digest.hexdigest(), size
