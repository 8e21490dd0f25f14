"""The headers every download carries, whichever way its bytes travel (streamed here,
sent by nginx, ``serve_path``), and the values taken from stored data made safe to send.

A record's ``mimetype`` and ``filename`` are whatever was written into it, perhaps by a
path that checked nothing: a value that is no media type, or that holds a line break,
must never reach a header (a CR/LF is a 500 from the WSGI server, a long value a 502
from nginx, and a header of the client's choosing worse).
"""

from __future__ import annotations

import posixpath
import re
from urllib.parse import quote

from webob import Response

#: What a file of no known type, or of a type that cannot be sent, is served as.
FALLBACK_MEDIA_TYPE = "application/octet-stream"

#: Uploaded content is served from Kinto's own origin: an SVG or HTML file must not run
#: scripts there with the visitor's credentials, nor be sniffed into something else.
SAFETY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
}

#: RFC 6838 caps each of type and subtype at 127 characters; parameters get the rest.
MAX_MEDIA_TYPE_LENGTH = 255
#: Longer file names are shortened in ``Content-Disposition`` (their extension kept).
MAX_FILENAME_LENGTH = 200

_TOKEN = r"[A-Za-z0-9!#$%&'*+.^_`|~-]+"
_NAME = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
_MEDIA_TYPE = re.compile(
    rf'{_NAME}/{_NAME}(?:[ \t]*;[ \t]*{_TOKEN}=(?:{_TOKEN}|"[\x20\x21\x23-\x5b\x5d-\x7e]*"))*'
)


def media_type(value: object) -> str:
    """``value`` when it is a media type that may be sent as it is (``type/subtype``,
    optional parameters, printable ASCII, bounded), else ``application/octet-stream``."""
    if (
        isinstance(value, str)
        and len(value) <= MAX_MEDIA_TYPE_LENGTH
        and _MEDIA_TYPE.fullmatch(value) is not None
    ):
        return value
    return FALLBACK_MEDIA_TYPE


def add_safety_headers(response: Response) -> Response:
    for name, value in SAFETY_HEADERS.items():
        response.headers[name] = value
    return response


def content_disposition(filename: str) -> str:
    """RFC 6266: an ASCII ``filename`` for every client, ``filename*`` (RFC 8187) with
    the real name when it is not ASCII; a long name is shortened, its extension kept."""
    if len(filename) > MAX_FILENAME_LENGTH:
        stem, extension = posixpath.splitext(filename)
        extension = extension[:20]
        filename = stem[: MAX_FILENAME_LENGTH - len(extension)] + extension
    fallback = "".join(ch if 0x20 <= ord(ch) < 0x7F and ch not in '"\\' else "_" for ch in filename)
    value = f'attachment; filename="{fallback}"'
    if fallback != filename:
        value += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return value
