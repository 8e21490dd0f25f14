"""A wrong setting stops start-up with one line that names the key and the reason, no
traceback and a non-zero exit, however the server is started."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ..helpers.live_server import KINTO_APP_SETTINGS, ini_section, write_ini
from ..helpers.servers import GUNICORN, HOST, free_port

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
TYPO = {"kinto.attachment.extensions": "images+imags"}
REASON = "kinto.attachment.extensions: unknown 'imags', neither a group"


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[int, str]:
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )
    return done.returncode, done.stdout + done.stderr


def gunicorn(*args: str) -> list[str]:
    return [GUNICORN, "--bind", f"{HOST}:{free_port()}", "--no-control-socket", *args]


def app_ini(tmp_path: Path) -> Path:
    settings = {**KINTO_APP_SETTINGS, "kinto.attachment.base_path": str(tmp_path), **TYPO}
    return write_ini(tmp_path / "kinto.ini", ini_section("app:main", settings))


def paste_ini(tmp_path: Path) -> Path:
    filter_settings = {"use": "egg:kinto_attachment_mw", "attachment.base_path": str(tmp_path)}
    filter_settings["attachment.extensions"] = TYPO["kinto.attachment.extensions"]
    return write_ini(
        tmp_path / "paste.ini",
        ini_section("app:kinto", KINTO_APP_SETTINGS),
        ini_section("filter:attachment", filter_settings),
        ini_section("pipeline:main", {"pipeline": "attachment kinto"}),
        ini_section("server:main", {"use": "egg:waitress#main", "listen": f"{HOST}:{free_port()}"}),
    )


def assert_one_line(status: int, output: str, reason: str = REASON) -> None:
    assert status != 0, output
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if reason in line]
    assert len(lines) == 1, output
    assert lines[0].startswith("Error: ") or ": error: " in lines[0], output


def test_gunicorn_entry_point(tmp_path):
    ini = app_ini(tmp_path)
    status, output = run(
        gunicorn("kinto_attachment_mw.wsgi:application"), tmp_path, {"KINTO_INI": str(ini)}
    )
    assert_one_line(status, output)
    assert f"{ini}: {REASON}" in output
    assert "Worker failed to boot" not in output


def test_gunicorn_entry_point_without_the_ini(tmp_path):
    status, output = run(
        gunicorn("kinto_attachment_mw.wsgi:application"),
        tmp_path,
        {"KINTO_INI": str(tmp_path / "missing.ini")},
    )
    assert_one_line(status, output, "missing.ini: no such ini file (set KINTO_INI")


def test_gunicorn_paste(tmp_path):
    status, output = run(gunicorn("--paste", str(paste_ini(tmp_path))), tmp_path)
    assert_one_line(status, output, "paste.ini: attachment.extensions: unknown 'imags'")


def test_pserve(tmp_path):
    status, output = run([str(BIN / "pserve"), str(paste_ini(tmp_path))], tmp_path)
    assert_one_line(status, output, "paste.ini: attachment.extensions: unknown 'imags'")


def test_gc_command(tmp_path):
    ini = app_ini(tmp_path)
    status, output = run([str(BIN / "kinto-attachment-mw"), "gc", "--ini", str(ini)], tmp_path)
    assert_one_line(status, output)
    assert output.splitlines()[-1] == f"kinto-attachment-mw gc: error: {ini}: " + REASON + (
        " (archives, audio, data, default, documents, executables, images, scripts, text, "
        "video, any) nor a known extension; write '.imags' to allow files named *.imags"
    )
