"""Gunicorn settings for Kinto with attachments behind nginx (README.rst, "Deploying")::

    gunicorn -c /etc/kinto/gunicorn.conf.py

The ini file is ``$KINTO_INI``, else the ``kinto.ini`` beside this file. Run
``kinto migrate --ini kinto.ini`` once before the first start (and after each Kinto
upgrade): the server does not create its tables.
"""

import os

wsgi_app = "kinto_attachment_mw.wsgi:application"
os.environ.setdefault("KINTO_INI", os.path.join(os.path.dirname(__file__), "kinto.ini"))

# Where nginx's upstream points (nginx-site.conf). Only nginx should reach it: keep it on
# the loopback, or on a private address with forwarded_allow_ips set to nginx's.
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8888")

# Several processes, each with its own connections to PostgreSQL and S3. Kinto on
# PostgreSQL and the middleware's advisory record locks make them safe side by side.
workers = int(os.environ.get("GUNICORN_WORKERS", "4"))

# Threaded workers: an upload streams from nginx (its request buffering is off) for as
# long as the client takes to send it, in a thread, while the worker's main loop keeps its
# heartbeat and accepts other requests. A sync worker would be killed by `timeout` in the
# middle of a slow upload and serve nothing else meanwhile. Threads per worker bound how
# many requests, uploads included, run at once: workers x threads.
worker_class = "gthread"
threads = 4

# gthread: how long a worker may stay silent (a stuck process), not a request time limit.
timeout = 60
# On a reload or stop, requests in progress get this long to finish: an upload of a large
# file needs more than the default 30 s.
graceful_timeout = 120
# Longer than nginx's keepalive_timeout for its upstream connections (60 s), so that
# gunicorn never closes one that nginx is about to reuse (nginx would answer 502).
keepalive = 75

# Kinto and the middleware open database pools and S3 clients when the app is built:
# built in each worker after the fork, never shared with the master.
preload_app = False

# nginx logs each request; Kinto's own request.summary lines go to stderr too.
accesslog = None
errorlog = "-"
proc_name = "kinto"

# No control socket (gunicornc): it is one path per user, which several servers on one
# host would share. Ignored by gunicorn versions before 25.1, which have none.
control_socket_disable = True
