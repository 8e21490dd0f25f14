"""``kinto-attachment-mw privatize``: a collection made private after its files were
uploaded (and public again), through a running server on PostgreSQL, as an operator does
it: change the ini, restart, run the command."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from kinto_attachment_mw.files.locations import PrivateLocation

from ..helpers.live_server import USER, Kinto, kinto_ini_server
from ..helpers.postgres import kinto_postgresql_settings

pytestmark = pytest.mark.integration

COMMAND = str(Path(sys.executable).with_name("kinto-attachment-mw"))
BASE_URL = "http://files.example/attachments/"
RECORDS = "/v1/buckets/b/collections/c/records"


class Deployment:
    """One PostgreSQL database and storage folder; a server restarted with other settings."""

    def __init__(self, tmp: Path, postgres_url: str):
        self.tmp, self.postgres_url = tmp, postgres_url
        self.server = None

    def start(self, private: bool) -> Kinto:
        if self.server is not None:
            self.server.stop()
        settings = {
            **kinto_postgresql_settings(self.postgres_url),
            "kinto.attachment.base_url": BASE_URL,
            "kinto.attachment.resources.b.c.private": str(private).lower(),
        }
        self.server, self.root = kinto_ini_server(self.tmp, attachment=settings)
        return Kinto(self.server)

    def privatize(self, *options: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [COMMAND, "privatize", "--ini", str(self.tmp / "kinto.ini")]
            + ["--server", f"{self.server.url}/v1", "--auth", ":".join(USER), "--bucket", "b"]
            + list(options),
            capture_output=True,
            text=True,
            timeout=120,
        )

    def age(self, key: str, hours: float = 3) -> None:
        """Make a stored file and its last reference look ``hours`` old, as gc reads them."""
        path = self.root / key
        meta = path.with_name(f".{path.name}.meta")
        moment = time.time() - hours * 3600
        meta.write_text(json.dumps({**json.loads(meta.read_text()), "referenced_at": moment}))
        for aged in (path, meta):
            os.utime(aged, (moment, moment))

    def gc(self) -> subprocess.CompletedProcess:
        return subprocess.run(
            [COMMAND, "gc", "--ini", str(self.tmp / "kinto.ini"), "--grace", "0s"],
            capture_output=True,
            text=True,
            timeout=120,
        )

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


@pytest.fixture
def deployment(tmp_path, postgres_url):
    deployment = Deployment(tmp_path, postgres_url)
    yield deployment
    deployment.stop()


def served(kinto: Kinto, location: str, **kwargs) -> requests.Response:
    """``location`` as its server answers it (public ones name a CDN host)."""
    parts = urlsplit(location)
    query = "?" + parts.query if parts.query else ""
    return requests.get(kinto.url + parts.path + query, timeout=30, **kwargs)


def test_a_collection_made_private_then_public_again(deployment):
    kinto = deployment.start(private=False)
    kinto.create_collection()
    kinto.create_collection("/v1/buckets/b/collections/other")
    first = kinto.upload("r1", "a.txt", b"first\n", "text/plain").json()
    second = kinto.upload("r2", "b.txt", b"second\n", "text/plain").json()
    copy = kinto.request(
        "PUT", "/v1/buckets/b/collections/other/records/copy", json={"data": {"attachment": first}}
    )
    assert copy.status_code == 201, copy.text
    # A copy inside the collection too: it gets the same new file as its original.
    inside = kinto.request("PUT", f"{RECORDS}/r3", json={"data": {"attachment": second}})
    assert inside.status_code == 201, inside.text
    assert served(kinto, first["location"]).content == b"first\n"

    refused = deployment.privatize("--collection", "c")
    assert refused.returncode == 2
    assert "resources.b.c.private = true" in refused.stderr

    kinto = deployment.start(private=True)
    dry = deployment.privatize("--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "Records: 3 would make private" in dry.stdout
    assert kinto.record("r1").json()["data"]["attachment"] == first

    done = deployment.privatize()
    assert done.returncode == 0, done.stderr
    assert "Records: 3 made private, 0 already private" in done.stdout
    assert "skipped: b/other" in done.stdout
    kept = "Former files kept, as they were, because they were shared with other records: 2"
    assert kept in done.stdout
    records = {rid: kinto.record(rid).json()["data"]["attachment"] for rid in ("r1", "r2", "r3")}
    assert records["r3"] == records["r2"]
    for rid, attachment in records.items():
        location = PrivateLocation.parse(attachment["location"])
        assert location is not None and location.key.startswith("_private/"), rid
    assert records["r1"]["hash"] == first["hash"]
    for attachment in records.values():  # moved into files that are the server's alone
        key = PrivateLocation.parse(attachment["location"]).key
        assert stat.S_IMODE(os.stat(deployment.root / key).st_mode) == 0o600
    # Only those who may read the record get its file; the old public file is gone, but
    # where the copy in another collection still references it.
    assert served(kinto, records["r1"]["location"]).status_code == 401
    assert served(kinto, records["r1"]["location"], auth=USER).content == b"first\n"
    assert served(kinto, first["location"]).content == b"first\n"
    private_url = BASE_URL + PrivateLocation.parse(records["r2"]["location"]).key
    assert served(kinto, private_url).status_code == 404  # never served by serve_path

    # The former public file of r2 and r3 is referenced by no record now: gc removes it
    # (and reads private locations: none of them is taken for dangling or orphan).
    assert served(kinto, second["location"]).content == b"second\n"
    deployment.age(second["location"].removeprefix(BASE_URL))  # past gc's margins
    gc = deployment.gc()
    assert "Orphan files: 1 " in gc.stdout, gc.stdout
    assert "Dangling records (location without a file): 0" in gc.stdout
    assert served(kinto, second["location"]).status_code == 404
    assert served(kinto, first["location"]).content == b"first\n"  # the other copy's

    again = deployment.privatize("--collection", "c")
    assert "Records: 0 made private, 3 already private" in again.stdout

    kinto = deployment.start(private=False)
    back = deployment.privatize("--public", "--collection", "c")
    assert back.returncode == 0, back.stderr
    assert "Records: 3 made public" in back.stdout
    public = {rid: kinto.record(rid).json()["data"]["attachment"] for rid in ("r1", "r2", "r3")}
    assert public["r2"] == public["r3"] == second  # its old name was free again
    assert public["r1"]["location"].startswith(BASE_URL) and public["r1"] != first
    assert served(kinto, public["r1"]["location"]).content == b"first\n"
    assert served(kinto, private_url).status_code == 404
