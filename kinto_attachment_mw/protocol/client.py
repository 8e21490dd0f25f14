"""Internal calls into the wrapped Kinto app, through its HTTP API only.

Each call is a fresh WSGI request carrying the caller's own credentials, so Kinto applies
its permissions, schemas, history and events as it would to the client itself.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from webob import Request, Response

from .paths import DEFAULT_BUCKET, HELLO_PATH, RecordPath, Route

INTERNAL_MARKER = "kinto_attachment_mw.internal"
_DEFAULT_BUCKET_KEY = "kinto_attachment_mw.default_bucket"

#: Caller headers that must not leak into an internal request: they describe the upload.
_DROPPED_HEADERS = frozenset(
    {
        "HTTP_IF_MATCH",
        "HTTP_IF_NONE_MATCH",
        "HTTP_IF_MODIFIED_SINCE",
        "HTTP_IF_UNMODIFIED_SINCE",
        "HTTP_RANGE",
        "HTTP_IF_RANGE",
        "HTTP_ACCEPT",
        "HTTP_ACCEPT_ENCODING",
        "HTTP_EXPECT",
        "HTTP_TRANSFER_ENCODING",
        "HTTP_CONTENT_LENGTH",
        "HTTP_CONTENT_TYPE",
        "HTTP_CONTENT_ENCODING",
        "HTTP_ACCESS_CONTROL_REQUEST_METHOD",
        "HTTP_ACCESS_CONTROL_REQUEST_HEADERS",
    }
)
_KEPT_KEYS = (
    "SERVER_NAME",
    "SERVER_PORT",
    "SERVER_PROTOCOL",
    "SCRIPT_NAME",
    "REMOTE_ADDR",
    "REMOTE_USER",
    "wsgi.version",
    "wsgi.url_scheme",
    "wsgi.errors",
    "wsgi.multithread",
    "wsgi.multiprocess",
    "wsgi.run_once",
)


@dataclass
class KintoResponse:
    """What Kinto answered: the raw response (to relay as is) and its JSON body."""

    response: Response
    body: Any

    @property
    def status(self) -> int:
        return self.response.status_code


class KintoClient:
    def __init__(self, app):
        self.app = app

    def call(
        self,
        caller_environ: dict,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> KintoResponse:
        environ = _internal_environ(caller_environ, method, path)
        payload = b"" if body is None else json.dumps(body).encode()
        environ["wsgi.input"] = io.BytesIO(payload)
        environ["CONTENT_LENGTH"] = str(len(payload))
        if body is not None:
            environ["CONTENT_TYPE"] = content_type
        for name, value in (headers or {}).items():
            environ[environ_key(name)] = value
        response = Request(environ).get_response(self.app)
        parsed = None
        if response.content_type == "application/json" and response.body:
            try:
                parsed = json.loads(response.body)
            except ValueError:
                parsed = None
        return KintoResponse(response, parsed)

    # The few conversations the middleware has with Kinto.

    def probe_write(self, caller_environ: dict, record: RecordPath) -> KintoResponse:
        """Ask whether the caller may write ``record``, writing nothing.

        ``If-Match: "1"`` never matches a real timestamp, and Kinto checks permissions
        before preconditions: 412 means allowed (with ``details.existing`` when the record
        exists), 401/403/404 are Kinto's refusal. (``"0"`` is no precondition at all.)
        """
        return self.call(caller_environ, "PUT", record.url_path, {}, {"If-Match": '"1"'})

    def in_real_bucket(self, caller_environ: dict, path: RecordPath | Route) -> RecordPath | Route:
        """``path`` under the caller's personal bucket when it names ``default``: files
        are stored, and records locked, under the real bucket id.

        Kinto is asked once per request (the answer is kept in the caller's environ).
        When it names no personal bucket (the default bucket plugin is off, so
        ``default`` is a bucket like any other), the path stays as it is.
        """
        if path.bucket_id != DEFAULT_BUCKET:
            return path
        if _DEFAULT_BUCKET_KEY not in caller_environ:
            hello = self.call(caller_environ, "GET", HELLO_PATH)
            user = (hello.body or {}).get("user") or {}
            caller_environ[_DEFAULT_BUCKET_KEY] = user.get("bucket")
        real_id = caller_environ[_DEFAULT_BUCKET_KEY]
        return path.in_bucket(real_id) if isinstance(real_id, str) and real_id else path

    def patch_record(
        self, caller_environ: dict, record: RecordPath, body: dict, if_match: int
    ) -> KintoResponse:
        """A shallow update of the record's fields, if it is still at ``if_match``."""
        return self.call(
            caller_environ, "PATCH", record.url_path, body, {"If-Match": f'"{if_match}"'}
        )

    def clear_field(
        self, caller_environ: dict, record: RecordPath, name: str, if_match: int
    ) -> KintoResponse:
        """Set a field to ``null`` (plain JSON; merge-patch would remove the key), as the
        plugin leaves ``attachment`` once removed: clients check ``is None``."""
        return self.patch_record(caller_environ, record, {"data": {name: None}}, if_match)

    def create_record(self, caller_environ: dict, record: RecordPath, body: dict) -> KintoResponse:
        return self.call(caller_environ, "PUT", record.url_path, body, {"If-None-Match": "*"})

    def get_record(self, caller_environ: dict, record: RecordPath) -> dict | None:
        """The record (``data``, ``permissions``) as the caller may read it; ``None``
        when Kinto says no."""
        found = self.call(caller_environ, "GET", record.url_path)
        body = found.body if found.status == 200 else None
        return body if isinstance(body, dict) and isinstance(body.get("data"), dict) else None

    def list_all(
        self, caller_environ: dict, path: str, query: list[tuple[str, str]]
    ) -> Iterator[dict]:
        """Every object of a list endpoint, page after page (``Next-Page``), so that
        memory holds one page. Raises :class:`ListingRefused` when Kinto says no."""
        url = f"{path}?{urlencode(query)}"
        script_name = caller_environ.get("SCRIPT_NAME", "")
        while url:
            page = self.call(caller_environ, "GET", url)
            items = (page.body or {}).get("data") if page.status == 200 else None
            if not isinstance(items, list):
                raise ListingRefused(page)
            yield from (item for item in items if isinstance(item, dict))
            next_page = urlsplit(page.response.headers.get("Next-Page", ""))
            url = next_page.path.removeprefix(script_name)
            if url and next_page.query:
                url += "?" + next_page.query


class ListingRefused(Exception):
    """Kinto would not list what lies beneath (no permission, missing parent)."""

    def __init__(self, answer: KintoResponse):
        super().__init__(answer.status)
        self.answer = answer


def environ_key(header: str) -> str:
    """The WSGI environ key of an HTTP header (``If-Match`` is ``HTTP_IF_MATCH``)."""
    return "HTTP_" + header.upper().replace("-", "_")


def _internal_environ(caller_environ: dict, method: str, path: str) -> dict:
    environ = {key: caller_environ[key] for key in _KEPT_KEYS if key in caller_environ}
    for key, value in caller_environ.items():
        if key.startswith("HTTP_") and key not in _DROPPED_HEADERS:
            environ[key] = value
    path, _, query = path.partition("?")
    environ.update(
        {
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "HTTP_ACCEPT": "application/json",
            INTERNAL_MARKER: True,
        }
    )
    environ.setdefault("SCRIPT_NAME", "")
    environ.setdefault("wsgi.url_scheme", "http")
    environ.setdefault("SERVER_NAME", "localhost")
    environ.setdefault("SERVER_PORT", "80")
    return environ
