"""A sustained push load over real HTTP, and the ledger that proves what became of every point.

Each client pushes batches of distinct values: point ``i`` of batch ``n`` has the value
``n * BATCH_SPAN + i``, so a stored value names its batch and its place in it, and one query of the
stored values tells lost, duplicated and half-stored batches apart. A client retries a batch it got no
202 for with the same ``Idempotency-Key``, as a careful client does, so a push whose answer was lost
(the server stored it, the connection died) is stored once, not twice.
"""

from __future__ import annotations

import datetime as dt
import http.client
import itertools
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import orjson

from tests.servers import wait_for

BATCH_SPAN = 10_000  # more than any batch's size: a value's batch is value // BATCH_SPAN
# How long a client gives the server to answer: well above a healthy push (milliseconds) and below
# gunicorn's worker timeout, so a hang shows up here as a hang.
REQUEST_TIMEOUT = 30.0
# The server asks for Retry-After: 5; the test clients come back sooner, to keep pushing through the
# whole outage rather than sleep through it.
MAX_RETRY_WAIT = 1.0


@dataclass
class Batch:
    number: int
    size: int
    outcomes: list[str] = field(default_factory=list)  # "202", "503", or the error that ended it
    acknowledged: bool = False

    @property
    def values(self) -> list[float]:
        return [float(self.number * BATCH_SPAN + i) for i in range(self.size)]

    @property
    def ambiguous(self) -> bool:
        """An attempt ended with no answer: the server may have stored it (the 202 was lost)."""
        return any(outcome not in {"202", "503", "400", "409"} for outcome in self.outcomes)


@dataclass
class Figures:
    """What the clients sent and what the database holds, point by point."""

    batches: int = 0
    requests: int = 0
    points_pushed: int = 0
    points_acknowledged: int = 0
    sum_acknowledged: float = 0.0
    points_stored: int = 0
    sum_stored: float = 0.0
    lost: int = 0  # acknowledged points not stored
    duplicated: int = 0  # stored rows beyond the first for one (batch, point)
    half_stored_batches: int = 0  # batches stored in part
    stored_unacknowledged: int = 0  # points of never-acknowledged batches that were stored (whole)
    sum_stored_unacknowledged: float = 0.0
    refused_stored: int = 0  # points stored of batches only ever answered 503 ("nothing was stored")
    status_counts: dict[str, int] = field(default_factory=dict)
    unexpected: list[str] = field(default_factory=list)  # answers other than 202 and 503
    retry_after_missing: int = 0
    max_latency: float = 0.0
    slow_answers: int = 0
    extra: dict[str, object] = field(default_factory=dict)

    def line(self, name: str) -> str:
        statuses = ", ".join(f"{code}: {n}" for code, n in sorted(self.status_counts.items()))
        extra = "".join(f", {key} {value}" for key, value in self.extra.items())
        return (
            f"{name}: {self.batches} batches in {self.requests} requests ({statuses}); points pushed "
            f"{self.points_pushed}, acknowledged {self.points_acknowledged}, stored {self.points_stored}, "
            f"lost {self.lost}, duplicated {self.duplicated}, half-stored batches "
            f"{self.half_stored_batches}, stored without a 202 {self.stored_unacknowledged}; "
            f"slowest answer {self.max_latency:.2f} s ({self.slow_answers} over 1 s){extra}"
        )


class PushLoad:
    """``clients`` threads pushing ``size``-point batches to the server on ``port`` until stopped."""

    def __init__(
        self, *, port: int, secret: str, clients: int = 4, size: int = 500, pause: float = 0.0
    ) -> None:
        self.port, self.secret, self.clients, self.size = port, secret, clients, size
        self.pause = pause  # between a client's batches: paces the load below saturating the machine
        self.batches: list[Batch] = []
        self.statuses: Counter[str] = Counter()
        self.unexpected: list[str] = []
        self.retry_after_missing = 0
        self.max_latency = 0.0
        self.slow_answers = 0  # over a second
        self.lock = threading.Lock()
        self.numbers = itertools.count(1)
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._client, daemon=True) for _ in range(clients)]
        self.give_up_at = float("inf")

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def acknowledged_points(self) -> int:
        with self.lock:
            return sum(b.size for b in self.batches if b.acknowledged)

    def acknowledged_batches(self) -> int:
        with self.lock:
            return sum(b.acknowledged for b in self.batches)

    def status_count(self, status: str) -> int:
        with self.lock:
            return self.statuses[status]

    def stop(self, *, grace: float = 60.0) -> None:
        """Let every client finish (and retry until acknowledged, for at most ``grace`` seconds) the
        batch it is on, then return."""
        self.give_up_at = time.monotonic() + grace
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=grace + REQUEST_TIMEOUT + 5)
            assert not thread.is_alive(), "a push client is stuck"

    def _client(self) -> None:
        while not self.stopping.is_set():
            batch = Batch(number=next(self.numbers), size=self.size)
            with self.lock:
                self.batches.append(batch)
            body = self._body(batch)
            while not batch.acknowledged and time.monotonic() < self.give_up_at:
                wait = self._attempt(batch, body)
                if wait is None:
                    break
                time.sleep(wait)
            if self.pause:
                time.sleep(self.pause)

    def _body(self, batch: Batch) -> bytes:
        ts = dt.datetime.now(dt.UTC).isoformat()
        return orjson.dumps({"points": [{"metric": "load", "value": v, "ts": ts} for v in batch.values]})

    def _attempt(self, batch: Batch, body: bytes) -> float | None:
        """One POST of the batch; returns how long to wait before the next attempt (None: give up)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT)
        started = time.monotonic()
        try:
            conn.request(
                "POST",
                "/api/v1/metrics",
                body=body,
                headers={
                    "Authorization": f"Bearer {self.secret}",
                    "Content-Type": "application/json",
                    "Idempotency-Key": f"load-{batch.number}",
                },
            )
            response = conn.getresponse()
            payload = response.read()
            outcome, retry_after = str(response.status), response.getheader("Retry-After")
        except (OSError, http.client.HTTPException) as exc:
            outcome, payload, retry_after = type(exc).__name__, b"", None
        finally:
            conn.close()
        latency = time.monotonic() - started
        with self.lock:
            self.statuses[outcome] += 1
            self.max_latency = max(self.max_latency, latency)
            self.slow_answers += latency > 1.0
            batch.outcomes.append(outcome)
            if outcome == "202":
                answer = orjson.loads(payload)
                if answer.get("accepted") != batch.size:
                    self.unexpected.append(f"202 accepting {answer.get('accepted')} of {batch.size}")
                batch.acknowledged = True
                return 0.0
            if outcome == "503":
                if retry_after is not None and retry_after.isdigit() and int(retry_after) > 0:
                    return min(float(retry_after), MAX_RETRY_WAIT)
                self.retry_after_missing += 1
                return MAX_RETRY_WAIT
            # Anything else fails the test; an HTTP answer other than 202 or 503 will not change on a
            # retry of the same body, so the client moves on to its next batch.
            self.unexpected.append(f"{outcome}: {payload[:200]!r}")
            if outcome.isdigit():
                return None
        return 0.5  # no answer at all (connection refused or reset): retry after a breath

    def ledger(self, stored_values: list[float], *, db_count: int, db_sum: float) -> Figures:
        """Compare what the database holds (every stored value, and its own count and sum) with what
        the clients were told."""
        stored = Counter(stored_values)
        per_batch: Counter[int] = Counter()
        for value in stored:
            per_batch[int(value) // BATCH_SPAN] += 1
        figures = Figures(
            batches=len(self.batches),
            requests=sum(self.statuses.values()),
            status_counts=dict(self.statuses),
            unexpected=list(self.unexpected),
            retry_after_missing=self.retry_after_missing,
            max_latency=self.max_latency,
            slow_answers=self.slow_answers,
            points_stored=db_count,
            sum_stored=db_sum,
            duplicated=sum(n - 1 for n in stored.values()),
        )
        for batch in self.batches:
            figures.points_pushed += batch.size
            held = per_batch.pop(batch.number, 0)
            if 0 < held < batch.size:
                figures.half_stored_batches += 1
            if batch.acknowledged:
                figures.points_acknowledged += batch.size
                figures.sum_acknowledged += sum(batch.values)
                figures.lost += batch.size - held
            elif held:
                figures.stored_unacknowledged += held
                figures.sum_stored_unacknowledged += sum(batch.values)
                if not batch.ambiguous:
                    figures.refused_stored += held
        # Values no client ever sent cannot be accounted for: count them as duplicates of nothing.
        figures.duplicated += sum(per_batch.values())
        return figures

    def assert_exactly_once(self, figures: Figures) -> None:
        assert figures.unexpected == [], figures.unexpected[:5]
        assert figures.retry_after_missing == 0
        assert figures.lost == 0
        assert figures.duplicated == 0
        assert figures.half_stored_batches == 0
        assert figures.refused_stored == 0, "a 503 said nothing was stored, yet points were"
        assert figures.points_acknowledged > 0
        assert figures.points_stored == figures.points_acknowledged + figures.stored_unacknowledged
        # Whole numbers, and sums well under 2**53: the float sums are exact on both sides.
        assert figures.sum_stored == figures.sum_acknowledged + figures.sum_stored_unacknowledged


# Each phase lasts at least this long and sees at least this many batches acknowledged, whichever is
# later, so a slow machine stretches the phases instead of failing them.
PHASE_SECONDS = 5.0
PHASE_BATCHES = 20


def run_phase(load: PushLoad, *, seconds: float = PHASE_SECONDS, batches: int = PHASE_BATCHES) -> int:
    """Let the load run for a phase; returns the points acknowledged during it."""
    started, before, points = time.monotonic(), load.acknowledged_batches(), load.acknowledged_points()
    assert wait_for(
        lambda: time.monotonic() - started >= seconds and load.acknowledged_batches() - before >= batches,
        timeout=120,
    ), f"the load stalled: {load.acknowledged_batches() - before} batches acknowledged in the phase"
    return load.acknowledged_points() - points
