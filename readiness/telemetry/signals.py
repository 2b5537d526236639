"""What telemetry announces to the layers above it. Telemetry sits below scoring (pyproject.toml's
import contracts): it tells that a project's evidence changed, and scoring decides to re-evaluate
(readiness/scoring/requests.py)."""

from __future__ import annotations

from django.dispatch import Signal

# Sent with ``project_id`` inside the transaction that stored it: metric batches applied, a health
# check flipping up or down; or with ``project_ids`` for many projects at once (a pull cycle's stores).
# Receivers run in that transaction, so what they record commits with it. A sender that already
# recorded the project's evaluation request in its own write (a small push runs the projects layer's
# ``evaluation_flip_statement`` in its one statement) says so with ``evaluation_requested``: True when
# that flipped the flag (the evaluation is still to be queued), False when one was pending already.
project_evidence_changed = Signal()
