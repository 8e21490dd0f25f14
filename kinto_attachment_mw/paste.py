"""The paste-deploy filter: ``[filter:attachment] use = egg:kinto_attachment_mw``."""

from __future__ import annotations

from .settings import PREFIXES, attachment_settings

#: Kinto's own settings the middleware reads (the storage ones choose the record locks).
_KINTO_SETTINGS = ("readonly", "cors_origins", "storage_backend", "storage_url")


def filter_factory(global_conf: dict, **local_conf: str):
    """Settings come from the filter section, else from the wrapped Kinto app's own."""

    def make_filter(app):
        from .middleware import AttachmentMiddleware

        settings: dict[str, object] = {}
        kinto_settings = getattr(getattr(app, "registry", None), "settings", None) or {}
        settings.update(attachment_settings(kinto_settings))
        settings.update({k: v for k, v in kinto_settings.items() if k in _KINTO_SETTINGS})
        for key, value in local_conf.items():
            if key.startswith(PREFIXES) or key in _KINTO_SETTINGS:
                settings[key] = value
            else:
                settings[PREFIXES[0] + key] = value
        return AttachmentMiddleware(app, settings)

    return make_filter
