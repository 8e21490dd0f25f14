"""The installed distribution's version, as the capability and the tools report it."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("kinto-attachment-mw")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

#: The kinto-attachment plugin release whose API, settings and record metadata this serves:
#: the capability's ``url`` and ``version`` describe that API (clients know the plugin's),
#: ``implementation`` says what serves it.
PLUGIN_API_VERSION = "6.4.0"
