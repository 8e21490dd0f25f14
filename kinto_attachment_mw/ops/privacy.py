"""Turning a bucket or collection private later (or public again): each file is copied
to where the resource's files now go (the private folder, without a public ACL, or back),
then its record's ``location`` is rewritten through Kinto's HTTP API with an operator's
credentials, so that Kinto's permissions, history and events apply; the middleware then
removes the old file, as for any replaced attachment.

Only files uploaded for records of the resource change: a record there that holds a copy
of another resource's file is reported and left alone (that file follows its own
resource). Running it again finishes what a run cut short left.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import requests

from ..config import Settings
from ..files.locations import PrivateLocation, key_for
from ..protocol import media_types
from ..protocol.paths import ATTACHMENT_FIELD, RecordPath
from ..storage import Storage, StorageUnavailable, StoredFileMetadata
from ..storage.base import private_key, public_key

TIMEOUT = 60
PAGE_SIZE = 200


class PrivacyError(Exception):
    """The change cannot start (a refused credential, an unknown resource, an ini that
    says otherwise)."""


@dataclass
class PrivacyReport:
    changed: int = 0
    unchanged: int = 0  # already as wanted
    copies: int = 0  # files of another resource, left alone
    outside: int = 0  # locations this storage did not produce
    failures: int = 0
    #: Former files still stored after the run: they were once shared with other records
    #: (which may lie elsewhere), so their removal is left to gc.
    former_kept: int = 0
    skipped_collections: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Listener:
    """What the command prints as it goes."""

    changed: Callable[[RecordPath, str], None] = lambda record, location: None
    left: Callable[[RecordPath, str], None] = lambda record, reason: None
    kept: Callable[[str], None] = lambda key: None


class PrivacyChange:
    def __init__(
        self,
        storage: Storage,
        settings: Settings,
        server: str,
        auth,
        private: bool,
        dry_run: bool = False,
        listener: Listener = Listener(),
    ):
        """``server``: the API's URL as clients reach it (``.../v1``); private locations
        are written under it."""
        self.storage = storage
        self.settings = settings
        self.api = server.rstrip("/")
        if not self.api.endswith("/v1"):
            self.api += "/v1"
        self.http = requests.Session()
        self.http.auth = auth
        self.private = private
        self.dry_run = dry_run
        self.listener = listener
        self.report = PrivacyReport()
        #: Files copied in this run: another record of the collection that references the
        #: same file (a copy) is given the same new one.
        self.moved: dict[str, str] = {}
        self.api_root = self.api.removesuffix("/v1")

    def run(self, bucket_id: str, collection_id: str | None) -> PrivacyReport:
        self.api_root = self._server_root()
        wanted = "private" if self.private else "public"
        if collection_id is not None:
            if self.settings.policy_for(bucket_id, collection_id).private != self.private:
                raise PrivacyError(
                    f"the ini does not say files of {bucket_id}/{collection_id} are {wanted}:"
                    f" set kinto.attachment.resources.{bucket_id}.{collection_id}.private ="
                    f" {str(self.private).lower()} (and restart) first, so that new uploads"
                    " are too"
                )
            collections = [collection_id]
        else:
            collections = [item["id"] for item in self._list(f"/buckets/{bucket_id}/collections")]
        for collection in collections:
            if self.settings.policy_for(bucket_id, collection).private != self.private:
                self.report.skipped_collections.append(f"{bucket_id}/{collection}")
                continue
            path = f"/buckets/{bucket_id}/collections/{collection}/records"
            for record in self._list(path, has_attachment="true"):
                self._change(RecordPath(bucket_id, collection, record["id"]), record)
        if not self.dry_run:
            self.finish()
        return self.report

    def _change(self, record: RecordPath, data: dict) -> None:
        attachment = data.get(ATTACHMENT_FIELD)
        location = attachment.get("location") if isinstance(attachment, dict) else None
        key = key_for(self.storage, location)
        if key is None:
            self.report.outside += 1
            self.listener.left(record, f"{location!r} is not a location of this storage")
            return
        moved = None
        try:
            stored = self.storage.metadata(key)
            owner = stored.owner if stored is not None and stored.owner else record
            if (owner.bucket_id, owner.collection_id) != (record.bucket_id, record.collection_id):
                self.report.copies += 1
                self.listener.left(record, f"a copy of {owner.uri}'s file, which stays as it is")
                return
            wanted_key = private_key(key) if self.private else public_key(key)
            if wanted_key == key and self._location(owner, key) == location:
                self.report.unchanged += 1
                return
            if self.dry_run:
                self._count_changed(record, self._location(owner, wanted_key))
                return
            reused = self.moved.get(key)
            if wanted_key != key and reused is None:
                # A copy where the resource's files now go; the middleware removes the old
                # one once Kinto committed the record's new location (unless other records
                # reference it too).
                moved = self.storage.copy(key, wanted_key, self._metadata(owner, attachment))
            target = self._location(owner, reused or moved or key)
            self._rewrite(record, data, {**attachment, "location": target})
        except (StorageUnavailable, requests.RequestException, PrivacyError) as error:
            if moved is not None:
                self._discard(moved)
            self.report.failures += 1
            self.listener.left(record, f"failed: {error}")
            return
        self._count_changed(record, target)
        if moved is not None:
            self.moved[key] = moved

    def finish(self) -> None:
        """After the last record: the former files still stored were shared, perhaps
        with records elsewhere; gc removes each once no record references it."""
        for former in self.moved:
            try:
                still_there = self.storage.stat(former) is not None
            except StorageUnavailable:
                still_there = True
            if still_there:
                self.report.former_kept += 1
                self.listener.kept(former)

    def _location(self, owner: RecordPath, key: str) -> str:
        if self.private:
            return PrivateLocation(owner, key).url(self.api_root)
        return self.storage.url(key)

    def _server_root(self) -> str:
        """Where the server says clients reach it (``GET /v1/``'s ``url``, which follows
        Kinto's ``http_scheme`` and ``http_host``): private locations go under it, as
        the middleware puts those of new uploads."""
        answer = self.http.get(self.api + "/", timeout=TIMEOUT)
        url = answer.json().get("url") if answer.status_code == 200 else None
        if not isinstance(url, str):
            raise PrivacyError(f"GET {self.api}/: Kinto answered {answer.status_code}")
        return url.rstrip("/").removesuffix("/v1")

    def _metadata(self, owner: RecordPath, attachment: dict) -> StoredFileMetadata:
        """The copy's: the record's file, as the guard will check it."""
        size, digest = attachment.get("size"), attachment.get("hash")
        return StoredFileMetadata(
            owner,
            hash=digest if isinstance(digest, str) else None,
            size=size if isinstance(size, int) else None,
            referenced_at=time.time(),
            private=self.private,
            mimetype=media_types.normalized(attachment.get("mimetype")),
        )

    def _count_changed(self, record: RecordPath, location: str) -> None:
        self.report.changed += 1
        self.listener.changed(record, location)

    def _discard(self, key: str) -> None:
        with contextlib.suppress(StorageUnavailable):  # unreferenced: gc removes it then
            self.storage.delete(key)

    def _rewrite(self, record: RecordPath, data: dict, attachment: dict) -> None:
        """A patch of the attachment alone, if the record did not change since it was
        read (else this record fails, and the next run takes it as it is then)."""
        answer = self.http.patch(
            self.api + record.uri,
            json={"data": {ATTACHMENT_FIELD: attachment}},
            headers={"If-Match": f'"{data["last_modified"]}"'},
            timeout=TIMEOUT,
        )
        if answer.status_code == 412:
            raise PrivacyError("the record changed meanwhile: run the command again")
        if answer.status_code != 200:
            raise PrivacyError(f"Kinto answered {answer.status_code}: {answer.text[:300]}")

    def _list(self, path: str, **params: str) -> Iterator[dict]:
        url: str | None = self.api + path
        query: dict | None = {"_limit": str(PAGE_SIZE), **params}
        while url:
            answer = self.http.get(url, params=query, timeout=TIMEOUT)
            if answer.status_code != 200:
                raise PrivacyError(
                    f"GET {url}: Kinto answered {answer.status_code}: {answer.text[:300]}"
                )
            yield from answer.json()["data"]
            url, query = answer.headers.get("Next-Page"), None
