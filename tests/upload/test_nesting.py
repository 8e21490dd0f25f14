"""JSON nested deeper than Kinto can take, in an upload's ``data`` or ``permissions``
field or in a record write, is refused by the middleware with a 400, not Kinto's 500."""

from __future__ import annotations

import pytest

from kinto_attachment_mw.protocol.json_depth import MAX_DEPTH, depth_of

from ..helpers.kinto_apps import ALICE, RECORDS

pytestmark = pytest.mark.unit


def nested(levels: int) -> dict:
    """An object ``levels`` deep."""
    value: object = 1
    for _ in range(levels - 1):
        value = {"a": value}
    return {"x": value}


def nested_text(levels: int) -> str:
    """The JSON text of :func:`nested` (``json.dumps`` gives up at about 1000 levels)."""
    return '{"x":' + '{"a":' * (levels - 1) + "1" + "}" * levels


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 500, 5000])
@pytest.mark.parametrize("field", ["data", "permissions"])
def test_a_deep_form_field_is_a_400_and_stores_nothing(uploads, field, levels):
    body = uploads.app.post(
        f"{RECORDS}/r1/attachment",
        params=[(field, nested_text(levels))],
        upload_files=[("attachment", "a.txt", b"a")],
        headers=ALICE,
        status=400,
    ).json
    assert body["code"] == 400 and body["errno"] == 109
    assert (
        f"The '{field}' field is nested too deeply (more than {MAX_DEPTH} levels)"
        in (body["message"])
    )
    assert uploads.files() == set()
    uploads.app.get(f"{RECORDS}/r1", headers=ALICE, status=404)


def test_nesting_up_to_the_limit_is_kept(uploads):
    data = nested(MAX_DEPTH - 1)  # the field's own object is the first level
    uploads.upload("r1", "a.txt", b"a", data=data)
    assert uploads.record("r1")["data"]["x"] == data["x"]


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 5000])
def test_a_deep_record_write_that_reaches_attachments_is_a_400(uploads, levels):
    uploads.upload("r1", "a.txt", b"a")
    body = '{"data": {"attachment": null, "deep": ' + nested_text(levels) + "}}"
    response = uploads.app.put(
        f"{RECORDS}/r1",
        body,
        headers={**ALICE, "Content-Type": "application/json"},
        status=400,
    )
    assert "nested too deeply" in response.json["message"]


def test_depth_is_measured_without_recursion():
    assert depth_of(1) == 0
    assert depth_of({}) == 1
    assert depth_of({"a": [1, {"b": []}]}) == 4
    assert depth_of(nested(100_000)) == 100_000
