"""``{% matrix_rows rows %}``: the rows of the portfolio's readiness matrix, written in Python.

Why not a ``{% for %}`` in the template: the matrix is the one part of a page that grows with the
portfolio, and Django's template engine spends about half a millisecond on each of its rows (four
linked cells, a dozen lookups and filters each): over 500 ms for 1,000 projects, three times the
page's whole budget (bench/pages.py). The same markup written here costs a few microseconds a row.
Every value that comes from a person goes through ``html.escape``, which escapes exactly what Django's
autoescaping does (``&<>\"'``).
"""

from __future__ import annotations

from html import escape
from typing import Any

from django import template
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe

from readiness.dashboard.portfolio.selectors import DimensionCell, PortfolioRow

register = template.Library()

# Slugs are [-a-zA-Z0-9_]+ (SlugField and the URL's slug converter alike), so one reversed URL with a
# placeholder stands for all of them.
_PLACEHOLDER = "slug-placeholder"


def _score(value: float) -> str:
    """As ``floatformat:"-1"``: one decimal, dropped when it is zero (scores are rounded to 0.1)."""
    return str(int(value)) if value == int(value) else f"{value:.1f}"


def _plural(count: int) -> str:
    return "" if count == 1 else "s"


def _cell_parts(cell: DimensionCell) -> tuple[str, str, str]:
    """A cell's markup around its two per-project parts (the link and the project's name): a cell's
    dimension, status and score take few values, so a page builds each of these once."""
    word = escape(cell.status_label)
    has_score = cell.score is not None
    score = f'<span class="cell__score">{_score(cell.score)}</span>' if cell.score is not None else ""
    return (
        f'<td class="cell cell--{escape(cell.status or "none")}"><a href="',
        f'#{cell.dimension}" aria-label="',
        f", {cell.label}: {word}" + (f", score {cell.score}" if has_score else "") + '">'
        f'<span class="cell__dim">{cell.label}</span> <span class="cell__status">'
        f'<span aria-hidden="true">{cell.symbol}</span> {word}</span> {score}</a></td>',
    )


def matrix_row(row: PortfolioRow, url: str, cells: dict[tuple[str, str | None, float | None], Any]) -> str:
    name = escape(row.name)
    stuck = ' class="is-stuck"' if row.stuck else ""
    flag = '<span class="flag flag--stuck">⚑ Stuck</span>' if row.stuck else ""
    target = ""
    if row.target:
        count = len(row.blockers)
        blockers = f" · {count} blocker{_plural(count)}" if count else ""
        target = f'<span class="muted">for {escape(row.target)}{blockers}</span>'
    tier = escape(row.risk_tier)
    parts = [
        f"<tr{stuck}>",
        f'<th scope="row" class="matrix__project"><a href="{url}">{name}</a>'
        f' <span class="muted">{escape(row.team_name)}</span></th>',
        f'<td class="matrix__stage"><span class="stage">{escape(row.stage.capitalize())}</span>'
        f' <span class="muted">{row.days_in_stage} day{_plural(row.days_in_stage)}</span>{flag}</td>',
        f'<td><span class="phone-label">Risk tier: </span><span class="tier tier--{tier}">'
        f"{escape(row.risk_tier.capitalize())}</span></td>",
        f'<td class="matrix__decision"><span class="badge badge--{row.decision_key}">'
        f'<span aria-hidden="true">{row.decision_symbol}</span> {row.decision_label}</span> {target}</td>',
    ]
    for cell in row.cells:
        key = (cell.dimension, cell.status, cell.score)
        around = cells.get(key)
        if around is None:
            around = cells[key] = _cell_parts(cell)
        parts += (around[0], url, around[1], name, around[2])
    parts.append("</tr>")
    return "".join(parts)


@register.simple_tag
def matrix_rows(rows: list[PortfolioRow]) -> SafeString:
    pattern = reverse("dashboard:scorecard", args=[_PLACEHOLDER])
    cells: dict[tuple[str, str | None, float | None], Any] = {}
    html = "\n".join(matrix_row(row, pattern.replace(_PLACEHOLDER, row.slug), cells) for row in rows)
    return mark_safe(html)  # noqa: S308 -- every value from a person is escaped above
