"""Deletes with many files beneath: up to ``max_removals_per_request`` the request
removes them once Kinto confirmed; beyond, it lists no further and leaves them to gc, so
that its memory and time do not grow with what lies beneath."""

from __future__ import annotations

import logging

import pytest

from kinto_attachment_mw.config import ConfigurationError, parse_settings

from ..helpers.gc_deployment import Deployment
from ..helpers.kinto_apps import ALICE, kinto_settings

pytestmark = pytest.mark.unit

LIMIT = {"kinto.attachment.max_removals_per_request": "3"}


class CountingListings:
    """Counts the records listed through Kinto's API (what the middleware holds)."""

    def __init__(self, app):
        self.app = app
        self.listed = 0

    def __call__(self, environ, start_response):
        if environ["REQUEST_METHOD"] == "GET" and environ["PATH_INFO"].endswith("/records"):
            self.listed += 1
        return self.app(environ, start_response)


def deployment_with(tmp_path, uploads: int) -> tuple[Deployment, str, list[dict]]:
    deployment = Deployment(tmp_path, backend=LIMIT)
    collection = deployment.collection("b", "c")
    stored = [deployment.upload(collection, f"r{n}") for n in range(uploads)]
    return deployment, collection, stored


@pytest.mark.parametrize("target", ["collection", "records", "bucket"])
def test_up_to_the_limit_the_delete_removes_the_files(tmp_path, target):
    deployment, collection, stored = deployment_with(tmp_path, 3)
    assert deployment.files() == {deployment.key_of(meta) for meta in stored}
    url = {"collection": collection, "records": f"{collection}/records", "bucket": "/v1/buckets/b"}
    deployment.app.delete(url[target], headers=ALICE)
    assert deployment.files() == set()


@pytest.mark.parametrize("target", ["collection", "records", "bucket"])
def test_beyond_the_limit_the_files_are_left_to_gc(tmp_path, caplog, target):
    deployment, collection, stored = deployment_with(tmp_path, 4)
    url = {"collection": collection, "records": f"{collection}/records", "bucket": "/v1/buckets/b"}
    with caplog.at_level(logging.WARNING, logger="kinto_attachment_mw"):
        deployment.app.delete(url[target], headers=ALICE)
    assert {deployment.key_of(meta) for meta in stored} <= deployment.files()
    warned = [record.getMessage() for record in caplog.records]
    assert any("more than 3 files beneath it are left to" in line for line in warned), warned
    report, found = deployment.gc()
    assert sorted(found["orphans"]) == sorted(deployment.key_of(meta) for meta in stored)
    assert deployment.files() == set()


def test_a_refused_delete_beyond_the_limit_leaves_everything(tmp_path, caplog):
    deployment, collection, stored = deployment_with(tmp_path, 4)
    bob = {"Authorization": "Basic Ym9iOnNlY3JldA=="}
    with caplog.at_level(logging.WARNING, logger="kinto_attachment_mw"):
        deployment.app.delete(collection, headers=bob, status=403)
    assert not [r for r in caplog.records if "left to" in r.getMessage()]
    assert len(deployment.app.get(f"{collection}/records", headers=ALICE).json["data"]) == 4


def test_the_listing_stops_past_the_limit(tmp_path):
    """Memory and time follow the limit, not the bucket: past the limit in its first
    collection, the request lists no other (pages are Kinto's, at most
    ``storage_max_fetch_size`` objects each)."""
    deployment = Deployment(tmp_path, backend=LIMIT)
    for name in ("c1", "c2", "c3"):
        collection = deployment.collection("b", name)
        for n in range(4):
            deployment.upload(collection, f"r{n}")
    kinto = deployment.middleware.writes.kinto
    kinto.app = counting = CountingListings(kinto.app)
    deployment.app.delete("/v1/buckets/b", headers=ALICE)
    assert counting.listed == 1  # c1's records: already past the limit


def test_the_limit_is_a_whole_number(tmp_path):
    settings = kinto_settings(tmp_path, max_removals_per_request="many")
    with pytest.raises(ConfigurationError, match="max_removals_per_request: expected a whole"):
        parse_settings(settings)
    assert parse_settings(kinto_settings(tmp_path)).max_removals_per_request == 10_000
