"""Pages of a long list (history, audit log, the portfolio's matrix) with Django's ``Paginator``.

A ``?page=`` value that is not a page of the list shows the nearest page and says so, never an error:
a bookmarked page of a list that has since shrunk should still open.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.core.paginator import EmptyPage, Page, PageNotAnInteger, Paginator
from django.db.models import QuerySet


def pick_page(items: QuerySet | Sequence, *, per_page: int, raw: str | None) -> tuple[Page, str]:
    """The page to show for a ``?page=`` value (of a query set: one count query, its items read
    lazily), and a message when it is not the one asked for."""
    paginator = Paginator(items, per_page)
    number, message = _number(paginator, raw)
    return paginator.page(number), message


def _number(paginator: Paginator, raw: str | None) -> tuple[int, str]:
    if raw is None or raw == "":
        return 1, ""
    shown = raw if len(raw) <= 20 else raw[:20] + "…"
    try:
        return paginator.validate_number(raw), ""
    except PageNotAnInteger:
        return 1, f"“{shown}” is not a page number; showing page 1."
    except EmptyPage:
        number = int(raw)
        if number < 1:
            return 1, f"There is no page {number}; showing page 1."
        return (
            paginator.num_pages,
            f"There is no page {number}; showing the last page ({paginator.num_pages}).",
        )


def offset(page: Page) -> int:
    """How many items come before the page."""
    return (page.number - 1) * page.paginator.per_page
