"""Stored names are built by the project, never taken from the client as they are.

The client's filename and the ids in the URL only ever contribute sanitised ASCII
segments; the storage backend still checks the final key stays under its root.
"""

from __future__ import annotations

import mimetypes
import posixpath
import re
import unicodedata
import uuid
from datetime import datetime, timezone

from ..config import Policy
from ..protocol import media_types
from ..storage.base import private_key

_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9_.-]")
_MAX_SEGMENT = 120


def client_filename(raw: str) -> str:
    """The name the client sent, without any directory part or control characters."""
    name = raw.replace("\\", "/").rsplit("/", 1)[-1]
    return "".join(ch for ch in name if ch >= " " and ch != "\x7f").strip()


def extension_of(filename: str) -> str:
    """``.ext`` of a filename, lower-cased ('' when there is none)."""
    return posixpath.splitext(filename)[1].lower()


def _ascii_word(value: str) -> str:
    ascii_value = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
    return _UNSAFE_CHARS.sub("", "_".join(ascii_value.split()))


def safe_segment(value: str, fallback: str = "file") -> str:
    """One ASCII path segment: no separators, no leading dots, bounded length.

    Stem and extension are cleaned apart, so ``日本.txt`` keeps its ``.txt``.
    """
    stem, extension = posixpath.splitext(value)
    extension = _ascii_word(extension.lstrip("."))[:16].strip("._")
    suffix = f".{extension}" if extension else ""
    stem = _ascii_word(stem).strip("._")[: _MAX_SEGMENT - len(suffix)] or fallback
    return stem + suffix


def mimetype_for(filename: str, part_type: str | None, policy: Policy) -> str:
    """Configured override, else the part's Content-Type (normalized; ignored when it is
    no media type), else a guess from the name."""
    override = policy.mimetypes.get(extension_of(filename))
    if override:
        return override
    declared = media_types.parse(part_type)
    if declared is not None and declared.essence != "application/octet-stream":
        return declared.normalized()
    guessed, encoding = mimetypes.guess_type(filename, strict=False)
    if encoding:
        return "application/x-gzip" if encoding == "gzip" else "application/octet-stream"
    return guessed or "application/octet-stream"


def stored_key(
    filename: str,
    policy: Policy,
    bucket_id: str,
    collection_id: str,
    record_id: str,
    now: datetime | None = None,
) -> str:
    """The relative key a new upload is stored under (``folder/name``; a private
    resource's under the private folder: ``_private/folder/name``)."""
    name = safe_segment(filename)
    if policy.randomize:
        name = str(uuid.uuid4()) + extension_of(name)
    moment = now or datetime.now(timezone.utc)
    name = policy.filename_pattern.format(
        filename=name,
        datetime=moment.strftime("%Y%m%d%H%M%S"),
        rid=safe_segment(record_id, "record"),
    )
    name = safe_segment(name)
    folder = policy.folder.format(
        bucket_id=safe_segment(bucket_id, "bucket"),
        collection_id=safe_segment(collection_id, "collection"),
        record_id=safe_segment(record_id, "record"),
    )
    segments = [safe_segment(part) for part in folder.split("/") if part.strip("./ ")]
    key = "/".join([*segments, name])
    return private_key(key) if policy.private else key
