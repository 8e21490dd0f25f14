"""One-line messages for what goes wrong talking to a server.

Users of a command-line tool need to know what to fix (the URL, ``--auth``, the bucket
name), not which line of which library raised.
"""

from __future__ import annotations

import requests
from kinto_http import KintoException


class ToolError(Exception):
    """A failure that stops the whole run; its text is printed as it is."""


def _status_and_body(exc: Exception) -> tuple[int | None, dict]:
    response = getattr(exc, "response", None)
    if response is None:
        return None, {}
    try:
        body = response.json()
    except ValueError:
        body = {}
    return response.status_code, body if isinstance(body, dict) else {}


def http_message(status: int | None, body: dict, bucket: str, collection: str) -> str:
    """What a Kinto error answer means for someone reading a collection."""
    if status == 401:
        return "the server did not accept the credentials given with --auth"
    if status == 403:
        return (
            f"access denied to {bucket}/{collection}: unknown, or not readable with these "
            "credentials (check --bucket, --collection and --auth)"
        )
    if status == 404:
        kind = body.get("details", {}).get("resource_name", "resource")
        if kind == "collection":
            return f"collection {collection!r} not found in bucket {bucket!r}"
        if kind == "bucket":
            return f"bucket {bucket!r} not found"
        return f"not found: {body.get('message', 'no such resource')}"
    detail = body.get("message") or body.get("error") or "no details"
    return f"server error {status}: {detail}"


def describe(exc: Exception, server: str, bucket: str, collection: str) -> str:
    """A one-line message for a failed request to ``server``."""
    if isinstance(exc, requests.exceptions.ConnectionError):
        return f"cannot reach the server at {server}"
    if isinstance(exc, requests.exceptions.Timeout):
        return f"the server at {server} did not answer in time"
    if isinstance(exc, requests.exceptions.RequestException):
        return f"request to {server} failed: {exc.__class__.__name__}"
    if isinstance(exc, KintoException):
        status, body = _status_and_body(exc)
        if status is None:
            return f"request to {server} failed: {exc}"
        return http_message(status, body, bucket, collection)
    raise exc
