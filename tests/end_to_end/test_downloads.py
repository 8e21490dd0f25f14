"""Permission-checked downloads through gunicorn stream the file: the worker's memory does
not grow with its size."""

from __future__ import annotations

import hashlib

import pytest

from ..helpers.live_server import COLLECTION_PATH, MiB, RssSampler, random_file, streamed_upload
from ..helpers.servers import rss_bytes

pytestmark = pytest.mark.integration

SIZE = 2048 * MiB


def test_a_2_gib_download_streams_with_bounded_memory(kinto, tmp_path):
    source = tmp_path / "large.csv"
    expected = random_file(source, SIZE)
    uploaded, _ = streamed_upload(kinto, "large", source)
    assert uploaded.status_code == 201, uploaded.text
    source.unlink()
    url = f"{COLLECTION_PATH}/records/large/attachment"
    worker = kinto.server.worker_pid()
    baseline = rss_bytes(worker)
    sampler = RssSampler(worker)
    sampler.start()
    digest, received = hashlib.sha256(), 0
    try:
        with kinto.request("GET", url, stream=True) as answer:
            assert answer.status_code == 200
            assert answer.headers["Content-Length"] == str(SIZE)
            for block in answer.iter_content(MiB):
                digest.update(block)
                received += len(block)
    finally:
        sampler.stop()
    assert (received, digest.hexdigest()) == (SIZE, expected)
    assert sampler.peak - baseline < 16 * MiB
    kinto.request("DELETE", f"{COLLECTION_PATH}/records/large")
