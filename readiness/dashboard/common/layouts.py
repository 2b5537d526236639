"""The layouts every page extends (PRODUCT.md §5).

The htmx partials are named blocks of the page templates. A page ``{% extends layout %}``: the full
layout for a normal request, a layout holding only the one block for an htmx request, so a partial is
the page's own markup, never a copy of it, and every page still works without JavaScript.
"""

from __future__ import annotations

from django.http import HttpRequest

FULL_LAYOUT = "dashboard/base.html"
# How often a page open on a wall screen refreshes its data (while the tab is visible; dashboard.js).
POLL_SECONDS = 30


def layout(request: HttpRequest, partial: str) -> str:
    """The full layout, or ``partial`` for an htmx request."""
    # htmx asks for the full page when it restores history it has no snapshot of: give it the page.
    if request.headers.get("HX-Request") and not request.headers.get("HX-History-Restore-Request"):
        return partial
    return FULL_LAYOUT
