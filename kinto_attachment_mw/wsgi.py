"""The ways in: the gunicorn entry point and the paste-deploy filter.

Gunicorn: ``KINTO_INI=kinto.ini gunicorn kinto_attachment_mw.wsgi:application`` builds
Kinto from the ini's ``[app:main]`` and wraps it. An ini written for the
``kinto-attachment`` plugin works as it is: the plugin's include is dropped.

Paste: ``[filter:attachment] use = egg:kinto_attachment_mw`` (:func:`filter_factory`).

Either way, the middleware reads its settings as Kinto resolved them, environment
overrides included.
"""

from __future__ import annotations

import logging
import os
import sys

from pyramid.paster import get_appsettings, setup_logging

from .config import KINTO_NAMES, PREFIXES, ConfigurationError, from_kinto_settings
from .middleware import AttachmentMiddleware

logger = logging.getLogger(__name__)

PLUGIN_MODULE = "kinto_attachment"
DEFAULT_INI = "config/kinto.ini"


def without_plugin_include(settings: dict) -> dict:
    """Drop the plugin from ``kinto.includes``: this middleware replaces it."""
    cleaned = dict(settings)
    for key in ("kinto.includes", "includes"):
        includes = str(cleaned.get(key, "")).split()
        if PLUGIN_MODULE in includes:
            cleaned[key] = " ".join(i for i in includes if i != PLUGIN_MODULE)
            logger.info(
                "Dropped %r from %s: attachments are served by kinto_attachment_mw",
                PLUGIN_MODULE,
                key,
            )
    return cleaned


def load_app(ini_path: str) -> AttachmentMiddleware:
    """Kinto from the ini's ``[app:main]``, wrapped, with the ini's logging set up.

    Raises :class:`ConfigurationError` (its message names the ini and the setting) for a
    missing ini file or a wrong ``kinto.attachment.*`` setting."""
    import kinto

    ini_path = os.path.abspath(ini_path)
    if not os.path.isfile(ini_path):
        raise ConfigurationError(f"{ini_path}: no such ini file (set KINTO_INI to the ini's path)")
    setup_logging(ini_path)
    app_settings = get_appsettings(ini_path, name="main")
    settings = without_plugin_include(app_settings)
    kinto_app = kinto.main(app_settings.global_conf, **settings)
    try:
        return AttachmentMiddleware(kinto_app, effective_settings(kinto_app, settings))
    except ConfigurationError as error:
        raise ConfigurationError(f"{ini_path}: {error}") from None


def effective_settings(kinto_app, ini_settings: dict) -> dict:
    """Kinto's resolved settings, where ``KINTO_ATTACHMENT_BASE_URL``, ``KINTO_STORAGE_URL``
    and the like have replaced the ini's values, so that the middleware (its record locks
    included) sees what Kinto sees. Kinto wrapped by its profiler or New Relic has no
    registry to read: the ini's values then, without overrides."""
    registry = getattr(kinto_app, "registry", None)
    if registry is None:
        logger.warning(
            "Kinto is wrapped (profiler, New Relic): attachment settings are read from the"
            " ini file, environment variables do not override them"
        )
        return ini_settings
    return from_kinto_settings(registry.settings)


def filter_factory(global_conf: dict, **local_conf: str):
    """Settings come from the filter section, else from the wrapped Kinto app's own (with
    Kinto's environment overrides applied)."""

    def make_filter(app):
        kinto_settings = getattr(getattr(app, "registry", None), "settings", None) or {}
        settings = from_kinto_settings(kinto_settings)
        for key, value in local_conf.items():
            if key.startswith(PREFIXES) or key in KINTO_NAMES:
                settings[key] = value
            else:
                settings[PREFIXES[0] + key] = value
        try:
            return AttachmentMiddleware(app, settings)
        except ConfigurationError as error:
            raise startup_failure(
                f"{global_conf.get('__file__', 'paste filter')}: {error}"
            ) from None

    return make_filter


def startup_failure(message: str) -> BaseException:
    """What stops start-up on a settings error with ``message`` alone: gunicorn prints an
    ``AppImportError``'s message and halts (any other error is a traceback, then a
    worker respawned); elsewhere (pserve, a script) the message and exit status 1."""
    if "gunicorn.arbiter" in sys.modules:
        from gunicorn.errors import AppImportError

        return AppImportError(f"Error: {message}")
    return SystemExit(f"Error: {message}")


def __getattr__(name: str):
    """``application`` is built on first use, so that importing :func:`load_app` (the
    ``gc`` command does) reads no ini file."""
    if name != "application":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        app = load_app(os.environ.get("KINTO_INI", DEFAULT_INI))
    except ConfigurationError as error:
        raise startup_failure(str(error)) from None
    globals()["application"] = app
    return app
