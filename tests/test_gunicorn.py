"""End-to-end: the middleware behind real gunicorn processes.

The in-process tests cannot show what a real HTTP server does with a body: chunked
transfer encoding, a client that goes away, a Content-Length that lies, a body far larger
than memory should hold. These tests start gunicorn the three ways users do (the
``KINTO_INI`` entry point, a plugin-era ini, a paste pipeline) and talk to it over
sockets, with ``requests`` where a well-behaved client is enough and raw sockets where
the point is misbehaving.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import itertools
import json
import os
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import pytest
import requests
from requests_toolbelt import MultipartEncoder

from .conftest import files_under
from .servers import HOST, GunicornServer, free_port, rss_bytes, start_gunicorn

MiB = 1024 * 1024
USER = ("alice", "secret")
BOUNDARY = "e2e-boundary-7d1f0c"
SECRET = "not-to-be-served-7c0ffee"
COLLECTION_PATH = "/v1/buckets/b/collections/c"

KINTO_APP_SETTINGS = {
    "use": "egg:kinto",
    "kinto.storage_backend": "kinto.core.storage.memory",
    "kinto.cache_backend": "kinto.core.cache.memory",
    "kinto.permission_backend": "kinto.core.permission.memory",
    "kinto.userid_hmac_secret": SECRET,
    "multiauth.policies": "basicauth",
    "kinto.bucket_create_principals": "system.Authenticated",
}

# What an ini written for the kinto-attachment plugin typically carries: INFO on root.
PLUGIN_ERA_LOGGING = """
[loggers]
keys = root, kinto

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = INFO
handlers = console

[logger_kinto]
level = INFO
handlers = console
qualname = kinto
propagate = 0

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(asctime)s %(levelname)-5.5s [%(name)s] %(message)s
"""


# Ini files


def ini_section(name: str, settings: dict[str, str]) -> str:
    lines = [f"[{name}]", *(f"{key} = {value}" for key, value in settings.items())]
    return "\n".join(lines) + "\n\n"


def write_ini(path: Path, *sections: str) -> Path:
    path.write_text("".join(sections))
    return path


# Storage


def temp_files(root: Path) -> set[str]:
    return {name for name in files_under(root) if ".upload-" in name}


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``condition``; the caller asserts on the state, never on the time taken."""
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return condition()


# HTTP through requests


class Kinto:
    """A client of one server, acting as alice, owner of bucket ``b``."""

    def __init__(self, server: GunicornServer):
        self.server = server
        self.url = server.url

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("auth", USER)
        kwargs.setdefault("timeout", 120)
        return requests.request(method, self.url + path, **kwargs)

    def create_collection(self, path: str = COLLECTION_PATH) -> None:
        bucket_path = path.rsplit("/collections/", 1)[0]
        for resource in (bucket_path, path):
            response = self.request("PUT", resource, json={})
            assert response.status_code in (200, 201), response.text

    def upload(
        self,
        record_id: str,
        filename: str,
        content: bytes,
        content_type: str = "application/octet-stream",
        collection: str = COLLECTION_PATH,
    ) -> requests.Response:
        return self.request(
            "POST",
            f"{collection}/records/{record_id}/attachment",
            files={"attachment": (filename, content, content_type)},
        )

    def record(self, record_id: str, collection: str = COLLECTION_PATH) -> requests.Response:
        return self.request("GET", f"{collection}/records/{record_id}")


def assert_metadata(response: requests.Response, filename: str, content: bytes) -> dict:
    assert response.status_code == 201, response.text
    meta = response.json()
    assert meta["filename"] == filename
    assert meta["hash"] == hashlib.sha256(content).hexdigest()
    assert meta["size"] == len(content)
    return meta


# Raw HTTP over sockets


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


def repeated(block: bytes, total: int) -> Iterator[bytes]:
    while total > 0:
        yield block[:total]
        total -= len(block)


# Servers


def kinto_ini_server(
    tmp: Path,
    *,
    attachment: dict[str, str] | None = None,
    logging: str = "",
    app: Sequence[str] = ("kinto_attachment_mw.wsgi:application",),
) -> tuple[GunicornServer, Path]:
    """``KINTO_INI=... gunicorn kinto_attachment_mw.wsgi:application`` (or ``app``, the
    gunicorn arguments naming another entry point), files served."""
    root = tmp / "attachments"
    port = free_port()
    settings = {
        **KINTO_APP_SETTINGS,
        "kinto.attachment.base_path": str(root),
        "kinto.attachment.base_url": f"http://{HOST}:{port}/attachments/",
        "kinto.attachment.serve_path": "/attachments",
        **(attachment or {}),
    }
    ini = write_ini(tmp / "kinto.ini", ini_section("app:main", settings), logging)
    server = start_gunicorn(
        list(app),
        tmp / "gunicorn.log",
        port=port,
        env={"KINTO_INI": str(ini)},
    )
    return server, root


def running_kinto(tmp: Path, attachment: dict[str, str] | None = None):
    """A started server with alice's collection, as a fixture body: stopped afterwards."""
    server, root = kinto_ini_server(tmp, attachment=attachment)
    try:
        kinto = Kinto(server)
        kinto.create_collection()
        yield kinto, root
    finally:
        server.stop()


@pytest.fixture(scope="module")
def main_server(tmp_path_factory) -> Iterator[tuple[Kinto, Path]]:
    yield from running_kinto(tmp_path_factory.mktemp("main"))


@pytest.fixture
def kinto(main_server) -> Kinto:
    return main_server[0]


@pytest.fixture
def root(main_server) -> Path:
    return main_server[1]


def stored_path(root: Path, server: GunicornServer, location: str) -> Path:
    prefix = f"{server.url}/attachments/"
    assert location.startswith(prefix), location
    return root / location[len(prefix) :]


# 1. The KINTO_INI entry point, and serving stored files


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


# 2. A plugin-era ini


@pytest.fixture(scope="module")
def plugin_server(tmp_path_factory) -> Iterator[GunicornServer]:
    tmp = tmp_path_factory.mktemp("plugin")
    server, _ = kinto_ini_server(
        tmp,
        attachment={
            "kinto.includes": "kinto.plugins.default_bucket kinto_attachment",
            "kinto.attachment.folder": "{bucket_id}/{collection_id}",
        },
        logging=PLUGIN_ERA_LOGGING,
    )
    try:
        yield server
    finally:
        server.stop()


def test_plugin_ini_starts_and_logs_the_dropped_include_once(plugin_server):
    """Users swap the plugin for the middleware without touching their ini."""
    kinto = Kinto(plugin_server)
    kinto.create_collection()
    assert_metadata(kinto.upload("r1", "notes.txt", b"plugin-era\n"), "notes.txt", b"plugin-era\n")

    log = plugin_server.log()
    dropped = [line for line in log.splitlines() if "Dropped 'kinto_attachment'" in line]
    assert len(dropped) == 1, log
    assert "INFO" in dropped[0]
    assert "[kinto_attachment_mw.wsgi]" in dropped[0]


def test_plugin_ini_default_bucket_upload(plugin_server):
    """The plugin ini keeps ``default_bucket``: files go under the caller's real bucket."""
    kinto = Kinto(plugin_server)
    bucket = kinto.request("GET", "/v1/").json()["user"]["bucket"]
    response = kinto.request(
        "POST",
        "/v1/buckets/default/collections/notes/records/n1/attachment",
        files={"attachment": ("n.txt", b"mine", "text/plain")},
    )
    meta = assert_metadata(response, "n.txt", b"mine")
    assert f"/attachments/{bucket}/notes/" in meta["location"]
    assert response.headers["Location"].endswith(
        f"/v1/buckets/{bucket}/collections/notes/records/n1"
    )


# 3. Paste pipeline


def paste_ini(tmp: Path, root: Path, style: str) -> Path:
    app = dict(KINTO_APP_SETTINGS)
    attachment_filter = {"use": "egg:kinto_attachment_mw"}
    if style == "filter-section":
        attachment_filter["attachment.base_path"] = str(root)
        attachment_filter["attachment.base_url"] = "https://cdn.example.com/files/"
    else:  # the filter falls back to the Kinto app's own settings
        app["kinto.attachment.base_path"] = str(root)
        app["kinto.attachment.base_url"] = "https://cdn.example.com/files/"
    return write_ini(
        tmp / "kinto.ini",
        ini_section("app:kinto", app),
        ini_section("filter:attachment", attachment_filter),
        ini_section("pipeline:main", {"pipeline": "attachment kinto"}),
    )


@pytest.mark.parametrize("style", ["filter-section", "app-section"])
def test_paste_pipeline_upload(tmp_path, style):
    """``gunicorn --paste`` with the middleware as a filter in front of Kinto."""
    root = tmp_path / "files"
    ini = paste_ini(tmp_path, root, style)
    server = start_gunicorn(["--paste", str(ini)], tmp_path / "gunicorn.log")
    try:
        kinto = Kinto(server)
        hello = kinto.request("GET", "/v1/").json()
        assert hello["capabilities"]["attachments"]["base_url"] == "https://cdn.example.com/files/"
        kinto.create_collection()
        meta = assert_metadata(kinto.upload("p1", "a.csv", b"x,y\n1,2\n"), "a.csv", b"x,y\n1,2\n")
        assert meta["location"].startswith("https://cdn.example.com/files/")
        key = meta["location"][len("https://cdn.example.com/files/") :]
        assert (root / key).read_bytes() == b"x,y\n1,2\n"
        assert files_under(root) == {key}
    finally:
        server.stop()


# 4. Streaming and chunked bodies


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


class RssSampler(threading.Thread):
    """Samples a process's resident memory until stopped; keeps the peak."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = rss_bytes(pid)
        self._stop_event = threading.Event()

    def run(self) -> None:
        while True:
            self.peak = max(self.peak, rss_bytes(self.pid))
            if self._stop_event.wait(0.005):
                return

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def random_file(path: Path, size: int) -> str:
    """Write ``size`` random bytes to ``path``; return their SHA-256."""
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        for block in repeated(b"\0" * MiB, size):
            chunk = os.urandom(len(block))
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def streamed_upload(kinto: Kinto, record_id: str, source: Path) -> tuple[requests.Response, int]:
    """Upload ``source`` streamed from disk; the answer, and how much the worker's memory
    grew meanwhile (its peak over what it was just before)."""
    kinto.upload("warm-up", "w.txt", b"warm")  # imports and caches settle before measuring
    worker = kinto.server.worker_pid()
    baseline = rss_bytes(worker)
    sampler = RssSampler(worker)
    sampler.start()
    try:
        with open(source, "rb") as stream:
            encoder = MultipartEncoder(fields={"attachment": (source.name, stream, "text/csv")})
            response = kinto.request(
                "POST",
                f"{COLLECTION_PATH}/records/{record_id}/attachment",
                data=encoder,
                headers={"Content-Type": encoder.content_type},
            )
    finally:
        sampler.stop()
    return response, sampler.peak - baseline


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


# 5. Client disconnect mid-upload

TRANSFERS = [pytest.param(False, id="length"), pytest.param(True, id="chunked")]


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


# 6. Bodies shorter or longer than announced


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


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


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


# 7. Oversize uploads


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


# 8. The embedded default that `make serve` runs


def test_make_serve_configuration_works_as_documented(tmp_path):
    """examples/kinto.ini: memory backend, files under ./attachments, served by the
    middleware so that the path of each ``location`` URL resolves."""
    ini = Path(__file__).resolve().parent.parent / "examples" / "kinto.ini"
    server = start_gunicorn(
        ["kinto_attachment_mw.wsgi:application"],
        tmp_path / "gunicorn.log",
        env={"KINTO_INI": str(ini)},
        cwd=tmp_path,
    )
    try:
        kinto = Kinto(server)
        kinto.create_collection()
        meta = assert_metadata(kinto.upload("readme", "notes.txt", b"hello"), "notes.txt", b"hello")
        assert meta["location"].startswith("http://127.0.0.1:8888/attachments/b/c/")
        path = meta["location"][len("http://127.0.0.1:8888") :]
        fetched = requests.get(server.url + path, timeout=30)
        assert fetched.content == b"hello"
        assert files_under(tmp_path / "attachments") == {path[len("/attachments/") :]}
        capability = kinto.request("GET", "/v1/").json()["capabilities"]["attachments"]
        assert capability["base_url"] == "http://127.0.0.1:8888/attachments/"
    finally:
        server.stop()
