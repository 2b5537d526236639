"""gunicorn's settings for every way Readiness is served: the Dockerfile's CMD (and so compose's web
service), the ingestion benchmark and the test servers (tests/servers.py) all run ``gunicorn`` from
this folder, which reads this file, so what is measured is what is deployed.

Processes and threads per process come from WEB_WORKERS and WEB_THREADS (docker-compose.yml passes
them from .env); a malformed value stops gunicorn at start with the variable's name.
"""

from __future__ import annotations

from readiness.env import env_int

wsgi_app = "readiness.wsgi:application"
# gthread: pipelines keep their connections alive between pushes, and a slow client holds one thread,
# not a whole process.
worker_class = "gthread"
workers = env_int("WEB_WORKERS", 3, minimum=1)
threads = env_int("WEB_THREADS", 4, minimum=1)
# A request still running after this long is killed with its process (a hung database or broker call);
# a deploy's stop lets the requests in hand finish for up to graceful_timeout.
timeout = 60
graceful_timeout = 30
