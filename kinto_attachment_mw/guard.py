"""Tamper protection: a record's ``attachment`` may only ever describe a stored file.

Clients may copy an existing attachment object onto another record (review workflows
copy records between collections), but not invent or alter one.
"""

from __future__ import annotations

import copy

import jsonpatch

from . import errors
from .multipart import FILE_FIELD
from .storage import Storage

ABSENT = object()

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"


def tampering() -> errors.AttachmentError:
    return errors.AttachmentError(
        400,
        errors.INVALID_PARAMETERS,
        "Attachment metadata cannot be modified.",
        error="Invalid parameters",
        details=[
            {
                "location": "body",
                "name": FILE_FIELD,
                "description": "Attachment metadata cannot be modified.",
            }
        ],
    )


def touches_attachment(method: str, content_type: str, body: object) -> bool:
    """Whether a record write could change ``attachment`` at all (else: pass it on)."""
    if content_type == JSON_PATCH:
        return isinstance(body, list) and any(_op_touches(op) for op in body)
    if not isinstance(body, dict):
        return False
    data = body.get("data", ABSENT)
    if method == "PUT":
        return data is not ABSENT  # a PUT's data replaces the whole record
    return isinstance(data, dict) and FILE_FIELD in data


def _op_touches(op: object) -> bool:
    if not isinstance(op, dict):
        return True  # Kinto refuses it; nothing to guess
    for pointer in (op.get("path"), op.get("from")):
        if isinstance(pointer, str) and (
            pointer in ("", "/data", "/data/" + FILE_FIELD)
            or pointer.startswith("/data/" + FILE_FIELD + "/")
        ):
            return True
    return False


def attachment_after(method: str, content_type: str, body: object, current: dict | None) -> object:
    """The ``attachment`` the record will have once Kinto applied this write to
    ``current`` (its data now, ``None`` when it does not exist), with Kinto's semantics
    for PUT, PATCH (JSON, merge-patch, JSON-patch) and POST. ``None`` means none."""
    current = current or {}
    if content_type == JSON_PATCH:
        try:
            patched = jsonpatch.apply_patch({"data": copy.deepcopy(current)}, body)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError):
            return current.get(FILE_FIELD)  # Kinto refuses the patch: nothing changes
        data = patched.get("data") if isinstance(patched, dict) else None
        return data.get(FILE_FIELD) if isinstance(data, dict) else None
    has_data = isinstance(body, dict) and "data" in body
    data = body["data"] if has_data else None
    if not isinstance(data, dict):
        return None if method == "PUT" and has_data else current.get(FILE_FIELD)
    if method in ("PUT", "POST"):
        return data.get(FILE_FIELD)
    if FILE_FIELD not in data:
        return current.get(FILE_FIELD)
    change = data[FILE_FIELD]
    if content_type == MERGE_PATCH:
        return _merge_patch(current.get(FILE_FIELD), change)
    return change


def _merge_patch(target: object, change: object) -> object:
    """RFC 7396, as Kinto applies it to a field."""
    if not isinstance(change, dict):
        return change
    merged = dict(target) if isinstance(target, dict) else {}
    for name, value in change.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = _merge_patch(merged.get(name), value)
    return merged


class AttachmentGuard:
    def __init__(self, storage: Storage):
        self.storage = storage

    def check(self, new: object, current: object, record_uri: str | None) -> None:
        """Refuse an ``attachment`` that describes no stored file; accept a copy.

        Unchanged location, hash and size pass (other fields are descriptive). A copy of
        another record's file marks the file shared, before Kinto writes the copy, so that
        its owner's later replacement or delete leaves it to garbage collection.
        """
        if new is None or _same_file(new, current):
            return
        if not isinstance(new, dict):
            raise tampering()
        location = new.get("location")
        key = self.storage.key_for(location) if isinstance(location, str) else None
        info = self.storage.stat(key) if key else None
        if info is None:
            raise tampering()
        stored = self.storage.metadata(key)
        if stored is None:
            # Stored before this middleware (the plugin kept no metadata): check what is cheap.
            if new.get("size") != info.size:
                raise tampering()
            return
        if stored.get("hash") != new.get("hash") or stored.get("size") != new.get("size"):
            raise tampering()
        if stored.get("record") != record_uri:
            self.storage.mark_shared(key)


def _same_file(new: object, current: object) -> bool:
    return (
        isinstance(new, dict)
        and isinstance(current, dict)
        and all(new.get(name) == current.get(name) for name in ("location", "hash", "size"))
        and "location" in new
    )
