# The two commands of the README. Both work on a fresh machine with only Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000

.PHONY: run test install install-dev lint lock bench clean

# Every install resolves from the committed lock file (uv.lock), never from today's index: a fresh
# machine gets exactly the versions CI tested. uv itself is pinned and bootstrapped with pip.
# Refresh the lock (after changing pyproject.toml, or to take new releases): make lock.
UV_VERSION := 0.13.9
UV := $(BIN)/uv
export UV_PYTHON_DOWNLOADS := never

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(UV): | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# --inexact keeps uv itself (and, after make test, the dev extra) in the venv; --locked fails when
# uv.lock no longer matches pyproject.toml instead of quietly resolving anew.
$(VENV)/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked --inexact --quiet
	touch $@

$(VENV)/.installed-dev: pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked --inexact --quiet --extra dev
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# The secret key of `make run`: generated once, kept in var/ (never committed), passed by file name so
# it appears in no command line or process listing. With DJANGO_DEBUG off (the default) Readiness refuses
# to start without a key; a key set in the environment is used instead of this one.
SECRET_KEY_FILE := $(CURDIR)/var/secret_key

$(SECRET_KEY_FILE):
	@mkdir -p $(@D)
	@umask 077 && $(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))' > $@.tmp && mv $@.tmp $@
	@echo "Generated a secret key for this machine in var/secret_key (kept for the next runs)"

ifeq ($(DJANGO_SECRET_KEY)$(DJANGO_SECRET_KEY_FILE),)
run: export DJANGO_SECRET_KEY_FILE := $(SECRET_KEY_FILE)
run: $(SECRET_KEY_FILE)
endif

## make run: install, migrate the embedded SQLite database, load the demo portfolio, and start web,
## Celery worker and beat together.
run: install
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py collectstatic --no-input -v0
	$(BIN)/python manage.py readiness_templates
	$(BIN)/python manage.py readiness_demo --url http://127.0.0.1:$(PORT)
	@echo
	@echo "Readiness is starting on http://127.0.0.1:$(PORT)/  (demo login printed above)"
	@echo
	@# A terminal reads text logs better than JSON lines; production keeps JSON.
	PORT=$(PORT) LOG_FORMAT=$${LOG_FORMAT:-text} $(BIN)/honcho start

## make test: install the dev extra and run the whole suite (SQLite and a file-system broker unless
## DATABASE_URL and CELERY_BROKER_URL point elsewhere).
test: install-dev mlflow-env
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-logo
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## make mlflow-env: the MLflow tracking server the pull-source tests start (tests/telemetry/sources), in its own
## virtual environment var/mlflow-venv from tests/mlflow/uv.lock, so its pins never touch the product's.
## About 630 MB; 15-35 s from a cold cache on this machine, nothing when it is up to date.
MLFLOW_VENV := var/mlflow-venv
.PHONY: mlflow-env
mlflow-env: $(MLFLOW_VENV)/.installed

$(MLFLOW_VENV)/.installed: tests/mlflow/pyproject.toml tests/mlflow/uv.lock | $(UV)
	UV_PROJECT_ENVIRONMENT=$(CURDIR)/$(MLFLOW_VENV) $(UV) sync --project tests/mlflow --locked --quiet
	touch $@

## make bench: the benchmarks of docs/benchmarks.md (needs PostgreSQL, Redis and wrk, like CI).
## Every benchmark runs even when one before it misses a figure; make fails at the end if any did.
BENCHMARKS := ingest probes drift pages push_overhead otlp sources evaluate_scale
bench: install-dev
	@missed=""; for name in $(BENCHMARKS); do \
		echo "== bench/$$name.py"; $(BIN)/python bench/$$name.py || missed="$$missed $$name"; \
	done; \
	if [ -n "$$missed" ]; then echo "missed a required figure or failed:$$missed"; exit 1; fi

## make lock: resolve pyproject.toml's ranges anew into uv.lock (today's releases), then commit it.
lock: | $(UV)
	$(UV) lock --upgrade

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-logo

clean:
	rm -rf var/*.sqlite3* var/broker var/celerybeat-schedule*
