"""What a file is, from its first bytes, against what its name says.

A name is the client's word; served from the attachments' domain, a file is what a
browser makes of its bytes and its type. An HTML page, an SVG or an archive named
``photo.png`` is refused before anything is stored. A harmless mismatch (a PNG named
``.jpg``, an image named ``.txt``) is stored with the type its content shows, and a type
the client declared that would make a browser render or run the file (``text/html`` on
``notes.txt``) is only taken when the name says nothing of the content (``.bin``) and the
content bears it out: ``notes.txt`` stays text, whatever it holds. Types are compared by
what they are (``TEXT/HTML; charset=utf-8`` is ``text/html``), and stored normalized.

Markup is recognised as browsers sniff it (the WHATWG MIME Sniffing patterns); binary
formats by their magic numbers, with ``filetype``. JavaScript has no signature: a script
named ``.png`` is stored as an image, which browsers refuse to run (strict MIME type
checking for scripts).
"""

from __future__ import annotations

from dataclasses import dataclass

import filetype

from ..protocol import errors, media_types
from ..protocol.paths import ATTACHMENT_FIELD

#: How much of the file is looked at (what ``filetype`` reads at most).
HEAD_SIZE = 8192

_WHITESPACE = b"\t\n\x0c\r "
_HTML_OPENINGS = tuple(
    b"<" + tag
    for tag in (
        b"!doctype html",
        b"html",
        b"head",
        b"script",
        b"iframe",
        b"h1",
        b"div",
        b"font",
        b"table",
        b"a",
        b"style",
        b"title",
        b"b",
        b"body",
        b"br",
        b"p",
    )
)
#: Extensions of one format under another name.
_ALIASES = {
    "jpg": {"jpeg", "jpe", "jfif"},
    "tif": {"tiff"},
    "mpg": {"mpeg", "mpe"},
    "gz": {"gzip", "tgz", "svgz"},
    "zip": {"jar", "apk", "xpi", "whl", "crx", "nupkg", "kmz", "ipa", "aar"},
    "exe": {"dll", "msi", "sys", "scr"},
    "xml": {"xsd", "xsl", "xslt", "rss", "atom", "kml", "gpx", "plist", "xlf", "xliff"},
    "html": {"htm", "xhtml", "shtml"},
    "woff": {"woff2"},
    "ttf": {"otf", "ttc"},
    "otf": {"ttf", "ttc"},
}


@dataclass(frozen=True)
class Sniffed:
    """What the first bytes show: a format, its type, and whether browsers render or
    run it (markup, PDF, Flash, archives and programs) rather than only show it."""

    extension: str
    mimetype: str
    active: bool


def sniff(head: bytes) -> Sniffed | None:
    """The format ``head`` (the file's first bytes) shows, if any."""
    markup = _markup(head)
    if markup is not None:
        return markup
    kind = filetype.guess(head) if head else None
    if kind is None:
        return None
    return Sniffed(kind.extension, kind.mime, not _passive(kind.mime))


def checked_mimetype(filename: str, extension: str, named: str, given: str, head: bytes) -> str:
    """The type the file is stored and described with; raises 400 when the content is
    of a kind browsers render or run and the name says otherwise.

    ``named``: the type the name gives (configured overrides, else a guess); ``given``:
    the type the upload would get otherwise (the client's, or ``named``). Both are
    compared by what they are (:mod:`..protocol.media_types`), never as strings."""
    sniffed = sniff(head)
    named_type = media_types.parse(named) or _UNKNOWN
    given_type = media_types.parse(given) or named_type
    if sniffed is not None and not _agrees(sniffed, extension.lower(), named_type):
        if sniffed.active and not _shown_as_is(named_type) and named_type.type != "text":
            raise _contradicted(filename, extension, named, sniffed)
        if not sniffed.active:
            return sniffed.mimetype  # harmless, but not what the name says
    if (
        given_type.active
        and given_type.essence != named_type.essence
        and (
            sniffed is None
            or sniffed.mimetype != given_type.essence
            # The client wrote the bytes as well as the type: only a name that says
            # nothing of its content (``.bin``) lets them make the file a document.
            or named_type.essence != _UNKNOWN.essence
        )
    ):
        return named_type.normalized()  # the client's word alone does not make a document
    return given_type.normalized()


_UNKNOWN = media_types.MediaType("application", "octet-stream")


def _shown_as_is(named: media_types.MediaType) -> bool:
    """Types served for download or as data, whatever the bytes: a mismatch is harmless."""
    return named.essence == "application/octet-stream" or named.is_json


def _agrees(sniffed: Sniffed, extension: str, named: media_types.MediaType) -> bool:
    if extension == sniffed.extension or extension in _ALIASES.get(sniffed.extension, ()):
        return True
    if named.essence == sniffed.mimetype:
        return True
    if sniffed.extension == "zip":  # office documents, e-books: zip containers
        return named.suffix == "zip" or named.essence.startswith(
            ("application/vnd.openxmlformats", "application/vnd.oasis.opendocument")
        )
    if sniffed.extension == "xml":
        return named.is_xml
    return False


def _markup(head: bytes) -> Sniffed | None:
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip(_WHITESPACE)[:512].lower()
    if text.startswith(b"<?xml"):
        return Sniffed("svg", "image/svg+xml", True) if b"<svg" in text else _XML
    if text.startswith((b"<svg", b"<!doctype svg")):
        return Sniffed("svg", "image/svg+xml", True)
    if text.startswith(b"<!--"):
        return _HTML
    for opening in _HTML_OPENINGS:
        if text.startswith(opening) and text[len(opening) : len(opening) + 1] in (b" ", b">"):
            return _HTML
    return None


_HTML = Sniffed("html", "text/html", True)
_XML = Sniffed("xml", "application/xml", True)


def _passive(mimetype: str) -> bool:
    return mimetype.startswith(("image/", "audio/", "video/", "font/", "application/font-"))


def _contradicted(filename: str, extension: str, named: str, sniffed: Sniffed):
    error = errors.invalid_body("File content does not match its extension.")
    error.details[0].update(
        name=ATTACHMENT_FIELD,
        description=(
            f"{filename!r} holds {sniffed.extension.upper()} ({sniffed.mimetype}), not what "
            f"'.{extension}' says ({named}): upload it under a name with the extension of "
            "its content."
        ),
        extension=extension,
        detected=sniffed.mimetype,
    )
    return error
