"""The middleware's settings honour Kinto's environment overrides (``KINTO_ATTACHMENT_*``,
``KINTO_STORAGE_URL``...), as the plugin's did: one ini file for every deployment, the
values that differ set by the environment, for the server and the ``gc`` command alike."""

from __future__ import annotations

from pathlib import Path

import kinto
import pytest
import webtest

from kinto_attachment_mw import filter_factory
from kinto_attachment_mw.config import from_kinto_settings, parse_settings
from kinto_attachment_mw.wsgi import effective_settings, load_app

from ..helpers.kinto_apps import ALICE, RECORDS

INI_URL = "https://ini.example/files/"
ENV_URL = "https://env.example/files/"


def write_ini(folder: Path, **settings: str) -> Path:
    base = {
        "use": "egg:kinto",
        "kinto.userid_hmac_secret": "tests",
        "multiauth.policies": "basicauth",
        "kinto.bucket_create_principals": "system.Authenticated",
        "kinto.attachment.base_path": str(folder / "attachments"),
        "kinto.attachment.base_url": INI_URL,
    }
    ini = folder / "kinto.ini"
    lines = "".join(f"{k} = {v}\n" for k, v in {**base, **settings}.items())
    ini.write_text("[app:main]\n" + lines)
    return ini


def upload(app: webtest.TestApp, record_id: str = "r1", content: bytes = b"hello\n", **kw):
    app.put_json("/v1/buckets/b", {}, headers=ALICE)
    app.put_json("/v1/buckets/b/collections/c", {}, headers=ALICE)
    return app.post(
        f"{RECORDS}/{record_id}/attachment",
        upload_files=[("attachment", "hello.txt", content)],
        headers=ALICE,
        **kw,
    )


@pytest.mark.unit
@pytest.mark.parametrize("variable", ["KINTO_ATTACHMENT_BASE_URL", "ATTACHMENT_BASE_URL"])
def test_environment_sets_the_base_url_of_locations(tmp_path, monkeypatch, variable):
    monkeypatch.setenv(variable, ENV_URL)
    app = webtest.TestApp(load_app(str(write_ini(tmp_path))))

    location = upload(app).json["location"]

    assert location.startswith(ENV_URL)
    capability = app.get("/v1/").json["capabilities"]["attachments"]
    assert capability["base_url"] == ENV_URL


@pytest.mark.unit
def test_environment_sets_a_typed_limit(tmp_path, monkeypatch):
    """Kinto decodes the variable (an int here); the limit applies as if written in the ini."""
    monkeypatch.setenv("KINTO_ATTACHMENT_MAX_SIZE_BYTES", "5")
    ini = write_ini(tmp_path, **{"kinto.attachment.max_size_bytes": "1000"})
    app = webtest.TestApp(load_app(str(ini)))

    refused = upload(app, content=b"six b\n", status=400)

    assert "exceeds the limit (5 bytes)" in refused.json["message"]


@pytest.mark.unit
def test_without_environment_the_ini_applies(tmp_path, monkeypatch):
    monkeypatch.delenv("KINTO_ATTACHMENT_BASE_URL", raising=False)
    monkeypatch.delenv("ATTACHMENT_BASE_URL", raising=False)
    app = webtest.TestApp(load_app(str(write_ini(tmp_path))))
    assert upload(app).json["location"].startswith(INI_URL)


@pytest.mark.unit
def test_plugin_ini_still_works(tmp_path):
    """The plugin's include is dropped; its typed values (booleans, per-resource keys) are
    read from Kinto's settings as from the ini."""
    ini = write_ini(
        tmp_path,
        **{
            "kinto.includes": "kinto.plugins.default_bucket kinto_attachment",
            "kinto.attachment.folder": "{bucket_id}/{collection_id}",
            "kinto.attachment.keep_old_files": "true",
            "kinto.attachment.resources.b.randomize": "false",
        },
    )
    app = webtest.TestApp(load_app(str(ini)))

    first = upload(app).json
    second = app.post(
        f"{RECORDS}/r1/attachment",
        upload_files=[("attachment", "hello.txt", b"again\n")],
        headers=ALICE,
    ).json

    assert first["location"] == f"{INI_URL}b/c/hello.txt"
    assert second["location"] == f"{INI_URL}b/c/hello-1.txt"
    assert (tmp_path / "attachments/b/c/hello.txt").read_bytes() == b"hello\n"  # kept


@pytest.mark.unit
def test_ini_text_that_reads_as_json_is_kept_as_written(tmp_path):
    """Kinto turns ``1e3`` into ``1000.0``; the middleware keeps the ini's text."""
    settings = {
        "kinto.userid_hmac_secret": "tests",
        "kinto.attachment.aws.bucket_name": "files",
        "kinto.attachment.aws.access_key": "0123",
        "kinto.attachment.aws.secret_key": "1e3",
        "kinto.attachment.base_url": INI_URL,
    }
    kinto_app = kinto.main({}, **settings)
    assert kinto_app.registry.settings["attachment.aws.secret_key"] == 1000.0

    s3 = parse_settings(from_kinto_settings(kinto_app.registry.settings)).s3

    assert (s3.access_key, s3.secret_key) == ("0123", "1e3")


@pytest.mark.integration
def test_storage_url_from_the_environment_reaches_the_record_locks(
    postgres_url, tmp_path, monkeypatch
):
    """Kinto and the middleware's advisory locks must use one database: the locks follow
    ``KINTO_STORAGE_URL`` as Kinto does."""
    unreachable = "postgresql://nobody@127.0.0.1:9/none"
    backends = {}
    for kind in ("storage", "permission", "cache"):
        backends[f"kinto.{kind}_backend"] = f"kinto.core.{kind}.postgresql"
        backends[f"kinto.{kind}_url"] = unreachable
        monkeypatch.setenv(f"KINTO_{kind.upper()}_URL", postgres_url)
    middleware = load_app(str(write_ini(tmp_path, **backends)))
    try:
        app = webtest.TestApp(middleware)
        assert upload(app).status_code == 201
        assert middleware.settings.locks.postgresql_url == postgres_url
    finally:
        middleware.locks.close()


@pytest.mark.unit
def test_paste_filter_reads_the_overridden_value(tmp_path, monkeypatch):
    monkeypatch.setenv("KINTO_ATTACHMENT_BASE_URL", ENV_URL)
    kinto_app = kinto.main(
        {},
        **{
            "kinto.userid_hmac_secret": "tests",
            "kinto.attachment.base_path": str(tmp_path),
            "kinto.attachment.base_url": INI_URL,
        },
    )
    middleware = filter_factory({})(kinto_app)
    assert middleware.settings.base_url == ENV_URL


@pytest.mark.unit
def test_kinto_wrapped_without_registry_falls_back_to_the_ini(caplog):
    """Kinto's profiler or New Relic wrapper hides the registry: the ini's values serve."""
    ini_settings = {"kinto.attachment.base_url": INI_URL}
    assert effective_settings(object(), ini_settings) is ini_settings
    assert "environment variables do not override them" in caplog.text
