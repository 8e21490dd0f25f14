"""Which stored file a record's ``attachment.location`` names, public or private.

A public file's location is the storage's URL of its key (``base_url`` + key, the
plugin's form). A private file's location is the download URL of the record it was
uploaded for, carrying its key, so that clients follow it with their Kinto credentials:
``https://kinto.example.com/v1/buckets/b/collections/c/records/r/attachment?key=b/c/f.pdf``.
It is absolute: the capability's ``base_url`` points at the public files, not at the API.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from ..protocol.paths import API_PREFIX, Kind, RecordPath, route_of
from ..storage import Storage
from ..storage.base import is_attachment_key

#: The query parameter of a private location that names the stored file.
KEY_PARAMETER = "key"


@dataclass(frozen=True)
class PrivateLocation:
    """A private file's location: the record it was uploaded for, and its key."""

    owner: RecordPath
    key: str

    def url(self, api_root: str) -> str:
        """The location, under ``api_root`` (the URL of the API's ``/v1``'s parent)."""
        path = quote(self.owner.url_path, safe="/")
        return (
            f"{api_root.rstrip('/')}{path}/attachment?{KEY_PARAMETER}={quote(self.key, safe='/')}"
        )

    @classmethod
    def parse(cls, location: object) -> PrivateLocation | None:
        """The private location ``location`` is, else ``None`` (any host: where the API
        is reached from differs between clients; the key is what matters, and what is
        stored under it is checked wherever a location is accepted)."""
        if not isinstance(location, str):
            return None
        try:
            parts = urlsplit(location)
        except ValueError:
            return None
        marker = parts.path.find(API_PREFIX + "/buckets/")
        route = route_of(unquote(parts.path[marker:])) if marker >= 0 else None
        if route is None or route.kind is not Kind.ATTACHMENT:
            return None
        keys = [value for name, value in parse_qsl(parts.query) if name == KEY_PARAMETER]
        if len(keys) != 1 or not is_attachment_key(keys[0]):
            return None
        return cls(route.record, keys[0])


def key_for(storage: Storage, location: object) -> str | None:
    """The key of the stored file a ``location`` names, public or private; ``None`` for
    anything else (another storage's URL, a folder, a forged value)."""
    if not isinstance(location, str):
        return None
    private = PrivateLocation.parse(location)
    if private is not None:
        return private.key
    return storage.key_for(location)


def key_of(storage: Storage, attachment: object) -> str | None:
    """The key of the stored file an ``attachment`` describes, if any."""
    location = attachment.get("location") if isinstance(attachment, dict) else None
    return key_for(storage, location)
