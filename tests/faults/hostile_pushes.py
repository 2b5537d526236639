"""The bodies a hostile or broken client can push, each at most 5 MiB, and how the memory a push
costs a gunicorn worker is measured.

The figure is the worker's resident memory (RSS): its peak during the push (the kernel's high-water
mark, VmHWM, reset just before with /proc/PID/clear_refs) minus what it held before. RSS is what the
machine gives the process, and what runs it out of memory. tracemalloc would overstate the JSON
parser: orjson reserves ~12 bytes of address space per byte of body for its parse tree, and touches
only what the document needs (a 5 MiB string: 65 MB reserved, 5 MB resident).
"""

from __future__ import annotations

import datetime as dt
import http.client
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from tests.servers import WebServer, wait_for

FIVE_MIB = 5 * 1024 * 1024
MEMORY_BOUND_MB = 50  # issue 10, item 3: any push of at most 5 MiB
WARM_UP = orjson.dumps({"points": [{"metric": "warm_up", "value": 1.0}]})


def _filled(prefix: bytes, item: bytes, suffix: bytes, size: int = FIVE_MIB - 64) -> bytes:
    count = (size - len(prefix) - len(suffix)) // (len(item) + 1)
    return prefix + b",".join([item] * count) + suffix


def _most_labels_in(size: int) -> dict[str, str]:
    labels: dict[str, str] = {}
    while len(orjson.dumps({"metric": "m", "value": 1, "labels": labels})) + 14 < size:
        labels[f"k{len(labels)}"] = "v"
    return labels


def hostile_bodies(now: dt.datetime) -> dict[str, bytes]:
    """Name -> body: the issue's case, the shapes a JSON parser suffers most from, and the largest
    valid batch (which must fit the same bound)."""
    ts = now.isoformat()
    full = {f"label_{i}": "x" * 30 for i in range(10)}
    return {
        "one point, 150,000 labels": orjson.dumps(
            {"points": [{"metric": "m", "value": 1, "labels": {f"k{i}": "" for i in range(150_000)}}]}
        ),
        "10,000 points, 50 labels each": orjson.dumps(
            {"points": [{"metric": "m", "value": 1, "labels": _most_labels_in(524)}] * 10_000}
        ),
        "10,000 points, 60 unknown fields each": orjson.dumps(
            {"points": [{"metric": "m", "value": 1, **{f"u{i}": 0 for i in range(60)}}] * 10_000}
        ),
        "points: [{}, {}, ...]": _filled(b'{"points":[', b"{}", b"]}"),
        "points: [0, 0, ...]": _filled(b'{"points":[', b"0", b"]}"),
        'points: ["a", "a", ...]': _filled(b'{"points":[', b'"a"', b"]}"),
        "points: [[[...500 deep...]]], ...": _filled(b'{"points":[', b"[" * 500 + b"]" * 500, b"]}"),
        "[0, 0, ...] (not an object)": _filled(b"[", b"0", b"]"),
        "one 5 MiB string": b'{"points":[{"metric":"' + b"a" * (FIVE_MIB - 64) + b'","value":1}]}',
        "430,000 unknown fields of the body": (
            b"{" + b",".join(b'"%07d":0' % i for i in range(430_000)) + b',"points":[]}'
        ),
        "190,000 distinct strings (parsed whole)": (
            b'{"points":[' + b",".join(b'"%024d"' % i for i in range(190_000)) + b"]}"
        ),
        "valid: 10,000 points, 10 labels each": orjson.dumps(
            {"points": [{"metric": "latency_ms", "value": 1.5, "ts": ts, "labels": full}] * 10_000}
        ),
    }


@dataclass(frozen=True)
class PushCost:
    status: int
    answer: dict[str, object]
    peak_mb: float
    seconds: float


class MeasuredWorker:
    """The one worker of a ``--workers 1`` gunicorn; replaced after each measured push, so every
    push is measured on a fresh worker that no earlier push left with memory to reuse."""

    def __init__(self, server: WebServer, secret: str) -> None:
        self.server = server
        self.headers = {"Content-Type": "application/json", "Authorization": f"Bearer {secret}"}

    def push(self, body: bytes) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=120)
        try:
            conn.request("POST", "/api/v1/metrics", body=body, headers=self.headers)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def pid(self) -> int:
        assert self.server.process is not None
        master = self.server.process.pid
        found: list[int] = []

        def one_worker() -> bool:
            found[:] = [int(p) for p in Path(f"/proc/{master}/task/{master}/children").read_text().split()]
            return len(found) == 1

        assert wait_for(one_worker, timeout=60), f"gunicorn has workers {found}"
        return found[0]

    def cost(self, body: bytes) -> PushCost:
        pid = self.pid()
        status, _ = self.push(WARM_UP)  # imports, connections and caches: not the push's own cost
        assert status == 202, status
        before = _status_bytes(pid, "VmRSS")
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # 5: reset the peak (VmHWM) to the current RSS
        started = time.perf_counter()
        status, raw = self.push(body)
        seconds = time.perf_counter() - started
        peak = _status_bytes(pid, "VmHWM") - before
        os.kill(pid, signal.SIGTERM)  # our own gunicorn's worker; its master starts a fresh one
        assert wait_for(lambda: self.pid() != pid, timeout=60)
        return PushCost(status, orjson.loads(raw), peak / 1e6, seconds)


def _status_bytes(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise LookupError(field)
