"""Stored files served by the middleware behind gunicorn (``serve_path``): their bytes and
type, conditional and ranged requests, and nothing outside the storage root."""

from __future__ import annotations

import http.client

import pytest
import requests

from ..helpers.live_server import COLLECTION_PATH, SECRET, assert_metadata, stored_path
from ..helpers.servers import HOST

pytestmark = pytest.mark.integration


PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def test_upload_then_fetch_location(kinto, root):
    """The ``location`` URL resolves to the very bytes uploaded, with their type."""
    response = kinto.upload("served", "pixel.png", PNG, "image/png")
    meta = assert_metadata(response, "pixel.png", PNG)
    assert response.headers["Location"] == f"{kinto.url}{COLLECTION_PATH}/records/served"
    assert meta["mimetype"] == "image/png"
    assert meta["location"].startswith(f"{kinto.url}/attachments/")
    assert stored_path(root, kinto.server, meta["location"]).read_bytes() == PNG

    fetched = requests.get(meta["location"], timeout=30)
    assert fetched.status_code == 200
    assert fetched.content == PNG
    assert fetched.headers["Content-Type"] == "image/png"
    etag = fetched.headers.get("ETag")
    assert etag
    again = requests.get(meta["location"], headers={"If-None-Match": etag}, timeout=30)
    assert again.status_code == 304


def test_range_and_head_on_served_file(kinto):
    """Clients resume downloads with Range and check sizes with HEAD."""
    meta = kinto.upload("ranged", "pixel.png", PNG, "image/png").json()

    partial = requests.get(meta["location"], headers={"Range": "bytes=2-5"}, timeout=30)
    assert partial.status_code == 206
    assert partial.content == PNG[2:6]
    assert partial.headers["Content-Range"] == f"bytes 2-5/{len(PNG)}"

    head = requests.head(meta["location"], timeout=30)
    assert head.status_code == 200
    assert head.content == b""
    assert int(head.headers["Content-Length"]) == len(PNG)
    assert head.headers["Content-Type"] == "image/png"


TRAVERSALS = [
    "/attachments/../kinto.ini",
    "/attachments/../x",
    "/attachments/%2e%2e/kinto.ini",
    "/attachments/%2E%2E/%2E%2E/%2E%2E/etc/passwd",
    "/attachments/%2e%2e/etc/passwd",
    "/attachments/..%2fkinto.ini",
    "/attachments/%2e%2e%2fkinto.ini",
    "/attachments/%252e%252e/kinto.ini",
    "/attachments//etc/passwd",
    "/attachments/%2Fetc%2Fpasswd",
    "/attachments/b/../../kinto.ini",
    "/attachments/..%5ckinto.ini",
    "/attachments/kinto.ini%00.png",
    "/attachments/",
    "/attachments/__heartbeat__",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_paths_outside_storage_are_not_served(kinto, path):
    """Nothing outside the storage root is reachable: the ini next to it holds secrets."""
    connection = http.client.HTTPConnection(HOST, kinto.server.port, timeout=30)
    try:
        connection.putrequest("GET", path, skip_accept_encoding=True)  # the path, unnormalized
        connection.endheaders()
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    assert response.status == 404, body
    assert SECRET.encode() not in body
    assert b"root:" not in body
