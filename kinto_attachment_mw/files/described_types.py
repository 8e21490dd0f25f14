"""The type a client writes into a record's ``attachment.mimetype``.

Downloads are served with it, so a record may not describe a file as something
browsers render or run (HTML, SVG, any XML, scripts, PDF, ``multipart/*``: see
:mod:`..protocol.media_types`) unless the file was stored with that type: a copy of an
SVG's attachment keeps ``image/svg+xml``, a PNG cannot be relabelled ``text/html``.
Control characters (a header split in whoever serves the type) and overlong values are
refused whatever the file; an unchanged description of the record's own file passes
otherwise, so that records written before these rules can still be edited.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Callable

from ..protocol import errors, media_types

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_FIELD = "attachment.mimetype"


def check_described_type(new: dict, unchanged: bool, own_type: Callable[[], str | None]) -> None:
    """Refuse (400) the ``mimetype`` of ``new``, an ``attachment`` a client writes.

    ``unchanged``: ``new`` describes the record's current file with the current type.
    ``own_type()``: the type the described file was stored with, if known; only asked
    for a type browsers render or run."""
    if "mimetype" not in new:
        return
    value = new["mimetype"]
    if not isinstance(value, str):
        raise _refused("must be a string")
    if _CONTROL.search(value):
        raise _refused("control characters (CR, LF, NUL...) are not allowed")
    if len(value) > media_types.MAX_LENGTH:
        raise _refused(f"at most {media_types.MAX_LENGTH} characters")
    if unchanged:
        return
    parsed = media_types.parse(value)
    if parsed is None:
        raise _refused(f"{value!r} is not a media type (type/subtype; name=value)")
    if parsed.active and not _is_own(parsed, own_type()):
        raise _refused(
            f"{parsed.essence} is a type browsers render or run: a record can describe a "
            "file with it only when the file was stored with it"
        )


def type_of_name(key: str) -> str | None:
    """What a stored file's name says it is: the type of files stored before their
    type was kept beside them."""
    guessed, encoding = mimetypes.guess_type(key, strict=False)
    if encoding:
        return "application/x-gzip" if encoding == "gzip" else None
    return guessed


def _is_own(described: media_types.MediaType, own: str | None) -> bool:
    stored = media_types.parse(own)
    return stored is not None and stored.essence == described.essence


def _refused(reason: str) -> errors.AttachmentError:
    return errors.attachment_tampered(f"{_FIELD}: {reason}.")
