"""How clients reach the server: Kinto's ``http_scheme`` and ``http_host`` settings, for
the URLs the middleware hands out (a record's ``Location``, a tus upload's, a private
file's ``location``), built as Kinto builds its own."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class PublicAddress:
    #: ``None``: the request's own (its Host header, and the scheme gunicorn saw).
    scheme: str | None = None
    host: str | None = None

    @classmethod
    def from_settings(cls, raw: Mapping[str, object]) -> PublicAddress:
        def value(name: str) -> str | None:
            found = next((raw[key] for key in (f"kinto.{name}", name) if key in raw), None)
            return str(found).strip() or None if found is not None else None

        return cls(scheme=value("http_scheme"), host=value("http_host"))

    def api_root(self, request) -> str:
        """The URL the API's ``/v1`` is under, for ``request`` (a WebOb request)."""
        scheme = self.scheme or request.scheme
        host = self.host or request.host
        default_port = {"http": ":80", "https": ":443"}.get(scheme)
        if default_port and host.endswith(default_port):
            host = host[: -len(default_port)]
        return f"{scheme}://{host}{request.script_name}"
