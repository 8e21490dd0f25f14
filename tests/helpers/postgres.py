"""A private, throw-away PostgreSQL cluster for the tests, from Debian's package.

PostgreSQL refuses to run as root, and tests run as root here and in CI: the cluster
lives in a temporary folder owned by the ``postgres`` user and runs as that user, on a
free port, listening on localhost only. Each test that needs Kinto on PostgreSQL gets a
fresh database with Kinto's schema (``kinto migrate``).
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .servers import HOST, free_port

KINTO = str(Path(sys.executable).with_name("kinto"))
USER = "postgres"


def _binary(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(
            f"{name} not found under /usr/lib/postgresql: install Debian's postgresql package"
        )
    return found[-1]


def _as_postgres(*command: str) -> None:
    subprocess.run(
        ["runuser", "-u", USER, "--", *command],
        check=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=120,
    )


def kinto_postgresql_settings(url: str) -> dict[str, str]:
    return {
        "kinto.storage_backend": "kinto.core.storage.postgresql",
        "kinto.storage_url": url,
        "kinto.permission_backend": "kinto.core.permission.postgresql",
        "kinto.permission_url": url,
        "kinto.cache_backend": "kinto.core.cache.postgresql",
        "kinto.cache_url": url,
    }


def write_kinto_ini(
    folder: Path, backend: dict[str, str], base_url: str, storage: dict[str, str] | None = None
) -> Path:
    """``folder/kinto.ini``: Kinto on ``backend``, alice may create buckets, files stored
    under ``folder/attachments`` (or where ``storage``'s ``kinto.attachment.*`` say)."""
    settings = {
        "use": "egg:kinto",
        **backend,
        "kinto.userid_hmac_secret": "tests",
        "multiauth.policies": "basicauth",
        "kinto.bucket_create_principals": "system.Authenticated",
        "kinto.attachment.base_path": str(folder / "attachments"),
        "kinto.attachment.base_url": base_url,
    }
    if storage:
        del settings["kinto.attachment.base_path"]
        settings.update(storage)
    ini = folder / "kinto.ini"
    ini.write_text("[app:main]\n" + "".join(f"{k} = {v}\n" for k, v in settings.items()))
    return ini


class PostgresCluster:
    def __init__(self):
        self.folder = Path(tempfile.mkdtemp(prefix="kinto-attachment-pg-"))
        owner = pwd.getpwnam(USER)
        os.chown(self.folder, owner.pw_uid, owner.pw_gid)
        self.data = self.folder / "data"
        self.port = free_port()
        self._names = itertools.count(1)

    def start(self) -> None:
        _as_postgres(_binary("initdb"), "-D", str(self.data), "-A", "trust", "-U", USER)
        options = f"-p {self.port} -k {self.folder} -c listen_addresses={HOST} -c fsync=off"
        _as_postgres(
            _binary("pg_ctl"), "-D", str(self.data), "-o", options, "-l",
            str(self.folder / "server.log"), "-w", "start",
        )  # fmt: skip

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            _as_postgres(_binary("pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}@{HOST}:{self.port}/{database}"

    def create_database(self, folder: Path, migrate: bool = True) -> str:
        """A new database with Kinto's tables (none without ``migrate``); its URL."""
        name = f"kinto_{next(self._names)}"
        _as_postgres(
            _binary("psql"), "-h", HOST, "-p", str(self.port), "-U", USER, "-q",
            "-c", f"CREATE DATABASE {name}",
        )  # fmt: skip
        url = self.url(name)
        if not migrate:
            return url
        ini = folder / f"migrate-{name}.ini"
        settings = "\n".join(f"{k} = {v}" for k, v in kinto_postgresql_settings(url).items())
        ini.write_text(f"[app:main]\nuse = egg:kinto\n{settings}\n")
        subprocess.run(
            [KINTO, "migrate", "--ini", str(ini)],
            check=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=120,
        )
        return url
