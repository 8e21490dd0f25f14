"""Clients that go away mid-upload, and bodies shorter or longer than announced: a clean
400 in Kinto's envelope, and nothing left behind, the previous file included."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ..helpers.kinto_apps import files_under
from ..helpers.live_server import (
    Kinto,
    MiB,
    assert_metadata,
    stored_path,
    temp_files,
    wait_until,
)
from ..helpers.raw_http import (
    CLOSING,
    TRANSFERS,
    assert_kinto_400,
    chunk,
    connect,
    file_part_head,
    half_closed_upload,
    read_response,
    upload_head,
)
from ..helpers.servers import GunicornServer

pytestmark = pytest.mark.integration


def upload_and_disconnect(server: GunicornServer, root: Path, record_id: str, chunked: bool):
    """Announce 8 MiB, send about 1 MiB of it, then close the connection.

    The connection is closed only once the server has started storing the file, so that
    the test covers the cleanup of a half-written file, not an upload refused early.
    """
    part = file_part_head("cut.txt") + os.urandom(MiB + 4096)
    if chunked:  # one chunk announced as 8 MiB
        request = upload_head(server, record_id, None) + f"{8 * MiB:x}\r\n".encode() + part
    else:
        request = upload_head(server, record_id, 8 * MiB) + part
    with connect(server) as sock:
        sock.sendall(request)
        assert wait_until(lambda: temp_files(root)), "the server never started storing"


def settle(kinto: Kinto, root: Path) -> None:
    """Wait for the single worker to be done with the dropped request.

    One sync worker answers requests one after another, so any answer means the dropped
    upload was handled; polling for temporary files covers any cleanup after it.
    """
    assert kinto.request("GET", "/v1/").status_code == 200
    wait_until(lambda: not temp_files(root))


@pytest.mark.parametrize("chunked", TRANSFERS)
def test_disconnect_mid_upload_leaves_nothing(kinto, root, chunked):
    """A client that goes away must not leave a file, a temp file or a record behind."""
    record_id = f"gone-{int(chunked)}"
    before = files_under(root)
    upload_and_disconnect(kinto.server, root, record_id, chunked)
    settle(kinto, root)
    assert files_under(root) == before
    assert temp_files(root) == set()
    assert kinto.record(record_id).status_code == 404


@pytest.mark.parametrize("chunked", TRANSFERS)
def test_disconnect_mid_replacement_keeps_old_file(kinto, root, chunked):
    """A failed replacement keeps the record and its previous file untouched."""
    record_id = f"kept-{int(chunked)}"
    old = assert_metadata(kinto.upload(record_id, "old.txt", b"old bytes"), "old.txt", b"old bytes")
    before = files_under(root)
    upload_and_disconnect(kinto.server, root, record_id, chunked)
    settle(kinto, root)
    assert files_under(root) == before
    assert kinto.record(record_id).json()["data"]["attachment"] == old
    assert stored_path(root, kinto.server, old["location"]).read_bytes() == b"old bytes"


# Bodies shorter or longer than announced


@pytest.mark.parametrize(
    "closing", [pytest.param(False, id="partial-form"), pytest.param(True, id="whole-form")]
)
def test_content_length_larger_than_body(kinto, root, closing):
    """A client that half-closes before its announced length gets a clean 400."""
    record_id = f"short-{int(closing)}"
    body = file_part_head("short.txt") + b"x" * 4096 + (CLOSING if closing else b"")
    before = files_under(root)
    head = upload_head(kinto.server, record_id, len(body) + MiB)
    error = assert_kinto_400(*half_closed_upload(kinto.server, head, body))
    assert "truncated" in error["message"]
    assert files_under(root) == before
    assert kinto.record(record_id).status_code == 404


FIRST_CHUNK = chunk(file_part_head("cut.txt") + b"z" * 65536)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(FIRST_CHUNK[:-200], id="in-chunk-data"),
        pytest.param(FIRST_CHUNK + b"1", id="in-chunk-size"),
        pytest.param(FIRST_CHUNK[:-2], id="before-chunk-crlf"),
        pytest.param(FIRST_CHUNK + chunk(CLOSING) + b"0\r\n", id="before-final-crlf"),
    ],
)
def test_chunked_body_cut_short(kinto, root, body):
    """Chunked framing that stops early is a truncated body, wherever the cut falls."""
    record_id = f"cut-{len(body)}"
    before = files_under(root)
    head = upload_head(kinto.server, record_id, None)
    assert_kinto_400(*half_closed_upload(kinto.server, head, body))
    assert files_under(root) == before
    assert kinto.record(record_id).status_code == 404


@pytest.mark.parametrize(
    "missing", [pytest.param(10, id="cut-in-boundary"), pytest.param(5000, id="cut-in-file")]
)
def test_content_length_smaller_than_body(kinto, root, missing):
    """Only the announced bytes are the body: the form then ends without its boundary."""
    record_id = f"long-{missing}"
    body = file_part_head("long.txt") + b"y" * 8192 + CLOSING
    before = files_under(root)
    with connect(kinto.server) as sock:
        sock.sendall(upload_head(kinto.server, record_id, len(body) - missing) + body)
        error = assert_kinto_400(*read_response(sock))
    assert "multipart" in error["message"]
    assert files_under(root) == before
    assert kinto.record(record_id).status_code == 404


def test_disconnect_mid_batch_is_no_server_error(kinto):
    """A batch whose client goes away mid-body: a 400 as for an upload cut short, no 500
    and no traceback in the server's log."""
    server = kinto.server
    body = b'{"requests": [' + b" " * 65536
    head = (
        f"POST /v1/batch HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body) + MiB}\r\n\r\n"
    ).encode()
    logged = len(server.log())
    error = assert_kinto_400(*half_closed_upload(server, head, body))
    assert "ended before its Content-Length" in error["message"]
    assert kinto.request("GET", "/v1/").status_code == 200
    log = server.log()[logged:]
    assert "Traceback" not in log and "Unexpected error" not in log
