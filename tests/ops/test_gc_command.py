"""``kinto-attachment-mw gc`` end to end: Kinto on PostgreSQL, the command in its own
process, as an operator's cron job runs it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import webtest

from kinto_attachment_mw.protocol.paths import RecordPath
from kinto_attachment_mw.storage import StoredFileMetadata
from kinto_attachment_mw.wsgi import load_app

from ..helpers.kinto_apps import ALICE, files_under
from ..helpers.postgres import kinto_postgresql_settings, write_kinto_ini
from ..helpers.spool import expire_uploads, spool_leftovers

pytestmark = pytest.mark.integration

COMMAND = str(Path(sys.executable).with_name("kinto-attachment-mw"))
RECORDS = "/v1/buckets/b/collections/c/records"
BASE_URL = "https://files.example/attachments/"


def gc(ini: Path, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [COMMAND, "gc", "--ini", str(ini), *options],
        capture_output=True,
        text=True,
        timeout=120,
    )


def make_old(path: Path) -> None:
    past = time.time() - 3 * 3600
    os.utime(path, (past, past))


@pytest.fixture
def deployment(postgres_url, tmp_path):
    ini = write_kinto_ini(tmp_path, kinto_postgresql_settings(postgres_url), BASE_URL)
    middleware = load_app(str(ini))
    app = webtest.TestApp(middleware)
    app.put_json("/v1/buckets/b", {}, headers=ALICE)
    app.put_json("/v1/buckets/b/collections/c", {}, headers=ALICE)
    app.storage = middleware.storage
    yield ini, app, tmp_path / "attachments"
    middleware.locks.close()


def upload(app: webtest.TestApp, record_id: str) -> str:
    meta = app.post(
        f"{RECORDS}/{record_id}/attachment",
        upload_files=[("attachment", f"{record_id}.txt", record_id.encode())],
        headers=ALICE,
    ).json
    assert meta["location"].startswith(BASE_URL)
    return meta["location"][len(BASE_URL) :]


def store_for_no_record(app: webtest.TestApp, name: str) -> str:
    """A file whose record was never written (the process died in between)."""
    writer = app.storage.open_writer(f"{name}.txt", "text/plain")
    writer.write(name.encode())
    return writer.commit(StoredFileMetadata(RecordPath("b", "c", name)))


def test_gc_on_postgresql(deployment):
    ini, app, root = deployment
    kept = {upload(app, f"r{number}") for number in range(3)}
    dropped = store_for_no_record(app, "dropped")
    lost = upload(app, "lost")
    for name in (lost, f".{lost}.meta"):  # the file vanished, as storage.delete does it
        (root / name).unlink()
    young = store_for_no_record(app, "young")
    leftover = root / "..upload-deadbeef"
    leftover.write_bytes(b"partial")
    for path in root.rglob("*"):
        if path.name != young:
            make_old(path)
    everything = files_under(root)

    dry = gc(ini, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"orphan: {dropped} (7 bytes)" in dry.stdout
    assert young not in dry.stdout
    assert f"dangling: /buckets/b/collections/c/records/lost -> {BASE_URL}{lost}" in dry.stdout
    assert "leftover: ..upload-deadbeef (7 bytes)" in dry.stdout
    assert "Records with an attachment: 4 " in dry.stdout  # r0, r1, r2, lost
    assert "Dry run: would remove 2 files." in dry.stdout
    assert files_under(root) == everything

    real = gc(ini)
    assert real.returncode == 0, real.stderr
    assert "Orphan files: 1 (7 bytes)" in real.stdout
    assert "Dangling records (location without a file): 1" in real.stdout
    assert "Removed 2 files, 14 bytes freed." in real.stdout
    assert files_under(root) == kept | {young}

    no_grace = gc(ini, "--grace", "0s")
    assert no_grace.returncode == 0, no_grace.stderr
    assert f"orphan: {young} (5 bytes)" in no_grace.stdout
    assert files_under(root) == kept


def test_gc_refuses_kinto_memory_backend(tmp_path):
    """From another process, the server's in-memory records are invisible: every file
    would look unreferenced."""
    ini = write_kinto_ini(
        tmp_path, {"kinto.storage_backend": "kinto.core.storage.memory"}, BASE_URL
    )
    stored = tmp_path / "attachments" / "precious.txt"
    stored.parent.mkdir()
    stored.write_bytes(b"referenced by a record the command cannot see")
    make_old(stored)

    result = gc(ini)

    assert result.returncode == 2
    assert "memory backend" in result.stderr
    assert "Refusing" in result.stderr
    assert stored.exists()


@pytest.mark.parametrize("grace", ["soon", "1w", "-1h", ""])
def test_gc_rejects_a_malformed_grace(tmp_path, grace):
    result = gc(tmp_path / "missing.ini", f"--grace={grace}")
    assert result.returncode == 2
    assert "expected a duration" in result.stderr


def test_gc_removes_expired_resumable_uploads(postgres_url, tmp_path):
    spool = tmp_path / "spool"
    storage = {
        "kinto.attachment.base_path": str(tmp_path / "attachments"),
        "kinto.attachment.resumable.spool_path": str(spool),
    }
    ini = write_kinto_ini(tmp_path, kinto_postgresql_settings(postgres_url), BASE_URL, storage)
    middleware = load_app(str(ini))
    app = webtest.TestApp(middleware)
    app.put_json("/v1/buckets/b", {}, headers=ALICE)
    app.put_json("/v1/buckets/b/collections/c", {}, headers=ALICE)
    for record_id in ("r1", "r2"):
        app.post(
            f"{RECORDS}/{record_id}/attachment",
            headers={
                **ALICE,
                "Tus-Resumable": "1.0.0",
                "Upload-Length": "10",
                "Upload-Metadata": "filename YS50eHQ=",
            },
            status=201,
        )
    middleware.locks.close()
    assert len(spool_leftovers(spool)) == 6  # state, bytes and mark of each
    dry = gc(ini, "--dry-run")
    assert "Expired resumable uploads (would remove): 0" in dry.stdout, dry.stderr
    assert len(expire_uploads(spool)) == 2  # a day later, as their state records it
    assert "Expired resumable uploads (would remove): 2" in gc(ini, "--dry-run").stdout
    assert len(spool_leftovers(spool)) == 6
    real = gc(ini)
    assert "Expired resumable uploads (removed): 2" in real.stdout, real.stderr
    assert spool_leftovers(spool) == []
