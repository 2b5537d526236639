"""The scoring app's admin console (PRODUCT.md §5 "/admin/"), registered by importing its modules.

Writes go through scoring's services, so a change made here is audit-logged and re-evaluates the project
exactly like one made through the pages or the API. Sign-offs and scorecards are history: read-only.
"""

from __future__ import annotations

from readiness.scoring.admin import criteria, judgements

__all__ = ["criteria", "judgements"]
