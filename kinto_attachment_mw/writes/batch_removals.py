"""``DELETE .../attachment`` inside ``POST /v1/batch``, as the plugin runs it.

Kinto knows no attachment URL, so such a sub-request is forwarded as what the direct
request does to the record: a plain JSON ``PATCH`` that sets ``attachment`` to ``null``.
It is then foreseen, locked and cleaned up like any record write of the batch (the file
goes once Kinto committed), and its answer is given back as the direct request's: ``204``
on the attachment URL. Uploads stay refused: a batch body is JSON, a file is not.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

from ..protocol import errors
from ..protocol.paths import ATTACHMENT_FIELD, Kind, route_of

_SUFFIX = "/" + ATTACHMENT_FIELD
#: Kinto's headers that describe a record's body, which a 204 has not.
_BODY_HEADERS = frozenset({"content-type", "content-length"})


@dataclass(frozen=True)
class AttachmentRemovals:
    """The batch's sub-requests as forwarded to Kinto, and which of them stand for an
    attachment removal (by index, with the path the client sent)."""

    requests: list[dict]
    removed_at: dict[int, str]

    @classmethod
    def rewrite(cls, subrequests: list[dict]) -> AttachmentRemovals:
        forwarded, removed_at = [], {}
        for index, sub in enumerate(subrequests):
            path = str(sub.get("path", ""))
            route = route_of(unquote(path.partition("?")[0]).rstrip("/") or "/")
            if route is None or route.kind is not Kind.ATTACHMENT:
                forwarded.append(sub)
                continue
            if str(sub.get("method") or "GET").upper() != "DELETE":
                raise errors.validation_error(
                    "body",
                    f"requests.{index}.path",
                    "Attachments cannot be uploaded in a batch (a batch body is JSON): "
                    "POST each file to its record's attachment URL on its own.",
                )
            removed_at[index] = path
            forwarded.append(_as_record_patch(sub, route.record.uri, path))
        return cls(forwarded, removed_at)

    def answer(self, results: list) -> list:
        """Kinto's answers with each removal's given back as the direct request's."""
        answered = list(results)
        for index, path in self.removed_at.items():
            result = answered[index] if index < len(answered) else None
            if not isinstance(result, dict):
                continue
            status = result.get("status")
            if isinstance(status, int) and 200 <= status < 300:
                headers = result.get("headers")
                result = {
                    "status": 204,
                    "path": path,
                    "body": "",
                    "headers": {
                        name: value
                        for name, value in (headers if isinstance(headers, dict) else {}).items()
                        if name.lower() not in _BODY_HEADERS
                    },
                }
            else:
                result = {**result, "path": path}
            answered[index] = result
        return answered


def _as_record_patch(sub: dict, record_uri: str, path: str) -> dict:
    """What the direct ``DELETE .../attachment`` writes, as a sub-request: the caller's
    own headers (``If-Match``, ``Authorization``) but a plain JSON body, so that
    ``attachment`` is stored as ``null`` (merge-patch would remove the key)."""
    prefix = "/v1" if unquote(path).startswith("/v1/") else ""
    headers = sub.get("headers")
    kept = {
        name: value
        for name, value in (headers if isinstance(headers, dict) else {}).items()
        if not (isinstance(name, str) and name.lower() == "content-type")
    }
    return {
        "method": "PATCH",
        "path": prefix + record_uri,
        "headers": {**kept, "Content-Type": "application/json"},
        "body": {"data": {ATTACHMENT_FIELD: None}},
    }
