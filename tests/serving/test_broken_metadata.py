"""What is kept beside a private file, found broken (deeply nested JSON, a folder, a
symlink, a named pipe where a sidecar should be, on local disk; a value nested past
Python's recursion limit, on S3): no answer is a 500, a 503 or a request that never ends,
and its record's delete still succeeds. Without readable metadata, whose the file is
cannot be told: it is served to no one."""

from __future__ import annotations

import os
import threading

import pytest

from kinto_attachment_mw.files.locations import PrivateLocation

from ..helpers.kinto_apps import ALICE, build_s3_app
from .test_downloads import CAROL, CONTENT
from .test_private_files import PRIVATE, SECRET, deployment, local_app

#: Deeper than Python's recursion limit: ``json`` raises RecursionError, not ValueError.
DEEP = "[" * 5000 + "]" * 5000


def _replace_with_folder(sidecar):
    sidecar.unlink()
    sidecar.mkdir()


def _replace_with_link_to_folder(sidecar):
    sidecar.unlink()
    sidecar.symlink_to(sidecar.parent)


def _replace_with_link_loop(sidecar):
    sidecar.unlink()
    sidecar.symlink_to(sidecar.name)


def _replace_with_pipe(sidecar):
    sidecar.unlink()
    os.mkfifo(sidecar)


DAMAGES = {
    "nested-past-the-recursion-limit": lambda sidecar: sidecar.write_text(DEEP),
    "nested-in-a-field": lambda sidecar: sidecar.write_text(f'{{"record": {DEEP}}}'),
    "a-folder": _replace_with_folder,
    "a-symlink-to-a-folder": _replace_with_link_to_folder,
    "a-symlink-loop": _replace_with_link_loop,
    "a-named-pipe": _replace_with_pipe,
}


def within(seconds: float, call):
    """``call()``'s result, or a failure when it has not returned after ``seconds`` (a
    request that hangs, reading a named pipe nobody writes to)."""
    outcome = []
    worker = threading.Thread(target=lambda: outcome.append(call()), daemon=True)
    worker.start()
    worker.join(seconds)
    assert outcome, f"no answer after {seconds} s"
    return outcome[0]


def assert_answered_and_deletable(app, served: bool) -> None:
    answer = within(10, lambda: app.get(f"{SECRET}/r1/attachment", headers=CAROL, status="*"))
    if served:
        assert answer.status_int in (200, 307), answer.body[:200]
    else:
        assert answer.status_int == 404, answer.body[:200]
        assert answer.json["errno"] == 111 and answer.body != CONTENT
    deleted = within(10, lambda: app.delete(f"{SECRET}/r1", headers=ALICE, status="*"))
    assert deleted.status_int == 200, deleted.body[:200]


@pytest.mark.unit
@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_broken_sidecar_on_disk(storage_root, damage):
    app = local_app(storage_root)
    key = PrivateLocation.parse(deployment(app)["secret"]["location"]).key
    folder, name = key.rsplit("/", 1)
    DAMAGES[damage](storage_root / folder / f".{name}.meta")
    assert_answered_and_deletable(app, served=False)


@pytest.mark.integration
def test_an_s3_metadata_value_nested_past_the_recursion_limit(moto):
    app = build_s3_app(moto.new_bucket(), moto.url, **PRIVATE)
    key = PrivateLocation.parse(deployment(app)["secret"]["location"]).key
    storage = app.app.storage
    stored = storage.client.head_object(Bucket=storage.bucket, Key=key)["Metadata"]
    storage.client.copy_object(
        Bucket=storage.bucket,
        Key=key,
        CopySource={"Bucket": storage.bucket, "Key": key},
        Metadata={**stored, "size": "[" * 1500},
        MetadataDirective="REPLACE",
    )
    # A value that is not what it should be reads as missing: the size is no part of
    # who may download the file.
    assert_answered_and_deletable(app, served=True)
