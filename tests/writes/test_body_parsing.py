"""The middleware reads a body as Kinto does, or refuses it: a differential test against
Kinto's own reading (WebOb's ``json_body`` with Kinto's python-rapidjson in place, as a
real Kinto app sets it up), over generated mutations of record and batch bodies: bytes
before and after (NUL, byte order marks, every whitespace and control character), NaN and
Infinity, huge numbers, duplicate keys, comments, truncation, other encodings.

For every input, either the middleware refuses it (400), or what Kinto reads from the
forwarded request is what the middleware decided on. ``BODY_FUZZ_CASES`` sets how many
inputs (``make fuzz-bodies`` runs millions); then a few hundred of them go through the real
Kinto app, where a forged ``attachment`` must never land."""

from __future__ import annotations

import json
import os
import random

import kinto.core.utils
import pytest
import webob.request
from webob import Request

from kinto_attachment_mw.protocol.errors import AttachmentError
from kinto_attachment_mw.writes.forwarding import checked_json

from ..helpers.kinto_apps import ALICE, RECORDS
from .test_differential import attachments, describes_a_stored_file

pytestmark = pytest.mark.unit

SEED = int(os.environ.get("BODY_FUZZ_SEED", "20"))
CASES = int(os.environ.get("BODY_FUZZ_CASES", "20000"))
THROUGH_KINTO = 600

FORGED = {
    "filename": "u.bin",
    "hash": "0" * 64,
    "location": "https://evil.example/_private/u.bin",
    "mimetype": "application/octet-stream",
    "size": 1,
}
FORGED_TEXT = json.dumps(FORGED)
RECORD_BODIES = [
    '{"data": {"attachment": @F, "title": "x"}}'.replace("@F", FORGED_TEXT),
    '{"data": {"title": "x"}}',
    '{"data": {"title": "x"}, "permissions": {"read": ["system.Everyone"]}}',
    '[{"op": "add", "path": "/data/attachment", "value": @F}]'.replace("@F", FORGED_TEXT),
]
BATCH_BODIES = [
    '{"requests": [{"method": "PUT", "path": "/buckets/b/collections/c/records/r2",'
    ' "body": {"data": {"attachment": @F}}}]}'.replace("@F", FORGED_TEXT),
    '{"defaults": {"method": "PATCH", "body": {"data": {"attachment": @F}}},'
    ' "requests": [{"path": "/buckets/b/collections/c/records/r1"}]}'.replace("@F", FORGED_TEXT),
    '{"requests": [{"method": "PATCH", "path": "/buckets/b/collections/c/records/r1",'
    ' "body": {"data": {"title": "y"}}}]}',
]
#: Every character a body may start or end with that some reader could skip or stop at.
EDGE_CHARACTERS = [chr(code) for code in range(33)] + [
    "\x7f",
    "\x85",
    "\xa0",
    "\u1680",
    "\u2000",
    "\u200b",
    "\u2028",
    "\u2029",
    "\u3000",
    "\ufeff",
    "\ufffe",
]
BOMS = [b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff"]
NUMBERS = [
    "NaN",
    "Infinity",
    "-Infinity",
    "1e400",
    "-1e400",
    "1e-400",
    "123456789012345678901234567890",
    "-9223372036854775809",
    "18446744073709551616",
    "-0",
    "-0.0",
    "1E2",
    "0.1",
    "1.7976931348623157e308",
    "01",
    "+1",
    ".5",
]
STRINGS = ['"\\ud800"', '"\\u0000"', '"\\u0061ttachment"', '"\x00"', '"\t"', '"\\x41"']
DUPLICATES = [
    ('{"data": {', '{"data": {"attachment": null, '),
    ('"title": "x"', '"title": "x", "attachment": @F'.replace("@F", FORGED_TEXT)),
    ('{"data": {', '{"data": {"attachment": @F}, "data": {'.replace("@F", FORGED_TEXT)),
    ('"body": {', '"body": {"data": {"title": "t"}}, "body": {'),
    ('"requests": [', '"requests": [], "requests": ['),
]
COMMENTS = ["/* c */", "// c\n", "#c\n", "<!-- c -->"]
ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "latin-1"]
CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "application/json; charset=utf-16",
    "application/json; charset=UTF-16LE",
    "application/json; charset=utf-32",
    "application/merge-patch+json",
    "application/json-patch+json",
    "text/plain",
    "application/x-www-form-urlencoded",
]


def mutate(rng: random.Random, text: str) -> str:
    kind = rng.randrange(9)
    if kind == 0:
        return rng.choice(EDGE_CHARACTERS) + text
    if kind == 1:
        return text + rng.choice(EDGE_CHARACTERS)
    if kind == 2:  # a second document, after a NUL or not
        return text + rng.choice(["\x00", "", " ", "\n"]) + rng.choice(RECORD_BODIES)
    if kind == 3:
        return text.replace('"x"', rng.choice(NUMBERS + STRINGS), 1)
    if kind == 4:
        old, new = rng.choice(DUPLICATES)
        return text.replace(old, new, 1)
    if kind == 5:
        comment = rng.choice(COMMENTS)
        where = rng.choice([0, len(text), text.find(",") + 1 or len(text)])
        return text[:where] + comment + text[where:]
    if kind == 6:
        return text[: rng.randrange(len(text) + 1)]
    if kind == 7:  # a character inside, where a reader could stop or skip
        where = rng.randrange(len(text) + 1)
        return text[:where] + rng.choice(EDGE_CHARACTERS) + text[where:]
    return text.replace(", ", rng.choice([",", " , ", ",\t", ",\x0b", ",\x00", ",,"]), 1)


def generated_body(rng: random.Random, forged: bool = False) -> tuple[str, str, bytes, str]:
    """``(method, path, body, content type)`` of one generated request (``forged``: from
    a body that sets a forged attachment)."""
    if rng.random() < 0.3:
        method, path, text = "POST", "/v1/batch", rng.choice(BATCH_BODIES[: 2 if forged else 3])
    else:
        method = rng.choice(["PUT", "PATCH", "POST"])
        path = RECORDS if method == "POST" else f"{RECORDS}/r1"
        text = RECORD_BODIES[0] if forged else rng.choice(RECORD_BODIES)
        if method == "POST":
            text = text.replace('"data": {', '"data": {"id": "r3", ', 1)
    for _ in range(rng.choice([0, 1, 1, 1, 2, 3])):
        text = mutate(rng, text)
    encoding = rng.choice(ENCODINGS + ["utf-8"] * 10)
    body = text.encode(encoding, "surrogatepass" if encoding.startswith("utf") else "replace")
    if rng.random() < 0.1:
        body = rng.choice(BOMS) + body
    if rng.random() < 0.05:
        body = body + b"\x00" + os.urandom(rng.randrange(1, 8))
    return method, path, body, rng.choice(CONTENT_TYPES + ["application/json"] * 8)


def kinto_reading(environ: dict) -> object:
    """What Kinto reads from a request: ``request.json_body`` (WebOb, Kinto's parser)."""
    request = Request(environ)
    return request.json_body if request.body else None


def same(one: object, other: object) -> bool:
    """Equal, with the same types (``1`` is not ``1.0`` nor ``True``)."""
    return one == other and kinto.core.utils.json.dumps(one) == kinto.core.utils.json.dumps(other)


def test_kinto_reads_what_the_middleware_decided_on_or_it_was_refused(app):
    # The real Kinto app puts its parser in WebOb, as it does when it serves.
    assert webob.request.json is kinto.core.utils.json
    rng = random.Random(SEED)
    outcomes = {"refused": 0, "forwarded": 0}
    for case in range(CASES):
        method, path, body, content_type = generated_body(rng)
        environ = Request.blank(
            path, method=method, body=body, headers={"Content-Type": content_type}
        ).environ
        where = f"case {case}: {method} {path} {content_type!r} {body[:300]!r}"
        try:
            decided = checked_json(Request(environ))
        except AttachmentError as error:
            assert error.status == 400, where
            outcomes["refused"] += 1
            continue
        outcomes["forwarded"] += 1
        try:
            read = kinto_reading(environ)
        except ValueError as error:
            pytest.fail(f"Kinto cannot read what was forwarded ({error}): {where}")
        assert same(read, decided), where
    assert min(outcomes.values()) > CASES // 20, outcomes  # both outcomes well reached


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("PUT", f"{RECORDS}/r1", {"data": {"attachment": FORGED}}),
        ("PATCH", f"{RECORDS}/r1", {"data": {"attachment": FORGED}}),
        ("POST", RECORDS, {"data": {"id": "r2", "attachment": FORGED}}),
        (
            "POST",
            "/v1/batch",
            {
                "requests": [
                    {
                        "method": "PUT",
                        "path": "/buckets/b/collections/c/records/r2",
                        "body": {"data": {"attachment": FORGED}},
                    }
                ]
            },
        ),
    ],
)
@pytest.mark.parametrize("content_type", ["application/json", "application/merge-patch+json"])
def test_a_nul_byte_after_the_json_is_refused(uploads, method, path, body, content_type):
    uploads.app.put_json(f"{RECORDS}/r1", {"data": {"title": "t"}}, headers=ALICE)
    response = uploads.app.request(
        path,
        method=method,
        body=json.dumps(body).encode() + b"\x00",
        headers={**ALICE, "Content-Type": content_type},
        expect_errors=True,
    )
    assert response.status_int == 400
    assert "NUL" in response.json["message"]
    assert "attachment" not in uploads.record("r1")["data"]
    uploads.record("r2", status=404)


def test_a_forged_attachment_never_lands_whatever_the_body(uploads):
    rng = random.Random(SEED)
    stored = uploads.upload("r1", content=b"the one stored file").json
    statuses: dict[int, int] = {}
    for case in range(THROUGH_KINTO):
        method, path, body, content_type = generated_body(rng, forged=rng.random() < 0.7)
        response = uploads.app.request(
            path,
            method=method,
            body=body,
            headers={**ALICE, "Content-Type": content_type},
            expect_errors=True,
        )
        statuses[response.status_int] = statuses.get(response.status_int, 0) + 1
        where = f"case {case}: {method} {path} {content_type!r} {body[:300]!r}"
        assert response.status_int < 500, where
        if response.status_int == 400 and response.json["errno"] == 107:
            assert "message" in response.json, where
        held = attachments(uploads)
        assert all(describes_a_stored_file(uploads, a) for a in held.values()), where
        if not any(isinstance(a, dict) for a in held.values()):
            stored = uploads.upload("r1", content=b"the one stored file").json
    assert statuses.get(400) and (statuses.get(200) or statuses.get(201)), statuses
    assert stored
