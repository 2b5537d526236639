"""Readiness settings, read from the environment (PRODUCT.md §7).

With nothing set, Readiness runs on its embedded default: SQLite and a file-system Celery broker under
``var/``, nothing to install but Python. Production sets ``DATABASE_URL`` and ``CELERY_BROKER_URL``.
"""

from __future__ import annotations

import ssl
from datetime import timedelta
from pathlib import Path

from celery.schedules import crontab
from kombu import Queue

from readiness.env import (
    env_bool,
    env_choice,
    env_database,
    env_int,
    env_list,
    env_networks,
    env_parsed,
    env_retention_days,
    env_signing_key,
    env_str,
    env_token,
    env_url,
    env_writable_dir,
)
from readiness.security.rates import parse_rate

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("READINESS_VAR_DIR") or BASE_DIR / "var")
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DJANGO_DEBUG", False)
# Served over HTTPS (usually behind a TLS-terminating proxy): SSL redirect, HSTS, secure cookies (see
# "Security" below). False by default so a plain-HTTP local run works with DJANGO_DEBUG=false.
HTTPS = env_bool("DJANGO_HTTPS", False)
# Sessions, CSRF tokens and password-reset links are signed with the secret key: a key anyone can read
# lets anyone forge an admin's session. So with DEBUG off (the default) Readiness refuses to start
# without a strong key of its own, HTTPS or not; `make run` generates one into var/secret_key.
# Only DJANGO_DEBUG=true (a developer's machine) falls back to this public, local-only key.
INSECURE_LOCAL_SECRET = "readiness-insecure-local-key-set-DJANGO_SECRET_KEY-in-production"  # noqa: S105
_KEY_HOWTO = (
    "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(50))' and set it in "
    "DJANGO_SECRET_KEY, or write it to a file named by DJANGO_SECRET_KEY_FILE"
)
SECRET_KEY = (
    env_signing_key(
        "DJANGO_SECRET_KEY", required=not DEBUG, public_key=INSECURE_LOCAL_SECRET, howto=_KEY_HOWTO
    )
    or INSECURE_LOCAL_SECRET
)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "axes",
    "readiness.security",
    "readiness.observability",
    "readiness.projects",
    "readiness.audit",
    "readiness.telemetry",
    "readiness.scoring",
    "readiness.alerts",
    "readiness.checks_as_code",
    "readiness.dashboard",
]

MIDDLEWARE = [
    # Outermost: the request id and the request metrics cover everything below, the ops endpoints
    # (/healthz, /readyz, /metrics) answer before host checks and the HTTPS redirect refuse a probe.
    "readiness.observability.middleware.RequestContextMiddleware",
    "readiness.observability.middleware.OpsEndpointsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "readiness.security.headers.ContentSecurityPolicyMiddleware",
    # Before sessions and authentication: a request over its token's limit costs one Redis call.
    "readiness.security.ratelimit.ApiRateLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as axes requires: turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "readiness.urls"
WSGI_APPLICATION = "readiness.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------------
# Web, worker and beat share one SQLite file: wait on a lock rather than fail with "database is locked",
# and take the write lock when a transaction begins (a deferred transaction that reads, then writes,
# fails at once when another process wrote in between, whatever the timeout).
_SQLITE_OPTIONS = {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
_db = env_database("DATABASE_URL", conn_max_age=60)
if _db:
    if _db["ENGINE"] == "django.db.backends.postgresql":
        # Django's backend with a health check that needs no round trip (readiness/postgresql/base.py).
        _db["ENGINE"] = "readiness.postgresql"
        # A database that does not answer fails a connection in 5 s rather than hanging the request
        # (and /readyz) for libpq's default of forever; ?connect_timeout= in the URL overrides it.
        _db.setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
        # No JIT compilation: it pays off for analytic scans of seconds, not for our queries of a few
        # milliseconds, yet the portfolio's one aggregate (its funnel's EXISTS per project) crosses
        # jit_above_cost at 10,000 projects and spent 55 of its 127 ms compiling (EXPLAIN ANALYZE,
        # issue 14 item 7). ?options= in the URL overrides it.
        _db["OPTIONS"].setdefault("options", "-c jit=off")
        # A statement sent with its parameters apart (a small push's one-statement write, the worker's
        # few-point INSERTs: readiness/telemetry/services.py) is prepared on the server from its fifth
        # use on a connection, psycopg's default, which Django turns off: the database then skips its
        # parse and plan, a quarter of its CPU per single-point push. Django's own queries bind on the
        # client and are never prepared. ?prepare_threshold=N (or off) in the URL sets another threshold.
        _db["OPTIONS"].setdefault("prepare_threshold", 5)
    if _db["ENGINE"] == "django.db.backends.sqlite3":
        # A sqlite:// URL shares its file between web, worker and beat like the embedded default.
        _db["OPTIONS"] = {**_SQLITE_OPTIONS, **_db.get("OPTIONS", {})}
else:
    _db = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": VAR_DIR / "readiness.sqlite3",
        "OPTIONS": dict(_SQLITE_OPTIONS),
        # A file, not memory: tests that run a worker in a subprocess must see the same database.
        "TEST": {"NAME": str(VAR_DIR / "test.sqlite3")},
    }
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
LOGIN_URL = "/login/"
# A metrics push may carry up to 5 MiB of JSON (PRODUCT.md §3); larger bodies get 413.
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# --- Security (docs/security.md) -------------------------------------------------------------------
# Behind a TLS-terminating proxy Django sees plain HTTP; the proxy's X-Forwarded-Proto tells it the
# client used HTTPS. Only with DJANGO_HTTPS: the proxy must then set (overwrite) that header.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if HTTPS else None
SECURE_SSL_REDIRECT = HTTPS
# HSTS: browsers refuse plain HTTP to this host for a year once they saw HTTPS (default one year;
# DJANGO_HSTS_SECONDS=300 while trying HTTPS out). Sent only over HTTPS, so harmless without it.
_hsts_seconds = env_int("DJANGO_HSTS_SECONDS", 31_536_000, minimum=0)  # validated even without HTTPS
SECURE_HSTS_SECONDS = _hsts_seconds if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
# Links to other sites carry no path (scorecard URLs name projects); same-origin keeps it for our own.
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Only our own assets (readiness/security/headers.py says why each directive is what it is).
READINESS_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'self'; object-src 'none'"
)
# Hashed, compressed static file names (cache forever, served by whitenoise) need collectstatic to
# have run, as the Docker image does at build: on by default with HTTPS, DJANGO_STATIC_MANIFEST says.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if env_bool("DJANGO_STATIC_MANIFEST", HTTPS)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Login throttling (readiness/security/logins.py), on /login/ and /admin/login/: N failures for one
# username from one address lock that pair for a while; M failures from one address, whatever the
# usernames, lock the address.
AUTHENTICATION_BACKENDS = [
    "readiness.security.logins.LoginThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_HANDLER = "readiness.security.logins.LoginThrottleHandler"
AXES_FAILURE_LIMIT = env_int("READINESS_LOGIN_FAILURE_LIMIT", 5, minimum=1)
# 30 per address across usernames: five people behind one office NAT address can each use up their
# five tries before the address locks, while password spraying gets 30 guesses per address per lockout
# period (about 2,900 a day) instead of five per username for as many usernames as it can list.
READINESS_LOGIN_ADDRESS_FAILURE_LIMIT = env_int("READINESS_LOGIN_ADDRESS_FAILURE_LIMIT", 30, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("READINESS_LOGIN_LOCKOUT_MINUTES", 15, minimum=1))
# Attempts are recorded per (username, address); the address's total is counted by the handler.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "readiness.security.logins.lockout_response"
# The client address: REMOTE_ADDR, or with READINESS_PROXY_COUNT reverse proxies of ours in front, the
# address the outermost of them saw; IPv6 addresses count per /64 (readiness/security/logins.py,
# client_address). docs/security.md sets it up behind nginx alone and behind a load balancer.
READINESS_PROXY_COUNT = env_int("READINESS_PROXY_COUNT", 0, minimum=0)
AXES_CLIENT_IP_CALLABLE = "readiness.security.logins.client_address"

# API rate limit per token (readiness/security/ratelimit.py): "N/s", "N/m", "N/h", "N/10s" or "off".
# 6,000 a minute is 100 requests a second per token: a model server pushing a point per prediction at
# a modest rate fits, a runaway loop does not; a busier service batches (up to 10,000 points a push).
READINESS_API_RATE_LIMIT = env_parsed("READINESS_API_RATE_LIMIT", "6000/m", parse_rate)

# --- Celery ---------------------------------------------------------------------------------------
# Seconds one broker operation may take before it counts as failed (readiness/publishing.py).
BROKER_SOCKET_TIMEOUT = 5.0
_broker_url = env_url(
    "CELERY_BROKER_URL",
    schemes={"redis", "rediss", "amqp", "amqps", "pyamqp", "filesystem"},
    expected="redis://, amqp:// or filesystem://",
)
if _broker_url:
    CELERY_BROKER_URL = _broker_url
    # Redis redelivers a message nobody acknowledged after this long (a worker died holding it).
    # Fifteen minutes: above the longest hard time limit of any task (alerts.scan_expiring, 600 s) and
    # every countdown (≤ 1 s), so nothing still running is delivered twice. What a dead worker held comes
    # back sooner through the sweepers (ingest batches, deliveries) and the lost-request rule of
    # evaluations; the claims make a late redelivery harmless.
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {"visibility_timeout": 900}
    if _broker_url.startswith(("redis://", "rediss://")):
        # kombu's Redis transport with the guard that keeps a worker alive when Redis goes away
        # while it holds unacknowledged tasks (readiness/broker.py says why).
        CELERY_BROKER_TRANSPORT = "readiness.broker:Transport"
        # kombu asks redis-py for no socket timeout: a broker that accepts a connection and then
        # never answers (a half-open connection after a failover, a stuck proxy) held a push's
        # publish, and its gunicorn thread, until gunicorn killed the process (30 s; seen in
        # bench/push_overhead.py). Bounded here; above kombu's BRPOP wait (1 s), so an idle worker
        # never times out, and with keepalive so a dead peer is noticed without traffic.
        CELERY_BROKER_TRANSPORT_OPTIONS.update(
            socket_timeout=BROKER_SOCKET_TIMEOUT,
            socket_connect_timeout=BROKER_SOCKET_TIMEOUT,
            socket_keepalive=True,
        )
        if _broker_url.startswith("rediss://"):
            # Named by class, the transport no longer gets kombu's default for a rediss:// URL (TLS
            # without checking the certificate): check it, as redis-py does for the rate limiter's.
            CELERY_BROKER_USE_SSL = {"ssl_cert_reqs": ssl.CERT_REQUIRED}
else:
    # The embedded default: kombu's file-system transport needs no server, only a shared folder.
    _queue_dir = VAR_DIR / "broker"
    for sub in ("out", "processed", "control"):
        (_queue_dir / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir / "out"),
        "data_folder_out": str(_queue_dir / "out"),
        "processed_folder": str(_queue_dir / "processed"),
        # Broadcast (remote control) messages; without it kombu writes a ./control folder.
        "control_folder": str(_queue_dir / "control"),
        "store_processed": False,
    }
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
# Results are not read back: every task writes its outcome to the database.
CELERY_TASK_IGNORE_RESULT = True
# No result backend, so nothing to expire: without this, beat installs a daily celery.backend_cleanup.
CELERY_RESULT_EXPIRES = None
# Late ack + reject on worker loss: a task whose worker dies is redelivered, not lost. Tasks are
# idempotent (claimed with conditional updates), so redelivery never double-applies.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# One message at a time per process: a long evaluation never holds others hostage in its prefetch.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# django-celery-beat's database scheduler, seeded from CELERY_BEAT_SCHEDULE below without overwriting
# the intervals admins tune in the console (readiness/beat.py says why).
CELERY_BEAT_SCHEDULER = "readiness.beat:CodeDefaultsScheduler"
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# Each kind of work on a queue of its own (PRODUCT.md §9), so a flood of one never starves another: a
# burst of large pushes does not delay evaluations, a slow or dead Prometheus (pulls wait up to 10 s a
# source) holds only the workers consuming ``pulls``, a webhook that hangs only ``notifications``.
# The embedded default (Procfile) runs one worker consuming every queue; compose runs one per group.
# Every deployment's workers together consume every queue (tests/ops/test_queues.py).
CELERY_TASK_ROUTES = {
    "telemetry.batches_drain": {"queue": "ingestion"},
    "telemetry.sweep_batches": {"queue": "ingestion"},
    # The rollup fold, the daily retention and the hourly sealing (value indexes) rewrite the stored
    # points, as the drains do; a fold run holds one ingestion slot for at most its 25 s budget a
    # minute, a sealing run one for as long as its builds take (a day of a large fleet: minutes).
    "telemetry.fold_rollups": {"queue": "ingestion"},
    "telemetry.apply_retention": {"queue": "ingestion"},
    "telemetry.seal_partitions": {"queue": "ingestion"},
    "scoring.*": {"queue": "evaluation"},
    "telemetry.run_health_checks": {"queue": "probes"},
    "telemetry.pull_sources": {"queue": "pulls"},
    "alerts.*": {"queue": "notifications"},
}
# Declared, so a worker started without --queues (the tests' in-process and solo workers) consumes
# them all. ``celery``, the default, stays: messages queued before the routes existed wait there.
CELERY_TASK_QUEUES = [
    Queue(name) for name in ("celery", "ingestion", "evaluation", "probes", "pulls", "notifications")
]
# Every periodic job, defined here only: beat copies each entry missing from django-celery-beat's tables
# there, where admins see and tune it. Each entry says why its interval; each task carries its own soft
# and hard time limits (the database scheduler cannot store them), and "expires" drops a tick still
# queued when the next is due.
CELERY_BEAT_SCHEDULE = {
    "evaluate-active-projects": {
        "task": "scoring.evaluate_active_projects",
        # Five minutes: the shortest windows are 15m, so a moving window is re-judged several times
        # before it could flip a decision, while a portfolio of thousands stays a light load.
        "schedule": 300.0,
        "options": {"expires": 290},
    },
    "sweep-ingest-batches": {
        "task": "telemetry.sweep_batches",
        # 30 s (PRODUCT.md §4): with the one-minute grace before a batch counts as lost, every
        # acknowledged batch is re-enqueued within 90 s of broker and workers being back.
        "schedule": 30.0,
        "options": {"expires": 25},
    },
    "fold-rollups": {
        "task": "telemetry.fold_rollups",
        # 60 s: rollups are per minute, and a minute is folded after a 2-minute grace, so the rollups
        # trail real time by about 3 minutes; until then the newest minutes are read raw (exact either
        # way). A run after an outage folds 2 hours of backlog; the next runs continue.
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "run-health-checks": {
        "task": "telemetry.run_health_checks",
        # 10 s: each target carries its own interval (>= 30 s) in next_probe_at; the tick only decides
        # how late a due probe may start (10 s at most, a third of the shortest interval), and the next
        # due time counts from the previous one, so the lateness does not add up. A cycle claims its
        # targets first, so overlapping ticks never probe one target twice.
        "schedule": 10.0,
        # A tick still queued when the next one is due is dropped: the next tick claims the same targets.
        "options": {"expires": 9},
    },
    "pull-metric-sources": {
        "task": "telemetry.pull_sources",
        # 10 s, as probes: each source carries its own interval (>= 30 s) in next_pull_at, and a pull
        # asks Prometheus for everything since its last point, so a late tick delays points, never
        # loses them. On the ``pulls`` queue, where the task is routed.
        "schedule": 10.0,
        "options": {"expires": 9, "queue": "pulls"},
    },
    "apply-retention": {
        "task": "telemetry.apply_retention",
        # Daily at 03:30 UTC, a quiet hour away from the 07:00 digests: retention counts in days, so
        # once a day suffices, and the same run makes the week ahead's partitions (a week of slack
        # should beat stop). A tick still queued an hour later is dropped; tomorrow's does the work.
        "schedule": crontab(minute=30, hour=3),
        "options": {"expires": 3600},
    },
    "seal-partitions": {
        "task": "telemetry.seal_partitions",
        # Hourly, five minutes past: the day that ended gets its whole value index and today's
        # segment that ended its partial one (partitions.SEGMENT_HOURS) within the hour, so an exact
        # percentile reads at most a segment and an hour of points without one. A run with nothing to
        # seal reads the catalog only. A tick still queued when the next is due is dropped.
        "schedule": crontab(minute=5),
        "options": {"expires": 3300},
    },
    # Notifications (readiness/alerts/).
    "sweep-notification-deliveries": {
        "task": "alerts.sweep_deliveries",
        # 60 s: a delivery whose message the broker lost is re-sent within 90 s (30 s grace, then the
        # next sweep), one whose worker died within a minute of its 2-minute lease running out.
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "scan-expiring-attestations-and-waivers": {
        "task": "alerts.scan_expiring",
        # Hourly: the warning comes 7 days ahead, so an hour's lateness costs nothing, and each event
        # has a unique key, so a second scan (or a second beat) finds nothing new.
        "schedule": 3600.0,
        "options": {"expires": 3300},
    },
    "send-notification-digests": {
        "task": "alerts.send_digests",
        # Daily at 07:00 UTC: one summary before the European working day (and the US night's news by
        # the morning), for channels in digest mode.
        "schedule": crontab(minute=0, hour=7),
        "options": {"expires": 3600},
    },
    "compute-drift": {
        "task": "scoring.compute_drift",
        # 10 minutes: drift windows are hours to days, so a run moves a 24h window by under 1% and a
        # real shift shows within minutes of it mattering; 100 criteria cost ~2 s of one worker a run.
        "schedule": 600.0,
        "options": {"expires": 540},
    },
}

# --- Email ----------------------------------------------------------------------------------------
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "readiness@localhost")
if not env_str("EMAIL_HOST"):
    # Without a mail server, mail goes to the console (embedded default) instead of failing.
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
else:
    # Django's SMTP backend, telling a message the server may have accepted from one it did not.
    EMAIL_BACKEND = "readiness.alerts.smtp.EmailBackend"

# --- REST API -------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # The bearer scheme first: its WWW-Authenticate header makes an anonymous call a 401, not a 403.
    # Session writes keep Django's CSRF check (DRF enforces it for session-authenticated requests).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "readiness.api.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["readiness.api.permissions.IsCaller"],
    # JSON only (PRODUCT.md §3): another Content-Type is a 415, and no browsable HTML API.
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "readiness.api.exceptions.api_exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Readiness API",
    "DESCRIPTION": "Push metrics, read scorecards and ask the deploy gate. Errors are "
    '`{"error": {"code", "message", "details"}}`.',
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from the drf-spectacular-sidecar package, served as our own static files: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # validatorUrl: null stops Swagger UI from sending the schema to validator.swagger.io.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "ENUM_GENERATE_CHOICE_DESCRIPTION": False,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "readiness.api.schema.add_rate_limit_responses",
    ],
}

# --- Readiness ------------------------------------------------------------------------------------
# Days in one stage after which the portfolio flags a project as stuck.
READINESS_STUCK_AFTER_DAYS = env_int("READINESS_STUCK_AFTER_DAYS", 60, minimum=1)
# The base URL used in links sent by notifications.
READINESS_BASE_URL = env_str("READINESS_BASE_URL", "http://127.0.0.1:8000")
# How long a worker's claim on a notification delivery lasts (readiness/alerts/sending.py): past it the
# worker is presumed dead and the delivery is sent again. Keep it above the send task's hard time limit
# (60 s, readiness/alerts/tasks.py), or a sender still running could be presumed dead and its message
# sent twice; the fault suite shortens it to watch a killed worker's delivery come back in seconds.
READINESS_DELIVERY_LEASE_SECONDS = env_int("READINESS_DELIVERY_LEASE_SECONDS", 120, minimum=1)
# Probes, webhooks and pull sources never reach these networks (server-side request forgery, judged
# on the address resolved when the request is made: readiness/security/egress.py): link-local, which
# holds the cloud metadata service at 169.254.169.254, for IPv4 and IPv6; the metadata addresses
# outside it (AWS over IPv6, fd00:ec2::254; Alibaba Cloud, 100.100.100.200); and 0.0.0.0/8 and ::,
# which a connection on Linux takes for this very machine. Loopback and private ranges stay allowed
# (model services live there); the variable adds networks (e.g. "127.0.0.0/8,10.0.0.0/8") and can
# never remove these.
READINESS_PROBE_DENY_NETWORKS = [
    "169.254.0.0/16",
    "fe80::/10",
    "fd00:ec2::254/128",
    "100.100.100.200/32",
    "0.0.0.0/8",
    "::/128",
]
READINESS_PROBE_DENY_NETWORKS += env_networks("READINESS_PROBE_DENY_NETWORKS")
# Probes in flight at once per cycle: each holds a socket for at most its timeout, so 100 keeps a
# worker's file descriptors and a cycle of 1,000 targets well inside the beat interval.
READINESS_PROBE_CONCURRENCY = env_int("READINESS_PROBE_CONCURRENCY", 100, minimum=1)
# Pull sources read at once per cycle (threads: each waits on one server for at most 10 s).
READINESS_PULL_CONCURRENCY = env_int("READINESS_PULL_CONCURRENCY", 20, minimum=1)
# Retention (PRODUCT.md §9, readiness/telemetry/retention.py): raw points are kept 35 days (a 30d window
# plus a few days of slack for late evaluations), rollups 400 (a yearly comparison plus a month). A
# criterion window may be at most the rollup retention. The daily retention job removes older data.
READINESS_RAW_RETENTION_DAYS, READINESS_ROLLUP_RETENTION_DAYS = env_retention_days(
    "READINESS_RAW_RETENTION_DAYS", 35, "READINESS_ROLLUP_RETENTION_DAYS", 400
)

# The per-token API counts live in Redis so every web process shares them: the broker's Redis, or
# READINESS_RATE_LIMIT_REDIS_URL (e.g. beside RabbitMQ). Without either, each process counts alone.
READINESS_RATE_LIMIT_REDIS_URL = env_url(
    "READINESS_RATE_LIMIT_REDIS_URL",
    schemes={"redis", "rediss", "unix"},
    expected="redis://, rediss:// or unix://",
) or (CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else "")

# --- Observability (readiness/observability/) ------------------------------------------------------
# /metrics answers only a scraper sending "Authorization: Bearer <this>"; empty: /metrics is a 404.
READINESS_METRICS_TOKEN = env_token("READINESS_METRICS_TOKEN", min_length=16)
# Read by prometheus_client itself: every process's metrics in files there, summed at each scrape.
env_writable_dir("PROMETHEUS_MULTIPROC_DIR")

# Logs: one JSON object per line on stderr (LOG_FORMAT=text for a terminal), UTC timestamps, the
# request id or the Celery task on every line (readiness/observability/logs.py).
_log_format = env_choice("LOG_FORMAT", "json", ("json", "text"), expected="json or text")
_log_level = env_choice(
    "LOG_LEVEL",
    "INFO",
    ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"),
    expected="DEBUG, INFO, WARNING or ERROR",
    upper=True,
)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "readiness.observability.logs.RequestContextFilter"}},
    "formatters": {
        "json": {"()": "readiness.observability.logs.JsonFormatter"},
        "text": {"()": "readiness.observability.logs.TextFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": _log_format, "filters": ["context"]},
    },
    "root": {"handlers": ["console"], "level": _log_level},
    # Its start banner on every command; its lockout lines (axes.handlers, axes.signals) stay.
    "loggers": {"axes.apps": {"level": "WARNING"}},
}
# Celery workers log through the same handler (JSON, with the task's id), not a root logger of their own.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
