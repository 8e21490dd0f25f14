"""GET /v1/ advertises the capability; the heartbeat really writes to storage."""

from __future__ import annotations

import os

import kinto
import pytest
import webtest

from kinto_attachment_mw import AttachmentMiddleware, __version__
from kinto_attachment_mw.config.policy import EXTENSION_GROUPS
from kinto_attachment_mw.storage import StorageUnavailable

from ..helpers.kinto_apps import build_app, files_under, kinto_settings

pytestmark = pytest.mark.unit


def test_capability_is_advertised(storage_root):
    app = build_app(storage_root, base_url="https://cdn.example.com/files")
    capability = app.get("/v1/").json["capabilities"]["attachments"]
    assert capability == {
        "description": "Add file attachments to records",
        "url": "https://github.com/Kinto/kinto-attachment/",
        "version": "6.4.0",
        "implementation": f"kinto-attachment-mw {__version__}",
        "base_url": "https://cdn.example.com/files/",
        "extensions": sorted(EXTENSION_GROUPS["default"]),
        "downloads": "permission-checked",
        "resumable": {
            "protocol": "tus",
            "version": "1.0.0",
            "extensions": [
                "creation",
                "creation-with-upload",
                "expiration",
                "termination",
                "checksum",
            ],
            "max_size": None,
            "expires_after_seconds": 86400.0,
        },
    }
    anything = build_app(storage_root, extensions="any").get("/v1/").json["capabilities"]
    assert anything["attachments"]["extensions"] is None
    off = build_app(storage_root, **{"resumable.enabled": "false"}).get("/v1/").json
    assert off["capabilities"]["attachments"]["resumable"] is None
    assert "default_bucket" in app.get("/v1/").json["capabilities"]


def test_extra_base_url_wins_in_capability(storage_root):
    app = build_app(storage_root, base_url="https://a/", **{"extra.base_url": "https://b"})
    assert app.get("/v1/").json["capabilities"]["attachments"]["base_url"] == "https://b/"


def test_heartbeat_reports_a_real_write(app, storage_root):
    response = app.get("/v1/__heartbeat__")
    assert response.json == {
        "storage": True,
        "permission": True,
        "cache": True,
        "attachments": True,
    }
    assert files_under(storage_root) == set()


def test_heartbeat_fails_with_503_when_storage_is_not_writable(app, storage_root):
    os.chmod(storage_root, 0o500)
    try:
        if os.access(storage_root, os.W_OK):  # root ignores modes: break the folder instead
            os.chmod(storage_root, 0o700)
            os.rename(storage_root, str(storage_root) + ".moved")
            storage_root.write_text("not a folder any more")
        response = app.get("/v1/__heartbeat__", status=503)
    finally:
        if storage_root.is_file():
            storage_root.unlink()
            os.rename(str(storage_root) + ".moved", storage_root)
        os.chmod(storage_root, 0o700)
    assert response.json["attachments"] is False
    assert response.json["storage"] is True


def test_heartbeat_is_true_when_read_only(storage_root):
    settings = kinto_settings(storage_root)
    settings["kinto.readonly"] = "true"
    app = webtest.TestApp(AttachmentMiddleware(kinto.main({}, **settings), settings))
    storage_root.rmdir()
    storage_root.write_text("not a folder")
    assert app.get("/v1/__heartbeat__").json["attachments"] is True


def test_lbheartbeat_is_untouched(app):
    assert app.get("/v1/__lbheartbeat__").json == {}


def test_concurrent_heartbeats_all_succeed(storage_root):
    import threading

    from kinto_attachment_mw.serving.service_endpoints import ServiceEndpoints
    from kinto_attachment_mw.storage import LocalStorage

    service = ServiceEndpoints(LocalStorage(str(storage_root)), None, readonly=False)
    results: list[bool] = []

    def check() -> None:
        results.extend(service.storage_is_healthy() for _ in range(100))

    threads = [threading.Thread(target=check) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [True] * 400
    assert files_under(storage_root) == set()


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def counted_writes(app: webtest.TestApp, failing: list[bool]) -> list[str]:
    """The storage writes the middleware opens, each failing while ``failing[0]``."""
    storage = app.app.storage
    opened: list[str] = []
    open_writer = storage.open_writer

    def counting(key, *args, **kwargs):
        opened.append(key)
        if failing[0]:
            raise StorageUnavailable("storage down")
        return open_writer(key, *args, **kwargs)

    storage.open_writer = counting
    return opened


def test_heartbeat_writes_to_storage_once_per_30_seconds(app, storage_root):
    clock = app.app.service.clock = Clock()
    writes = counted_writes(app, failing=[False])
    for _ in range(5):
        assert app.get("/v1/__heartbeat__").json["attachments"] is True
    assert len(writes) == 1
    clock.now += 29.9
    assert app.get("/v1/__heartbeat__").json["attachments"] is True
    assert len(writes) == 1
    clock.now += 0.2
    assert app.get("/v1/__heartbeat__").json["attachments"] is True
    assert len(writes) == 2
    assert files_under(storage_root) == set()


def test_a_failed_heartbeat_is_checked_again_after_5_seconds(app):
    clock = app.app.service.clock = Clock()
    failing = [True]
    writes = counted_writes(app, failing)
    for _ in range(3):
        assert app.get("/v1/__heartbeat__", status=503).json["attachments"] is False
    assert len(writes) == 1
    failing[0] = False  # storage is back
    clock.now += 4.9
    app.get("/v1/__heartbeat__", status=503)
    assert len(writes) == 1
    clock.now += 0.2
    assert app.get("/v1/__heartbeat__").json["attachments"] is True
    assert len(writes) == 2


def test_a_stuck_storage_check_holds_no_other_heartbeat(app):
    """A storage write that never returns holds its own heartbeat, not the others: they
    wait ``check_wait_seconds`` for it, then answer false (503) instead of queueing
    behind it, each holding a server thread, for as long as the storage hangs."""
    import threading

    service = app.app.service
    service.check_wait_seconds = 0.2
    storage = app.app.storage
    entered, release = threading.Event(), threading.Event()
    open_writer = storage.open_writer

    def hanging(key, *args, **kwargs):
        entered.set()
        release.wait()
        return open_writer(key, *args, **kwargs)

    storage.open_writer = hanging
    answers: list[bool] = []
    stuck = threading.Thread(target=lambda: answers.append(service.storage_health()), daemon=True)
    stuck.start()
    try:
        assert entered.wait(10)
        other: list[int] = []
        waiting = threading.Thread(
            target=lambda: other.append(app.get("/v1/__heartbeat__", status="*").status_int),
            daemon=True,
        )
        waiting.start()
        waiting.join(10)
        assert other == [503]
    finally:
        release.set()
    stuck.join(10)
    assert answers == [True]  # the storage answered in the end
    assert app.get("/v1/__heartbeat__").json["attachments"] is True
