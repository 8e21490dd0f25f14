"""Public files as the production example's nginx serves them: from the S3 bucket, at
``base_url`` on the API's own origin (``/attachments/``). S3 answers with the type each
file was stored with, and an ``.svg`` or ``.xml`` upload (the ``images`` and ``data``
extension groups, both allowed by default) is stored as what it is: a document a browser
renders, scripts included. nginx runs the example's site file against moto's S3."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests

from kinto_attachment_mw.config import Policy
from kinto_attachment_mw.upload.content_check import checked_mimetype
from kinto_attachment_mw.upload.naming import mimetype_for

from ..helpers.local_stack import stack
from ..helpers.system_packages import require

pytestmark = pytest.mark.e2e

SANDBOX = "default-src 'none'; sandbox"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.domain)</script></svg>'
XHTML = (
    b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml">'
    b"<script>alert(document.domain)</script></html>"
)


@pytest.fixture
def public_nginx(moto, tmp_path: Path) -> Iterator[SimpleNamespace]:
    require("nginx")
    bucket = moto.new_bucket()
    moto.client.put_bucket_policy(Bucket=bucket, Policy=stack.bucket_policy(bucket))
    port = stack.free_port()
    site = stack.site(
        listen_port=port,
        gunicorn_bind=f"{stack.HOST}:{stack.free_port()}",  # no API here: files only
        s3_endpoint=moto.url,
        bucket=bucket,
    )
    moto.client.put_object(Bucket=bucket, Key="ready", Body=b"")
    conf = stack.nginx_conf(tmp_path / "nginx", site)
    nginx = stack.Server(stack.nginx_command(conf), tmp_path / "nginx.log")
    try:
        nginx.wait_until_answers(port, "/attachments/ready")
        yield SimpleNamespace(url=f"http://{stack.HOST}:{port}", bucket=bucket)
    finally:
        nginx.stop()


def stored_type(filename: str, content: bytes) -> str:
    """The type an upload of ``content`` under ``filename`` is stored with (by default)."""
    policy = Policy()
    extension = filename.rpartition(".")[2]
    named = mimetype_for(filename, None, policy)
    return checked_mimetype(filename, extension, named, named, content)


@pytest.mark.parametrize(
    ("filename", "content", "rendered"),
    [
        pytest.param("logo.svg", SVG, "image/svg+xml", id="svg"),
        pytest.param("feed.xml", XHTML, "application/xml", id="xml-holding-xhtml"),
    ],
)
def test_a_public_document_runs_no_script_on_the_api_origin(
    public_nginx, moto, filename, content, rendered
):
    """A browser that opens the file's ``location`` renders it (it is stored as
    ``rendered``), but as a sandboxed document: no script of it runs on the API's
    origin, with the visitor's credentials there."""
    assert stored_type(filename, content) == rendered
    key = f"b/c/{filename}"
    moto.client.put_object(Bucket=public_nginx.bucket, Key=key, Body=content, ContentType=rendered)

    served = requests.get(f"{public_nginx.url}/attachments/{key}", timeout=30)
    assert served.status_code == 200
    assert served.content == content
    assert served.headers["Content-Type"] == rendered
    assert served.headers.get("Content-Security-Policy") == SANDBOX
    assert served.headers.get("X-Content-Type-Options") == "nosniff"
    missing = requests.get(f"{public_nginx.url}/attachments/b/c/none.svg", timeout=30)
    assert missing.status_code in (403, 404)
    assert missing.headers.get("Content-Security-Policy") == SANDBOX
