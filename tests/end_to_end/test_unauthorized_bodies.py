"""Through gunicorn: a large record write or batch from someone Kinto refuses is answered
before its body is read, and the worker's memory does not grow with it."""

from __future__ import annotations

import pytest

from ..helpers.live_server import COLLECTION_PATH, MiB, RssSampler, repeated
from ..helpers.raw_http import connect, read_response, send_until_answered
from ..helpers.servers import rss_bytes

pytestmark = pytest.mark.integration

SIZE = 100 * MiB


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_an_anonymous_100_mb_record_write_costs_no_memory(kinto, method):
    kinto.request("PUT", f"{COLLECTION_PATH}/records/r1", json={"data": {}})
    worker = kinto.server.worker_pid()
    baseline = rss_bytes(worker)
    sampler = RssSampler(worker)
    sampler.start()
    try:
        sock = connect(kinto.server)
        head = (
            f"{method} {COLLECTION_PATH}/records/r1 HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{kinto.server.port}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {SIZE}\r\n\r\n"
        ).encode()
        body = repeated(b'{"data": {"attachment": "' + b"x" * MiB, SIZE)
        sent_all = send_until_answered(sock, [head, *body])
        status, _, answer = read_response(sock)
        sock.close()
    finally:
        sampler.stop()
    # Over max_request_body_bytes: refused by its length alone, before Kinto is asked.
    assert status == 413, answer[:300]
    assert not sent_all  # answered before the body was read
    assert (sampler.peak - baseline) < 16 * MiB


def test_an_anonymous_100_mb_batch_is_refused_unread(kinto):
    worker = kinto.server.worker_pid()
    baseline = rss_bytes(worker)
    sampler = RssSampler(worker)
    sampler.start()
    try:
        sock = connect(kinto.server)
        head = (
            f"POST /v1/batch HTTP/1.1\r\nHost: 127.0.0.1:{kinto.server.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {SIZE}\r\n\r\n"
        ).encode()
        sent_all = send_until_answered(
            sock, [head, *repeated(b'{"requests": [' + b" " * MiB, SIZE)]
        )
        status, _, answer = read_response(sock)
        sock.close()
    finally:
        sampler.stop()
    assert status == 413, answer[:300]
    assert b'"errno": 113' in answer
    assert not sent_all  # answered before the body was read
    assert (sampler.peak - baseline) < 32 * MiB
