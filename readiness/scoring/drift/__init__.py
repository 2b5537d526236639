"""Drift criteria (PRODUCT.md §1, §4): one package, one implementation, read by the evaluation and the
dashboard alike.

- ``stats``: the pure statistics (PSI on reference deciles, the KS p-value); numpy and scipy, no Django.
- ``models``: what the job stores — each run's ``DriftResult`` (bins included) and the cached
  ``DriftReference`` profile — and the fingerprints that tie a stored row to a criterion's definition.
- ``jobs``: the only writers — the periodic job, and ``drift_results_ensure``, which the evaluation
  service calls before it reads so that a criterion the job has not reached yet has a result.
- ``selectors``: reads that never write — the result an evaluation uses, and the result a stored
  scorecard used (what its drift chart draws).

Nothing is imported here: ``readiness.scoring.models`` loads ``drift.models`` while the app registry is
still filling, and ``jobs`` needs that registry complete.
"""
