"""What unfinished tus uploads may hold: a number per principal (429), bytes for all
(507), counted across processes; expired uploads, refused creations and terminated
uploads free their room."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import multiprocessing
import time
import uuid

import pytest
from webob import Request

from kinto_attachment_mw.resumable.spool import Spool, UploadState

from ..helpers.kinto_apps import ALICE, Uploads, auth, build_app
from ..helpers.spool import spool_leftovers
from .test_tus import STREAM, TUS, URL, create, encoded, patch

pytestmark = pytest.mark.unit


def limited(storage_root, tmp_path, **settings: str) -> Uploads:
    spool = str(tmp_path / "spool")
    app = build_app(storage_root, **{"resumable.spool_path": spool, **settings})
    tus = Uploads(app, storage_root)
    tus.app.put_json(
        "/v1/buckets/b/collections/c",
        {"permissions": {"write": ["system.Authenticated"]}},
        headers=ALICE,
    )
    return tus


def age(tmp_path, location: str) -> None:
    """Make an upload expired by writing its state, as time would."""
    path = tmp_path / "spool" / (location.rsplit("/", 1)[1] + ".json")
    state = json.loads(path.read_text())
    state["expires_at"] = time.time() - 1
    path.write_text(json.dumps(state))


def test_a_principal_holds_at_most_max_pending_uploads(storage_root, tmp_path):
    tus = limited(storage_root, tmp_path, **{"resumable.max_pending_uploads": "3"})
    locations = [create(tus, 10).headers["Location"] for _ in range(3)]
    refused = create(tus, 10, status=429)
    assert refused.json["code"] == 429 and refused.json["errno"] == 117
    assert refused.json["error"] == "Too Many Requests"
    assert refused.json["message"].startswith("3 unfinished uploads are pending")
    assert "terminate them (DELETE" in refused.json["message"]
    assert refused.headers["Tus-Resumable"] == "1.0.0"
    assert 86000 < int(refused.headers["Retry-After"]) <= 86400  # the first one's expiry
    create(tus, 10, headers=auth("bob"))  # another principal has room of their own

    tus.app.delete(locations[0], headers={**ALICE, **TUS}, status=204)
    locations[0] = create(tus, 10).headers["Location"]  # termination made room
    create(tus, 10, status=429)

    age(tmp_path, locations[1])  # an expired upload does not count, and goes
    create(tus, 10)
    assert not any(
        locations[1].rsplit("/", 1)[1] in name for name in spool_leftovers(tmp_path / "spool")
    )
    create(tus, 10, status=429)


def test_a_finished_upload_frees_its_room(storage_root, tmp_path):
    tus = limited(storage_root, tmp_path, **{"resumable.max_pending_uploads": "1"})
    location = create(tus, 3).headers["Location"]
    create(tus, 3, status=429)
    patch(tus, location, 0, b"abc")
    create(tus, 3)


def test_the_spool_quota_counts_declared_bytes_of_everyone(storage_root, tmp_path):
    tus = limited(storage_root, tmp_path, **{"resumable.spool_quota_bytes": "100"})
    first = create(tus, 60).headers["Location"]
    full = create(tus, 50, headers=auth("bob"), status=507)
    assert full.json["code"] == 507 and full.json["errno"] == 201
    assert full.json["message"].startswith("No room for 50 more bytes of unfinished uploads")
    assert full.headers["Retry-After"] and full.headers["Tus-Resumable"] == "1.0.0"
    create(tus, 40, headers=auth("bob"))  # 100: exactly the quota
    create(tus, 1, status=507)
    age(tmp_path, first)  # expired: its 60 bytes count no more
    create(tus, 60, headers=auth("bob"))
    create(tus, 1, status=507)


def test_the_default_quota_is_10_gib_and_zero_is_none(storage_root, tmp_path):
    create(limited(storage_root, tmp_path), 10 * 1024**3 + 1, status=507)
    unlimited = limited(storage_root, tmp_path, **{"resumable.spool_quota_bytes": "0"})
    create(unlimited, 10**15)


@pytest.mark.parametrize(
    ("filename", "body", "headers", "status"),
    [
        pytest.param("a.txt", b"abcdefgh", {}, 400, id="more-than-upload-length"),
        pytest.param(
            "a.txt",
            b"abc",
            {"Upload-Checksum": "sha1 " + base64.b64encode(hashlib.sha1(b"x").digest()).decode()},
            460,
            id="checksum-mismatch",
        ),
        pytest.param("a.txt", b"ab", {"Content-Length": "3"}, 400, id="truncated-body"),
    ],
)
def test_a_refused_creation_with_upload_leaves_nothing(
    storage_root, tmp_path, filename, body, headers, status
):
    tus = limited(storage_root, tmp_path, **{"resumable.max_pending_uploads": "1"})
    request = Request.blank(
        URL,
        method="POST",
        headers={
            **ALICE,
            **TUS,
            **STREAM,
            "Upload-Length": "5" if status == 400 else "3",
            "Upload-Metadata": encoded(filename=filename),
            **headers,
        },
    )
    request.environ["wsgi.input"] = io.BytesIO(body)  # shorter than a Content-Length given
    request.environ["CONTENT_LENGTH"] = headers.get("Content-Length", str(len(body)))
    refused = request.get_response(tus.app.app)
    assert refused.status_int == status and refused.json["code"] == status
    assert spool_leftovers(tmp_path / "spool") == []
    assert tus.files() == set()
    create(tus, 3)  # the refused one took no room


def _create_many(spool_path: str, owner: str, results) -> None:
    spool = Spool(spool_path, max_pending=5, quota_bytes=700)
    kept = 0
    for _ in range(10):
        state = UploadState(
            id=uuid.uuid4().hex,
            record_uri="/buckets/b/collections/c/records/r1",
            owner=owner,
            filename="a.txt",
            content_type=None,
            length=100,
            expires_at=time.time() + 3600,
        )
        try:
            spool.create(state)
        except Exception:  # noqa: BLE001 - 429 or 507: not kept
            continue
        kept += 1
    results.put((owner, kept))


def test_counts_hold_across_processes(tmp_path):
    """Four processes create at once on one spool: the limits hold exactly."""
    spool = tmp_path / "spool"
    Spool(str(spool)).check()
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    owners = ["alice", "alice", "bob", "bob"]
    workers = [
        context.Process(target=_create_many, args=(str(spool), owner, results)) for owner in owners
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    kept = [results.get(timeout=5) for _ in workers]
    per_owner = {owner: sum(n for who, n in kept if who == owner) for owner in ("alice", "bob")}
    assert sum(per_owner.values()) == 7  # 700 bytes of quota, 100 each
    assert all(count <= 5 for count in per_owner.values())
    states = [name for name in spool_leftovers(spool) if name.endswith(".json")]
    assert len(states) == 7
