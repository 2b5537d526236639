FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 READINESS_VAR_DIR=/app/var
WORKDIR /app
COPY pyproject.toml README.md ./
COPY readiness ./readiness
RUN pip install --no-cache-dir .
COPY . .
RUN useradd --create-home --uid 10001 readiness && mkdir -p /app/var && chown -R readiness /app/var \
    && DJANGO_SECRET_KEY=build python manage.py collectstatic --no-input
USER readiness
EXPOSE 8000
CMD ["gunicorn", "readiness.wsgi:application", "--bind", "0.0.0.0:8000"]
