"""examples/production end to end, as deployed: ``kinto migrate`` and ``kinto create-user``
with its kinto.ini, gunicorn with its gunicorn.conf.py (4 workers), nginx with its site
file in front, Kinto on PostgreSQL and files on S3 (moto's server), the deployment's
values given by environment variables. Clients only ever talk to nginx: uploads stream
through it, ``location`` URLs are fetched through it from the bucket, and ``gc`` run with
the same ini and environment finds nothing to clean afterwards."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import subprocess
import sys
import uuid
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests

from ..helpers.live_server import wait_until
from ..helpers.local_stack import stack
from ..helpers.raw_http import read_response, send_until_answered
from ..helpers.s3 import bucket_keys, pending_uploads
from ..helpers.servers import start_gunicorn
from ..helpers.slow_bodies import SlowBodies, slow_upload_head, timed_gets
from ..helpers.system_packages import require

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent
ADMIN = ("admin", "a-long-admin-password")
COLLECTION = "/v1/buckets/b/collections/c"
MiB = 1024 * 1024


def run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        command, env={**os.environ, **env}, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def deployment(request, postgres, moto, tmp_path: Path):
    """``request.param``, when the test is parametrized indirectly: more variables."""
    require("nginx")
    bucket = moto.new_bucket()
    moto.client.put_bucket_policy(Bucket=bucket, Policy=stack.bucket_policy(bucket))
    nginx_port, gunicorn_port = stack.free_port(), stack.free_port()
    url = f"http://{stack.HOST}:{nginx_port}"
    env = stack.environment(
        database_url=postgres.create_database(tmp_path, migrate=False),
        s3_endpoint=moto.url,
        bucket=bucket,
        base_url=f"{url}/attachments/",
        bind=f"{stack.HOST}:{gunicorn_port}",
        host=f"{stack.HOST}:{nginx_port}",
    )
    # Where gunicorn would put its control socket, were it not disabled.
    env.update(HOME=str(tmp_path / "home"), XDG_RUNTIME_DIR=str(tmp_path / "run"))
    env.update(getattr(request, "param", {}))
    ini = str(stack.INI)
    create_admin = ["create-user", "--ini", ini, "-u", ADMIN[0], "-p", ADMIN[1]]
    for command in (["migrate", "--ini", ini], create_admin):
        done = run([str(BIN / "kinto"), *command], env)
        assert done.returncode == 0, done.stdout + done.stderr

    gunicorn = start_gunicorn(
        ["-c", str(stack.GUNICORN_CONF)],
        tmp_path / "gunicorn.log",
        port=gunicorn_port,
        env=env,
        defaults=False,
    )
    nginx = None
    try:
        site = stack.site(
            listen_port=nginx_port,
            gunicorn_bind=env["GUNICORN_BIND"],
            s3_endpoint=moto.url,
            bucket=bucket,
        )
        conf = stack.nginx_conf(tmp_path / "nginx", site)
        nginx = stack.Server(stack.nginx_command(conf), tmp_path / "nginx.log")
        nginx.wait_until_answers(nginx_port, "/v1/__heartbeat__")
        yield SimpleNamespace(url=url, env=env, bucket=bucket, gunicorn=gunicorn, home=tmp_path)
    finally:
        if nginx is not None:
            nginx.stop()
        gunicorn.stop()


def upload(url: str, record_id: str, name: str, content) -> requests.Response:
    """``content``: bytes, or an iterator of bytes (then sent chunked: no Content-Length)."""
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="attachment";'
        f' filename="{name}"\r\nContent-Type: text/csv\r\n\r\n'
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    body = head + content + tail if isinstance(content, bytes) else iter([head, *content, tail])
    return requests.post(
        f"{url}{COLLECTION}/records/{record_id}/attachment",
        data=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        auth=ADMIN,
        timeout=120,
    )


def fetch(location: str) -> requests.Response:
    return requests.get(location, timeout=60)  # anonymous, as clients fetch files


def test_production_setup_end_to_end(deployment, moto):
    d = deployment
    url, bucket = d.url, d.bucket
    assert wait_until(lambda: len(d.gunicorn.worker_pids()) == 4)
    for path in ("/v1/buckets/b", COLLECTION):
        assert requests.put(url + path, auth=ADMIN, timeout=30).status_code == 201
    heartbeat = requests.get(f"{url}/v1/__heartbeat__", timeout=30).json()
    assert heartbeat["attachments"] is True and heartbeat["storage"] is True

    # Larger than a part (8 MiB), sent chunked: streamed through nginx to a multipart upload.
    first = os.urandom(9 * MiB)
    created = upload(url, "r1", "data.csv", (first[i : i + MiB] for i in range(0, 9 * MiB, MiB)))
    assert created.status_code == 201, created.text
    assert created.headers["Location"] == f"{url}{COLLECTION}/records/r1"
    old = created.json()
    assert old["location"].startswith(f"{url}/attachments/b/c/")
    assert old["hash"] == hashlib.sha256(first).hexdigest()
    downloaded = fetch(old["location"])
    assert downloaded.status_code == 200
    assert hashlib.sha256(downloaded.content).hexdigest() == old["hash"]
    assert downloaded.headers["Content-Type"] == "text/csv"
    assert downloaded.headers["Access-Control-Allow-Origin"] == "*"

    second = b"id,value\n1,2\n"
    replaced = upload(url, "r1", "data.csv", second)
    assert replaced.status_code == 200, replaced.text
    new = replaced.json()
    assert fetch(new["location"]).content == second
    assert fetch(old["location"]).status_code in (403, 404)
    assert requests.delete(new["location"], timeout=30).status_code == 403  # read-only

    kept = upload(url, "r2", "kept.csv", b"kept\n").json()
    deleted = requests.delete(f"{url}{COLLECTION}/records/r1", auth=ADMIN, timeout=30)
    assert deleted.status_code == 200
    assert fetch(new["location"]).status_code in (403, 404)
    assert bucket_keys(moto.client, bucket) == {kept["location"].split("/attachments/")[1]}
    assert pending_uploads(moto.client, bucket) == []

    gc_command = ["gc", "--ini", str(stack.INI), "--grace", "0s"]
    gc = run([str(BIN / "kinto-attachment-mw"), *gc_command], d.env)
    assert gc.returncode == 0, gc.stderr
    assert gc.stdout.splitlines() == [
        "Records with an attachment: 1 (0 outside this storage, ignored)",
        "Stored files: 1",
        "Orphan files: 0 (0 bytes)",
        "Unreferenced files that keep_old_files keeps: 0",
        "Leftovers of unfinished uploads: 0 (0 bytes)",
        "Dangling records (location without a file): 0",
        "Removed 0 files, 0 bytes freed.",
        "Expired resumable uploads (removed): 0",
    ]
    assert fetch(kept["location"]).content == b"kept\n"

    # The permission-checked download, through nginx: Kinto decides, then a presigned URL.
    download = f"{url}{COLLECTION}/records/r2/attachment"
    assert requests.get(download, timeout=30, allow_redirects=False).status_code == 401
    redirect = requests.get(download, auth=ADMIN, timeout=30, allow_redirects=False)
    assert redirect.status_code == 307, redirect.text
    presigned = requests.get(redirect.headers["Location"], timeout=30)
    assert presigned.content == b"kept\n"
    assert presigned.headers["Content-Disposition"] == 'attachment; filename="kept.csv"'

    # A private bucket (the ini's `internal`): its file is the record's, never public.
    private_collection = "/v1/buckets/internal/collections/docs"
    for path in ("/v1/buckets/internal", private_collection):
        assert requests.put(url + path, auth=ADMIN, timeout=30).status_code == 201
    secret = requests.post(
        f"{url}{private_collection}/records/s1/attachment",
        files={"attachment": ("payroll.csv", b"alice,1\n", "text/csv")},
        auth=ADMIN,
        timeout=60,
    ).json()
    location = secret["location"]
    assert location.startswith(f"{url}{private_collection}/records/s1/attachment?key=_private/")
    assert fetch(location).status_code == 401
    assert requests.get(location, auth=ADMIN, timeout=30).content == b"alice,1\n"
    key = location.split("?key=")[1]
    assert fetch(f"{url}/attachments/{key}").status_code == 404  # nginx refuses the prefix
    grants = moto.client.get_object_acl(Bucket=bucket, Key=key)["Grants"]
    assert not any("AllUsers" in grant["Grantee"].get("URI", "") for grant in grants)

    sockets = [d.home / "home" / ".gunicorn" / "gunicorn.ctl", d.home / "run" / "gunicorn.ctl"]
    assert not any(path.exists() for path in sockets)


def large_batch(url: str, size: int, chunked: bool) -> tuple[int, dict, bool]:
    """An anonymous ``POST /v1/batch`` of ``size`` bytes through nginx, sent until the
    server answers: its status, its JSON and whether the whole body went out."""
    host, port = url.removeprefix("http://").split(":")
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
    head = (
        f"POST /v1/batch HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/json\r\n{framing}\r\n\r\n"
    ).encode()
    block = b'{"requests": [' + b" " * (MiB - 14)
    blocks = [block] * (size // MiB)
    if chunked:
        blocks = [b"%x\r\n%s\r\n" % (len(b), b) for b in blocks] + [b"0\r\n\r\n"]
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        sent_all = send_until_answered(sock, [head, *blocks])
        status, _, body = read_response(sock)
    return status, json.loads(body), sent_all


@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
def test_a_large_batch_is_refused_before_kinto_uploads_are_not(deployment, chunked):
    url = deployment.url
    for path in ("/v1/buckets/b", COLLECTION):
        requests.put(url + path, auth=ADMIN, timeout=30)
    status, answer, sent_all = large_batch(url, 100 * MiB, chunked)
    assert status == 413
    assert answer["errno"] == 113
    assert not sent_all
    # Uploads keep their large bodies: 9 MiB, above the cap of every other route.
    content = os.urandom(9 * MiB)
    created = upload(url, f"big-{int(chunked)}", "data.csv", content)
    assert created.status_code == 201, created.text
    assert created.json()["size"] == len(content)


THREADS = 4  # gunicorn.conf.py's, per worker


@pytest.mark.parametrize("deployment", [{"GUNICORN_WORKERS": "1"}], indirect=True)
def test_slow_bodies_through_nginx_hold_no_thread(deployment):
    """Clients trickling bodies (a byte every 3 s) through nginx, twice as many as a
    worker has threads, the worker alone so that they all land on it. Anonymous batches
    and record writes are read whole by nginx (bodies there are small) and reach no
    thread; uploads, which nginx passes on as they come (``proxy_request_buffering off``;
    its ``client_body_timeout`` is per read), are cut by the middleware once 5 s of reading
    show less than 1 KiB/s."""
    url = deployment.url
    for path in ("/v1/buckets/b", COLLECTION):
        requests.put(url + path, auth=ADMIN, timeout=30)
    port = int(url.rsplit(":", 1)[1])
    basic = "Basic " + base64.b64encode(":".join(ADMIN).encode()).decode()
    with (
        SlowBodies(port, THREADS) as small_bodies,
        SlowBodies(port, THREADS, head=partial(slow_upload_head, authorization=basic)) as uploads,
    ):
        start = max(small_bodies.connected_at, uploads.connected_at) + 15
        durations = timed_gets(url, start, start + 6)
        statuses = uploads.statuses()
    assert max(durations) < 3, durations
    assert statuses == [408] * THREADS
