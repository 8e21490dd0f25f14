"""Additions to Kinto's service endpoints: the ``attachments`` capability on ``GET /v1/``
and the ``attachments`` check on ``GET /v1/__heartbeat__``.

Both are added to Kinto's own JSON responses, so they work whatever the wrapped app is.
"""

from __future__ import annotations

import json
import logging
import uuid

from webob import Request, Response

from ..protocol.paths import HEARTBEAT_PATH, HELLO_PATH
from ..storage import Storage, StorageUnavailable
from ..storage.metadata import StoredFileMetadata
from ..version import PLUGIN_API_VERSION, __version__

logger = logging.getLogger(__name__)

#: At the root, in no folder: a folder would be pruned and re-made under concurrent checks.
HEARTBEAT_PREFIX = ".heartbeat-"


class ServiceEndpoints:
    paths = frozenset({HELLO_PATH, HEARTBEAT_PATH})

    def __init__(
        self,
        storage: Storage,
        extra_base_url: str | None,
        readonly: bool,
        extensions: frozenset[str] | None = None,
        resumable: dict | None = None,
    ):
        """``extensions``: what uploads may be named by default (``None``: anything); a
        bucket or collection may say otherwise. Clients show it before an upload.

        The capability is for anonymous callers too: it names no bucket or collection
        (which are private is told by each file's ``location``, for whoever may read
        its record)."""
        self.storage = storage
        self.readonly = readonly
        self.capability = {
            "description": "Add file attachments to records",
            "url": "https://github.com/Kinto/kinto-attachment/",
            "version": PLUGIN_API_VERSION,
            "implementation": f"kinto-attachment-mw {__version__}",
            "base_url": extra_base_url,
            "extensions": None if extensions is None else sorted(extensions),
            # GET {record URL}/attachment: the file, for whoever may read the record.
            "downloads": "permission-checked",
            # POST {record URL}/attachment with Tus-Resumable: null when turned off.
            "resumable": resumable,
        }

    def __call__(self, request: Request, app) -> Response:
        response = request.get_response(app)
        if response.content_type != "application/json":
            return response
        try:
            body = json.loads(response.body)
        except ValueError:
            return response
        if not isinstance(body, dict):
            return response
        if request.path_info == HELLO_PATH:
            if response.status_code == 200:
                body.setdefault("capabilities", {})["attachments"] = self.capability
        else:
            body["attachments"] = healthy = self.storage_is_healthy()
            if not healthy:
                response.status = 503
        response.body = json.dumps(body).encode()
        return response

    def storage_is_healthy(self) -> bool:
        """A real write and delete of a small file (always healthy when read-only)."""
        if self.readonly:
            return True
        key = f"{HEARTBEAT_PREFIX}{uuid.uuid4()}.txt"
        try:
            writer = self.storage.open_writer(key, "text/plain")
            try:
                writer.write(b'{"test": "write"}')
                key = writer.commit(StoredFileMetadata(owner=None))
            finally:
                writer.abort()
            self.storage.delete(key)
        except (StorageUnavailable, OSError) as error:
            logger.error("Attachment storage heartbeat failed: %s", error)
            return False
        return True
