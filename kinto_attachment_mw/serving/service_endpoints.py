"""Additions to Kinto's service endpoints: the ``attachments`` capability on ``GET /v1/``
and the ``attachments`` check on ``GET /v1/__heartbeat__``.

Both are added to Kinto's own JSON responses, so they work whatever the wrapped app is.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable

from webob import Request, Response

from ..protocol.paths import HEARTBEAT_PATH, HELLO_PATH
from ..storage import Storage, StorageUnavailable
from ..storage.metadata import StoredFileMetadata
from ..version import PLUGIN_API_VERSION, __version__

logger = logging.getLogger(__name__)

#: At the root, in no folder: a folder would be pruned and re-made under concurrent checks.
HEARTBEAT_PREFIX = ".heartbeat-"
#: Anyone may call the heartbeat: a process writes to storage at most this often...
HEALTHY_FOR_SECONDS = 30.0
#: ...and, after a failed write, tries again this soon (a recovery shows quickly, while a
#: flood of heartbeats during an outage does not pile up on the failing storage).
UNHEALTHY_FOR_SECONDS = 5.0
#: A heartbeat waits at most this long for another's check before answering false: a
#: storage that hangs must not hold every heartbeat (and its server thread) behind it.
CHECK_WAIT_SECONDS = 5.0


class ServiceEndpoints:
    paths = frozenset({HELLO_PATH, HEARTBEAT_PATH})

    def __init__(
        self,
        storage: Storage,
        extra_base_url: str | None,
        readonly: bool,
        extensions: frozenset[str] | None = None,
        resumable: dict | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        """``extensions``: what uploads may be named by default (``None``: anything); a
        bucket or collection may say otherwise. Clients show it before an upload.

        The capability is for anonymous callers too: it names no bucket or collection
        (which are private is told by each file's ``location``, for whoever may read
        its record)."""
        self.storage = storage
        self.readonly = readonly
        self.clock = clock
        self._check_lock = threading.Lock()
        self._checked: tuple[bool, float] | None = None  # (healthy, until)
        self.check_wait_seconds = CHECK_WAIT_SECONDS
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
            body["attachments"] = healthy = self.storage_health()
            if not healthy:
                response.status = 503
        response.body = json.dumps(body).encode()
        return response

    def storage_health(self) -> bool:
        """The last storage check's result while it is fresh, else a new check: at most
        one write per :data:`HEALTHY_FOR_SECONDS` (:data:`UNHEALTHY_FOR_SECONDS` after a
        failure) per process. Concurrent heartbeats wait for one check, for at most
        :data:`CHECK_WAIT_SECONDS`: a check still running then says the storage is not
        healthy."""
        if not self._check_lock.acquire(timeout=self.check_wait_seconds):
            logger.error(
                "Attachment storage heartbeat: a storage check has been running for more than %s s",
                self.check_wait_seconds,
            )
            return False
        try:
            if self._checked is not None and self.clock() < self._checked[1]:
                return self._checked[0]
            healthy = self.storage_is_healthy()
            fresh_for = HEALTHY_FOR_SECONDS if healthy else UNHEALTHY_FOR_SECONDS
            self._checked = (healthy, self.clock() + fresh_for)
            return healthy
        finally:
            self._check_lock.release()

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
