"""Slow request bodies against the server ``make serve`` runs (8 threads): anonymous
clients trickling bodies hold no thread past the grace their rate is measured after,
and a request refused before its body is read closes its connection at once."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
import requests

from ..helpers.make_serve import MakeServe, start_make_serve
from ..helpers.raw_http import connect, read_response
from ..helpers.slow_bodies import SlowBodies, timed_gets

pytestmark = pytest.mark.integration

THREADS = 8  # the Makefile's `serve`
AUTH = ("alice", "secret")


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[MakeServe]:
    server = start_make_serve(tmp_path_factory.mktemp("slow-bodies"))
    try:
        yield server
    finally:
        server.stop()


def test_trickling_bodies_hold_no_thread(server):
    """Twice as many clients as threads, on bodies the middleware reads (a record PUT)
    and on the batch endpoint: cut once 5 s of reading show less than 1 KiB/s."""
    with SlowBodies(server.port, 2 * THREADS) as attack:
        start = attack.connected_at + 15
        durations = timed_gets(server.url, start, start + 6)
        statuses = attack.statuses()
    assert max(durations) < 3, durations
    assert statuses == [408] * 2 * THREADS


def test_a_refused_upload_closes_its_connection_at_once(server):
    """Anonymous uploads announcing 100 MB and sending none of it: each is answered 401
    with ``Connection: close`` and closed, not drained (gunicorn would otherwise wait for
    the body in the request's thread, then in its main loop, which accepts nothing)."""
    head = (
        "POST /v1/buckets/b/collections/c/records/r/attachment HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{server.port}\r\n"
        "Content-Type: multipart/form-data; boundary=x\r\n"
        f"Content-Length: {100 * 1000 * 1000}\r\n\r\n"
    ).encode()
    for path in ("/v1/buckets/b", "/v1/buckets/b/collections/c"):
        requests.put(server.url + path, json={}, auth=AUTH, timeout=30).raise_for_status()
    clients = [connect(server) for _ in range(2 * THREADS)]
    began = time.monotonic()
    for sock in clients:
        sock.sendall(head)
    for sock in clients:
        sock.settimeout(10)
        status, headers, _ = read_response_keeping(sock)
        assert (status, headers.get("Connection")) == (401, "close")
    for sock in clients:
        sock.settimeout(2)
        assert sock.recv(1) == b""  # closed by the server, the body never sent
        sock.close()
    answered = time.monotonic()
    got = requests.get(f"{server.url}/v1/", timeout=10)
    assert got.status_code == 200
    assert time.monotonic() - answered < 1
    assert answered - began < 5


def read_response_keeping(sock: socket.socket):
    """The answer, read without closing the socket (``read_response`` would)."""
    duplicate = sock.dup()
    try:
        return read_response(duplicate)
    finally:
        duplicate.close()


def test_a_body_kinto_reads_cut_by_the_watchdog_is_a_408_without_traceback(server):
    """A bucket written by a caller who may (Kinto reads that body itself) whose body
    stalls after one byte: the watchdog cuts it once the grace is over, the client gets
    408, and neither Kinto nor gunicorn logs an error or a traceback for it."""
    with connect(server) as sock:
        sock.sendall(
            (
                "PUT /v1/buckets/stalled HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{server.port}\r\nAuthorization: Basic YWxpY2U6c2VjcmV0\r\n"
                "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
            ).encode()
        )
        sock.settimeout(15)
        status, headers, _ = read_response(sock)
        assert (status, headers.get("Connection")) == (408, "close")
    log = server.log()
    assert "PUT /v1/buckets/stalled 408" in log, log[-2000:]
    assert "Traceback" not in log and " ERROR " not in log, log[-4000:]
