"""The spool is trusted only when it is the service's own: its folder (0700, owned by the
service's user, checked at start-up) and its files (never opened through a link)."""

from __future__ import annotations

import os
import stat

import pytest

from kinto_attachment_mw.config import ConfigurationError

from ..helpers.kinto_apps import ALICE, RECORDS, Uploads, build_app
from .test_tus import STREAM, TUS, create, patch

pytestmark = pytest.mark.unit

NOBODY = 65534


@pytest.fixture
def spool(tmp_path):
    return tmp_path / "spool"


@pytest.fixture
def tus(storage_root, spool) -> Uploads:
    return Uploads(build_app(storage_root, **{"resumable.spool_path": str(spool)}), storage_root)


def test_the_folder_is_created_0700_and_files_0600_at_start_up(storage_root, spool):
    previous = os.umask(0)
    try:
        tus = Uploads(build_app(storage_root, **{"resumable.spool_path": str(spool)}), storage_root)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(spool.stat().st_mode) == 0o700  # before any upload
    previous = os.umask(0)
    try:
        location = create(tus, 10).headers["Location"]
    finally:
        os.umask(previous)
    upload_id = location.rsplit("/", 1)[1]
    for suffix in (".json", ".part"):
        assert stat.S_IMODE((spool / f"{upload_id}{suffix}").stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("mode", "owner", "reason"),
    [
        pytest.param(0o777, None, "group or others may write to it (mode 0777)", id="0777"),
        pytest.param(0o720, None, "group or others may write to it (mode 0720)", id="group"),
        pytest.param(0o700, NOBODY, f"owned by uid {NOBODY}", id="another-owner"),
    ],
)
def test_a_folder_that_is_not_the_services_own_stops_start_up(
    storage_root, spool, mode, owner, reason
):
    spool.mkdir()
    spool.chmod(mode)
    if owner is not None:
        os.chown(spool, owner, -1)  # the tests run as root
    with pytest.raises(ConfigurationError) as refused:
        build_app(storage_root, **{"resumable.spool_path": str(spool)})
    message = str(refused.value)
    assert message.startswith("kinto.attachment.resumable.spool_path: ")
    assert reason in message and "chmod 700" in message


def test_a_part_swapped_for_a_link_is_never_appended_to(tus, spool, tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"root's")
    location = create(tus, 10).headers["Location"]
    part = spool / (location.rsplit("/", 1)[1] + ".part")
    part.unlink()
    part.symlink_to(victim)
    refused = patch(tus, location, 0, b"owned", status=503)
    assert refused.json["code"] == 503 and refused.json["errno"] == 201
    patch(tus, location, 6, b"owned", status=503)
    assert victim.read_bytes() == b"root's"
    head = tus.app.head(location, headers={**ALICE, **TUS}, status=503)
    assert "Upload-Offset" not in head.headers


def test_a_part_swapped_for_a_link_is_never_read_into_an_attachment(tus, spool, tmp_path):
    secret = tmp_path / "secret"
    secret.write_bytes(b"top secret")
    location = create(tus, 10).headers["Location"]
    patch(tus, location, 0, b"public")
    part = spool / (location.rsplit("/", 1)[1] + ".part")
    part.unlink()
    part.symlink_to(secret)
    tus.app.patch(
        location,
        b"",
        headers={**ALICE, **TUS, **STREAM, "Upload-Offset": "10"},
        status=503,
    )
    tus.app.get(f"{RECORDS}/r1", headers=ALICE, status=404)
    assert tus.files() == set()


def test_a_state_swapped_for_a_link_is_refused(tus, spool, tmp_path):
    location = create(tus, 10).headers["Location"]
    state = spool / (location.rsplit("/", 1)[1] + ".json")
    copy = tmp_path / "state.json"
    copy.write_bytes(state.read_bytes())
    state.unlink()
    state.symlink_to(copy)
    tus.app.head(location, headers={**ALICE, **TUS}, status=503)
    refused = patch(tus, location, 0, b"abc", status=503)
    assert refused.json["code"] == 503
