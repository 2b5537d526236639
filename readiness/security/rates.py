"""Parsing a rate such as ``1200/m`` (requests per window), kept free of Django so settings import it."""

from __future__ import annotations

import re
from dataclasses import dataclass

WINDOWS = {"s": 1, "m": 60, "h": 3600}
RATE_RE = re.compile(r"\s*(\d+)\s*/\s*(\d*)\s*([smh])\s*")


@dataclass(frozen=True)
class Rate:
    requests: int
    seconds: int

    def __str__(self) -> str:
        return f"{self.requests} per {self.seconds} s"


def parse_rate(text: str) -> Rate | None:
    """``N/s``, ``N/m``, ``N/h`` or ``N/<k><unit>`` (``100/10s``); ``off`` disables (None).
    Raises ValueError with what was expected."""
    if text.strip().lower() == "off":
        return None
    match = RATE_RE.fullmatch(text)
    if match is None:
        raise ValueError(f"expected a rate like 1200/m, 20/s, 100/10s or off, got {text!r}")
    requests, multiple, unit = int(match[1]), int(match[2] or 1), match[3]
    if requests < 1 or multiple < 1:
        raise ValueError(f"a rate needs at least 1 request per at least 1 {unit}, got {text!r}")
    return Rate(requests=requests, seconds=multiple * WINDOWS[unit])
