"""Readiness's PostgreSQL database backend: Django's, with a connection health check that costs no
round trip (``base.DatabaseWrapper.is_usable``). settings.py selects it for every ``postgres://``
DATABASE_URL."""
