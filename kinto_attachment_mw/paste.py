"""The paste-deploy filter: ``[filter:attachment] use = egg:kinto_attachment_mw``."""

from __future__ import annotations

from .settings import KINTO_NAMES, PREFIXES, from_kinto_settings


def filter_factory(global_conf: dict, **local_conf: str):
    """Settings come from the filter section, else from the wrapped Kinto app's own (with
    Kinto's environment overrides applied)."""

    def make_filter(app):
        from .middleware import AttachmentMiddleware

        kinto_settings = getattr(getattr(app, "registry", None), "settings", None) or {}
        settings = from_kinto_settings(kinto_settings)
        for key, value in local_conf.items():
            if key.startswith(PREFIXES) or key in KINTO_NAMES:
                settings[key] = value
            else:
                settings[PREFIXES[0] + key] = value
        return AttachmentMiddleware(app, settings)

    return make_filter
