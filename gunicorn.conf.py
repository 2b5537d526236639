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
# 3 processes x 4 threads, measured against the alternatives on this project's two cores with the
# worker and beat beside it (bench/ingest.py --pushes-only --seconds 15, wrk 16 connections, load
# average 5-10 from other work, 2026-12-07 09:02-09:22, docs/benchmarks.md): 3 x 4 answered 338 and
# 331 single-point pushes/s (p99 240 and 207 ms, web CPU 2.3 ms a push); 3 x 2 154 and 160/s,
# 3 x 1 88 and 152/s, 2 x 2 145/s, 5 x 2 136/s, 5 x 1 87 and 88/s, each at 2.4-4.4 ms a push. A push
# waits on PostgreSQL for most of its time: threads overlap those waits, and more processes only add
# memory and idle wake-ups.
workers = env_int("WEB_WORKERS", 3, minimum=1)
threads = env_int("WEB_THREADS", 4, minimum=1)
# A request still running after this long is killed with its process (a hung database or broker call);
# a deploy's stop lets the requests in hand finish for up to graceful_timeout.
timeout = 60
graceful_timeout = 30
