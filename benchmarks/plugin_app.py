"""The plugin's server: Kinto built from ``$KINTO_INI``, whose includes list the plugin.

Run by the plugin's own virtualenv (``plugin_env``), under the same gunicorn settings as
the middleware; Kinto's usual entry point, with nothing of this project imported.
"""

import os

from pyramid.paster import get_app, setup_logging

setup_logging(os.environ["KINTO_INI"])
application = get_app(os.environ["KINTO_INI"], "main")
