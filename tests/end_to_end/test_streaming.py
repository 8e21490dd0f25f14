"""Bodies as a real server hands them over: chunked transfer encoding cut at odd places,
a body far larger than memory should hold, and one refused as soon as it is too large."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from ..helpers.kinto_apps import files_under
from ..helpers.live_server import (
    BOUNDARY,
    COLLECTION_PATH,
    Kinto,
    MiB,
    assert_metadata,
    random_file,
    repeated,
    running_kinto,
    stored_path,
    streamed_upload,
)
from ..helpers.raw_http import (
    CLOSING,
    TRANSFERS,
    assert_kinto_400,
    chunked_framing,
    connect,
    data_part,
    file_part_head,
    read_response,
    send_until_answered,
    upload_head,
)

pytestmark = pytest.mark.integration


def odd_pieces(data: bytes, cuts: Iterable[int]) -> Iterator[bytes]:
    """``data`` cut at the given offsets, so that pieces end inside headers and boundaries."""
    start = 0
    for cut in sorted(set(cuts)):
        if start < cut < len(data):
            yield data[start:cut]
            start = cut
    yield data[start:]


def test_chunked_upload_with_generator_body(kinto, root):
    """Clients that do not know the size up front stream with Transfer-Encoding: chunked."""
    # Bytes that look like the start of a boundary inside the file must stay file bytes.
    content = os.urandom(3 * MiB) + f"\r\n--{BOUNDARY[:-3]}".encode() + os.urandom(1000)
    head = data_part('{"title": "chunked"}') + file_part_head("stream.txt")
    body = head + content + CLOSING
    end = len(head) + len(content)
    cuts = [1, 7, 40, len(head) - 3, len(head) + 1, *range(65537, end, 262_147), end + 5, end + 9]

    response = kinto.request(
        "POST",
        f"{COLLECTION_PATH}/records/chunked/attachment",
        data=odd_pieces(body, cuts),
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    meta = assert_metadata(response, "stream.txt", content)
    assert stored_path(root, kinto.server, meta["location"]).read_bytes() == content
    record = kinto.record("chunked").json()["data"]
    assert record["title"] == "chunked"
    assert record["attachment"] == meta


def test_large_upload_streams_without_buffering(kinto, root, tmp_path):
    """A 64 MiB upload must flow to disk, not into the worker's memory."""
    source = tmp_path / "big.csv"
    expected = random_file(source, 64 * MiB)
    response, growth = streamed_upload(kinto, "big", source)
    assert response.status_code == 201, response.text
    meta = response.json()
    assert meta["hash"] == expected
    assert meta["size"] == 64 * MiB
    assert growth < 32 * MiB, f"worker RSS grew by {growth / MiB:.1f} MiB"
    kinto.request("DELETE", f"{COLLECTION_PATH}/records/big/attachment")


# Oversize uploads


@pytest.fixture(scope="module")
def limited_server(tmp_path_factory) -> Iterator[tuple[Kinto, Path]]:
    limit = {"kinto.attachment.max_size_bytes": str(MiB)}
    yield from running_kinto(tmp_path_factory.mktemp("limited"), limit)


@pytest.mark.parametrize("chunked", TRANSFERS)
def test_oversize_upload_is_refused_before_the_whole_body(limited_server, chunked):
    """64 MiB against a 1 MiB limit: a 400 arrives, nothing is stored or recorded.

    Loopback socket buffers hold far less than 64 MiB, so a client that is answered
    before it could send everything proves the server did not read the whole body first.
    """
    kinto, root = limited_server
    record_id = f"huge-{int(chunked)}"
    size = 64 * MiB
    head = file_part_head("huge.txt")
    pieces = itertools.chain([head], repeated(os.urandom(256 * 1024), size), [CLOSING])
    length = None if chunked else len(head) + size + len(CLOSING)
    with connect(kinto.server) as sock:
        sock.sendall(upload_head(kinto.server, record_id, length))
        finished = send_until_answered(sock, chunked_framing(pieces) if chunked else pieces)
        error = assert_kinto_400(*read_response(sock))
    assert error["message"].startswith("body: File size"), error
    assert not finished
    assert files_under(root) == set()
    assert kinto.record(record_id).status_code == 404
