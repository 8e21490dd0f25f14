"""Bad input: each case gets a clear 4xx in Kinto's envelope, and stores nothing."""

from __future__ import annotations

import io

import pytest
from webob import Request

from kinto_attachment_mw.upload.form import MAX_FORM_OVERHEAD

from ..helpers.kinto_apps import ALICE, RECORDS, Uploads, build_app

pytestmark = pytest.mark.unit

BOUNDARY = "xYzZY"
URL = f"{RECORDS}/r1/attachment"


def part(name: str, value: bytes, filename: str | None = None, ctype: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"'
    if filename is not None:
        disposition += f'; filename="{filename}"'
    head = f"Content-Disposition: {disposition}\r\n"
    if ctype:
        head += f"Content-Type: {ctype}\r\n"
    return f"--{BOUNDARY}\r\n{head}\r\n".encode() + value + b"\r\n"


def body(*parts: bytes) -> bytes:
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


FILE = part("attachment", b"content", "a.txt", "text/plain")
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


def raw_post(app, payload: bytes, content_type: str | None = MULTIPART, length=None, url=URL):
    """Send bytes as they are, with a Content-Length that may lie."""
    request = Request.blank(url, method="POST", headers=ALICE)
    request.environ["wsgi.input"] = io.BytesIO(payload)
    request.environ["CONTENT_LENGTH"] = str(len(payload) if length is None else length)
    if content_type is not None:
        request.environ["CONTENT_TYPE"] = content_type
    return request.get_response(app.app)


CASES = [
    pytest.param(
        body(FILE),
        "text/plain",
        None,
        107,
        "Content-Type should be multipart/form-data",
        id="not-multipart",
    ),
    pytest.param(
        body(FILE),
        "application/json",
        None,
        107,
        "Content-Type should be multipart/form-data",
        id="json",
    ),
    pytest.param(
        body(FILE),
        "multipart/form-data",
        None,
        107,
        "missing or invalid boundary",
        id="no-boundary",
    ),
    pytest.param(
        body(FILE),
        "multipart/form-data; boundary=other",
        None,
        107,
        "Invalid multipart/form-data body",
        id="wrong-boundary",
    ),
    pytest.param(
        body(FILE)[:-30], MULTIPART, None, 107, "Invalid multipart/form-data body", id="truncated"
    ),
    pytest.param(
        body(FILE), MULTIPART, 10_000, 107, "truncated body", id="content-length-too-large"
    ),
    pytest.param(
        body(FILE),
        MULTIPART,
        60,
        107,
        "Invalid multipart/form-data body",
        id="content-length-too-small",
    ),
    pytest.param(b"", MULTIPART, None, 107, "Invalid multipart/form-data body", id="empty-body"),
    pytest.param(
        body(part("data", b"{}")), MULTIPART, None, 109, "Attachment missing.", id="no-file-part"
    ),
    pytest.param(
        body(FILE, part("attachment", b"again", "b.txt")),
        MULTIPART,
        None,
        107,
        "body: Only one file can be attached.",
        id="two-file-parts",
    ),
    pytest.param(
        body(part("attachment", b"x", "")),
        MULTIPART,
        None,
        107,
        "body: Filename is required.",
        id="empty-filename",
    ),
    pytest.param(
        body(part("attachment", b"x")),
        MULTIPART,
        None,
        107,
        "body: Filename is required.",
        id="no-filename",
    ),
    pytest.param(
        body(part("attachment", b"x", "evil.exe")),
        MULTIPART,
        None,
        107,
        "body: File extension is not allowed.",
        id="extension",
    ),
    pytest.param(
        body(part("attachment", b"x", "noextension")),
        MULTIPART,
        None,
        107,
        "body: File extension is not allowed.",
        id="no-extension",
    ),
    pytest.param(
        body(FILE, part("color", b"red")),
        MULTIPART,
        None,
        109,
        "body: 'color' not in ('data', 'permissions')",
        id="unknown-field",
    ),
    pytest.param(
        body(part("color", b"red"), FILE),
        MULTIPART,
        None,
        109,
        "body: 'color' not in ('data', 'permissions')",
        id="unknown-field-first",
    ),
    pytest.param(
        body(FILE, part("data", b"{nope")),
        MULTIPART,
        None,
        109,
        "body: data is not valid JSON (",
        id="invalid-json",
    ),
    pytest.param(
        body(FILE, part("permissions", b"[1")),
        MULTIPART,
        None,
        109,
        "body: permissions is not valid JSON (",
        id="invalid-json-permissions",
    ),
    pytest.param(
        body(FILE, part("data", b"[1, 2]")),
        MULTIPART,
        None,
        109,
        "body: data is not a JSON object",
        id="json-not-object",
    ),
    pytest.param(
        body(FILE, part("data", b'{"x": NaN}')),
        MULTIPART,
        None,
        109,
        "body: data is not valid JSON (NaN is not JSON",
        id="json-nan",
    ),
    pytest.param(
        body(FILE, part("data", b'{"x": 1e999}')),
        MULTIPART,
        None,
        109,
        "body: data is not valid JSON (1e999 is out of range",
        id="json-infinite",
    ),
    pytest.param(
        body(FILE, part("data", b"\xff\xfe")),
        MULTIPART,
        None,
        109,
        "body: data is not valid JSON (",
        id="data-not-utf8",
    ),
    pytest.param(
        body(FILE, part("data", b"{}"), part("data", b"{}")),
        MULTIPART,
        None,
        109,
        "given twice",
        id="data-twice",
    ),
    pytest.param(
        body(FILE, part("data", b"{}", "data.json")),
        MULTIPART,
        None,
        109,
        "should be passed as form data",
        id="data-as-file",
    ),
    pytest.param(
        body(FILE, part("data", b'{"title": 5}')),
        MULTIPART,
        None,
        107,
        "title in body",
        id="schema-violation",
    ),
]


@pytest.mark.parametrize(
    "parts,received",
    [
        pytest.param([part("file", b"x", "a.txt")], ["file"], id="file-in-another-field"),
        pytest.param(
            [part("data", b"{}"), part("upload", b"x", "a.txt")],
            ["data", "upload"],
            id="after-data",
        ),
        pytest.param([part("data", b"{}")], ["data"], id="no-file"),
    ],
)
def test_attachment_missing_names_the_field_expected_and_received(uploads, parts, received):
    response = raw_post(uploads.app, body(*parts), MULTIPART, None)
    assert (response.status_int, response.json["errno"]) == (400, 109)
    assert response.json["message"] == "Attachment missing."
    (detail,) = response.json["details"]
    assert detail["name"] == "attachment"
    assert detail["received"] == received
    assert "form field 'attachment'" in detail["description"]
    assert uploads.files() == set()


def test_refused_extension_names_it_and_the_allowed_ones(storage_root):
    uploads = Uploads(build_app(storage_root, extensions="images+.ftl"), storage_root)
    response = raw_post(uploads.app, body(part("attachment", b"x", "README.RST")), MULTIPART)
    assert response.json["message"] == "body: File extension is not allowed."
    (detail,) = response.json["details"]
    assert detail["extension"] == "rst"
    assert detail["allowed"] == sorted(
        ["ftl", "jpg", "jpe", "jpeg", "png", "gif", "svg", "bmp", "tiff"]
    )
    assert detail["description"].startswith("'.rst' is not allowed here; allowed: .bmp, .ftl, ")
    assert uploads.upload("r1", "fr.ftl", b"hello = Bonjour").status_int == 201


@pytest.fixture
def schema_uploads(uploads):
    schema = {"type": "object", "properties": {"title": {"type": "string"}}}
    uploads.app.patch_json(
        "/v1/buckets/b/collections/c", {"data": {"schema": schema}}, headers=ALICE
    )
    return uploads


@pytest.mark.parametrize("payload,content_type,length,errno,message", CASES)
def test_bad_upload_is_refused_and_stores_nothing(
    schema_uploads, payload, content_type, length, errno, message
):
    uploads = schema_uploads
    response = raw_post(uploads.app, payload, content_type, length)
    assert response.status_int == 400, response.text
    error = response.json
    assert set(error) >= {"code", "errno", "error", "message"}
    assert error["code"] == 400
    assert error["errno"] == errno
    assert message in error["message"]
    assert uploads.files() == set()
    uploads.record("r1", status=404)


@pytest.mark.parametrize("payload,content_type,length,errno,message", CASES)
def test_refused_replacement_keeps_current_file(
    schema_uploads, payload, content_type, length, errno, message
):
    """The plugin deleted the current file before validating; here it stays."""
    uploads = schema_uploads
    meta = uploads.upload("r1", "current.txt", b"current").json
    response = raw_post(uploads.app, payload, content_type, length)
    assert response.status_int == 400
    assert uploads.files() == {meta["location"]}
    assert uploads.path_of(meta["location"]).read_bytes() == b"current"
    assert uploads.record("r1")["data"]["attachment"] == meta


def test_body_without_content_length_is_refused(uploads):
    request = Request.blank(URL, method="POST", headers=ALICE)
    request.environ["wsgi.input"] = io.BytesIO(body(FILE))
    request.environ["CONTENT_TYPE"] = MULTIPART
    request.environ.pop("CONTENT_LENGTH", None)
    response = request.get_response(uploads.app.app)
    assert response.status_int == 411
    assert response.json["errno"] == 112
    assert uploads.files() == set()


def test_oversize_upload_refused_while_streaming(storage_root):
    uploads = Uploads(build_app(storage_root, max_size_bytes="1000"), storage_root)
    response = uploads.upload("r1", "big.txt", b"x" * 2500, status=400)
    assert response.json["errno"] == 107
    assert response.json["message"] == (
        "body: File size (2500 bytes) exceeds the limit (1000 bytes)."
    )
    assert response.json["details"][0]["size"] == 2500
    assert response.json["details"][0]["max_size_bytes"] == 1000
    assert uploads.files() == set()
    assert uploads.upload("r1", "ok.txt", b"x" * 1000).status_int == 201


def test_oversize_content_length_refused_before_reading(storage_root):
    uploads = Uploads(build_app(storage_root, max_size_bytes="1000"), storage_root)

    class Unreadable(io.RawIOBase):
        def read(self, size=-1):
            raise AssertionError("the body was read")

    request = Request.blank(URL, method="POST", headers=ALICE)
    request.environ["wsgi.input"] = Unreadable()
    request.environ["CONTENT_TYPE"] = MULTIPART
    request.environ["CONTENT_LENGTH"] = str(50 * 1024 * 1024)
    response = request.get_response(uploads.app.app)
    assert response.status_int == 400
    assert response.json["message"] == (
        f"body: File size (more than {50 * 1024 * 1024 - MAX_FORM_OVERHEAD} bytes) "
        "exceeds the limit (1000 bytes)."
    )
    assert uploads.files() == set()


def test_oversize_chunked_upload_stops_at_the_limit(storage_root):
    uploads = Uploads(build_app(storage_root, max_size_bytes="1000"), storage_root)
    read = []

    class Chunks(io.RawIOBase):
        def __init__(self, data):
            self.data = io.BytesIO(data)

        def readable(self):
            return True

        def read(self, size=-1):
            chunk = self.data.read(min(size, 512) if size and size > 0 else 512)
            read.append(len(chunk))
            return chunk

    data = body(part("attachment", b"x" * 100_000, "big.txt"))
    request = Request.blank(URL, method="POST", headers=ALICE)
    request.environ["wsgi.input"] = Chunks(data)
    request.environ["CONTENT_TYPE"] = MULTIPART
    request.environ.pop("CONTENT_LENGTH", None)
    request.environ["HTTP_TRANSFER_ENCODING"] = "chunked"
    request.environ["wsgi.input_terminated"] = True
    response = request.get_response(uploads.app.app)
    assert response.status_int == 400, response.body
    assert response.json["message"] == (
        "body: File size (more than 1000 bytes) exceeds the limit (1000 bytes)."
    )
    assert sum(read) < 10_000
    assert uploads.files() == set()


def test_per_collection_limit_overrides_global(storage_root):
    uploads = Uploads(
        build_app(storage_root, max_size_bytes="10", **{"resources.b.c.max_size_bytes": "100"}),
        storage_root,
    )
    uploads.upload("r1", "a.txt", b"x" * 100)
    uploads.upload("r2", "a.txt", b"x" * 101, status=400)


@pytest.mark.parametrize(
    "filename",
    [
        "../../../etc/passwd.txt",
        "/etc/passwd.txt",
        "..\\..\\windows\\win.txt",
        "a\x00b.txt",
        "..txt",
        "." * 300 + ".txt",
        "x" * 5000 + ".txt",
        "ünïcødé ∂ file.txt",
        "con.txt",
    ],
)
def test_hostile_filenames_stay_under_the_root(storage_root, filename):
    uploads = Uploads(build_app(storage_root, randomize="false"), storage_root)
    response = uploads.upload("r1", filename, b"data", status="*")
    if response.status_int == 201:
        location = response.json["location"]
        path = (storage_root / location).resolve()
        assert path.is_relative_to(storage_root.resolve())
        assert path.read_bytes() == b"data"
        assert "/" not in response.json["filename"] and "\\" not in response.json["filename"]
    else:
        assert response.status_int == 400
        assert uploads.files() == set()
    for stored in uploads.files():
        assert (storage_root / stored).resolve().is_relative_to(storage_root.resolve())


def test_non_utf8_filename_is_refused(uploads):
    head = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="attachment"; filename="a'
    payload = head.encode() + b'\xff.txt"\r\n\r\nx\r\n' + f"--{BOUNDARY}--\r\n".encode()
    response = raw_post(uploads.app, payload)
    assert response.status_int == 400
    assert response.json["errno"] == 107
    assert uploads.files() == set()


@pytest.mark.parametrize("record_id", ["..", "%2e%2e", "a%2Fb", "x" * 300, "r%00", "-r"])
def test_hostile_record_ids_are_refused_or_stored_under_root(storage_root, record_id):
    app = build_app(
        storage_root, folder="{record_id}", randomize="false", filename_pattern="{rid}{filename}"
    )
    uploads = Uploads(app, storage_root)
    response = app.post(
        f"{RECORDS}/{record_id}/attachment",
        upload_files=[("attachment", "a.txt", b"x")],
        headers=ALICE,
        status="*",
    )
    if response.status_int == 201:  # a valid, if unusual, Kinto id
        path = (storage_root / response.json["location"]).resolve()
        assert path.is_relative_to(storage_root.resolve())
        assert len(path.name) <= 120
    else:
        assert 400 <= response.status_int < 500
        assert uploads.files() == set()


def test_hostile_folder_placeholders_stay_under_root(storage_root):
    uploads = Uploads(
        build_app(
            storage_root,
            folder="../{bucket_id}/../../{collection_id}/{record_id}",
            randomize="false",
            filename_pattern="{rid}-{filename}",
        ),
        storage_root,
    )
    meta = uploads.upload("r1", "../a.txt", b"x").json
    assert (storage_root / meta["location"]).resolve().is_relative_to(storage_root.resolve())
    assert meta["location"] == "b/c/r1/r1-a.txt"


def test_refused_upload_leaves_no_empty_folders(storage_root):
    uploads = Uploads(
        build_app(storage_root, folder="{bucket_id}/{collection_id}/{record_id}"), storage_root
    )
    response = raw_post(uploads.app, body(FILE, part("colour", b"red")))
    assert response.status_int == 400
    assert list(storage_root.iterdir()) == []
