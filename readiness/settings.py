"""Readiness settings, read from the environment (PRODUCT.md §7).

With nothing set, Readiness runs on its embedded default: SQLite and a file-system Celery broker under
``var/``, nothing to install but Python. Production sets ``DATABASE_URL`` and ``CELERY_BROKER_URL``.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import dj_database_url

from readiness.env import ImproperlyConfiguredEnv, env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("READINESS_VAR_DIR") or BASE_DIR / "var")
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DJANGO_DEBUG", False)
_secret = env_str("DJANGO_SECRET_KEY")
if not _secret:
    if not DEBUG and env_bool("DJANGO_REQUIRE_SECRET", False):
        raise ImproperlyConfiguredEnv("DJANGO_SECRET_KEY: required in production")
    # A local-only key so the embedded default starts with nothing set; production sets its own.
    _secret = "readiness-insecure-local-key-set-DJANGO_SECRET_KEY-in-production"  # noqa: S105
SECRET_KEY = _secret
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
    "readiness.projects",
    "readiness.audit",
    "readiness.telemetry",
    "readiness.scoring",
    "readiness.alerts",
    "readiness.checks_as_code",
    "readiness.dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
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
_database_url = env_str("DATABASE_URL")
if _database_url:
    try:
        _db = dj_database_url.parse(_database_url, conn_max_age=60, conn_health_checks=True)
    except ValueError as exc:
        raise ImproperlyConfiguredEnv(f"DATABASE_URL: {exc}") from exc
    if not _db.get("ENGINE"):
        raise ImproperlyConfiguredEnv(f"DATABASE_URL: unsupported scheme in {_database_url!r}")
else:
    _db = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": VAR_DIR / "readiness.sqlite3",
        # Web, worker and beat share the file: wait on a lock rather than fail with "database is locked".
        "OPTIONS": {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL;",
        },
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

# --- Celery ---------------------------------------------------------------------------------------
_broker_url = env_str("CELERY_BROKER_URL")
if _broker_url:
    if _broker_url.split("://", 1)[0] not in {
        "redis",
        "rediss",
        "amqp",
        "amqps",
        "pyamqp",
        "filesystem",
    }:
        raise ImproperlyConfiguredEnv(
            f"CELERY_BROKER_URL: expected redis://, amqp:// or filesystem://, got {_broker_url!r}"
        )
    CELERY_BROKER_URL = _broker_url
    # Redis redelivers a message nobody acknowledged after this long (a worker died holding it).
    # Five minutes: above the longest task (a drain yields after 10 s) and every countdown (≤ 1 s), so
    # nothing healthy is delivered twice; lost ingest batches come back sooner through the sweeper.
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {"visibility_timeout": 300}
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
# Late ack + reject on worker loss: a task whose worker dies is redelivered, not lost. Tasks are
# idempotent (claimed with conditional updates), so redelivery never double-applies.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# One message at a time per process: a long evaluation never holds others hostage in its prefetch.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# Periodic jobs, defined here and copied into django-celery-beat's tables, where admins tune them.
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
}

# --- Readiness ------------------------------------------------------------------------------------
# Days in one stage after which the portfolio flags a project as stuck.
READINESS_STUCK_AFTER_DAYS = env_int("READINESS_STUCK_AFTER_DAYS", 60, minimum=1)
# The base URL used in links sent by notifications.
READINESS_BASE_URL = env_str("READINESS_BASE_URL", "http://127.0.0.1:8000")
# Health-check probes never reach these networks (server-side request forgery), judged on the address
# resolved at probe time: link-local, which holds the cloud metadata service (169.254.169.254), for
# IPv4 and IPv6. Loopback and private ranges stay allowed (model services live there); the variable
# adds networks (e.g. "127.0.0.0/8,10.0.0.0/8") and can never remove these two.
READINESS_PROBE_DENY_NETWORKS = ["169.254.0.0/16", "fe80::/10"]
for _network in env_list("READINESS_PROBE_DENY_NETWORKS", []):
    try:
        ipaddress.ip_network(_network)
    except ValueError as exc:
        raise ImproperlyConfiguredEnv(f"READINESS_PROBE_DENY_NETWORKS: {exc}") from None
    READINESS_PROBE_DENY_NETWORKS.append(_network)
# Probes in flight at once per cycle: each holds a socket for at most its timeout, so 100 keeps a
# worker's file descriptors and a cycle of 1,000 targets well inside the beat interval.
READINESS_PROBE_CONCURRENCY = env_int("READINESS_PROBE_CONCURRENCY", 100, minimum=1)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
