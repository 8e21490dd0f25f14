"""Uploads and removals that another site makes a signed-in browser send.

An upload is a ``multipart/form-data`` POST: a form on any site can send one, and a
browser that cached Basic credentials for the API adds them. Kinto's own writes need a
JSON body, which no form sends and which a page elsewhere can only send after a CORS
preflight; the attachment URLs answer here instead, before any byte is read:

- a navigation (``Sec-Fetch-Mode: navigate``: a form submitted to the URL) is refused
  from anywhere, the API's own origin included: clients upload with ``fetch`` or
  ``XMLHttpRequest`` (or without a browser), never by leaving their page;
- a request from another site that the browser sent without CORS (``Sec-Fetch-Site``
  ``cross-site`` or ``same-site`` with a mode other than ``cors``: a form, a ``no-cors``
  fetch) is refused;
- an ``Origin`` that Kinto's ``cors_origins`` does not allow is refused, as Kinto refuses
  it on its own endpoints (it does not except its own origin either). With
  ``cors_origins = *`` every site is allowed, as Kinto allows it (its CORS answers say
  ``*``), but ``Origin: null`` never is: a sandboxed frame, a ``data:`` or ``file:``
  page is no site an operator could have meant.

Clients outside browsers send none of these headers and are not affected.
"""

from __future__ import annotations

import fnmatch

from webob import Request

from . import errors

_NAVIGATIONS = frozenset({"navigate", "nested-navigate"})
_OTHER_SITES = frozenset({"cross-site", "same-site"})


def refusal(request: Request, cors_origins: tuple[str, ...]) -> str | None:
    """Why ``request`` (a write on an attachment URL) looks sent by a browser for another
    site, else ``None``."""
    headers = request.headers
    mode = headers.get("Sec-Fetch-Mode", "").strip().lower()
    site = headers.get("Sec-Fetch-Site", "").strip().lower()
    origin = headers.get("Origin")
    if mode in _NAVIGATIONS:
        return (
            "A browser's navigation (an HTML form sent to this URL) cannot change "
            "attachments: send the request with fetch() or XMLHttpRequest."
        )
    if site in _OTHER_SITES and mode and mode != "cors":
        return (
            "A request from another site sent without CORS (a form, a no-cors fetch) "
            "cannot change attachments."
        )
    if origin is None:
        return None
    origin = origin.strip()
    if origin.lower() == "null":
        return "Origin: null (a sandboxed frame, a data: or file: page) cannot change attachments."
    if any(fnmatch.fnmatchcase(origin, allowed) for allowed in cors_origins):
        return None  # as Kinto matches it: patterns such as https://*.example.com
    return f"Origin {origin} is not allowed to change attachments (Kinto's cors_origins)."


def check(request: Request, cors_origins: tuple[str, ...]) -> None:
    """Raise the 403 of a write another site makes a browser send."""
    reason = refusal(request, cors_origins)
    if reason is not None:
        raise errors.AttachmentError(403, errors.Errno.FORBIDDEN, reason)
