"""Stored names: built from sanitised parts, private files under one prefix."""

from __future__ import annotations

import dataclasses

import pytest

from kinto_attachment_mw.config import Policy
from kinto_attachment_mw.storage.base import is_private_key
from kinto_attachment_mw.upload.naming import stored_key

pytestmark = pytest.mark.unit

NAMED = Policy(folder="{bucket_id}/{collection_id}", randomize=False)


def test_a_private_resources_files_go_under_the_private_folder():
    assert stored_key("a.pdf", NAMED, "b", "c", "r") == "b/c/a.pdf"
    private = dataclasses.replace(NAMED, private=True)
    assert stored_key("a.pdf", private, "b", "c", "r") == "_private/b/c/a.pdf"


@pytest.mark.parametrize(
    "folder,bucket", [("_private", "b"), ("{bucket_id}", "_private"), ("x/../_private", "b")]
)
def test_no_public_name_falls_under_the_private_folder(folder, bucket):
    """Stored segments never start with ``_``: no folder setting or id makes a public
    file look private, nor a private one public."""
    policy = dataclasses.replace(NAMED, folder=folder)
    assert not is_private_key(stored_key("_private.pdf", policy, bucket, "c", "r"))
