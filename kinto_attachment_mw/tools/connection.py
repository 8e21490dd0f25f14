"""A server, a bucket and a collection, reached with one set of credentials.

Records are read through ``kinto-http``; files go through a plain ``requests`` session
with the same credentials, because attachments are streamed multipart bodies and raw
file downloads, which ``kinto-http`` does not do.
"""

from __future__ import annotations

from urllib.parse import urljoin

import requests
from kinto_http import BearerTokenAuth, Client, KintoException

from ..files.locations import PrivateLocation
from .errors import ToolError, describe

TIMEOUT = 60


def parse_auth(value: str):
    """``user:password`` (or ``token:secret``) is basic auth; ``Bearer TOKEN`` a header."""
    if " " in value and (":" not in value or value.index(" ") < value.index(":")):
        kind, token = value.split(" ", 1)
        return BearerTokenAuth(token=token, type=kind)
    user, sep, password = value.partition(":")
    if not sep or not user:
        raise ToolError("--auth must be user:password, token:secret or 'Bearer TOKEN'")
    return (user, password)


class Remote:
    """What both tools need from the server, with failures turned into ToolError."""

    def __init__(self, server: str, bucket: str, collection: str, auth: str):
        self.server = server.rstrip("/")
        if not self.server.endswith("/v1"):
            self.server += "/v1"
        self.bucket = bucket
        self.collection = collection
        self.auth = parse_auth(auth)
        self.client = Client(
            server_url=self.server,
            auth=self.auth,
            bucket=bucket,
            collection=collection,
            timeout=TIMEOUT,
        )
        self.http = requests.Session()
        self.http.auth = self.auth
        # File URLs may be on a CDN: credentials are for the Kinto server only.
        self.files = requests.Session()

    def failure(self, exc: Exception, url: str | None = None) -> ToolError:
        """The one-line error for a failed request to the server (or to ``url``)."""
        return ToolError(describe(exc, url or self.server, self.bucket, self.collection))

    def records(self) -> list[dict]:
        """Every record of the collection (all pages)."""
        try:
            return self.client.get_records()
        except (KintoException, requests.exceptions.RequestException) as exc:
            raise self.failure(exc) from None

    def create_collection_if_missing(self) -> None:
        """Create the bucket and the collection unless they exist, as the plugin's own
        upload script does. A refusal (no permission to create) is left for the next
        request to report: the collection may well exist, and be writable."""
        for create in (self.client.create_bucket, self.client.create_collection):
            try:
                create(if_not_exists=True)
            except KintoException:
                return
            except requests.exceptions.RequestException as exc:
                raise self.failure(exc) from None

    def files_base_url(self) -> str:
        """Where relative ``location`` values point: the advertised ``base_url``."""
        try:
            info = self.client.server_info()
        except (KintoException, requests.exceptions.RequestException) as exc:
            raise self.failure(exc) from None
        capability = info.get("capabilities", {}).get("attachments")
        if capability is None:
            raise ToolError(f"the server at {self.server} does not support attachments")
        return capability.get("base_url") or self.server.removesuffix("/v1") + "/"

    def attachment_url(self, record_id: str) -> str:
        return (
            f"{self.server}/buckets/{self.bucket}/collections/{self.collection}"
            f"/records/{record_id}/attachment"
        )

    def file_source(self, base_url: str, location: str) -> tuple[str, requests.Session]:
        """Where a ``location`` is downloaded from, and with which session: a private
        file through its record on this server, with the credentials; any other file
        (perhaps on a CDN) without them."""
        private = PrivateLocation.parse(location)
        if private is not None:
            return private.url(self.server.removesuffix("/v1")), self.http
        return urljoin(base_url, location), self.files
