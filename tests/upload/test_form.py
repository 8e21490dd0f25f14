"""The streaming parse, fed in odd chunk sizes: the file reaches the sink whole."""

from __future__ import annotations

import hashlib
import os

import pytest

from kinto_attachment_mw.protocol.errors import AttachmentError
from kinto_attachment_mw.upload.form import FilePart, multipart_boundary, parse_form

pytestmark = pytest.mark.unit

BOUNDARY = "----boundary0123456789"


class ListSink:
    def __init__(self):
        self.chunks: list[bytes] = []

    def write(self, chunk: bytes) -> None:
        self.chunks.append(bytes(chunk))


def build(content: bytes, data: bytes = b'{"title": "x"}', data_first: bool = True) -> bytes:
    data_part = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="data"\r\n\r\n'.encode()
        + data
        + b"\r\n"
    )
    file_part = (
        (
            f"--{BOUNDARY}\r\n"
            'Content-Disposition: form-data; name="attachment"; filename="f.bin"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + content
        + b"\r\n"
    )
    parts = [data_part, file_part] if data_first else [file_part, data_part]
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def chunked(payload: bytes, sizes: list[int]):
    offset, index = 0, 0
    while offset < len(payload):
        size = sizes[index % len(sizes)]
        yield payload[offset : offset + size]
        offset += size
        index += 1


# The content contains near-boundaries, CRLFs and dashes to tempt the parser.
CONTENT = os.urandom(3000) + f"\r\n--{BOUNDARY[:-1]}".encode() + b"\r\n--\r\n" + os.urandom(70_001)


@pytest.mark.parametrize(
    "sizes",
    [[1], [7], [len(BOUNDARY) + 3], [2, 1, 5000], [65536], [1 << 20]],
    ids=lambda s: "chunks-" + "-".join(map(str, s)),
)
@pytest.mark.parametrize("data_first", [True, False])
def test_file_reaches_sink_whole_whatever_the_chunking(sizes, data_first):
    payload = build(CONTENT, data_first=data_first)
    sink = ListSink()
    opened: list[FilePart] = []

    def open_file(part: FilePart) -> ListSink:
        opened.append(part)
        return sink

    form = parse_form(chunked(payload, sizes), BOUNDARY, open_file)
    assert opened == [FilePart("f.bin", "application/octet-stream")]
    assert form.fields == {"data": {"title": "x"}}
    assert hashlib.sha256(b"".join(sink.chunks)).digest() == hashlib.sha256(CONTENT).digest()


def test_split_exactly_inside_the_closing_delimiter():
    payload = build(b"abc")
    cut = payload.index(f"\r\n--{BOUNDARY}".encode(), payload.index(b"abc")) + 5
    sink = ListSink()
    parse_form(iter([payload[:cut], payload[cut:]]), BOUNDARY, lambda part: sink)
    assert b"".join(sink.chunks) == b"abc"


def test_sink_is_not_opened_for_a_refused_part():
    payload = build(b"abc").replace(b'name="data"', b'name="colour"')
    with pytest.raises(AttachmentError) as raised:
        parse_form(iter([payload]), BOUNDARY, lambda part: pytest.fail("opened"))
    assert raised.value.errno == 109


def test_too_many_parts_is_refused():
    many = b"".join(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="data"\r\n\r\n{{}}\r\n'.encode()
        for _ in range(20)
    )
    with pytest.raises(AttachmentError):
        parse_form(iter([many + f"--{BOUNDARY}--\r\n".encode()]), BOUNDARY, lambda p: ListSink())


def test_huge_field_is_refused():
    payload = build(b"abc", data=b'"' + b"x" * (2 * 1024 * 1024) + b'"')
    with pytest.raises(AttachmentError) as raised:
        parse_form(chunked(payload, [65536]), BOUNDARY, lambda part: ListSink())
    assert "larger than" in raised.value.message


@pytest.mark.parametrize(
    "content_type,ok",
    [
        (f"multipart/form-data; boundary={BOUNDARY}", True),
        (f'multipart/form-data; boundary="{BOUNDARY}"', True),
        (f"Multipart/Form-Data; charset=utf-8; boundary={BOUNDARY}", True),
        ("multipart/mixed; boundary=x", False),
        ("multipart/form-data; boundary=", False),
        ("multipart/form-data; boundary=" + "x" * 300, False),
        ("", False),
    ],
)
def test_boundary_from_content_type(content_type, ok):
    if ok:
        assert multipart_boundary(content_type) == BOUNDARY
    else:
        with pytest.raises(AttachmentError) as raised:
            multipart_boundary(content_type)
        assert raised.value.status == 400 and raised.value.errno == 107


def test_invalid_data_before_the_file_is_refused_before_the_file_is_read():
    payload = build(b"never read", data=b"{broken", data_first=True)
    with pytest.raises(AttachmentError) as raised:
        parse_form(iter([payload]), BOUNDARY, lambda part: pytest.fail("file opened"))
    assert raised.value.errno == 109
    assert raised.value.message.startswith("body: data is not valid JSON (")
