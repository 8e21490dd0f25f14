"""The S3 part of the upload benchmark: the middleware storing to an S3 API.

moto's server stands in for S3 on this machine (in its own process, so that its memory,
which holds every object, is not counted as the middleware's). The middleware's gunicorn
is measured as for local storage: throughput, server CPU, and the peak growth of its
memory while a file goes up in 8 MiB parts.
"""

from __future__ import annotations

import http.client
import subprocess
import sys
import time
from pathlib import Path

import boto3
import requests

from client import AUTH, create_collection, make_payload
from measure import measured_upload, warm_up
from report import print_run
from results import Run
from servers import (
    HOST,
    BenchmarkError,
    Server,
    free_port,
    start_server,
    stop_server,
    wait_until_ready,
    write_ini,
)

MIB = 1024 * 1024
BUCKET = "bench"
CREDENTIALS = ("bench", "bench")
S3_NAME = "middleware+s3"


def start_moto(workdir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    with open(workdir / "moto.log", "wb") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).with_name("moto_server")), "-H", HOST, "-p", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://{HOST}:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        connection = http.client.HTTPConnection(HOST, port, timeout=2)
        try:
            connection.request("GET", "/moto-api/")
            connection.getresponse().read()
            return process, url
        except OSError:
            time.sleep(0.1)
        finally:
            connection.close()
    process.kill()
    raise BenchmarkError("moto_server did not start")


def create_bucket(url: str) -> None:
    client = boto3.session.Session(
        aws_access_key_id=CREDENTIALS[0],
        aws_secret_access_key=CREDENTIALS[1],
        region_name="us-east-1",
    ).client("s3", endpoint_url=url)
    client.create_bucket(Bucket=BUCKET)


def start_s3_middleware(workdir: Path, moto_url: str) -> Server:
    storage = "\n".join(
        f"kinto.attachment.aws.{name} = {value}"
        for name, value in {
            "bucket_name": BUCKET,
            "endpoint_url": moto_url,
            "access_key": CREDENTIALS[0],
            "secret_key": CREDENTIALS[1],
            "region": "us-east-1",
        }.items()
    )
    env = {"KINTO_INI": str(write_ini(workdir, storage))}
    return start_server(S3_NAME, "kinto_attachment_mw.wsgi:application", workdir, env)


def run_s3_benchmark(sizes: list[int], repeat: int, workdir: Path) -> dict[int, list[Run]]:
    """Every size ``repeat`` times to the middleware on S3; moto and gunicorn always stop."""
    workdir = workdir / "s3"
    workdir.mkdir()
    moto, moto_url = start_moto(workdir)
    server = None
    try:
        create_bucket(moto_url)
        server = start_s3_middleware(workdir, moto_url)
        wait_until_ready(server)
        print(f"{S3_NAME} gunicorn (pid {server.pid}) ready, S3 (moto) at {moto_url}")
        results: dict[int, list[Run]] = {}
        with requests.Session() as session:
            session.auth = AUTH
            create_collection(session, server.base_url)
            warm_up(session, [server], workdir)
            for size_mib in sizes:
                payload = make_payload(workdir / f"random-{size_mib}mib.bin", size_mib * MIB)
                try:
                    for index in range(1, repeat + 1):
                        run = measured_upload(session, server, f"s3-{size_mib}", payload)
                        results.setdefault(size_mib, []).append(run)
                        print_run(f"{size_mib} MiB, run {index}/{repeat}, {S3_NAME}", run)
                finally:
                    payload.path.unlink()
        return results
    finally:
        if server is not None:
            stop_server(server)
        moto.terminate()
        moto.wait(15)
