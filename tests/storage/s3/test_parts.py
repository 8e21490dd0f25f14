"""S3 uploads in parts: part sizes within S3's limits, two buffers taking turns without
mixing their parts' bytes, the CRC32 sent for S3 to check, a part sent again whole after
a stall, and the upper bound of a file's size that the upload gives the storage.

moto's server stands in for S3, as in ``test_s3.py``.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import os
import time
import zlib

import kinto
import pytest
import webtest
from botocore.awsrequest import AWSResponse
from botocore.config import Config

from kinto_attachment_mw.middleware import AttachmentMiddleware
from kinto_attachment_mw.protocol.paths import RecordPath
from kinto_attachment_mw.storage import LocalStorage, StoredFileMetadata
from kinto_attachment_mw.storage.s3 import S3Storage
from kinto_attachment_mw.storage.s3 import parts as s3_parts
from kinto_attachment_mw.storage.s3.objects import FINISH_READ_TIMEOUT
from kinto_attachment_mw.storage.s3.parts import (
    MAX_PART_SIZE,
    MAX_PARTS,
    MIN_PART_SIZE,
    PartBody,
    PartBuffer,
    part_size,
)
from kinto_attachment_mw.upload.new_file import size_bound
from kinto_attachment_mw.upload.sinks import gzip_size_bound

from ...helpers.kinto_apps import (
    TEST_PART_SIZE,
    Uploads,
    build_app,
    build_s3_app,
    kinto_settings,
    s3_settings,
    s3_storage,
)
from ...helpers.s3 import StallingProxy, pending_uploads

pytestmark = pytest.mark.integration

MiB = 1024 * 1024
GiB = 1024 * MiB
TiB = 1024 * GiB
OWNER = StoredFileMetadata(RecordPath("b", "c", "r"), hash="h")


def crc32_of(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def write_in_odd_chunks(writer, content: bytes) -> None:
    """Chunks of changing sizes, some ending right on a part's boundary, some across."""
    sizes = [1, TEST_PART_SIZE - 2, 1, 7, MiB + 3, 3 * MiB, 64 * 1024 - 1]
    position, turn = 0, 0
    while position < len(content):
        size = sizes[turn % len(sizes)]
        writer.write(content[position : position + size])
        position, turn = position + size, turn + 1


def recording_sent_parts(storage: S3Storage) -> list[tuple[int, bytes, dict]]:
    """What each ``UploadPart`` sent: its number, its bytes, the other parameters."""
    sent, real_call = [], storage.call

    def call(operation, key, **params):
        if operation == "upload_part":
            body = params["Body"]
            sent.append((params["PartNumber"], bytes(body.read()), params))
            body.seek(0)
        return real_call(operation, key, **params)

    storage.call = call
    return sent


def parts_in_s3(client, bucket: str) -> int:
    return sum(
        len(client.list_parts(Bucket=bucket, Key=u["Key"], UploadId=u["UploadId"]).get("Parts", []))
        for u in pending_uploads(client, bucket)
    )


@pytest.mark.parametrize(
    "size_hint",
    [
        pytest.param(0, id="empty"),
        pytest.param(MiB, id="1MiB"),
        pytest.param(2 * GiB, id="2GiB"),
        pytest.param(MAX_PARTS * MIN_PART_SIZE, id="10000-parts-of-5MiB"),
        pytest.param(MAX_PARTS * MIN_PART_SIZE + 1, id="one-byte-more"),
        pytest.param(100 * GiB, id="100GiB"),
        pytest.param(5 * TiB, id="largest-object"),
    ],
)
def test_part_size_from_an_upper_bound_keeps_within_10000_parts(size_hint):
    """As small as S3 allows (an upload holds two parts in memory), unless 10,000 of
    them would not hold the file; the same for every part."""
    size = part_size(MIN_PART_SIZE, size_hint, 1)
    assert MIN_PART_SIZE <= size <= MAX_PART_SIZE
    assert size * MAX_PARTS >= size_hint
    assert size == MIN_PART_SIZE or (size - MiB) * MAX_PARTS < size_hint
    assert {part_size(MIN_PART_SIZE, size_hint, n) for n in (2, 1001, MAX_PARTS)} == {size}


def test_part_size_without_an_upper_bound_grows_every_thousand_parts():
    sizes = [part_size(MIN_PART_SIZE, None, number) for number in range(1, MAX_PARTS + 1)]
    assert set(sizes[:1000]) == {MIN_PART_SIZE}  # up to 4.8 GiB: S3's smallest parts
    assert sizes[1000] == 2 * MIN_PART_SIZE
    assert sizes == sorted(sizes)
    assert max(sizes) <= MAX_PART_SIZE
    assert sum(sizes) > 4.8 * TiB  # S3's largest object is 5 TiB


@pytest.mark.parametrize(
    "length,limit,bound",
    [
        pytest.param(1000, 0, 1000, id="length"),
        pytest.param(1000, 500, 500, id="limit-below-length"),
        pytest.param(None, 500, None, id="chunked-with-limit"),
        pytest.param(None, 0, None, id="chunked-no-limit"),
        pytest.param(0, 500, 0, id="empty-body"),
    ],
)
def test_size_bound_of_an_upload(length, limit, bound):
    assert size_bound(length, limit) == bound


@pytest.mark.parametrize("size", [0, 1, 1000, 3 * MiB + 17])
def test_gzip_size_bound_holds_what_does_not_compress(size):
    data = os.urandom(size)
    assert len(gzip.compress(data, mtime=0)) <= gzip_size_bound(size)


def test_upload_gives_the_storage_its_content_length_as_upper_bound(storage_root):
    """The request's Content-Length bounds the file: S3 picks its part size from it."""
    hints = []

    class Recording(LocalStorage):
        def open_writer(self, key, content_type, size_hint=None, *, private=False):
            hints.append(size_hint)
            return super().open_writer(key, content_type, size_hint)

    settings = kinto_settings(storage_root)
    storage = Recording(str(storage_root))
    app = webtest.TestApp(
        AttachmentMiddleware(kinto.main({}, **settings), settings, storage=storage)
    )
    content = os.urandom(10_000)
    response = Uploads(app, storage_root).upload("r1", "f.txt", content)
    assert response.json["size"] == len(content)
    assert len(content) < hints[0] == int(response.request.headers["Content-Length"])


def test_parts_in_two_buffers_taking_turns_keep_their_own_bytes(moto, monkeypatch):
    """Six parts, each with bytes of its own, through two buffers: a buffer filled again
    before its part was in S3, or a part sent from the wrong buffer, would mix them."""
    mapped = []
    real_init = s3_parts.PartBuffer.__init__

    def counting_init(self, size):
        mapped.append(size)
        real_init(self, size)

    monkeypatch.setattr(s3_parts.PartBuffer, "__init__", counting_init)
    bucket = moto.new_bucket()
    storage = s3_storage(bucket, moto.url)
    parts = [bytes([n]) * 1000 + os.urandom(TEST_PART_SIZE - 1000) for n in range(5)]
    content = b"".join(parts) + os.urandom(12345)
    writer = storage.open_writer("f/parts.bin", "application/octet-stream", len(content))
    write_in_odd_chunks(writer, content)
    key = writer.commit(OWNER)
    stored = moto.client.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert hashlib.sha256(stored).hexdigest() == hashlib.sha256(content).hexdigest()
    assert stored == content
    assert mapped == [TEST_PART_SIZE, TEST_PART_SIZE]
    assert pending_uploads(moto.client, bucket) == []


def test_parts_grow_when_the_size_is_not_known(moto, monkeypatch):
    """Without an upper bound (a chunked request, no size limit), later parts are larger:
    a larger buffer replaces the spare one."""
    monkeypatch.setattr(s3_parts, "_PARTS_PER_SIZE", 2)
    bucket = moto.new_bucket()
    storage = s3_storage(bucket, moto.url)
    sent = recording_sent_parts(storage)
    content = os.urandom(4 * TEST_PART_SIZE + 3 * MiB)
    writer = storage.open_writer("f/growing.bin", "application/octet-stream")
    write_in_odd_chunks(writer, content)
    key = writer.commit(OWNER)
    sizes = [len(body) for _, body, _ in sent]
    assert sizes == [TEST_PART_SIZE, TEST_PART_SIZE, 2 * TEST_PART_SIZE, 3 * MiB]
    assert b"".join(body for _, body, _ in sent) == content
    assert moto.client.get_object(Bucket=bucket, Key=key)["Body"].read() == content


def test_objects_and_parts_carry_the_crc32_of_their_bytes(moto):
    """What botocore would send by default, computed here without copying the part."""
    bucket = moto.new_bucket()
    storage = s3_storage(bucket, moto.url)
    small = os.urandom(1000)
    writer = storage.open_writer("f/small.bin", "application/octet-stream", len(small))
    writer.write(small)
    key = writer.commit(OWNER)
    head = moto.client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == crc32_of(small)

    sent = recording_sent_parts(storage)
    writer = storage.open_writer("f/big.bin", "application/octet-stream")
    write_in_odd_chunks(writer, os.urandom(2 * TEST_PART_SIZE + 10))
    writer.commit(OWNER)
    assert [number for number, _, _ in sent] == [1, 2, 3]
    for _, body, params in sent:
        assert params["ChecksumCRC32"] == crc32_of(body)
        assert params["ChecksumAlgorithm"] == "CRC32"


def test_no_checksum_when_botocore_is_told_the_service_takes_none(moto):
    bucket = moto.new_bucket()
    quiet = Config(request_checksum_calculation="when_required")
    storage = s3_storage(bucket, moto.url, client_config=quiet)
    writer = storage.open_writer("f/small.bin", "application/octet-stream")
    writer.write(b"no checksum")
    key = writer.commit(OWNER)
    head = moto.client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert "ChecksumCRC32" not in head


def test_a_part_sent_again_after_a_stall_goes_whole(moto):
    """S3 stops answering in the middle of a part: boto3 sends it again on a new
    connection, from its first byte."""
    proxy = StallingProxy(moto.port)
    try:
        bucket = moto.new_bucket()
        retrying = Config(connect_timeout=1, read_timeout=1, retries={"total_max_attempts": 2})
        storage = s3_storage(bucket, proxy.url, client_config=retrying)
        content = os.urandom(2 * TEST_PART_SIZE + 1000)
        writer = storage.open_writer("f/retried.bin", "application/octet-stream", len(content))
        writer.write(content[:TEST_PART_SIZE])
        deadline = time.monotonic() + 10
        while parts_in_s3(moto.client, bucket) < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        proxy.stall_after(TEST_PART_SIZE // 2)  # inside the second part
        writer.write(content[TEST_PART_SIZE:])
        key = writer.commit(OWNER)
        assert proxy.stalled.is_set()
        assert moto.client.get_object(Bucket=bucket, Key=key)["Body"].read() == content
    finally:
        proxy.close()


def test_part_body_reads_slices_and_rewinds():
    body = PartBody(memoryview(b"0123456789"))
    assert len(body) == 10
    assert bytes(body.read(3)) == b"012"
    assert body.tell() == 3
    assert bytes(body.read()) == b"3456789"
    assert body.read(5) == b""
    assert body.seek(0) == 0
    assert bytes(body.read(-1)) == b"0123456789"
    assert body.seek(-2, 2) == 8
    assert bytes(body.read(100)) == b"89"


def test_finishing_requests_wait_longer_than_the_others(moto):
    """Completing an upload or copying an object takes time with its size."""
    storage = S3Storage(s3_settings("b", moto.url, timeout_seconds=5.0))
    finishing = storage.finishing_client.meta.config
    assert finishing.read_timeout == FINISH_READ_TIMEOUT
    assert finishing.connect_timeout == storage.client.meta.config.connect_timeout == 5.0
    assert finishing.retries == storage.client.meta.config.retries


class ReadSizes:
    """Wraps an app; keeps the size of every read of the request body."""

    def __init__(self, app):
        self.app = app
        self.sizes: list[int] = []

    def __call__(self, environ, start_response):
        stream, sizes = environ["wsgi.input"], self.sizes

        class Recording:
            def read(self, size=-1):
                sizes.append(size)
                return stream.read(size)

        environ["wsgi.input"] = Recording()
        return self.app(environ, start_response)


def test_uploads_to_s3_read_the_request_in_small_pieces(moto, storage_root):
    """S3 sets the pace, so the request is read 128 KiB at a time, not 1 MiB: fewer
    copies of it held at once beside the two parts."""
    bucket = moto.new_bucket()
    s3_app = build_s3_app(bucket, moto.url, storage=s3_storage(bucket, moto.url))
    local_app = build_app(storage_root)
    content = os.urandom(3 * MiB)
    for app, read_size in ((s3_app, 128 * 1024), (local_app, MiB)):
        recorder = ReadSizes(app.app)
        Uploads(webtest.TestApp(recorder), storage_root).upload("r1", "f.txt", content)
        assert max(recorder.sizes) == read_size


@pytest.mark.parametrize(
    ("scheme", "signed"), [("https", False), ("http", True)], ids=["https", "http"]
)
def test_parts_with_our_crc32_are_not_hashed_again_over_https(scheme, signed):
    """Over HTTPS the CRC32 header covers the body, so botocore must not SHA-256 it."""
    storage = s3_storage("bucket", f"{scheme}://s3.example.com")
    seen = []

    def answer_without_sending(request, **kwargs):
        seen.append(request.headers.get("X-Amz-Content-SHA256", b"").decode())
        return AWSResponse(request.url, 200, {"ETag": '"etag"'}, _EmptyRaw())

    storage.client.meta.events.register("before-send.s3", answer_without_sending)
    buffer = PartBuffer(MIN_PART_SIZE)
    buffer.fill(memoryview(b"x" * 1000))
    body = buffer.body()
    storage.client.upload_part(
        Bucket="bucket",
        Key="k",
        UploadId="u",
        PartNumber=1,
        Body=body,
        **storage.checksum_params(body),
    )
    storage.client.put_object(
        Bucket="bucket", Key="k", Body=buffer.body(), **storage.checksum_params(buffer.body())
    )
    assert len(seen) == 2
    for header in seen:
        assert (header != "UNSIGNED-PAYLOAD") is signed
        assert len(header) == (64 if signed else len("UNSIGNED-PAYLOAD"))


class _EmptyRaw:
    def stream(self, **kwargs):
        yield b""
