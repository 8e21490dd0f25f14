"""Forward what was checked: a JSON body is read once, with Kinto's own JSON parser
(python-rapidjson, with Kinto's options), and what goes on into Kinto is exactly what was
read (re-serialized as UTF-8 JSON with a plain ``Content-Type``), so that the middleware
and Kinto can never read a request differently. Ambiguous input (two charsets, a charset
that is not Unicode, a NUL byte, after which Kinto's parser stops reading) and anything
that is not JSON are refused with 400, never passed on unread."""

from __future__ import annotations

import io

from kinto.core.utils import json as kinto_json
from webob import Request
from webob.request import detect_charset

from ..protocol import errors
from ..protocol.body_cap import read_capped_input
from ..protocol.json_depth import MAX_DEPTH, too_deep, too_deep_message
from .patches import PatchStyle, patch_style

#: The charsets a JSON body may declare (RFC 8259: JSON is Unicode), by normalized name.
_UNICODE_CHARSETS = {
    "utf8": "utf-8",
    "ascii": "ascii",
    "usascii": "ascii",
    "utf16": "utf-16",
    "utf16le": "utf-16-le",
    "utf16be": "utf-16-be",
    "utf32": "utf-32",
    "utf32le": "utf-32-le",
    "utf32be": "utf-32-be",
}
_UTF8 = frozenset({"utf-8", "ascii"})
#: The media types Kinto reads as JSON; anything else it refuses, whatever the body says.
_JSON_MEDIA_TYPES = frozenset(style.value for style in PatchStyle)


def declared_charset(content_type: str) -> str:
    """The codec of a body: UTF-8 unless one ``charset`` parameter, however spaced or
    cased, names another Unicode encoding. Two charsets, or another one, are refused."""
    declared = []
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            declared.append(value.strip().strip('"').strip())
    if len(declared) > 1:
        raise errors.invalid_body(
            "Content-Type has more than one charset parameter: send one, charset=utf-8."
        )
    if not declared:
        return "utf-8"
    codec = _UNICODE_CHARSETS.get(_charset_key(declared[0]))
    if codec is None:
        raise errors.invalid_body(
            f"charset {declared[0][:40]!r} is not supported: send the JSON body as UTF-8."
        )
    return codec


def is_plain_utf8(content_type: str) -> bool:
    """Whether the middleware and WebOb (Kinto's request) both read this body as UTF-8
    bytes, so that searching the bytes is searching what Kinto will read."""
    try:
        ours = declared_charset(content_type)
    except errors.AttachmentError:
        return False
    theirs = detect_charset(content_type)
    return ours in _UTF8 and (not theirs or _UNICODE_CHARSETS.get(_charset_key(theirs)) in _UTF8)


def checked_json(request: Request) -> object:
    """The request's JSON as Kinto reads it (``None`` when the body is empty); the request
    is rewritten to carry exactly that, as UTF-8 JSON with a plain ``Content-Type``.

    A body that is not JSON to Kinto's parser is refused here (400): forwarded as it is,
    it could be read otherwise further on. So is a NUL byte (Kinto's parser stops at it and
    takes what came before), and JSON nested too deeply for Kinto."""
    content_type = request.environ.get("CONTENT_TYPE", "")
    charset = declared_charset(content_type)
    raw = _whole_body(request)
    if not raw:
        return None
    try:
        text = raw.decode(charset)
    except UnicodeDecodeError:
        raise errors.invalid_body(f"The body is not valid {charset}: send UTF-8 JSON.") from None
    if "\x00" in text:
        raise errors.invalid_body(
            "The body holds a NUL character: send JSON without it (inside a string, "
            "write it \\u0000)."
        )
    try:
        parsed = kinto_json.loads(text)
    except RecursionError:  # deeper than the parser reads: deeper than allowed too
        raise errors.invalid_body(too_deep_message("The JSON body")) from None
    except ValueError as error:  # rapidjson's JSONDecodeError, an unencodable surrogate
        raise errors.invalid_body(
            f"Invalid JSON ({str(error)[:120]}): send one JSON value, without comments, "
            "NaN or Infinity, as UTF-8."
        ) from None
    # No deeper than its brackets: most bodies are spared the walk.
    if raw.count(b"{") + raw.count(b"[") > MAX_DEPTH and too_deep(parsed):
        raise errors.invalid_body(too_deep_message("The JSON body"))
    forward_json(request, parsed)
    return parsed


def _whole_body(request: Request) -> bytes:
    """The body, read whole; a client gone before its end is a 400, as for an upload."""
    try:
        read_capped_input(request.environ)
        body = request.body
    except TimeoutError:
        raise  # the idle time-out's own answer (408)
    except OSError as error:  # WebOb's DisconnectionError, the server's own
        raise errors.invalid_body(
            f"The body ended before its Content-Length ({str(error)[:80]}): send it whole."
        ) from None
    # In memory from now on: the temporary file WebOb spooled a large one into is closed,
    # whatever is answered next.
    _replace_input(request.environ, body)
    return body


def forward_json(request: Request, payload: object) -> None:
    """Make ``request`` carry ``payload`` as compact UTF-8 JSON (written by Kinto's own
    serializer, so that Kinto reads back the same values), with a ``Content-Type`` that
    makes Kinto apply it as the middleware did (see :func:`.patches.patch_style`)."""
    body = kinto_json.dumps(payload).encode("utf-8")
    environ = request.environ
    environ["CONTENT_TYPE"] = _forwarded_type(environ.get("CONTENT_TYPE", ""))
    _replace_input(environ, body)


def forward_no_body(request: Request) -> None:
    """For a request whose body Kinto does not read (a flush, a delete): none goes on."""
    environ = request.environ
    _replace_input(environ, b"")


def _replace_input(environ: dict, body: bytes) -> None:
    """The request carries ``body`` now; a temporary file WebOb spooled a large body into
    is closed (the server's own stream is left to the server)."""
    previous = environ.get("wsgi.input")
    if isinstance(previous, io.BufferedRandom):
        previous.close()
    environ["CONTENT_LENGTH"] = str(len(body))
    environ["wsgi.input"] = io.BytesIO(body)
    environ["webob.is_body_seekable"] = True
    environ.pop("HTTP_TRANSFER_ENCODING", None)


def _forwarded_type(content_type: str) -> str:
    style = patch_style(content_type)
    if style is not PatchStyle.JSON:
        return style.value  # the whole header was exactly this
    media_type = content_type.split(";")[0].strip().lower()
    # A JSON media type with parameters is a plain JSON update to Kinto; any other one it
    # refuses (415) as it would have.
    return PatchStyle.JSON.value if media_type in _JSON_MEDIA_TYPES else media_type


def _charset_key(charset: str) -> str:
    return charset.strip().strip('"').strip().lower().replace("-", "").replace("_", "")
