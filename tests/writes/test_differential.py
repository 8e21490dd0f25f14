"""Generated record writes and batches, varied where the middleware and Kinto could read
a request differently (Content-Type parameters, charsets, encodings, escapes, duplicate
keys, patch flavours, header spellings). For each, what Kinto then holds must agree with
what the middleware concluded: every attachment it keeps describes a stored file, and a
request the middleware refused changed nothing."""

from __future__ import annotations

import hashlib
import json
import random

import pytest

from ..helpers.kinto_apps import ALICE, RECORDS, auth

pytestmark = pytest.mark.unit

BOB = auth("bob")
SEED = 13
WRITES = 2000
BATCHES = 400

MEDIA_TYPES = [
    "application/json",
    "application/merge-patch+json",
    "application/json-patch+json",
    "Application/JSON",
    "text/plain",
]
PARAMETERS = [
    "charset=utf-8",
    "charset=UTF-8",
    'charset="utf-8"',
    "charset =utf-16",
    "charset\t=utf-16",
    "charset=utf-16",
    "Charset=UTF-16LE",
    "charset=utf-16-be",
    'charset="utf-32"',
    "charset=latin-1",
    "charset=ascii",
    "charset=nope",
    "foo=bar",
    'foo="a;charset=utf-16"',
]
SEPARATORS = [";", "; ", ";  ", " ; ", ";\t"]
ENCODINGS = ["utf-8", "utf-16", "utf-16-le", "utf-16-be", "utf-32"]


def content_type(rng: random.Random) -> str:
    header = rng.choice(MEDIA_TYPES)
    for parameter in rng.sample(PARAMETERS, rng.choice([0, 0, 1, 1, 2, 3])):
        header += rng.choice(SEPARATORS) + parameter
    return header


def forged_variants(stored: dict) -> list[object]:
    return [
        {**stored, "hash": "0" * 64},
        {**stored, "location": "https://evil.example/u.bin"},
        {**stored, "size": stored["size"] + 1},
        {"location": "https://evil.example/u.bin"},
        stored,
        None,
    ]


def body_text(rng: random.Random, stored: dict) -> str:
    attachment = rng.choice(forged_variants(stored))
    value = json.dumps(attachment)
    key = rng.choice(['"attachment"', '"\\u0061ttachment"', '"attachmen\\u0074"'])
    shape = rng.randrange(6)
    if shape == 0:
        return f'{{"data": {{{key}: {value}, "title": "x"}}}}'
    if shape == 1:  # duplicate keys: the last one counts, for both readers
        return f'{{"data": {{{key}: {value}}}, "data": {{"title": "y"}}}}'
    if shape == 2:
        return f'{{"data": {{"title": "y"}}, "data": {{{key}: {value}}}}}'
    if shape == 3:
        return f'{{"data": {{{key}: {value}, {key}: null}}}}'
    if shape == 4:
        return json.dumps([{"op": "replace", "path": "/data/attachment", "value": attachment}])
    return json.dumps({"data": {"attachment": attachment}}, ensure_ascii=rng.random() < 0.5)


def describes_a_stored_file(uploads, attachment: object) -> bool:
    if attachment is None:
        return True
    path = uploads.path_of(attachment["location"])
    if not path.is_file():
        return False
    content = path.read_bytes()
    return (
        hashlib.sha256(content).hexdigest() == attachment["hash"]
        and len(content) == attachment["size"]
    )


def attachments(uploads, headers=ALICE, collection="c") -> dict[str, object]:
    listing = uploads.app.get(
        f"/v1/buckets/b/collections/{collection}/records", headers=headers
    ).json["data"]
    return {record["id"]: record.get("attachment") for record in listing}


def test_generated_record_writes_leave_only_attachments_of_stored_files(uploads):
    rng = random.Random(SEED)
    stored = uploads.upload("r1", content=b"the one stored file").json
    statuses: dict[int, int] = {}
    for case in range(WRITES):
        method = rng.choice(["PUT", "PATCH", "PATCH", "POST"])
        header = content_type(rng)
        text = body_text(rng, stored)
        path = RECORDS if method == "POST" else f"{RECORDS}/r{rng.randrange(1, 4)}"
        if method == "POST":
            text = text.replace('"data": {', f'"data": {{"id": "r{rng.randrange(1, 4)}", ', 1)
        before = attachments(uploads)
        response = uploads.app.request(
            path,
            method=method,
            body=text.encode(rng.choice(ENCODINGS)),
            headers={**ALICE, "Content-Type": header},
            expect_errors=True,
        )
        statuses[response.status_int] = statuses.get(response.status_int, 0) + 1
        where = f"case {case}: {method} {path} {header!r} {text}"
        assert response.status_int < 500, where
        after = attachments(uploads)
        assert all(describes_a_stored_file(uploads, a) for a in after.values()), where
        if response.status_int == 400 and "charset" in response.json.get("message", ""):
            assert after == before, where
        if not any(isinstance(a, dict) for a in after.values()):
            stored = uploads.upload("r1", content=b"the one stored file").json
    assert statuses.get(400) and statuses.get(200)  # both outcomes were reached


def test_generated_batches_never_leave_a_record_without_its_file(uploads):
    rng = random.Random(SEED)
    users = {"alice": ALICE["Authorization"], "bob": BOB["Authorization"]}
    spellings = ["Authorization", "authorization", "AUTHORIZATION", "AuThOrIzAtIoN"]
    default = "/buckets/default/collections/c/records"
    for name in users:
        headers = {"Authorization": users[name]}
        uploads.app.put_json("/v1/buckets/default/collections/c", {}, headers=headers)
    for case in range(BATCHES):
        for token in users.values():
            headers = {"Authorization": token}
            listing = uploads.app.get(f"/v1{default}", headers=headers).json["data"]
            if not any(record.get("attachment") for record in listing):
                uploads.upload(path=f"/v1{default}/r1/attachment", headers=headers)
        sub_headers = {
            spelling: users[rng.choice(list(users))]
            for spelling in rng.sample(spellings, rng.randrange(0, 3))
        }
        sub = {"method": rng.choice(["DELETE", "PUT"]), "path": f"{default}/r1"}
        if sub["method"] == "PUT":
            sub["body"] = {"data": {"title": "t"}}
        body = {"requests": [sub]}
        if rng.random() < 0.5:
            sub["headers"] = sub_headers
        else:
            body["defaults"] = {"headers": sub_headers}
            sub["headers"] = {rng.choice(spellings): users[rng.choice(list(users))]}
        response = uploads.app.post_json(
            "/v1/batch",
            body,
            headers={"Authorization": rng.choice(list(users.values()))},
            expect_errors=True,
        )
        where = f"case {case}: {body}"
        assert response.status_int < 500, where
        for token in users.values():
            listing = uploads.app.get(f"/v1{default}", headers={"Authorization": token})
            for record in listing.json["data"]:
                assert describes_a_stored_file(uploads, record.get("attachment")), where
