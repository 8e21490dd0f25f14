"""What happens to the record while an upload's body streams: the write rests on the
record as it is once the file is stored, not as it was when the upload began."""

from __future__ import annotations

import io
import json
from collections.abc import Callable

import pytest
from webob import Request

from ..helpers.kinto_apps import ALICE, RECORDS, auth

pytestmark = pytest.mark.unit

BOUNDARY = "edits-meanwhile"
BOB = auth("bob")


class InterruptedBody(io.BytesIO):
    """A request body that runs ``meanwhile`` once its first bytes were read: another
    client acting on the record while the upload streams."""

    def __init__(self, body: bytes, meanwhile: Callable[[], None]):
        super().__init__(body)
        self.meanwhile = meanwhile

    def read(self, size: int = -1) -> bytes:
        chunk = super().read(size)
        if self.meanwhile is not None and chunk:
            meanwhile, self.meanwhile = self.meanwhile, None
            meanwhile()
        return chunk


def form(filename: str, content: bytes) -> bytes:
    return (
        (
            f"--{BOUNDARY}\r\n"
            f'Content-Disposition: form-data; name="attachment"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


def upload_while(uploads, meanwhile, content=b"x" * 200_000, headers=None):
    body = form("new.txt", content)
    request = Request.blank(
        f"{RECORDS}/r1/attachment",
        method="POST",
        headers={**ALICE, **(headers or {})},
        content_type=f"multipart/form-data; boundary={BOUNDARY}",
    )
    request.environ["wsgi.input"] = InterruptedBody(body, meanwhile)
    request.environ["CONTENT_LENGTH"] = str(len(body))
    response = request.get_response(uploads.app.app)
    return response.status_int, json.loads(response.body)


def test_an_edit_of_another_field_meanwhile_keeps_both(uploads):
    old = uploads.upload("r1", "old.txt", b"old", data={"title": "first"}).json
    edit = {"data": {"title": "edited meanwhile"}}
    status, new = upload_while(
        uploads, lambda: uploads.app.patch_json(f"{RECORDS}/r1", edit, headers=ALICE)
    )
    assert status == 200, new
    record = uploads.record("r1")["data"]
    assert record["title"] == "edited meanwhile"
    assert record["attachment"] == new
    assert uploads.files() == {new["location"]}
    assert new["location"] != old["location"]


def test_a_file_uploaded_meanwhile_is_the_one_released(uploads):
    uploads.upload("r1", "old.txt", b"old")
    meanwhile = {}

    def another_upload():
        meanwhile.update(uploads.upload("r1", "other.txt", b"other").json)

    status, new = upload_while(uploads, another_upload)
    assert status == 200, new
    assert uploads.record("r1")["data"]["attachment"] == new
    assert uploads.files() == {new["location"]}  # neither the old nor the other is left


def test_a_record_created_meanwhile_is_updated(uploads):
    edit = {"data": {"title": "created meanwhile"}}
    status, new = upload_while(
        uploads, lambda: uploads.app.put_json(f"{RECORDS}/r1", edit, headers=ALICE)
    )
    assert status == 200, new
    assert uploads.record("r1")["data"]["title"] == "created meanwhile"
    assert uploads.files() == {new["location"]}


def test_the_clients_own_if_match_stays_strict(uploads):
    old = uploads.upload("r1", "old.txt", b"old").json
    version = uploads.record("r1")["data"]["last_modified"]
    edit = {"data": {"title": "edited meanwhile"}}
    status, answer = upload_while(
        uploads,
        lambda: uploads.app.patch_json(f"{RECORDS}/r1", edit, headers=ALICE),
        headers={"If-Match": f'"{version}"'},
    )
    assert status == 412, answer
    assert uploads.record("r1")["data"]["attachment"] == old
    assert uploads.files() == {old["location"]}


def test_write_permission_revoked_meanwhile_stores_nothing(uploads):
    uploads.app.put_json(
        "/v1/buckets/b/collections/c",
        {"permissions": {"write": ["system.Authenticated"]}},
        headers=ALICE,
    )
    old = uploads.upload("r1", "old.txt", b"old").json  # alice's record, bob may write

    def revoke():
        uploads.app.patch_json(
            "/v1/buckets/b/collections/c", {"permissions": {"write": []}}, headers=ALICE
        )

    status, answer = upload_while(uploads, revoke, headers=BOB)
    assert status == 403, answer
    assert uploads.record("r1")["data"]["attachment"] == old
    assert uploads.files() == {old["location"]}
