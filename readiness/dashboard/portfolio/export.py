"""CSV and JSON export of the portfolio matrix: exactly the rows the portfolio page shows for the same
query string, through the page's own filter form and selectors.

CSV cells are written for spreadsheets, which run any cell starting with ``=``, ``+``, ``-`` or ``@``
as a formula (CSV injection, OWASP): a project named ``=HYPERLINK(...)`` must stay text. Such cells
get a leading apostrophe, which spreadsheets hide and treat as "this is text".
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import TYPE_CHECKING, Any

from readiness.dashboard.portfolio import selectors
from readiness.dashboard.portfolio.selectors import PortfolioRow
from readiness.projects.vocabulary import Dimension

if TYPE_CHECKING:
    from readiness.dashboard.portfolio.page import PortfolioView

# Tab and carriage return as well: some spreadsheets strip them and then see the formula behind.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def matrix_record(row: PortfolioRow) -> dict[str, Any]:
    """One project of the matrix as plain data (the JSON export's item)."""
    return {
        "slug": row.slug,
        "name": row.name,
        "team": {"slug": row.team_slug, "name": row.team_name},
        "stage": row.stage,
        "days_in_stage": row.days_in_stage,
        "stuck": row.stuck,
        "risk_tier": row.risk_tier,
        "target_date": row.target_date.isoformat() if row.target_date else None,
        "decision": row.decision,
        "target": row.target,
        "computed_at": row.computed_at.isoformat() if row.computed_at else None,
        "blockers": len(row.blockers),
        "dimensions": {
            cell.dimension: {"status": cell.status, "score": cell.score, "signoff": cell.signoff}
            for cell in row.cells
        },
    }


def matrix_json(*, shown: PortfolioView, now: datetime) -> dict[str, Any]:
    filters = shown.filters
    return {
        "generated_at": now.isoformat(),
        "filters": {
            "team": filters.team,
            "stage": filters.stage,
            "risk_tier": filters.risk_tier,
            "decision": filters.decision,
            "q": filters.q,
        },
        "ignored": shown.ignored,
        "count": len(shown.shown),
        "projects": [matrix_record(row) for row in shown.shown],
    }


CSV_HEADER = [
    *("slug", "name", "team", "stage", "days_in_stage", "stuck", "risk_tier", "target_date"),
    *("decision", "target", "computed_at", "blockers"),
    *(f"{dim}_{part}" for dim in Dimension.values for part in ("status", "score", "signoff")),
]


def csv_cell(value: Any) -> Any:
    """A value a spreadsheet shows as written: text that would start a formula is quoted."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def matrix_csv(rows: list[PortfolioRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    for row in rows:
        record = matrix_record(row)
        cells = [
            record["slug"],
            record["name"],
            row.team_name,
            record["stage"],
            record["days_in_stage"],
            "yes" if row.stuck else "no",
            record["risk_tier"],
            record["target_date"],
            record["decision"] or selectors.NOT_EVALUATED,
            record["target"],
            record["computed_at"],
            record["blockers"],
        ]
        for cell in row.cells:
            cells += [cell.status, cell.score, cell.signoff]
        writer.writerow([csv_cell(value) for value in cells])
    return out.getvalue()


def export_filename(*, extension: str, now: datetime) -> str:
    return f"readiness-portfolio-{now:%Y-%m-%d}.{extension}"
