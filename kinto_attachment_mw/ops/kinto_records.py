"""Every record that has an attachment, read through Kinto's storage backend
(``registry.storage``), a page at a time.

Not through Kinto's HTTP API: this runs as an operator's command next to Kinto, not on the
request path, and it must see every record whatever the permissions.
"""

from __future__ import annotations

from collections.abc import Iterator

from kinto.core.storage import Filter, Sort
from kinto.core.utils import COMPARISON

from ..protocol.paths import ATTACHMENT_FIELD, Kind, RecordPath, Route


def iter_attachments(
    kinto_storage, page_size: int, changed_since_ms: int | None = None
) -> Iterator[tuple[str, dict]]:
    """``(record URI, attachment)`` of every record that has one (and was changed after
    ``changed_since_ms``, when given), bucket by bucket, collection by collection, a page
    at a time."""
    for bucket in _paginate(kinto_storage, "bucket", "", page_size):
        bucket_uri = Route(Kind.BUCKET, bucket["id"]).uri
        for collection in _paginate(kinto_storage, "collection", bucket_uri, page_size):
            collection_uri = Route(Kind.COLLECTION, bucket["id"], collection["id"]).uri
            filters = [Filter(ATTACHMENT_FIELD, True, COMPARISON.HAS)]
            if changed_since_ms is not None:
                filters.append(Filter("last_modified", changed_since_ms, COMPARISON.GT))
            records = _paginate(kinto_storage, "record", collection_uri, page_size, filters)
            for record in records:
                attachment = record.get(ATTACHMENT_FIELD)
                if isinstance(attachment, dict):  # null is stored by plain-JSON removals
                    owner = RecordPath(bucket["id"], collection["id"], record["id"])
                    yield owner.uri, attachment


def _paginate(kinto_storage, resource_name, parent_id, page_size, filters=None) -> Iterator[dict]:
    """Objects under one parent, oldest first, by keyset on ``(last_modified, id)``.

    Oldest first: an object modified while this runs moves to the end and is read again,
    with its new attachment. Timestamps are unique under one parent in Kinto; the ``id``
    tie-break only makes that assumption unnecessary.
    """
    sorting = [Sort("last_modified", 1), Sort("id", 1)]
    after: list[list[Filter]] | None = None
    while True:
        page = kinto_storage.list_all(
            resource_name=resource_name,
            parent_id=parent_id,
            filters=filters,
            sorting=sorting,
            pagination_rules=after,
            limit=page_size,
        )
        if not page:  # not a short page: Kinto may cap pages below page_size
            return
        yield from page
        last = page[-1]
        after = [
            [Filter("last_modified", last["last_modified"], COMPARISON.GT)],
            [
                Filter("last_modified", last["last_modified"], COMPARISON.EQ),
                Filter("id", last["id"], COMPARISON.GT),
            ],
        ]
