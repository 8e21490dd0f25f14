"""``make serve-prod``: this folder's production set-up on one machine, to try it.

PostgreSQL (Debian's package, a private cluster), moto's server standing in for S3 (a
bucket with the policy that lets nginx read), ``kinto migrate`` and ``kinto create-user``,
gunicorn with kinto.ini and gunicorn.conf.py (4 workers), nginx with nginx-site.conf in
front. Everything lives in ``.prod/``, made anew at each start (moto keeps its objects in
memory: records kept from a previous run would point at files gone). Ctrl-C stops it all.

PostgreSQL refuses to run as root: as root the cluster runs as the ``postgres`` user, and
missing Debian packages (postgresql, nginx) are installed with apt-get.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import local_stack as stack

BIN = Path(sys.executable).parent
ROOT = stack.HERE.parent.parent
BUCKET = "kinto-attachments"
IS_ROOT = os.geteuid() == 0


def ensure_packages() -> None:
    """Debian's postgresql and nginx, installed when missing (as .ci/run does)."""
    missing = []
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        missing.append("postgresql")
    if not os.path.exists(stack.NGINX):
        missing.append("nginx")
    if not missing:
        return
    if not IS_ROOT:
        sys.exit(f"Missing Debian packages: {' '.join(missing)} (apt-get install them as root)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    install = ["apt-get", "install", "-y", "-qq", *missing, "ca-certificates"]
    subprocess.run(install, check=True, env=env)


def pg_binary(name: str) -> str:
    return sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))[-1]


def as_postgres(*command: str) -> None:
    """As the ``postgres`` user when root (PostgreSQL will not run as root)."""
    prefix = ["runuser", "-u", "postgres", "--"] if IS_ROOT else []
    subprocess.run([*prefix, *command], check=True, stdout=subprocess.DEVNULL)


@contextlib.contextmanager
def postgresql(folder: Path, port: int) -> Iterator[str]:
    """A private cluster on ``port``; yields the URL of its database ``kinto``."""
    folder.mkdir(parents=True)
    if IS_ROOT:
        owner = pwd.getpwnam("postgres")
        os.chown(folder, owner.pw_uid, owner.pw_gid)
        try:
            as_postgres("test", "-w", str(folder))
        except subprocess.CalledProcessError:  # a parent closed to others: a temporary one
            folder = Path(tempfile.mkdtemp(prefix="kinto-prod-pg-"))
            os.chown(folder, owner.pw_uid, owner.pw_gid)
    data = folder / "data"
    as_postgres(pg_binary("initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
    options = f"-p {port} -k {folder} -c listen_addresses={stack.HOST} -c timezone=UTC"
    log = str(folder / "postgresql.log")
    as_postgres(pg_binary("pg_ctl"), "-D", str(data), "-o", options, "-l", log, "-w", "start")
    try:
        psql = [pg_binary("psql"), "-h", stack.HOST, "-p", str(port), "-U", "postgres", "-q"]
        as_postgres(*psql, "-c", "CREATE DATABASE kinto")
        yield f"postgresql://postgres@{stack.HOST}:{port}/kinto"
    finally:
        as_postgres(pg_binary("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")


@contextlib.contextmanager
def running(server: stack.Server) -> Iterator[stack.Server]:
    try:
        yield server
    finally:
        server.stop()


def serve(folder: Path, port: int, password: str) -> None:
    moto_port, gunicorn_port = stack.free_port(), stack.free_port()
    url = f"http://{stack.HOST}:{port}"
    with contextlib.ExitStack() as stop_all:
        print("Starting PostgreSQL...", flush=True)
        database_url = stop_all.enter_context(postgresql(folder / "postgresql", stack.free_port()))

        print("Starting moto's S3 server...", flush=True)
        moto = stop_all.enter_context(running(stack.Server(
            [str(BIN / "moto_server"), "-H", stack.HOST, "-p", str(moto_port)],
            folder / "moto.log",
        )))  # fmt: skip
        moto.wait_until_answers(moto_port, "/moto-api/")
        s3_endpoint = f"http://{stack.HOST}:{moto_port}"
        s3 = boto3.session.Session(
            stack.S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            stack.S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=stack.S3_REGION,
        ).client("s3", endpoint_url=s3_endpoint)
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_policy(Bucket=BUCKET, Policy=stack.bucket_policy(BUCKET))

        env = stack.environment(
            database_url=database_url,
            s3_endpoint=s3_endpoint,
            bucket=BUCKET,
            base_url=f"{url}/attachments/",
            bind=f"{stack.HOST}:{gunicorn_port}",
            host=f"{stack.HOST}:{port}",
        )
        print("Creating Kinto's tables and the admin account...", flush=True)
        kinto = [str(BIN / "kinto")]
        create_user = ["create-user", "--ini", str(stack.INI), "-u", "admin", "-p", password]
        with open(folder / "setup.log", "ab") as log:
            for command in ([*kinto, "migrate", "--ini", str(stack.INI)], [*kinto, *create_user]):
                subprocess.run(command, check=True, env={**os.environ, **env}, stdout=log,
                               stderr=subprocess.STDOUT)  # fmt: skip

        print("Starting gunicorn (4 workers)...", flush=True)
        gunicorn = stop_all.enter_context(running(stack.Server(
            [str(BIN / "gunicorn"), "-c", str(stack.GUNICORN_CONF)],
            folder / "gunicorn.log",
            env=env,
            cwd=folder,
        )))  # fmt: skip
        gunicorn.wait_until_answers(gunicorn_port, "/v1/__heartbeat__")

        print("Starting nginx...", flush=True)
        site = stack.site(
            listen_port=port,
            gunicorn_bind=env["GUNICORN_BIND"],
            s3_endpoint=s3_endpoint,
            bucket=BUCKET,
        )
        conf = stack.nginx_conf(folder / "nginx", site)
        nginx = stop_all.enter_context(
            running(stack.Server(stack.nginx_command(conf), folder / "nginx.log"))
        )
        nginx.wait_until_answers(port, "/v1/__heartbeat__")

        print(
            f"\nKinto with attachments, production set-up: {url}/v1/\n"
            f"  account: admin / {password} (the administrator)\n"
            f"  files:   {url}/attachments/ (nginx, from bucket {BUCKET} on moto)\n"
            f"  logs:    under {folder}\n\n"
            f"  curl -u admin:{password} -X PUT {url}/v1/buckets/b\n"
            f"  curl -u admin:{password} -X PUT {url}/v1/buckets/b/collections/c\n"
            f"  curl -u admin:{password} -F attachment=@constraints.txt \\\n"
            f"       {url}/v1/buckets/b/collections/c/records/r1/attachment\n\n"
            "Ctrl-C stops everything.",
            flush=True,
        )
        servers = (moto, gunicorn, nginx)
        try:
            while not (gone := [s for s in servers if s.process.poll() is not None]):
                time.sleep(1)
            print(f"{gone[0].log_path.name}: the server stopped; see {gone[0].log_path}")
        except KeyboardInterrupt:
            pass
        print("\nStopping...", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8080, help="nginx's port (default 8080)")
    parser.add_argument("--folder", type=Path, default=ROOT / ".prod")
    parser.add_argument("--password", default="admin-local", help="the admin account's")
    args = parser.parse_args()
    ensure_packages()
    shutil.rmtree(args.folder, ignore_errors=True)
    args.folder.mkdir(parents=True)
    # Ctrl-C, and a plain kill, stop everything started so far, even in the background.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with contextlib.suppress(KeyboardInterrupt):
        serve(args.folder.resolve(), args.port, args.password)


if __name__ == "__main__":
    main()
