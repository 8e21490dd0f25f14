"""In-process apps: a real Kinto (memory backend) wrapped by the middleware, the settings
that build it, users, and an uploader that checks what lands in storage."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping
from pathlib import Path

import kinto
import webtest

from kinto_attachment_mw import AttachmentMiddleware
from kinto_attachment_mw.config import PREFIXES, S3Settings
from kinto_attachment_mw.storage.local import META_SUFFIX, TEMP_PREFIX, LocalStorage
from kinto_attachment_mw.storage.s3 import S3Storage

from .s3 import CREDENTIALS, REGION

KINTO_SETTINGS = {
    "kinto.storage_backend": "kinto.core.storage.memory",
    "kinto.cache_backend": "kinto.core.cache.memory",
    "kinto.permission_backend": "kinto.core.permission.memory",
    "kinto.userid_hmac_secret": "test-secret",
    "multiauth.policies": "basicauth",
    "kinto.bucket_create_principals": "system.Authenticated",
    "kinto.includes": "kinto.plugins.default_bucket kinto.plugins.flush",
    "kinto.experimental_collection_schema_validation": "true",
}

RECORDS = "/v1/buckets/b/collections/c/records"


def auth(user: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:secret".encode()).decode()
    return {"Authorization": f"Basic {token}"}


ALICE = auth("alice")


def kinto_settings(base_path: Path, **attachment: str) -> dict[str, str]:
    settings = dict(KINTO_SETTINGS)
    settings["kinto.attachment.base_path"] = str(base_path)
    settings.update({f"kinto.attachment.{k}": v for k, v in attachment.items()})
    return settings


_KINTO_APPS: dict[frozenset, object] = {}


def fresh_kinto(settings: Mapping[str, str]):
    """Kinto on its memory backends, empty, for these settings.

    Kinto takes 0.15 s to start, more than most tests take to run: one app is kept per
    set of Kinto's own settings, and emptied (as Kinto's flush endpoint does) before it
    serves again. The ``kinto.attachment.*`` settings are not Kinto's: the middleware is
    given them directly, so they do not make a new app.
    """
    own = frozenset((key, value) for key, value in settings.items() if not key.startswith(PREFIXES))
    kinto_app = _KINTO_APPS.get(own)
    if kinto_app is None:
        kinto_app = _KINTO_APPS[own] = kinto.main({}, **dict(own))
    else:
        registry = kinto_app.registry
        for backend in (registry.storage, registry.permission, registry.cache):
            backend.flush()
    return kinto_app


def build_app(base_path: Path, **attachment: str) -> webtest.TestApp:
    settings = kinto_settings(base_path, **attachment)
    return webtest.TestApp(AttachmentMiddleware(fresh_kinto(settings), settings))


def s3_kinto_settings(bucket: str, endpoint_url: str, **attachment: str) -> dict[str, str]:
    """Kinto's settings with S3 storage, as an ini file would give them."""
    settings = dict(KINTO_SETTINGS)
    aws = {
        "bucket_name": bucket,
        "endpoint_url": endpoint_url,
        "access_key": CREDENTIALS["aws_access_key_id"],
        "secret_key": CREDENTIALS["aws_secret_access_key"],
        "region": REGION,
    }
    settings.update({f"kinto.attachment.aws.{k}": v for k, v in aws.items()})
    settings.update({f"kinto.attachment.{k}": v for k, v in attachment.items()})
    return settings


def build_s3_app(bucket: str, endpoint_url: str, storage=None, **attachment: str):
    """Kinto wrapped by the middleware on S3; ``storage`` replaces the one the settings
    would build (tests use smaller parts and shorter timeouts)."""
    settings = s3_kinto_settings(bucket, endpoint_url, **attachment)
    return webtest.TestApp(AttachmentMiddleware(fresh_kinto(settings), settings, storage=storage))


def files_under(base_path: Path) -> set[str]:
    """Every file below the storage root, temporary ones included; each stored file's
    metadata sidecar is checked to be there, and none to be left without its file."""
    found = {
        str(Path(root, name).relative_to(base_path))
        for root, _, names in os.walk(base_path)
        for name in names
    }
    sidecars = {name for name in found if Path(name).name.endswith(META_SUFFIX)}
    files = found - sidecars
    expected = {
        str(Path(name).parent / f".{Path(name).name}{META_SUFFIX}")
        for name in files
        if not Path(name).name.startswith(TEMP_PREFIX)
    }
    expected = {name.removeprefix("./") for name in expected}
    assert sidecars == expected, f"sidecars {sidecars} do not match files {files}"
    return files


def userid(app: webtest.TestApp, headers: dict[str, str]) -> str:
    return app.get("/v1/", headers=headers).json["user"]["id"]


class Uploads:
    """A bucket ``b`` with collection ``c`` owned by alice, and helpers to upload."""

    def __init__(self, app: webtest.TestApp, base_path: Path | None = None):
        self.app = app
        self.base_path = base_path
        app.put_json("/v1/buckets/b", {}, headers=ALICE)
        app.put_json("/v1/buckets/b/collections/c", {}, headers=ALICE)

    def upload(
        self,
        record_id: str = "r1",
        filename: str = "hello.txt",
        content: bytes = b"hello world\n",
        data: object = None,
        permissions: object = None,
        headers: dict[str, str] | None = None,
        status: int | str = "2*",
        path: str | None = None,
        content_type: str | None = None,
    ):
        params = []
        if data is not None:
            params.append(("data", data if isinstance(data, str) else json.dumps(data)))
        if permissions is not None:
            params.append(("permissions", json.dumps(permissions)))
        file_tuple = (
            (filename, content) if content_type is None else (filename, content, content_type)
        )
        return self.app.post(
            path or f"{RECORDS}/{record_id}/attachment",
            params=params,
            upload_files=[("attachment", *file_tuple)],
            headers=ALICE if headers is None else headers,
            status=status,
        )

    def record(self, record_id: str = "r1", status: int | str = 200):
        return self.app.get(f"{RECORDS}/{record_id}", headers=ALICE, status=status).json

    def files(self) -> set[str]:
        """The stored files: on local disk every file, metadata checked; elsewhere as the
        middleware's storage lists them."""
        if self.base_path is not None:
            return files_under(self.base_path)
        storage = self.app.app.storage
        if isinstance(storage, LocalStorage):
            return files_under(Path(storage.base_path))
        return {info.key for info in storage.scan()}

    def plant_plugin_file(self, key: str, content: bytes) -> None:
        """A file as the plugin stored it: no metadata beside it."""
        storage = self.app.app.storage
        if isinstance(storage, LocalStorage):
            path = Path(storage.path_of(key))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        else:
            storage.bucket.bucket.blob(key).upload_from_string(content)

    def path_of(self, location: str) -> Path:
        return self.base_path / location


def s3_settings(bucket: str, endpoint_url: str, **values) -> S3Settings:
    return S3Settings(
        bucket_name=bucket,
        access_key=CREDENTIALS["aws_access_key_id"],
        secret_key=CREDENTIALS["aws_secret_access_key"],
        endpoint_url=endpoint_url,
        region=REGION,
        **values,
    )


#: S3's smallest part, so that multipart uploads happen with files of a few MiB.
TEST_PART_SIZE = 5 * 1024 * 1024


def s3_storage(bucket: str, endpoint_url: str, base_url: str = "", **kwargs) -> S3Storage:
    kwargs.setdefault("part_size", TEST_PART_SIZE)
    settings = s3_settings(bucket, endpoint_url, acl=kwargs.pop("acl", None))
    return S3Storage(settings, base_url, **kwargs)
