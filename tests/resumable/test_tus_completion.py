"""No false success: a HEAD never says an upload is complete before the record holds its
file, and sending the last piece again (or no bytes at the full offset) stores it. Also
what HEAD tells back, empty files, and malformed numbers or bodies (400, never 500)."""

from __future__ import annotations

import hashlib
import io

import pytest
import webtest
from webob import Request

from kinto_attachment_mw import AttachmentMiddleware
from kinto_attachment_mw.storage import LocalStorage, StorageUnavailable

from ..helpers.kinto_apps import ALICE, RECORDS, Uploads, fresh_kinto, kinto_settings
from ..helpers.spool import spool_leftovers
from .test_tus import STREAM, TUS, create, encoded, patch

pytestmark = pytest.mark.unit


class FailsOnce(LocalStorage):
    """Storage that fails the next file it is asked to write, once."""

    fail_next = False

    def open_writer(self, key, content_type, size_hint=None, *, private=False):
        if self.fail_next:
            self.fail_next = False
            raise StorageUnavailable("disk on fire")
        return super().open_writer(key, content_type, size_hint, private=private)


@pytest.fixture
def tus(storage_root, tmp_path) -> Uploads:
    settings = kinto_settings(storage_root, **{"resumable.spool_path": str(tmp_path / "spool")})
    storage = FailsOnce(str(storage_root))
    app = webtest.TestApp(AttachmentMiddleware(fresh_kinto(settings), settings, storage=storage))
    uploads = Uploads(app, storage_root)
    uploads.storage = storage
    return uploads


def head(tus, location: str, status: int = 200):
    return tus.app.head(location, headers={**ALICE, **TUS}, status=status)


def test_storage_failing_at_completion_is_no_success_and_a_retry_completes(tus, tmp_path):
    content = b"0123456789"
    location = create(tus, 10).headers["Location"]
    patch(tus, location, 0, content[:6])
    tus.storage.fail_next = True
    failed = patch(tus, location, 6, content[6:], status=503)
    assert failed.json["code"] == 503
    tus.app.get(f"{RECORDS}/r1", headers=ALICE, status=404)
    answer = head(tus, location)
    assert answer.headers["Upload-Offset"] == "6"  # the last piece, to send again
    assert answer.headers["Upload-Length"] == "10"
    stored = patch(tus, location, 6, content[6:])  # what tus clients do after that HEAD
    assert stored.headers["Upload-Offset"] == "10"
    attachment = tus.record("r1")["data"]["attachment"]
    assert attachment["hash"] == hashlib.sha256(content).hexdigest()
    assert tus.path_of(attachment["location"]).read_bytes() == content
    head(tus, location, status=404)
    assert spool_leftovers(tmp_path / "spool") == []


def test_no_bytes_at_the_full_offset_completes(tus):
    location = create(tus, 4).headers["Location"]
    tus.storage.fail_next = True
    patch(tus, location, 0, b"abcd", status=503)
    assert head(tus, location).headers["Upload-Offset"] == "0"
    patch(tus, location, 4, b"")
    assert tus.path_of(tus.record("r1")["data"]["attachment"]["location"]).read_bytes() == b"abcd"


def test_a_piece_other_than_the_last_is_409(tus):
    location = create(tus, 6).headers["Location"]
    patch(tus, location, 0, b"abc")
    tus.storage.fail_next = True
    patch(tus, location, 3, b"def", status=503)
    conflict = patch(tus, location, 0, b"abc", status=409)
    assert conflict.json["message"] == "Upload-Offset is 3, not 0."
    tus.app.get(f"{RECORDS}/r1", headers=ALICE, status=404)


def test_head_tells_the_metadata_as_sent(tus):
    metadata = encoded(filename="notes.txt", data='{"title": "é"}') + ",empty"
    location = create(tus, 3, headers={"Upload-Metadata": metadata}).headers["Location"]
    assert head(tus, location).headers["Upload-Metadata"] == metadata


def test_an_empty_file_is_stored_at_creation(tus, tmp_path):
    created = create(tus, 0)
    assert created.headers["Upload-Offset"] == "0"
    attachment = tus.record("r1")["data"]["attachment"]
    assert attachment["size"] == 0 and tus.path_of(attachment["location"]).read_bytes() == b""
    assert spool_leftovers(tmp_path / "spool") == []


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("²", id="superscript"),
        pytest.param("٣", id="arabic-indic"),
        pytest.param("1_0", id="underscore"),
        pytest.param("+3", id="sign"),
        pytest.param("9" * 5000, id="past-int-conversion-limit"),
    ],
)
def test_malformed_numbers_are_400(tus, value):
    created = create(tus, 3, headers={"Upload-Length": value}, status=400)
    assert created.json["code"] == 400 and created.headers["Tus-Resumable"] == "1.0.0"
    assert created.json["message"].startswith("Upload-Length: a non-negative whole number")
    location = create(tus, 3).headers["Location"]
    refused = patch(tus, location, 0, b"abc", headers={"Upload-Offset": value}, status=400)
    assert refused.json["message"].startswith("Upload-Offset: a non-negative whole number")
    request = Request.blank(
        location.removeprefix("http://localhost"),
        method="PATCH",
        headers={**ALICE, **TUS, **STREAM, "Upload-Offset": "0"},
    )
    request.environ["CONTENT_LENGTH"] = value
    request.environ["wsgi.input"] = io.BytesIO(b"abc")
    answer = request.get_response(tus.app.app)
    assert answer.status_int == 400 and answer.json["message"] == "Invalid Content-Length header"
    assert head(tus, location).headers["Upload-Offset"] == "0"


def test_a_patch_cut_short_is_400_and_keeps_what_came(tus):
    location = create(tus, 10).headers["Location"]
    request = Request.blank(
        location.removeprefix("http://localhost"),
        method="PATCH",
        headers={**ALICE, **TUS, **STREAM, "Upload-Offset": "0"},
    )
    request.environ["CONTENT_LENGTH"] = "8"
    request.environ["wsgi.input"] = io.BytesIO(b"abcd")
    answer = request.get_response(tus.app.app)
    assert answer.status_int == 400
    assert answer.json["errno"] == 107 and answer.headers["Tus-Resumable"] == "1.0.0"
    assert answer.json["message"].startswith("The body ended early")
    assert head(tus, location).headers["Upload-Offset"] == "4"
    patch(tus, location, 4, b"efghij")
    assert tus.record("r1")["data"]["attachment"]["size"] == 10


def test_an_upload_whose_part_is_gone_is_404_never_500(tus, tmp_path):
    """A removal cut short (its part unlinked first, its state still there: a crash, or a
    sweep of expired uploads meeting a request) leaves nothing to go on with: HEAD and
    PATCH say there is no such upload, neither answers 500 nor an offset of 0."""
    location = create(tus, 10).headers["Location"]
    patch(tus, location, 0, b"abc")
    (tmp_path / "spool" / (location.rsplit("/", 1)[1] + ".part")).unlink()

    assert "Upload-Offset" not in head(tus, location, status=404).headers
    for offset in (0, 3):
        gone = patch(tus, location, offset, b"defghij", status=404)
        assert gone.json["code"] == 404 and gone.json["errno"] == 111
        assert gone.headers["Tus-Resumable"] == "1.0.0"
    tus.app.get(f"{RECORDS}/r1", headers=ALICE, status=404)


def test_a_last_piece_whose_upload_is_swept_meanwhile_is_404_never_500(tus, tmp_path):
    """The last PATCH of an upload that expires while it streams: a creation's sweep (or
    gc) removes its files meanwhile. The file cannot be stored, and the answer says the
    upload is gone."""
    location = create(tus, 10).headers["Location"]
    patch(tus, location, 0, b"abc")
    upload_id = location.rsplit("/", 1)[1]
    spool = tmp_path / "spool"

    class SweptMeanwhile(io.BytesIO):
        def read(self, size=-1):
            for suffix in (".part", ".json"):
                (spool / (upload_id + suffix)).unlink(missing_ok=True)
            return super().read(size)

    request = Request.blank(
        location.removeprefix("http://localhost"),
        method="PATCH",
        headers={**ALICE, **TUS, **STREAM, "Upload-Offset": "3"},
    )
    request.environ["wsgi.input"] = SweptMeanwhile(b"defghij")
    request.environ["CONTENT_LENGTH"] = "7"
    answer = request.get_response(tus.app.app)
    assert answer.status_int == 404, answer.text
    assert answer.json["errno"] == 111
    tus.app.get(f"{RECORDS}/r1", headers=ALICE, status=404)
    assert tus.files() == set()
