"""``POST /v1/batch``: Kinto runs its sub-requests inside Pyramid, out of a WSGI
middleware's sight, so the batch body is read here and each sub-request that reaches
records, collections or buckets is foreseen like a direct one (see :mod:`.record_writes`).
What Kinto runs is the batch as read here: ``defaults`` merged in, each sub-request's
headers with one spelling each (see :mod:`.forwarding`).
"""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, unquote_to_bytes

from webob import Request, Response

from ..files.locations import key_for
from ..protocol import errors
from ..protocol.client import environ_key
from ..protocol.paths import ATTACHMENT_FIELD, Kind, Route, route_of
from .batch_removals import AttachmentRemovals
from .forwarding import checked_json, forward_json
from .patches import PatchStyle
from .record_writes import KintoWrites
from .screening import handles, json_of

#: Kinto sends every batch body as plain JSON, whatever the sub-request's headers say.
_SUB_STYLE = PatchStyle.JSON


class BatchEndpoint:
    def __init__(self, app, writes: KintoWrites):
        self.app = app
        self.writes = writes

    def __call__(self, request: Request) -> Response:
        payload = checked_json(request)
        removals = AttachmentRemovals.rewrite(_subrequests(payload))
        if removals.requests:
            forward_json(request, _as_merged(payload, removals.requests))
        steps = [
            _Step.of(request.environ, index, sub) for index, sub in enumerate(removals.requests)
        ]
        steps = [step for step in steps if step is not None]
        storage = self.writes.remover.storage
        written = {key_for(storage, step.attached_location) for step in steps} - {None}
        noted = [
            self.writes.note_copies(step.environ, step.method, step.route, _SUB_STYLE, step.body)
            for step in steps
        ]
        with contextlib.ExitStack() as held:
            # The records this batch writes or deletes, locked in one order (so two
            # batches never wait on each other crosswise), as a direct write locks one.
            records = {
                self.writes.record_lock(step.environ, step.route)
                for step in steps
                if step.route.kind is Kind.RECORD
            }
            for uri in sorted(records):
                held.enter_context(self.writes.locks.hold(uri))
            foreseen = [
                self.writes.foresee(
                    step.environ, step.method, step.route, step.query, _SUB_STYLE, step.body, early
                )
                for step, early in zip(steps, noted, strict=True)
            ]
            response = request.get_response(self.app)
            answer = json_of(response) if response.status_code == 200 else None
            results = answer.get("responses") if isinstance(answer, dict) else None
            if removals.removed_at and isinstance(results, list):
                response.json_body = {**answer, "responses": removals.answer(results)}
            if not isinstance(results, list) or any(
                isinstance(result, dict) and result.get("status") == 409 for result in results
            ):
                return response  # nothing confirmed (a 409 rolls the whole batch back)
            for step, to_remove in zip(steps, foreseen, strict=True):
                result = results[step.index] if step.index < len(results) else None
                if to_remove is None or not isinstance(result, dict):
                    continue
                status = result.get("status")
                self.writes.remove_confirmed(
                    to_remove,
                    status if isinstance(status, int) else 0,
                    result.get("body"),
                    keep=frozenset(written),
                )
        return response


@dataclass(frozen=True)
class _Step:
    """A sub-request that can affect files, read as Kinto will run it."""

    index: int
    environ: dict
    method: str
    route: Route
    query: list[tuple[str, str]]
    body: object

    @classmethod
    def of(cls, environ: dict, index: int, sub: dict) -> _Step | None:
        path, _, query = str(sub.get("path", "")).partition("?")
        # As Kinto reaches it: percent-decoded, and after the redirect that drops a slash.
        route = route_of(unquote(path).rstrip("/") or "/")
        method = str(sub.get("method") or "GET").upper()
        if route is None:
            return None
        if not handles(method, route.kind) or route.kind is Kind.BATCH:
            return None
        sub_environ = _sub_environ(environ, sub.get("headers"))
        return cls(index, sub_environ, method, route, parse_qsl(query), sub.get("body"))

    @property
    def attached_location(self) -> str | None:
        """A file this sub-request (re)attaches somewhere: the batch's other sub-requests
        must not remove it."""
        data = self.body.get("data") if isinstance(self.body, dict) else None
        attachment = data.get(ATTACHMENT_FIELD) if isinstance(data, dict) else None
        location = attachment.get("location") if isinstance(attachment, dict) else None
        return location if isinstance(location, str) and self.method != "DELETE" else None


def _subrequests(payload: object) -> list[dict]:
    """The sub-requests with ``defaults`` merged in as Kinto merges them (values the
    sub-request lacks are filled in, recursively), then each header under one spelling.
    Anything malformed is Kinto's to refuse: then no sub-request is planned."""
    if not isinstance(payload, dict) or not isinstance(payload.get("requests"), list):
        return []
    if not all(isinstance(sub, dict) for sub in payload["requests"]):
        return []
    defaults = payload.get("defaults")
    merged = []
    for index, sub in enumerate(payload["requests"]):
        sub = copy.deepcopy(sub)
        if isinstance(defaults, dict):
            _fill_in(sub, defaults, f"requests.{index}")
        if isinstance(sub.get("headers"), dict):
            sub["headers"] = _one_spelling(sub["headers"], f"requests.{index}.headers")
        _refuse_non_ascii_path(sub.get("path"), f"requests.{index}.path")
        merged.append(sub)
    return merged


def _refuse_non_ascii_path(path: object, where: str) -> None:
    """Kinto's ids are ASCII, so no resource has a path that is not; and Kinto fails (500)
    on some such sub-request paths, percent-encoded (``%EF%BC%8F``, ``%FF``) or not
    (``é``). Refused here with a 400 that says so."""
    if not isinstance(path, str):
        return  # Kinto refuses the batch
    route_part = path.partition("?")[0]
    if route_part.isascii() and unquote_to_bytes(route_part).isascii():
        return
    raise errors.validation_error(
        "body",
        where,
        "the path holds characters that are not ASCII (percent-encoded or not), which no "
        "bucket, collection or record id has: send the ids as they are.",
    )


def _as_merged(payload: dict, subrequests: list[dict]) -> dict:
    """The batch Kinto is given: the sub-requests as read here, ``defaults`` already in
    them (merged again, it could bring back a spelling that was folded away)."""
    merged = dict(payload, requests=subrequests)
    if isinstance(merged.get("defaults"), dict):
        del merged["defaults"]
    return merged


def _one_spelling(headers: dict, where: str) -> dict:
    """Headers keyed by one spelling each (``authorization`` and ``Authorization`` are
    one header to WSGI): the same value spelled twice is one header; two values are
    refused, since Kinto and the middleware could each take another one."""
    spelled: dict[str, tuple[str, object]] = {}
    for name, value in headers.items():
        if not isinstance(name, str):
            return headers  # Kinto refuses the batch
        key = environ_key(name)
        if key in spelled and spelled[key][1] != value:
            raise errors.validation_error(
                "body",
                where,
                f"header {name!r} is given twice, spelled differently with different "
                "values: send it once.",
            )
        spelled[key] = (key.removeprefix("HTTP_").replace("_", "-").title(), value)
    return dict(spelled.values())


def _fill_in(target: dict, defaults: dict, where: str) -> None:
    for name, value in defaults.items():
        if isinstance(value, dict):
            existing = target.setdefault(name, {})
            if not isinstance(existing, dict):
                # Kinto's own merge would crash on it (500): say what is wrong instead.
                raise errors.validation_error(
                    "body", f"{where}.{name}", "should be an object, as in defaults"
                )
            _fill_in(existing, value, f"{where}.{name}")
        else:
            target.setdefault(name, copy.deepcopy(value))


def _sub_environ(environ: dict, headers: object) -> dict:
    """The caller's environ with the sub-request's own headers over it, as Kinto builds
    a sub-request (its ``Authorization`` may differ from the batch's)."""
    if not isinstance(headers, dict) or not headers:
        return environ
    sub = dict(environ)
    for name, value in headers.items():
        if isinstance(name, str) and isinstance(value, str):
            sub[environ_key(name)] = value
    return sub
