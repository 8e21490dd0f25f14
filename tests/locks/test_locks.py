"""Per-record locks: one writer per record at a time, others unhindered, bounded waits.

Two :class:`PostgresLocks` instances have separate connection pools, so they behave like
two worker processes (or hosts) sharing Kinto's database.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

import kinto
import psycopg2
import pytest
import webob
import webtest

from kinto_attachment_mw import filter_factory
from kinto_attachment_mw.locks import ProcessLocks, RecordLocks, file_lock
from kinto_attachment_mw.locks.postgresql import PostgresLocks
from kinto_attachment_mw.protocol.errors import AttachmentError

from ..helpers.kinto_apps import ALICE, RECORDS, Uploads, build_app, kinto_settings
from ..helpers.postgres import kinto_postgresql_settings
from ..helpers.servers import free_port

URI = "/buckets/b/collections/c/records/r1"
OTHER = "/buckets/b/collections/c/records/r2"
TIMEOUT = 5.0


@pytest.fixture(
    params=[
        pytest.param("process", marks=pytest.mark.unit),
        pytest.param("postgresql", marks=pytest.mark.integration),
    ]
)
def make_locks(request) -> Callable[[float], RecordLocks]:
    """Build lock sets that must exclude each other: one shared set in-process (Kinto on
    its memory backend is one process), independent pools on PostgreSQL."""
    created: list[RecordLocks] = []
    if request.param == "process":
        shared: dict[float, RecordLocks] = {}

        def make(timeout: float) -> RecordLocks:
            return shared.setdefault(timeout, ProcessLocks(timeout))
    else:
        url = request.getfixturevalue("postgres").url()

        def make(timeout: float) -> RecordLocks:
            locks = PostgresLocks(url, timeout)
            created.append(locks)
            return locks

    yield make
    for locks in created:
        locks.close()


class Holder(threading.Thread):
    """Holds ``uri`` from another thread until told to let go."""

    def __init__(self, locks: RecordLocks, uri: str):
        super().__init__(daemon=True)
        self.locks, self.uri = locks, uri
        self.holding, self.release = threading.Event(), threading.Event()

    def run(self):
        with self.locks.hold(self.uri):
            self.holding.set()
            self.release.wait(30)

    def __enter__(self):
        self.start()
        assert self.holding.wait(TIMEOUT)
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.join(TIMEOUT)


def test_same_record_waits_for_the_holder(make_locks):
    first, second = make_locks(TIMEOUT), make_locks(TIMEOUT)
    entered = threading.Event()

    def contender():
        with second.hold(URI):
            entered.set()

    with Holder(first, URI):
        thread = threading.Thread(target=contender, daemon=True)
        thread.start()
        assert not entered.wait(0.5)
    assert entered.wait(TIMEOUT)
    thread.join(TIMEOUT)


def test_other_records_do_not_wait(make_locks):
    first, second = make_locks(TIMEOUT), make_locks(TIMEOUT)
    with Holder(first, URI):
        started = time.monotonic()
        with second.hold(OTHER):
            pass
        assert time.monotonic() - started < 1.0


def test_waiting_too_long_is_a_retryable_conflict(make_locks):
    first, second = make_locks(0.3), make_locks(0.3)
    with Holder(first, URI), pytest.raises(AttachmentError) as raised, second.hold(URI):
        pass
    response = raised.value.response()
    assert response.status_code == 409
    assert response.json["errno"] == 122
    assert "retry" in response.json["message"]
    with second.hold(URI):  # and the lock is free once the holder let go
        pass


def test_same_thread_may_hold_a_record_twice(make_locks):
    locks = make_locks(0.3)
    with locks.hold(URI), locks.hold(URI), locks.hold(OTHER):
        pass
    with Holder(make_locks(0.3), URI):  # everything released on the way out
        pass


@pytest.mark.integration
def test_a_broken_connection_is_replaced(postgres):
    locks = PostgresLocks(postgres.url(), TIMEOUT)
    try:
        with locks.hold(URI):
            pass
        admin = psycopg2.connect(postgres.url())
        admin.autocommit = True
        with admin.cursor() as cursor:  # what a server restart does to idle connections
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'"
            )
        admin.close()
        with locks.hold(URI):
            pass
        with Holder(PostgresLocks(postgres.url(), TIMEOUT), URI):
            pass
    finally:
        locks.close()


@pytest.mark.unit
def test_unreachable_database_is_a_503():
    locks = PostgresLocks(f"postgresql://postgres@127.0.0.1:{free_port()}/postgres", 0.5)
    with pytest.raises(AttachmentError) as raised, locks.hold(URI):
        pass
    assert raised.value.status == 503


@pytest.mark.unit
def test_upload_answers_409_while_the_record_is_locked(storage_root):
    """The lock is taken for the record write; the client sees Kinto's "retry" 409, and
    the file stored for that upload is gone."""
    app = build_app(storage_root, lock_timeout_seconds="0.3")
    uploads = Uploads(app, storage_root)
    uploads.upload("r1")
    before = uploads.files()

    with Holder(app.app.locks, URI):
        response = uploads.upload("r1", content=b"second", status=409)
        removal = app.delete(f"{RECORDS}/r1/attachment", headers=ALICE, status=409)

    assert response.json["errno"] == removal.json["errno"] == 122
    assert response.headers["Retry-After"] == "1"
    assert uploads.files() == before
    assert uploads.record("r1")["data"]["attachment"]["size"] == len(b"hello world\n")
    uploads.upload("r1", content=b"third")  # free again


@pytest.mark.integration
def test_paste_filter_takes_postgresql_locks_from_kintos_settings(postgres_url, storage_root):
    """A paste pipeline passes only the filter's section: the storage settings that
    choose the locks are read from the wrapped Kinto app."""
    settings = {**kinto_settings(storage_root), **kinto_postgresql_settings(postgres_url)}
    kinto_app = kinto.main({}, **settings)
    middleware = filter_factory({}, base_path=str(storage_root))(kinto_app)
    try:
        assert isinstance(middleware.locks, PostgresLocks)
        assert middleware.locks.url == postgres_url
        uploads = Uploads(webtest.TestApp(middleware), storage_root)
        uploads.upload("r1")
        uploads.upload("r1", content=b"replaced")
        assert len(uploads.files()) == 1
    finally:
        middleware.locks.close()


@pytest.mark.unit
def test_process_locks_keep_only_names_in_use():
    locks = ProcessLocks(TIMEOUT)
    with locks.hold(URI), locks.hold(OTHER), locks.hold(URI):
        assert set(locks._locks) == {URI, OTHER}
    assert locks._locks == {}


@pytest.mark.unit
def test_a_busy_file_lock_after_kinto_committed_does_not_change_the_answer(storage_root):
    """Kinto has written the record: the file removal that follows may wait for the
    file's lock and give up (the file is left to gc), the client still gets Kinto's 200."""
    app = build_app(storage_root, lock_timeout_seconds="0.3")
    uploads = Uploads(app, storage_root)
    first = uploads.upload("r1").json
    key = app.app.storage.key_for(first["location"])
    with Holder(app.app.locks, file_lock(key)):
        replaced = uploads.upload("r1", content=b"v2", status="*")
        removed = app.put_json(f"{RECORDS}/r1", {"data": {"x": 1}}, headers=ALICE, status="*")
    assert (replaced.status_int, removed.status_int) == (200, 200)
    assert "attachment" not in uploads.record("r1")["data"]


class SlowBody:
    """A request body whose first read lets another writer try the record's lock."""

    def __init__(self, body: bytes, meanwhile):
        self.body, self.meanwhile = body, meanwhile

    def read(self, size=-1):
        if self.meanwhile:
            self.meanwhile()
            self.meanwhile = None
        out, self.body = self.body, b""
        return out


@pytest.mark.unit
def test_the_record_lock_is_not_held_while_a_body_is_read(storage_root):
    app = build_app(storage_root, lock_timeout_seconds="0.3")
    Uploads(app, storage_root).upload("r1")
    middleware = app.app
    other_writer = []

    def try_the_lock():
        def contender():
            with middleware.locks.hold("/buckets/b/collections/c/records/r1"):
                other_writer.append("got it")

        thread = threading.Thread(target=contender)
        thread.start()
        thread.join(TIMEOUT)

    body = json.dumps([{"op": "add", "path": "/data/x", "value": 1}]).encode()
    request = webob.Request.blank(
        f"{RECORDS}/r1",
        method="PATCH",
        headers={**ALICE, "Content-Type": "application/json-patch+json"},
    )
    request.environ["CONTENT_LENGTH"] = str(len(body))
    request.environ["wsgi.input"] = SlowBody(body, try_the_lock)
    response = request.get_response(middleware)
    assert response.status_int == 200
    assert other_writer == ["got it"]
