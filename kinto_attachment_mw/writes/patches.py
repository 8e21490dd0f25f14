"""What a record write does to ``attachment``, simulated with Kinto's own semantics for
PUT, POST and the three PATCH flavours (plain JSON, merge-patch, JSON Patch), so that
tamper protection checks the attachment the record will really have."""

from __future__ import annotations

import copy
import enum

import jsonpatch

from ..protocol import errors
from ..protocol.paths import ATTACHMENT_FIELD

ABSENT = object()
_FIELD_POINTER = "/data/" + ATTACHMENT_FIELD


class PatchStyle(enum.Enum):
    JSON = "application/json"
    MERGE = "application/merge-patch+json"
    JSON_PATCH = "application/json-patch+json"


def patch_style(content_type_header: str | None) -> PatchStyle:
    """How Kinto applies a body: it compares the whole header, parameters included, so
    ``application/merge-patch+json; charset=utf-8`` is a plain JSON update to it."""
    header = str(content_type_header).lower()
    for style in (PatchStyle.MERGE, PatchStyle.JSON_PATCH):
        if header == style.value:
            return style
    return PatchStyle.JSON


def touches_attachment(method: str, style: PatchStyle, body: object) -> bool:
    """Whether a record write could change ``attachment`` at all (else: pass it on).

    Bodies Kinto would crash on are refused here, so that the client gets a 400 rather
    than Kinto's 500.
    """
    if style is PatchStyle.JSON_PATCH:
        return isinstance(body, list) and any(_op_touches(op) for op in body)
    if isinstance(body, list) and method == "PATCH":
        raise errors.invalid_body("A JSON Patch needs Content-Type application/json-patch+json.")
    if not isinstance(body, dict):
        return False
    data = body.get("data", ABSENT)
    if method == "PUT":
        return data is not ABSENT  # a PUT's data replaces the whole record
    return isinstance(data, dict) and ATTACHMENT_FIELD in data


def _op_touches(op: object) -> bool:
    if not isinstance(op, dict):
        return True  # Kinto refuses it; nothing to guess
    for pointer in (op.get("path"), op.get("from")):
        if isinstance(pointer, str) and (
            pointer in ("", "/data", _FIELD_POINTER) or pointer.startswith(_FIELD_POINTER + "/")
        ):
            return True
    return False


def attachment_after(method: str, style: PatchStyle, body: object, current: dict | None) -> object:
    """The ``attachment`` the record will have once Kinto applied this write to
    ``current`` (Kinto's answer to a GET of the record: ``data`` and ``permissions``;
    ``None`` when it does not exist). ``None`` means none."""
    data_now = (current or {}).get("data") or {}
    if style is PatchStyle.JSON_PATCH:
        return _json_patched(body, current or {})
    has_data = isinstance(body, dict) and "data" in body
    data = body["data"] if has_data else None
    if not isinstance(data, dict):
        return None if method == "PUT" and has_data else data_now.get(ATTACHMENT_FIELD)
    if method in ("PUT", "POST"):
        return data.get(ATTACHMENT_FIELD)
    if ATTACHMENT_FIELD not in data:
        return data_now.get(ATTACHMENT_FIELD)
    change = data[ATTACHMENT_FIELD]
    if style is PatchStyle.MERGE:
        return _merge_patch(data_now.get(ATTACHMENT_FIELD), change)
    return change


def _json_patched(ops: object, current: dict) -> object:
    """Apply a JSON Patch to the document Kinto patches: data, and permissions as
    ``{name: {principal: principal}}``, with a principal path's value set to the
    principal. Moving or copying the attachment elsewhere would leave a location that
    nothing tracks, so it is refused; so is a patch that cannot apply."""
    ops = copy.deepcopy(ops)
    for op in ops:
        source = op.get("from") if isinstance(op, dict) else None
        if isinstance(source, str) and (
            source == _FIELD_POINTER or source.startswith(_FIELD_POINTER + "/")
        ):
            raise errors.attachment_tampered()
        path = op.get("path") if isinstance(op, dict) else None
        if isinstance(path, str) and path.startswith(("/permissions/read/", "/permissions/write/")):
            op["value"] = path.split("/")[-1]
    permissions = {"read": {}, "write": {}}
    for name, principals in (current.get("permissions") or {}).items():
        if isinstance(principals, list):
            permissions[name] = {principal: principal for principal in principals}
    document = {"data": copy.deepcopy(current.get("data") or {}), "permissions": permissions}
    try:
        patched = jsonpatch.apply_patch(document, ops)
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError):
        raise errors.attachment_tampered() from None  # touches attachment, and cannot be checked
    data = patched.get("data") if isinstance(patched, dict) else None
    if not isinstance(data, dict):
        raise errors.invalid_body("JSON Patch operation failed: the record needs its data.")
    return data.get(ATTACHMENT_FIELD)


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
