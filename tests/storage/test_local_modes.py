"""Who may read files on local disk: private files are the server's alone (or its
``private_files_group``'s), public ones follow the umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from kinto_attachment_mw.config import ConfigurationError, parse_settings
from kinto_attachment_mw.files.locations import PrivateLocation

from ..helpers.kinto_apps import ALICE, Uploads, build_app
from ..serving.test_downloads import CONTENT, collection

pytestmark = pytest.mark.unit

PRIVATE = {"resources.b.secret.private": "true", "folder": "{bucket_id}/{collection_id}"}
GROUP = 65534  # nogroup: not the server's own group


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def umasked(requested: int) -> int:
    umask = os.umask(0)
    os.umask(umask)
    return requested & ~umask


def upload(app, name: str) -> dict:
    Uploads(app)  # alice's bucket b
    path = collection(app, name, public=name != "secret")
    return app.post(
        f"{path}/records/r1/attachment",
        upload_files=[("attachment", "numbers.csv", CONTENT)],
        headers=ALICE,
    ).json


def stored(root: Path, key: str) -> tuple[Path, Path, list[Path]]:
    """The file, its metadata sidecar, and its folders under ``root``."""
    path = root / key
    folders = [root.joinpath(*key.split("/")[:depth]) for depth in range(1, key.count("/") + 1)]
    return path, path.with_name(f".{path.name}.meta"), folders


def private_key(meta: dict) -> str:
    return PrivateLocation.parse(meta["location"]).key


def test_private_files_are_the_servers_alone_public_ones_follow_the_umask(storage_root):
    app = build_app(storage_root, **PRIVATE)
    secret, public = upload(app, "secret"), upload(app, "open")
    path, sidecar, folders = stored(storage_root, private_key(secret))
    assert [folder.name for folder in folders] == ["_private", "b", "secret"]
    assert (mode(path), mode(sidecar)) == (0o600, 0o600)
    assert [mode(folder) for folder in folders] == [0o700] * 3
    path, sidecar, folders = stored(storage_root, public["location"])
    assert (mode(path), mode(sidecar)) == (umasked(0o666),) * 2
    assert [mode(folder) for folder in folders] == [umasked(0o777)] * 2


def test_a_private_folder_left_open_is_closed_by_the_next_upload(storage_root):
    """Folders made before private files had their own modes."""
    (storage_root / "_private" / "b").mkdir(parents=True, mode=0o755)
    os.chmod(storage_root / "_private", 0o755)
    app = build_app(storage_root, **PRIVATE)
    _, _, folders = stored(storage_root, private_key(upload(app, "secret")))
    assert [mode(folder) for folder in folders] == [0o700] * 3


def test_private_files_readable_by_the_configured_group(storage_root):
    app = build_app(storage_root, private_files_group=str(GROUP), **PRIVATE)
    key = private_key(upload(app, "secret"))
    path, sidecar, folders = stored(storage_root, key)
    for target, expected in ((path, 0o640), (sidecar, 0o640), *((f, 0o750) for f in folders)):
        assert (mode(target), os.stat(target).st_gid) == (expected, GROUP), target
    # Metadata rewritten in place (a copy onto another record) keeps the modes.
    secret = app.get("/v1/buckets/b/collections/secret/records/r1", headers=ALICE).json
    app.put_json(
        "/v1/buckets/b/collections/secret/records/copy",
        {"data": {"attachment": secret["data"]["attachment"]}},
        headers=ALICE,
    )
    assert (mode(sidecar), os.stat(sidecar).st_gid) == (0o640, GROUP)


def test_private_files_group_by_name_or_number_checked_at_start_up(tmp_path):
    raw = {"kinto.attachment.base_path": str(tmp_path)}
    assert parse_settings(raw).private_files_gid is None
    for value in ("nogroup", "65534"):
        raw["kinto.attachment.private_files_group"] = value
        assert parse_settings(raw).private_files_gid == GROUP
    raw["kinto.attachment.private_files_group"] = "no-such-group-here"
    with pytest.raises(ConfigurationError, match="no group 'no-such-group-here'"):
        parse_settings(raw)
    raw = {
        "kinto.attachment.aws.bucket_name": "files",
        "kinto.attachment.private_files_group": "nogroup",
    }
    with pytest.raises(ConfigurationError, match="only for local storage"):
        parse_settings(raw)
