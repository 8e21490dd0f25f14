"""Which of Kinto's own requests can affect files, decided as cheaply as possible, so that
the everyday request passes straight to Kinto; and the JSON of Kinto's answers."""

from __future__ import annotations

import io
import json

from kinto.core.utils import json as kinto_json
from webob import Request, Response

from ..protocol.json_depth import MAX_DEPTH, too_deep
from ..protocol.paths import ATTACHMENT_FIELD, Kind
from .forwarding import forward_json, is_plain_utf8
from .patches import PatchStyle, patch_style


def handles(method: str, kind: Kind) -> bool:
    """Whether a request of this method on this kind of resource can affect files
    (attachment URLs have their own endpoint)."""
    if method == "DELETE":
        return kind not in (Kind.BATCH, Kind.FLUSH)
    if method in ("PUT", "PATCH"):
        return kind is Kind.RECORD
    if method == "POST":
        return kind in (Kind.RECORDS, Kind.FLUSH, Kind.BATCH)
    return False


def may_affect_files(environ: dict, method: str, kind: Kind) -> bool:
    """A cheap first look, so that the everyday record write passes straight to Kinto:
    a PATCH or POST whose body never spells ``attachment`` (nor escapes a character that
    could spell it) cannot touch it, and neither can a PUT without ``data``. Only a body
    that both the middleware and Kinto read as UTF-8 is searched as bytes: there an ASCII
    word is the same bytes wherever it is, and a JSON key without a backslash is spelled
    as it reads, so no reading of such bytes finds the key they lack. A NUL byte (where
    Kinto's parser stops) takes the careful way, which refuses it. The body is read whole,
    as Kinto reads it anyway; what goes on is what Kinto's parser read, re-serialized."""
    if method == "DELETE" or kind in (Kind.FLUSH, Kind.BATCH):
        return True
    content_type = environ.get("CONTENT_TYPE", "")
    if patch_style(content_type) is PatchStyle.JSON_PATCH or not is_plain_utf8(content_type):
        return True
    length = environ.get("CONTENT_LENGTH", "")
    if not length.isdigit():
        return True  # chunked or unknown: take the careful way
    body = environ["wsgi.input"].read(int(length))
    environ["wsgi.input"] = io.BytesIO(body)
    if len(body) != int(length):
        return True  # cut short: the careful way says so
    if b"\\" in body or b"\x00" in body:
        return True
    if (b'"data"' if method == "PUT" else ATTACHMENT_FIELD.encode()) in body:
        return True
    return not forwarded_as_read(environ, body)


def forwarded_as_read(environ: dict, body: bytes) -> bool:
    """Even a body that cannot touch ``attachment`` goes on as Kinto's parser read it,
    re-serialized, never as the client's bytes; ``False`` when Kinto's parser refuses it
    (the careful way then answers, in Kinto's order: 401 before 400). The hot path's own
    reading of what :func:`.forwarding.checked_json` does (that one is twice the cost):
    this body is UTF-8 and holds no NUL, as the caller checked."""
    if not body:
        return True
    try:
        parsed = kinto_json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError):
        return False
    # No deeper than its brackets: most bodies are spared the walk.
    if body.count(b"{") + body.count(b"[") > MAX_DEPTH and too_deep(parsed):
        return False
    forward_json(Request(environ), parsed)
    return True


def json_of(response: Response) -> object:
    """Kinto's JSON answer, ``None`` when it is not JSON."""
    try:
        return json.loads(response.body)
    except ValueError:
        return None
