from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "readiness.settings")
application = get_wsgi_application()


def load_before_traffic() -> None:
    """What Django otherwise loads on a process's first request: the URLconf with every view module it
    imports, and the dashboard's compiled templates (the cached loader keeps them for the process).

    A server process imports this module before it accepts a connection (a gunicorn worker loads its
    application first), so the first reader after a deploy or a worker restart is served like every
    later one instead of waiting seconds for imports (bench/pages.py measures that first request)."""
    from django.conf import settings
    from django.template.loader import get_template
    from django.urls import get_resolver

    resolver = get_resolver()
    resolver.url_patterns  # noqa: B018 -- the access imports the URLconf and every view behind it
    resolver.reverse_dict  # noqa: B018 -- and builds the reverse lookup every page's links use
    for name in sorted((settings.BASE_DIR / "templates" / "dashboard").glob("*.html")):
        get_template(f"dashboard/{name.name}")


load_before_traffic()
