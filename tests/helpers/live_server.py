"""Kinto behind a real gunicorn process, as users run it: ini files, the
``kinto_attachment_mw.wsgi`` entry point, a ``requests`` client acting as alice, and
measures of the worker's memory during an upload."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import requests
from requests_toolbelt import MultipartEncoder

from .kinto_apps import files_under
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


# A well-behaved client


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


def stored_path(root: Path, server: GunicornServer, location: str) -> Path:
    prefix = f"{server.url}/attachments/"
    assert location.startswith(prefix), location
    return root / location[len(prefix) :]


# Memory


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


def repeated(block: bytes, total: int) -> Iterator[bytes]:
    while total > 0:
        yield block[:total]
        total -= len(block)


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
