"""What scoring announces to the layers above it. Alerts sits above scoring (pyproject.toml's import
contracts): scoring tells that it stored a scorecard, and alerts records the events it implies."""

from __future__ import annotations

from django.dispatch import Signal

# Sent with ``project``, ``scorecard`` and ``previous`` (the newest scorecard before it, or None) by
# ``scorecard_refresh``, inside the transaction that stores the scorecard and under the project's row
# lock: what a receiver records exists exactly when the scorecard does, and once. ``send``, not
# ``send_robust``: a receiver's error rolls the scorecard back with it, as a direct call would.
scorecard_stored = Signal()
