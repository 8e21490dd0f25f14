"""The ways users start it under gunicorn: the ``KINTO_INI`` entry point with a
plugin-era ini, a paste pipeline, and the embedded default that ``make serve`` runs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from ..helpers.kinto_apps import files_under
from ..helpers.live_server import (
    KINTO_APP_SETTINGS,
    PLUGIN_ERA_LOGGING,
    Kinto,
    assert_metadata,
    ini_section,
    kinto_ini_server,
    write_ini,
)
from ..helpers.servers import GunicornServer, start_gunicorn

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def plugin_server(tmp_path_factory) -> Iterator[GunicornServer]:
    tmp = tmp_path_factory.mktemp("plugin")
    server, _ = kinto_ini_server(
        tmp,
        attachment={
            "kinto.includes": "kinto.plugins.default_bucket kinto_attachment",
            "kinto.attachment.folder": "{bucket_id}/{collection_id}",
        },
        logging=PLUGIN_ERA_LOGGING,
    )
    try:
        yield server
    finally:
        server.stop()


def test_plugin_ini_starts_and_logs_the_dropped_include_once(plugin_server):
    """Users swap the plugin for the middleware without touching their ini."""
    kinto = Kinto(plugin_server)
    kinto.create_collection()
    assert_metadata(kinto.upload("r1", "notes.txt", b"plugin-era\n"), "notes.txt", b"plugin-era\n")

    log = plugin_server.log()
    dropped = [line for line in log.splitlines() if "Dropped 'kinto_attachment'" in line]
    assert len(dropped) == 1, log
    assert "INFO" in dropped[0]
    assert "[kinto_attachment_mw.wsgi]" in dropped[0]


def test_plugin_ini_default_bucket_upload(plugin_server):
    """The plugin ini keeps ``default_bucket``: files go under the caller's real bucket."""
    kinto = Kinto(plugin_server)
    bucket = kinto.request("GET", "/v1/").json()["user"]["bucket"]
    response = kinto.request(
        "POST",
        "/v1/buckets/default/collections/notes/records/n1/attachment",
        files={"attachment": ("n.txt", b"mine", "text/plain")},
    )
    meta = assert_metadata(response, "n.txt", b"mine")
    assert f"/attachments/{bucket}/notes/" in meta["location"]
    assert response.headers["Location"].endswith(
        f"/v1/buckets/{bucket}/collections/notes/records/n1"
    )


# A paste pipeline


def paste_ini(tmp: Path, root: Path, style: str) -> Path:
    app = dict(KINTO_APP_SETTINGS)
    attachment_filter = {"use": "egg:kinto_attachment_mw"}
    if style == "filter-section":
        attachment_filter["attachment.base_path"] = str(root)
        attachment_filter["attachment.base_url"] = "https://cdn.example.com/files/"
    else:  # the filter falls back to the Kinto app's own settings
        app["kinto.attachment.base_path"] = str(root)
        app["kinto.attachment.base_url"] = "https://cdn.example.com/files/"
    return write_ini(
        tmp / "kinto.ini",
        ini_section("app:kinto", app),
        ini_section("filter:attachment", attachment_filter),
        ini_section("pipeline:main", {"pipeline": "attachment kinto"}),
    )


@pytest.mark.parametrize("style", ["filter-section", "app-section"])
def test_paste_pipeline_upload(tmp_path, style):
    """``gunicorn --paste`` with the middleware as a filter in front of Kinto."""
    root = tmp_path / "files"
    ini = paste_ini(tmp_path, root, style)
    server = start_gunicorn(["--paste", str(ini)], tmp_path / "gunicorn.log")
    try:
        kinto = Kinto(server)
        hello = kinto.request("GET", "/v1/").json()
        assert hello["capabilities"]["attachments"]["base_url"] == "https://cdn.example.com/files/"
        kinto.create_collection()
        meta = assert_metadata(kinto.upload("p1", "a.csv", b"x,y\n1,2\n"), "a.csv", b"x,y\n1,2\n")
        assert meta["location"].startswith("https://cdn.example.com/files/")
        key = meta["location"][len("https://cdn.example.com/files/") :]
        assert (root / key).read_bytes() == b"x,y\n1,2\n"
        assert files_under(root) == {key}
    finally:
        server.stop()


# The embedded default that `make serve` runs


def test_make_serve_configuration_works_as_documented(tmp_path):
    """examples/kinto.ini: memory backend, files under ./attachments, served by the
    middleware so that the path of each ``location`` URL resolves."""
    ini = Path(__file__).resolve().parents[2] / "examples" / "kinto.ini"
    server = start_gunicorn(
        ["kinto_attachment_mw.wsgi:application"],
        tmp_path / "gunicorn.log",
        env={"KINTO_INI": str(ini)},
        cwd=tmp_path,
    )
    try:
        kinto = Kinto(server)
        kinto.create_collection()
        meta = assert_metadata(kinto.upload("readme", "notes.txt", b"hello"), "notes.txt", b"hello")
        assert meta["location"].startswith("http://127.0.0.1:8888/attachments/b/c/")
        path = meta["location"][len("http://127.0.0.1:8888") :]
        fetched = requests.get(server.url + path, timeout=30)
        assert fetched.content == b"hello"
        assert files_under(tmp_path / "attachments") == {path[len("/attachments/") :]}
        capability = kinto.request("GET", "/v1/").json()["capabilities"]["attachments"]
        assert capability["base_url"] == "http://127.0.0.1:8888/attachments/"
    finally:
        server.stop()
