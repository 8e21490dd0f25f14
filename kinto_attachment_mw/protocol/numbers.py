"""Numbers in headers (``Content-Length``, tus' ``Upload-Length`` and ``Upload-Offset``):
ASCII digits only, at most 19 of them, so that every one fits a signed 64-bit offset.
``str.isdigit`` and ``int`` would take ``²``, ``٣``, ``+1`` or ``1_0``."""

from __future__ import annotations

import re

from . import errors
from .errors import Errno

_WHOLE_NUMBER = re.compile(r"[0-9]{1,19}")


def whole_number(raw: str) -> int | None:
    """The number ``raw`` spells (spaces and tabs around it allowed), ``None`` when it
    spells none."""
    text = raw.strip(" \t")
    return int(text) if _WHOLE_NUMBER.fullmatch(text) else None


def malformed_length(environ: dict) -> errors.AttachmentError | None:
    """A ``Content-Length`` that is no whole number: refused before anything reads the
    body or trusts its length (400, as an upload's own check answers). A whole number is
    written back as its digits alone (``" 12"`` becomes ``"12"``), so that every later
    reader of the length (the cap, the rate, Kinto) reads the same number."""
    raw = environ.get("CONTENT_LENGTH")
    if raw in (None, ""):
        return None
    length = whole_number(str(raw))
    if length is None:
        return errors.bad_request(Errno.INVALID_PARAMETERS, "Invalid Content-Length header")
    environ["CONTENT_LENGTH"] = str(length)
    return None
