"""Forward what was checked: the middleware and Kinto never read a request differently.
These reproduce the two ways they once did (a charset, a header spelling), against the
real Kinto."""

from __future__ import annotations

import json

import pytest

from ..helpers.kinto_apps import ALICE, RECORDS, auth

pytestmark = pytest.mark.unit

BOB = auth("bob")
FORGED = {
    "filename": "u.bin",
    "hash": "0" * 64,
    "location": "https://evil.example/u.bin",
    "mimetype": "application/octet-stream",
    "size": 1,
}
AMBIGUOUS_CHARSETS = [
    "application/json; charset =utf-8; charset=utf-16",
    "application/json;charset\t=utf-8;charset=utf-16",
    "application/json; charset=utf-8; charset=utf-16",
    'application/json; charset="utf-8"; Charset=utf-16',
]


@pytest.mark.parametrize("content_type", AMBIGUOUS_CHARSETS)
@pytest.mark.parametrize("method", ["PUT", "PATCH", "POST"])
def test_a_forged_attachment_cannot_hide_behind_two_charsets(uploads, content_type, method):
    uploads.app.put_json(f"{RECORDS}/r1", {"data": {"title": "t"}}, headers=ALICE)
    body = {"data": {"attachment": FORGED}}
    path = f"{RECORDS}/r1"
    if method == "POST":
        body["data"]["id"], path = "r2", RECORDS
    response = uploads.app.request(
        path,
        method=method,
        body=json.dumps(body).encode("utf-16"),
        headers={**ALICE, "Content-Type": content_type},
        expect_errors=True,
    )
    assert response.status_int == 400
    assert "charset" in response.json["message"]
    assert "attachment" not in uploads.record("r1")["data"]
    uploads.record("r2", status=404)


@pytest.mark.parametrize(
    "content_type",
    ["application/json; charset\t=utf-16", "application/json;charset =utf-16"],
)
def test_a_charset_kinto_would_not_see_is_read_and_forwarded_as_utf8(uploads, content_type):
    uploads.app.put_json(f"{RECORDS}/r1", {"data": {"title": "t"}}, headers=ALICE)
    forged = uploads.app.patch(
        f"{RECORDS}/r1",
        json.dumps({"data": {"attachment": FORGED}}).encode("utf-16"),
        headers={**ALICE, "Content-Type": content_type},
        status=400,
    )
    assert forged.json["message"] == "Attachment metadata cannot be modified."
    uploads.app.patch(
        f"{RECORDS}/r1",
        json.dumps({"data": {"title": "été"}}).encode("utf-16"),
        headers={**ALICE, "Content-Type": content_type},
    )
    assert uploads.record("r1")["data"]["title"] == "été"


@pytest.mark.parametrize("charset", ["latin-1", "cp1252", "no-such-charset"])
def test_charsets_other_than_unicode_are_refused(uploads, charset):
    response = uploads.app.put(
        f"{RECORDS}/r1",
        json.dumps({"data": {"attachment": FORGED}}).encode("latin-1"),
        headers={**ALICE, "Content-Type": f"application/json; charset={charset}"},
        status=400,
    )
    assert "UTF-8" in response.json["message"]
    uploads.record("r1", status=404)


def test_duplicate_keys_are_forwarded_as_they_were_checked(uploads):
    uploads.app.put_json(f"{RECORDS}/r1", {"data": {"title": "t"}}, headers=ALICE)
    forged = json.dumps({"attachment": FORGED, "title": "x"})
    body = f'{{"data": {forged}, "data": {{"title": "y"}}}}'
    uploads.app.patch(f"{RECORDS}/r1", body, headers={**ALICE, "Content-Type": "application/json"})
    data = uploads.record("r1")["data"]
    assert data["title"] == "y"
    assert "attachment" not in data


DEFAULT_RECORD = "/buckets/default/collections/c/records/r1"


def default_bucket_upload(uploads, headers):
    uploads.app.put_json("/v1/buckets/default/collections/c", {}, headers=headers)
    return uploads.upload(
        path=f"/v1{DEFAULT_RECORD}/attachment", headers=headers, content=b"own file"
    ).json


@pytest.mark.parametrize(
    "spellings",
    [
        pytest.param(("authorization", "Authorization"), id="case"),
        pytest.param(("AUTHORIZATION", "authorization"), id="upper"),
    ],
)
def test_a_batch_sub_request_cannot_carry_two_spellings_of_a_header(uploads, spellings):
    alices = default_bucket_upload(uploads, ALICE)
    default_bucket_upload(uploads, BOB)
    first, second = spellings
    response = uploads.app.post_json(
        "/v1/batch",
        {
            "requests": [
                {
                    "method": "DELETE",
                    "path": DEFAULT_RECORD,
                    "headers": {first: BOB["Authorization"], second: ALICE["Authorization"]},
                }
            ]
        },
        headers=BOB,
        status=400,
    )
    assert "authorization" in response.json["message"].lower()
    record = uploads.app.get(f"/v1{DEFAULT_RECORD}", headers=ALICE).json["data"]
    assert record["attachment"] == alices
    assert uploads.path_of(alices["location"]).read_bytes() == b"own file"
    uploads.app.get(f"/v1{DEFAULT_RECORD}", headers=BOB)


def test_a_header_spelled_twice_through_defaults_is_refused(uploads):
    alices = default_bucket_upload(uploads, ALICE)
    default_bucket_upload(uploads, BOB)
    uploads.app.post_json(
        "/v1/batch",
        {
            "defaults": {"headers": {"Authorization": ALICE["Authorization"]}},
            "requests": [
                {
                    "method": "DELETE",
                    "path": DEFAULT_RECORD,
                    "headers": {"authorization": BOB["Authorization"]},
                }
            ],
        },
        headers=BOB,
        status=400,
    )
    assert uploads.path_of(alices["location"]).read_bytes() == b"own file"


def test_one_header_spelled_twice_with_one_value_is_one_header(uploads):
    alices = default_bucket_upload(uploads, ALICE)
    uploads.app.post_json(
        "/v1/batch",
        {
            "requests": [
                {
                    "method": "DELETE",
                    "path": DEFAULT_RECORD,
                    "headers": {
                        "authorization": ALICE["Authorization"],
                        "Authorization": ALICE["Authorization"],
                    },
                }
            ]
        },
        headers=BOB,
    )
    assert not uploads.path_of(alices["location"]).exists()
