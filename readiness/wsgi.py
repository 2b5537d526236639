from __future__ import annotations

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "readiness.settings")
application = get_wsgi_application()


def load_before_traffic() -> None:
    """What Django otherwise loads on a process's first request: the URLconf with every view module it
    imports, its error views, the dashboard's compiled templates (the cached loader keeps them for the
    process) and what their rendering imports on first use, and the modules a page imports lazily.

    A server process imports this module before it accepts a connection (a gunicorn worker loads its
    application first), so the first reader after a deploy or a worker restart is served like every
    later one instead of waiting for imports (bench/pages.py measures that first request). Each step
    only imports or compiles: nothing here touches the database."""
    from django.conf import settings
    from django.template import engines
    from django.template.loader import get_template
    from django.urls import get_resolver
    from django.utils import formats, translation
    from django.utils.module_loading import import_string

    resolver = get_resolver()
    resolver.url_patterns  # noqa: B018 -- the access imports the URLconf and every view behind it
    resolver.reverse_dict  # noqa: B018 -- and builds the reverse lookup every page's links use
    for status in (400, 403, 404, 500):
        resolver.resolve_error_handler(status)  # imports django.views.defaults, else the first 403 does
    for name in sorted((settings.BASE_DIR / "templates" / "dashboard").glob("*.html")):
        get_template(f"dashboard/{name.name}")
    # What the first render imports: the context processors, the message storage they read, and the
    # number and date formats of the site's language (the templates' |date and |floatformat).
    engines["django"].engine.template_context_processors  # noqa: B018 -- a cached property: imports them
    import_string(settings.MESSAGE_STORAGE)
    with translation.override(settings.LANGUAGE_CODE):
        formats.get_format("DATE_FORMAT")
    if settings.DATABASES["default"]["ENGINE"] == "readiness.postgresql":
        # Imported inside the aggregation functions (the SQLite build never needs it): the report's
        # and the metric endpoint's first window aggregate would import it.
        import django.contrib.postgres.aggregates  # noqa: F401


load_before_traffic()
# What is loaded by now lives as long as the process: out of the garbage collector's reach, so the full
# collections that requests' garbage triggers no longer walk Django's and Readiness's objects each time
# (gc.freeze, after the process has loaded everything it keeps: a pause of milliseconds saved per
# full collection, which lands on whichever request triggered it).
gc.freeze()
