"""Probe-cycle benchmark (issue 4: "a probe cycle over 1,000 targets ... ≤ 10 s").

A local asyncio HTTP server, in its own process so it does not share the prober's core, answers each
request after 200 ms; 5% of the targets (every 20th) are accepted and never answered, so their probes
time out at 2 s. The cycle is ``probe_all`` as a health-check cycle runs it (same client, same
concurrency bound, the default deny list), without the database: what is measured is the probing.

    python bench/probes.py [--targets 1000] [--small 100] [--concurrency 100]

Prints the cycle time for both sizes and their ratio; exits non-zero when the large cycle exceeds 10 s
or any probe ends other than expected (fast targets up, silent ones "no answer within 2 s").
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import subprocess
import sys
import time
from ipaddress import ip_network
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from readiness.telemetry.probes import ProbeResult, ProbeTarget, probe_all  # noqa: E402

ANSWER_AFTER = 0.2  # seconds before the server answers a normal target
TIMEOUT = 2.0  # every target's probe timeout
SILENT_EVERY = 20  # 5% of targets never answer
MAX_CYCLE_SECONDS = 10.0  # required for 1,000 targets
DENY = [ip_network("169.254.0.0/16"), ip_network("fe80::/10")]


# --- the test server (runs in a child process: python bench/probes.py --serve) ----------------


async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        path = head.split(b" ", 2)[1]
        if path.startswith(b"/silent/"):
            # Accept and hold: read until the prober gives up and closes.
            await reader.read()
            return
        await asyncio.sleep(ANSWER_AFTER)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def serve() -> None:
    # A deep backlog: 100 probes connect at once, more when a round of them ends together.
    server = await asyncio.start_server(answer, "127.0.0.1", 0, backlog=4096)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


# --- the prober -------------------------------------------------------------------------------


def targets(count: int, port: int) -> list[ProbeTarget]:
    return [
        ProbeTarget(
            name=f"t{n}",
            url=f"http://127.0.0.1:{port}/{'silent' if n % SILENT_EVERY == 0 else 'ok'}/{n}",
            timeout=TIMEOUT,
        )
        for n in range(count)
    ]


def cycle(count: int, port: int, concurrency: int) -> tuple[float, list[str]]:
    """Time one cycle; return the seconds and what went unexpectedly."""
    batch = targets(count, port)
    started = time.perf_counter()
    results: list[ProbeResult] = asyncio.run(probe_all(batch, concurrency=concurrency, deny=DENY))
    seconds = time.perf_counter() - started
    problems = []
    for n, result in enumerate(results):
        silent = n % SILENT_EVERY == 0
        expected = (False, f"no answer within {TIMEOUT:g} s") if silent else (True, "")
        if (result.up, result.reason) != expected:
            problems.append(f"target {n}: up={result.up} reason={result.reason!r}")
    return seconds, problems


def floor(count: int, concurrency: int) -> float:
    """The cycle if probing cost nothing but the waiting: the same targets, in the same order, through
    the same number of slots (a silent target taking a slot late sets the end)."""
    slots = [0.0] * concurrency
    end = 0.0
    for n in range(count):
        start = heapq.heappop(slots)
        done = start + (TIMEOUT if n % SILENT_EVERY == 0 else ANSWER_AFTER)
        heapq.heappush(slots, done)
        end = max(end, done)
    return end


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=1000)
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=100, help="READINESS_PROBE_CONCURRENCY")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve())
        return 0

    server = subprocess.Popen([sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        cycle(10, port, args.concurrency)  # warm up: imports, the event loop's first sockets
        small, small_problems = cycle(args.small, port, args.concurrency)
        large, large_problems = cycle(args.targets, port, args.concurrency)
    finally:
        server.terminate()
        server.wait()

    print(f"probe cycle: {ANSWER_AFTER * 1000:.0f} ms answers, every {SILENT_EVERY}th target silent")
    print(f"(timeout {TIMEOUT:g} s), concurrency {args.concurrency}")
    for count, seconds in ((args.small, small), (args.targets, large)):
        bound = floor(count, args.concurrency)
        print(f"  {count:>5} targets: {seconds:6.2f} s   (waiting alone would take {bound:.2f} s)")
    print(
        f"  ratio {args.targets}/{args.small}: {large / small:.2f}  (targets x{args.targets / args.small:g})"
    )
    print(f"  required: {args.targets} targets <= {MAX_CYCLE_SECONDS:g} s")
    failed = False
    for problem in (small_problems + large_problems)[:10]:
        print(f"  UNEXPECTED {problem}")
        failed = True
    if large > MAX_CYCLE_SECONDS:
        print(f"  MISSED: {large:.2f} s > {MAX_CYCLE_SECONDS:g} s")
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
