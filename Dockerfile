# Readiness: one image for web (gunicorn), worker and beat (Celery) and the one-shot migrate.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app \
    READINESS_VAR_DIR=/app/var \
    # Static files are collected below, so their hashed, compressed names can be served.
    DJANGO_STATIC_MANIFEST=true

WORKDIR /app

# The runtime dependencies exactly as locked in uv.lock (hashes checked), the dev extra (pytest,
# playwright, ...) left out. A layer of its own, rebuilt only when the lock changes.
COPY pyproject.toml uv.lock ./
RUN pip install uv==0.13.9 \
    && uv export --frozen --no-dev --no-emit-project --format requirements-txt > /tmp/requirements.txt \
    && uv pip install --system --require-hashes -r /tmp/requirements.txt \
    && pip uninstall -y uv \
    && rm /tmp/requirements.txt

# The application is imported from /app (PYTHONPATH), where templates/ and static/ sit beside it.
COPY manage.py gunicorn.conf.py ./
COPY readiness ./readiness
COPY templates ./templates
COPY static ./static

# A user without a login shell or sudo owns only var/ (static files, Prometheus' multiprocess files):
# the code is root's and read-only to the processes that run it. collectstatic signs nothing, but the
# settings refuse to load without a secret key: it gets a throwaway one that lives only as long as
# this command, so the image holds no key (the containers get theirs from DJANGO_SECRET_KEY(_FILE)).
RUN useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin readiness \
    && DJANGO_SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" python manage.py collectstatic --no-input -v0 \
    && mkdir -p /app/var/metrics \
    && chown -R readiness:readiness /app/var

USER readiness
EXPOSE 8000
# gunicorn reads its settings (worker class, processes, threads, timeouts) from /app/gunicorn.conf.py.
CMD ["gunicorn", "--bind", "0.0.0.0:8000"]
