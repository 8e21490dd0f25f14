"""Raw HTTP over sockets, for clients that misbehave: bodies cut short or longer than
announced, chunked framing written by hand, connections dropped mid-upload."""

from __future__ import annotations

import base64
import http.client
import json
import selectors
import socket
from collections.abc import Iterable, Iterator

import pytest

from .live_server import BOUNDARY, COLLECTION_PATH, USER
from .servers import HOST, GunicornServer


def basic_auth(user: tuple[str, str] = USER) -> str:
    return "Basic " + base64.b64encode(":".join(user).encode()).decode()


def upload_head(server: GunicornServer, record_id: str, content_length: int | None) -> bytes:
    """Request line and headers of an upload; chunked when no length is given."""
    lines = [
        f"POST {COLLECTION_PATH}/records/{record_id}/attachment HTTP/1.1",
        f"Host: {HOST}:{server.port}",
        f"Authorization: {basic_auth()}",
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}",
        "Connection: close",
        f"Content-Length: {content_length}"
        if content_length is not None
        else "Transfer-Encoding: chunked",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def file_part_head(filename: str, content_type: str = "text/plain") -> bytes:
    return (
        f"--{BOUNDARY}\r\n"
        f'Content-Disposition: form-data; name="attachment"; filename="{filename}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()


def data_part(json_text: str) -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="data"\r\n\r\n{json_text}\r\n'
    ).encode()


CLOSING = f"\r\n--{BOUNDARY}--\r\n".encode()

#: A body with a Content-Length, and the same sent chunked.
TRANSFERS = [pytest.param(False, id="length"), pytest.param(True, id="chunked")]


def connect(server: GunicornServer) -> socket.socket:
    return socket.create_connection((HOST, server.port), timeout=60)


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    response = http.client.HTTPResponse(sock)
    try:
        response.begin()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        response.close()


def send_until_answered(sock: socket.socket, chunks: Iterable[bytes]) -> bool:
    """Send ``chunks`` until the server answers or drops us; whether all were sent.

    A client that keeps writing into a server that already answered ends up with a
    reset connection and maybe no answer: like a careful client, stop writing as soon as
    the answer is readable.
    """
    sock.setblocking(False)
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
            for chunk in chunks:
                view = memoryview(chunk)
                while view:
                    events = selector.select(timeout=60)
                    assert events, "server neither read the body nor answered in 60 s"
                    if any(mask & selectors.EVENT_READ for _, mask in events):
                        return False
                    try:
                        view = view[sock.send(view) :]
                    except BlockingIOError:
                        continue
                    except (BrokenPipeError, ConnectionResetError):
                        return False
        return True
    finally:
        sock.setblocking(True)
        sock.settimeout(60)


def chunked_framing(chunks: Iterable[bytes]) -> Iterator[bytes]:
    for chunk in chunks:
        yield f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    yield b"0\r\n\r\n"


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def assert_kinto_400(status: int, headers: dict[str, str], body: bytes) -> dict:
    """Kinto's JSON error envelope, errno 107, as clients of Kinto parse it."""
    assert (status, headers.get("Content-Type")) == (400, "application/json"), body
    error = json.loads(body)
    assert error["code"] == 400
    assert error["errno"] == 107
    assert error["error"]
    assert error["message"]
    return error


def half_closed_upload(server: GunicornServer, head: bytes, body: bytes):
    """Send everything, half-close (the client has nothing more), read the answer."""
    with connect(server) as sock:
        sock.sendall(head + body)
        sock.shutdown(socket.SHUT_WR)
        return read_response(sock)
