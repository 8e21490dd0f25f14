"""``examples/kinto.ini``, the ini ``make serve`` runs, built in process as the entry
point builds it (without its logging set-up)."""

from __future__ import annotations

from pathlib import Path

import kinto
import pytest
import webtest
from pyramid.paster import get_appsettings

from kinto_attachment_mw import AttachmentMiddleware
from kinto_attachment_mw.wsgi import effective_settings, without_plugin_include

from ..helpers.kinto_apps import ALICE

pytestmark = pytest.mark.unit

EXAMPLE_INI = Path(__file__).resolve().parents[2] / "examples" / "kinto.ini"


@pytest.fixture
def make_serve_app(tmp_path, monkeypatch) -> webtest.TestApp:
    monkeypatch.setenv("KINTO_ATTACHMENT_BASE_PATH", str(tmp_path / "attachments"))
    app_settings = get_appsettings(str(EXAMPLE_INI), name="main")
    settings = without_plugin_include(app_settings)
    kinto_app = kinto.main(app_settings.global_conf, **settings)
    return webtest.TestApp(AttachmentMiddleware(kinto_app, effective_settings(kinto_app, settings)))


def test_make_serve_has_no_flush_endpoint(make_serve_app):
    """Anyone could otherwise delete every record and file with one anonymous request."""
    includes = get_appsettings(str(EXAMPLE_INI), name="main")["kinto.includes"].split()
    assert "kinto.plugins.flush" not in includes
    make_serve_app.put_json("/v1/buckets/b", {}, headers=ALICE)
    answer = make_serve_app.post("/v1/__flush__", status="*")
    assert answer.status_int in (404, 405)
    make_serve_app.get("/v1/buckets/b", headers=ALICE, status=200)
