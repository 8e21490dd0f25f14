"""Kinto's JSON error envelope, and the few exception types request code raises.

Every error the middleware produces itself goes out through :func:`error_response`, so
clients see the same ``{code, errno, error, message, details}`` shape as Kinto's own.
A new error is a factory function here, with one of Kinto's errnos.
"""

from __future__ import annotations

import enum
import json
from http import HTTPStatus

from webob import Response

from .paths import ATTACHMENT_FIELD


class Errno(enum.IntEnum):
    """The errnos of ``kinto.core.errors.ERRORS`` the middleware answers with (a stable,
    documented protocol value that clients match on)."""

    MISSING_AUTH_TOKEN = 104
    INVALID_PARAMETERS = 107
    INVALID_POSTED_DATA = 109
    INVALID_RESOURCE_ID = 110
    MISSING_RESOURCE = 111
    MISSING_CONTENT_LENGTH = 112
    REQUEST_TOO_LARGE = 113
    MODIFIED_MEANWHILE = 114
    METHOD_NOT_ALLOWED = 115
    TOO_MANY_REQUESTS = 117
    FORBIDDEN = 121
    CONSTRAINT_VIOLATED = 122
    BACKEND = 201
    UNDEFINED = 999


class AttachmentError(Exception):
    """An error the client should see, in Kinto's envelope."""

    def __init__(
        self,
        status: int,
        errno: Errno,
        message: str,
        error: str | None = None,
        details: object = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.errno = errno
        self.message = message
        self.error = error
        self.details = details
        self.headers = headers or {}

    def response(self) -> Response:
        return error_response(
            self.status, self.errno, self.message, self.error, self.details, self.headers
        )


def bad_request(errno: Errno, message: str) -> AttachmentError:
    return AttachmentError(400, errno, message)


def validation_error(location: str, name: str | None, description: str) -> AttachmentError:
    """A 400 shaped like Kinto's own validation errors (message, then ``details``)."""
    if name is None:
        message = f"{location}: {description}"
    elif name in description:
        message = description
    else:
        message = f"{name} in {location}: {description}"
    return AttachmentError(
        400,
        Errno.INVALID_PARAMETERS,
        message,
        error="Invalid parameters",
        details=[{"location": location, "name": name, "description": description}],
    )


def invalid_body(description: str) -> AttachmentError:
    return validation_error("body", None, description)


def too_large(limit: int, size: int | None = None, more_than: int | None = None) -> AttachmentError:
    """The upload is over ``max_size_bytes``: its exact ``size`` when it was counted, else
    the most that is known (reading stopped ``more_than`` bytes in)."""
    told = f"{size} bytes" if size is not None else f"more than {more_than} bytes"
    error = invalid_body(f"File size ({told}) exceeds the limit ({limit} bytes).")
    error.details[0].update(name=ATTACHMENT_FIELD, size=size, max_size_bytes=limit)
    return error


def extension_not_allowed(extension: str, allowed: list[str]) -> AttachmentError:
    """The plugin's message (clients match on it), and in ``details`` what would do."""
    error = invalid_body("File extension is not allowed.")
    named = f"'.{extension}'" if extension else "a file without extension"
    error.details[0].update(
        name=ATTACHMENT_FIELD,
        description=f"{named} is not allowed here; allowed: "
        + ", ".join(f".{allowed_one}" for allowed_one in allowed),
        extension=extension,
        allowed=allowed,
    )
    return error


def attachment_missing(received: list[str]) -> AttachmentError:
    """No file in the ``attachment`` field: the plugin's message and errno, and in
    ``details`` the field expected and the fields received."""
    got = ", ".join(repr(name) for name in received) if received else "no field"
    description = f"Send the file in the form field 'attachment' (received: {got})."
    return AttachmentError(
        400,
        Errno.INVALID_POSTED_DATA,
        "Attachment missing.",
        error="Invalid parameters",
        details=[
            {
                "location": "body",
                "name": ATTACHMENT_FIELD,
                "description": description,
                "received": received,
            }
        ],
    )


class KintoAnswer(Exception):
    """Kinto's own response (a refusal, a failed write), relayed to the client as it is."""

    def __init__(self, response: Response):
        super().__init__(response.status)
        self.response = response


def body_timed_out(seconds: float) -> AttachmentError:
    """The client stopped sending its body: what it sent is dropped."""
    return AttachmentError(
        408,
        Errno.UNDEFINED,
        f"No byte of the request body arrived for {seconds:g} seconds: send it again.",
        error="Request Timeout",
    )


def body_too_slow(reason: str) -> AttachmentError:
    """The body missed its minimum rate or its deadline (``reason`` says which)."""
    return AttachmentError(
        408, Errno.UNDEFINED, f"{reason}: send it again.", error="Request Timeout"
    )


def storage_unavailable() -> AttachmentError:
    return AttachmentError(
        503,
        Errno.BACKEND,
        "Attachment storage is unavailable, please retry later.",
        headers={"Retry-After": "30"},
    )


def error_response(
    status: int,
    errno: Errno,
    message: str | None = None,
    error: str | None = None,
    details: object = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body = {"code": status, "errno": int(errno), "error": error or HTTPStatus(status).phrase}
    if message is not None:
        body["message"] = message
    if details is not None:
        body["details"] = details
    response = Response(
        status=status,
        body=json.dumps(body).encode(),
        content_type="application/json",
        charset=None,
    )
    response.headers.update(headers or {})
    return response


def method_not_allowed(allow: str) -> AttachmentError:
    return AttachmentError(
        405,
        Errno.METHOD_NOT_ALLOWED,
        "Method not allowed on this endpoint.",
        headers={"Allow": allow},
    )


def record_busy() -> AttachmentError:
    """Another write to the same record held its lock for too long: Kinto's own "please
    retry" conflict, which clients already handle."""
    return AttachmentError(
        409,
        Errno.CONSTRAINT_VIOLATED,
        "Another write to this record is in progress, please retry.",
        headers={"Retry-After": "1"},
    )


def locks_unavailable() -> AttachmentError:
    return AttachmentError(
        503,
        Errno.BACKEND,
        "Record locks are unavailable, please retry later.",
        headers={"Retry-After": "30"},
    )


def attachment_tampered(
    description: str = "Attachment metadata cannot be modified.",
) -> AttachmentError:
    """A write that sets ``attachment`` to something that describes no stored file."""
    return AttachmentError(
        400,
        Errno.INVALID_PARAMETERS,
        description,
        error="Invalid parameters",
        details=[{"location": "body", "name": ATTACHMENT_FIELD, "description": description}],
    )


def not_found() -> AttachmentError:
    return AttachmentError(
        404, Errno.MISSING_RESOURCE, "The resource you are looking for could not be found."
    )


def internal_error() -> AttachmentError:
    """A bug: still answered in Kinto's envelope, never a server's page."""
    return AttachmentError(500, Errno.UNDEFINED, "Internal server error.")
