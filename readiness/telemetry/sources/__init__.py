"""Pull sources (PRODUCT.md §8): clients that read metrics where ML teams already keep them.

- ``prometheus``: one PromQL expression over a range (``/api/v1/query_range``) → series of samples;
- ``mlflow``: a registered model's alias or version → its run → the latest value of each mapped metric;
- ``auth``: the request headers of a source's ``auth``, from the worker's environment;
- ``exchange``: the one bounded HTTP GET both clients make, and ``SourceError``.

Each client takes the caller's ``httpx.Client`` (its timeout, and the address rules its transport
enforces, are the caller's) and returns plain dataclasses: no ORM, no clock, no stored state.
"""
