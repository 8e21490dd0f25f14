"""The demo page (examples/demo/, served by examples/serve.py as ``make serve`` does),
driven in headless Chromium: Debian's ``chromium``, through Playwright's Python API.

A screenshot taken after the upload is kept in tests/output/ for a human to look at.
"""

from __future__ import annotations

import hashlib
import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Page, expect, sync_playwright

from kinto_attachment_mw.config.policy import EXTENSION_GROUPS

from ..helpers.live_server import Kinto, kinto_ini_server
from ..helpers.servers import start_gunicorn
from ..helpers.system_packages import require

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
OUTPUT = Path(__file__).resolve().parents[1] / "output"


def png(width: int, height: int) -> bytes:
    """A real PNG (a colour gradient), so that the page's preview has something to show."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(
        b"\0" + b"".join(bytes((4 * x % 256, 5 * y % 256, 160)) for x in range(width))
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def kinto(tmp_path_factory) -> Iterator[Kinto]:
    tmp = tmp_path_factory.mktemp("demo")
    app = ["--pythonpath", str(EXAMPLES), "serve:application"]
    private = {"kinto.attachment.resources.gallery.vault.private": "true"}
    server, _ = kinto_ini_server(tmp, app=app, attachment=private)
    try:
        yield Kinto(server)
    finally:
        server.stop()


@pytest.fixture
def page(kinto) -> Iterator[Page]:
    require("chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 800})
            yield page
        finally:
            browser.close()


def test_demo_page_uploads_lists_replaces_and_deletes(kinto, page, tmp_path):
    picture = tmp_path / "gradient.png"
    picture.write_bytes(png(64, 48))
    notes = tmp_path / "notes.txt"
    notes.write_text("replaced by a text file\n")
    message = page.locator("#message")

    page.goto(f"{kinto.url}/demo")
    page.fill("#user", "alice")
    page.fill("#password", "secret")
    page.click("#signin button")
    expect(page.locator("#whoami")).to_contain_text("Signed in as alice")

    page.fill("#bucket", "gallery")
    page.fill("#collection", "pictures")
    page.click("#pick button")
    expect(message).to_have_text("Opened gallery/pictures.")

    page.set_input_files("#file", str(picture))
    page.fill("#record-id", "sunset")
    page.fill("#data", '{"title": "A gradient"}')
    page.click("#upload button")
    expect(message).to_contain_text("Uploaded gradient.png")
    assert page.eval_on_selector("#progress", "bar => bar.value") == 100

    row = page.locator('#records tr[data-id="sunset"]')
    link = row.locator("a.file-link")
    expect(link).to_have_text("gradient.png")
    expect(row).to_contain_text("image/png")
    expect(row).to_contain_text("A gradient")
    preview = row.locator("img")
    expect(preview).to_be_visible()
    loaded = "img => img.complete && img.naturalWidth === 64"
    page.wait_for_function(loaded, arg=preview.element_handle())
    OUTPUT.mkdir(exist_ok=True)
    screenshot = OUTPUT / "demo-after-upload.png"
    page.screenshot(path=str(screenshot), full_page=True)
    print(f"screenshot: {screenshot}")

    fetched = requests.get(link.get_attribute("href"), timeout=30)
    assert fetched.status_code == 200
    assert fetched.content == picture.read_bytes()
    record = kinto.record("sunset", "/v1/buckets/gallery/collections/pictures").json()["data"]
    assert record["title"] == "A gradient"

    row.locator('input[type="file"]').set_input_files(str(notes))
    expect(message).to_have_text("Replaced the attachment of sunset with notes.txt.")
    expect(link).to_have_text("notes.txt")
    assert requests.get(link.get_attribute("href"), timeout=30).content == notes.read_bytes()

    old_location = link.get_attribute("href")
    row.get_by_role("button", name="Delete").click()
    expect(message).to_have_text("Deleted the attachment of sunset.")
    expect(row).to_contain_text("(no attachment)")
    record = kinto.record("sunset", "/v1/buckets/gallery/collections/pictures").json()["data"]
    assert record["attachment"] is None
    assert requests.get(old_location, timeout=30).status_code == 404


def open_collection(page: Page, kinto: Kinto, collection: str) -> None:
    """Signed in as alice, with ``gallery/{collection}`` open."""
    page.goto(f"{kinto.url}/demo")
    page.fill("#user", "alice")
    page.fill("#password", "secret")
    page.click("#signin button")
    page.fill("#bucket", "gallery")
    page.fill("#collection", collection)
    page.click("#pick button")
    expect(page.locator("#message")).to_have_text(f"Opened gallery/{collection}.")


def test_demo_page_shows_and_downloads_private_files_with_credentials(kinto, page, tmp_path):
    picture = tmp_path / "secret.png"
    picture.write_bytes(png(64, 48))
    open_collection(page, kinto, "vault")
    page.set_input_files("#file", str(picture))
    page.fill("#record-id", "hidden")
    page.click("#upload button")
    expect(page.locator("#message")).to_contain_text("Uploaded secret.png")

    row = page.locator('#records tr[data-id="hidden"]')
    link = row.locator("a.file-link.private")
    expect(link).to_have_text("secret.png")
    location = link.get_attribute("href")
    assert "/records/hidden/attachment?key=" in location
    assert requests.get(location, timeout=30).status_code == 401  # a plain link would fail
    loaded = "img => img.complete && img.naturalWidth === 64"
    page.wait_for_function(loaded, arg=row.locator("img").element_handle())
    with page.expect_download() as download:
        link.click()
    saved = tmp_path / "saved.png"
    download.value.save_as(saved)
    assert download.value.suggested_filename == "secret.png"
    assert saved.read_bytes() == picture.read_bytes()


def test_demo_page_reports_a_refused_file(kinto, page, tmp_path):
    program = tmp_path / "tool.exe"
    program.write_bytes(b"MZ")
    page.goto(f"{kinto.url}/demo/")
    page.fill("#user", "bob")
    page.fill("#password", "pw")
    page.click("#signin button")
    page.click("#pick button")
    expect(page.locator("#message")).to_have_text("Opened demo/files.")
    page.set_input_files("#file", str(program))
    page.click("#upload button")
    allowed = sorted(EXTENSION_GROUPS["default"])
    expect(page.locator("#allowed")).to_have_text(
        "Allowed: "
        + " ".join(f".{e}" for e in allowed)
        + " (unless this collection says otherwise)."
    )
    expect(page.locator("#message")).to_have_text(
        "Upload failed: body: File extension is not allowed. '.exe' is not allowed here; "
        "allowed: " + ", ".join(f".{e}" for e in allowed)
    )
    expect(page.locator("#empty")).to_be_visible()


def test_make_serve_entry_point_serves_the_demo_beside_kinto(tmp_path):
    """What ``make serve`` runs: examples/serve.py with examples/kinto.ini."""
    server = start_gunicorn(
        ["--pythonpath", str(EXAMPLES), "serve:application"],
        tmp_path / "gunicorn.log",
        env={"KINTO_INI": str(EXAMPLES / "kinto.ini")},
        cwd=tmp_path,
    )
    try:
        moved = requests.get(f"{server.url}/demo", allow_redirects=False, timeout=30)
        assert (moved.status_code, moved.headers["Location"]) == (301, f"{server.url}/demo/")
        index = requests.get(f"{server.url}/demo/", timeout=30)
        assert index.status_code == 200
        assert '<script src="demo.js"></script>' in index.text
        assert requests.get(f"{server.url}/demo/demo.js", timeout=30).status_code == 200
        assert requests.get(f"{server.url}/v1/", timeout=30).json()["capabilities"]["attachments"]
        assert requests.get(f"{server.url}/demo-not", timeout=30).status_code == 404
    finally:
        server.stop()


def test_demo_page_resumes_an_upload_after_going_offline(kinto, page, tmp_path):
    """Resumable mode: the page goes offline mid-upload, comes back, and the upload goes
    on from where the server says it stopped, ending with the record describing the file."""
    lines = b"".join(b"%08d,some value\n" % n for n in range(300_000))  # 5.4 MiB of CSV
    source = tmp_path / "big.csv"
    source.write_bytes(lines)
    message = page.locator("#message")
    open_collection(page, kinto, "tables")

    def slow_pieces(route):
        time.sleep(0.25)  # a slow link: time to go offline between two pieces
        route.continue_()

    page.route("**/uploads/**", slow_pieces)
    page.set_input_files("#file", str(source))
    page.fill("#record-id", "big")
    page.check("#resumable")
    page.click("#upload button")
    page.wait_for_function("() => document.getElementById('progress').value >= 35")
    page.context.set_offline(True)
    expect(message).to_contain_text("Connection lost at", timeout=15_000)
    time.sleep(0.5)
    page.context.set_offline(False)
    expect(message).to_contain_text("Uploaded big.csv", timeout=30_000)
    record = kinto.record("big", "/v1/buckets/gallery/collections/tables").json()["data"]
    assert record["attachment"]["hash"] == hashlib.sha256(lines).hexdigest()
    assert page.evaluate("() => localStorage.length") == 0
