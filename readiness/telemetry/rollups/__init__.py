"""Rollups (PRODUCT.md §9): per closed minute and hour, the summary and quantile sketch of each series,
so windowed aggregations read ~850 rows instead of millions of raw points.

- ``sketch``: the mergeable quantile sketch;
- ``marks``: what every writer of raw points calls, so late points re-fold their minutes;
- ``fold``: the periodic job writing rollup rows; ``rollups_prune`` for retention;
- ``read``: the plan of a window (raw, minutes, hours) and the aggregation over it;
- ``selection``: a long window's exact percentiles, picked inside its merged sketch's buckets.
"""
