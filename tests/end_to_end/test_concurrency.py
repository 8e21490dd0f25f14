"""Several gunicorn workers on PostgreSQL, many clients at once: one winner per record
version, and storage that holds exactly the files the records reference.

Kinto's ``If-Match`` alone does not pick one winner across processes (it checks, then
writes, without locking the row); the per-record lock does. Without it, this test sees
several uploads to the same record answered 200 and their files left unreferenced.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import requests

from ..helpers.gcs import gcs_attachment_settings
from ..helpers.kinto_apps import files_under
from ..helpers.postgres import kinto_postgresql_settings, write_kinto_ini
from ..helpers.servers import HOST, free_port, start_gunicorn

pytestmark = pytest.mark.integration

USER = ("alice", "secret")
COLLECTION = "/v1/buckets/b/collections/c"
CLIENTS = 20
WORKERS = 4


@pytest.fixture(params=["local", "gcs"])
def server(request, postgres_url, tmp_path: Path):
    """Workers on files on local disk, then in a GCS bucket; and how to list the files."""
    port = free_port()
    base_url = f"http://{HOST}:{port}/attachments/"
    storage, files = None, lambda: files_under(tmp_path / "attachments")
    if request.param == "gcs":
        fake_gcs = request.getfixturevalue("fake_gcs")
        bucket = fake_gcs.new_bucket()
        storage = gcs_attachment_settings(bucket, fake_gcs.url)
        files = lambda: fake_gcs.keys(bucket)  # noqa: E731
    backend = kinto_postgresql_settings(postgres_url)
    ini = write_kinto_ini(tmp_path, backend, base_url, storage)
    args = ["kinto_attachment_mw.wsgi:application", "--workers", str(WORKERS)]
    args += ["--worker-class", "gthread", "--threads", "4"]
    env = {"KINTO_INI": str(ini)}
    gunicorn = start_gunicorn(args, tmp_path / "gunicorn.log", port=port, env=env)
    try:
        assert len(gunicorn.worker_pids()) == WORKERS
        yield gunicorn, files
    finally:
        gunicorn.stop()


def upload(url: str, record_id: str, content: bytes) -> requests.Response:
    return requests.post(
        f"{url}{COLLECTION}/records/{record_id}/attachment",
        files={"attachment": (f"{record_id}.txt", content, "text/plain")},
        auth=USER,
        timeout=60,
    )


def all_at_once(jobs) -> list[requests.Response]:
    """Run every job in its own thread, released together."""
    barrier = threading.Barrier(len(jobs))
    results: list = [None] * len(jobs)

    def run(index, job):
        barrier.wait(30)
        try:
            results[index] = job()
        except Exception as error:  # reported with the statuses below
            results[index] = error

    threads = [threading.Thread(target=run, args=item) for item in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results


def assert_clear_answer(response, success: int) -> None:
    assert isinstance(response, requests.Response), response
    if response.status_code == success:
        return
    assert response.status_code in (409, 412), response.text
    body = response.json()
    assert body["code"] == response.status_code
    assert body["errno"] in (114, 122)
    assert body["message"]


def test_concurrent_uploads_leave_exactly_the_referenced_files(server):
    gunicorn, files = server
    url = gunicorn.url
    for path in ("/v1/buckets/b", COLLECTION):
        assert requests.put(url + path, json={}, auth=USER, timeout=30).status_code in (200, 201)
    assert upload(url, "same", b"first version").status_code == 201

    same = [lambda n=n: upload(url, "same", f"same {n}".encode()) for n in range(CLIENTS)]
    own = [lambda n=n: upload(url, f"own-{n}", f"own {n}".encode()) for n in range(CLIENTS)]
    results = all_at_once(same + own)

    same_results, own_results = results[:CLIENTS], results[CLIENTS:]
    for response in same_results:
        assert_clear_answer(response, 200)
    for response in own_results:
        assert_clear_answer(response, 201)
    winners = [r for r in same_results if r.status_code == 200]
    assert len(winners) >= 1

    listed = requests.get(f"{url}{COLLECTION}/records", auth=USER, timeout=30).json()["data"]
    records = {record["id"]: record for record in listed}
    prefix = f"{url}/attachments/"
    referenced = {
        record["attachment"]["location"][len(prefix) :]
        for record in records.values()
        if "attachment" in record
    }
    final = records["same"]["attachment"]
    assert final["hash"] in {w.json()["hash"] for w in winners}
    stored = files()
    assert final["location"][len(prefix) :] in stored
    assert stored == referenced, (
        f"{len(winners)} uploads to one record answered 200;"
        f" unreferenced files: {sorted(stored - referenced)}"
    )
    created = [r for r in own_results if r.status_code == 201]
    assert len(referenced) == 1 + len(created)
