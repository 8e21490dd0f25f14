"""What a write of Kinto's would orphan, planned before Kinto decides, and which part of
the plan Kinto's answer confirms."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..protocol.paths import RecordPath


@dataclass
class FilesToRemove:
    """The files a write would orphan, to remove once Kinto confirms it."""

    attachments: dict[RecordPath, dict] = field(default_factory=dict)
    deleted_level: str | None = None  # plural delete: only what Kinto lists as deleted
    flush: bool = False  # every file goes, once Kinto answered 202
    left_to_gc: str | None = None  # too many beneath this URI: gc removes them, not the request
    #: Private files a record write gives back to their owner record, which did not hold
    #: them: marked as let go of once Kinto wrote it (see ``AttachmentGuard.given_back``).
    given_back: dict[str, RecordPath] = field(default_factory=dict)
    planned_at: float = field(default_factory=time.time)

    def confirmed(self, status: int, body: object) -> dict[RecordPath, dict]:
        if not 200 <= status < 300:
            return {}
        if self.deleted_level is None:
            return self.attachments
        listed = body.get("data") if isinstance(body, dict) else None
        deleted = {item.get("id") for item in listed or () if isinstance(item, dict)}
        return {
            record: attachment
            for record, attachment in self.attachments.items()
            if getattr(record, self.deleted_level) in deleted
        }
