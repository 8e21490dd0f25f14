"""The S3 side of the upload benchmark: moto's server, and the middleware storing to it.

moto's server stands in for S3 on this machine, in its own process, so that its memory
(which holds every object) is not counted as the middleware's. The middleware's gunicorn
is measured like the others: throughput, server CPU, and the peak growth of its memory
while a file goes up part by part.
"""

from __future__ import annotations

import http.client
import subprocess
import sys
from pathlib import Path

import boto3

from servers import (
    HOST,
    MIDDLEWARE_S3,
    Server,
    free_port,
    start_server,
    start_service,
    write_ini,
)

MIB = 1024 * 1024
BUCKET = "bench"
CREDENTIALS = ("bench", "bench")


def start_moto(workdir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [str(Path(sys.executable).with_name("moto_server")), "-H", HOST, "-p", str(port)]

    def ready() -> bool:
        connection = http.client.HTTPConnection(HOST, port, timeout=2)
        try:
            connection.request("GET", "/moto-api/")
            connection.getresponse().read()
            return True
        finally:
            connection.close()

    return start_service("moto", command, workdir, ready), f"http://{HOST}:{port}"


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
    env = {"KINTO_INI": str(write_ini(workdir / MIDDLEWARE_S3, storage))}
    return start_server(MIDDLEWARE_S3, "kinto_attachment_mw.wsgi:application", workdir, env)
