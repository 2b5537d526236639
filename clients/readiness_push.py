#!/usr/bin/env python3
"""Push metrics to Readiness and ask its deploy gate, with nothing but the Python standard library.

    export READINESS_URL=https://readiness.example.com READINESS_TOKEN=rdy_...
    python readiness_push.py push latency_ms=182.5 accuracy=0.931 --label model_version=7
    python readiness_push.py push --file points.json          # {"points": [...]} or a list of points
    python readiness_push.py gate --target production         # exit 0 go, 1 no-go, 2 error

Or import it: ``from readiness_push import push, gate``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

EXIT_GO, EXIT_NO_GO, EXIT_ERROR = 0, 1, 2
BATCH = 10_000  # the API's limit of points per request


class ReadinessError(Exception):
    def __init__(self, status: int, body: dict[str, Any] | None, message: str) -> None:
        super().__init__(message)
        self.status, self.body = status, body


def _request(method: str, url: str, token: str, body: bytes | None = None, **headers: str) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, method=method)  # noqa: S310 -- the caller's URL
    request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Accept", "application/json")
    if body is not None:
        request.add_header("Content-Type", "application/json")
    for name, value in headers.items():
        request.add_header(name.replace("_", "-"), value)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        try:
            payload = json.loads(exc.read() or b"null")
        except ValueError:
            payload = None
        return exc.code, payload


def push(points: list[dict[str, Any]], *, url: str, token: str) -> list[str]:
    """Push points in batches of 10,000, each with its own Idempotency-Key so a retried request is
    never stored twice. Returns the batch ids; raises ReadinessError on a refusal."""
    batch_ids = []
    for start in range(0, len(points), BATCH):
        body = json.dumps({"points": points[start : start + BATCH]}, allow_nan=False).encode()
        key = str(uuid.uuid4())
        endpoint = f"{url.rstrip('/')}/api/v1/metrics"
        for attempt in range(3):
            # The same Idempotency-Key on every attempt: a retry after a lost answer stores nothing twice.
            status, payload = _request("POST", endpoint, token, body, Idempotency_Key=key)
            if status != 503:
                break
            time.sleep(2**attempt)
        if status != 202:
            message = (payload or {}).get("error", {}).get("message", f"HTTP {status}")
            raise ReadinessError(status, payload, message)
        batch_ids.append(payload["batch_id"])
    return batch_ids


def gate(project: str, *, url: str, token: str, target: str | None = None) -> tuple[bool, dict[str, Any]]:
    """Ask the deploy gate; returns (go, scorecard summary)."""
    query = f"?target={target}" if target else ""
    status, payload = _request("GET", f"{url.rstrip('/')}/api/v1/projects/{project}/gate{query}", token)
    if status in (200, 412):
        return status == 200, payload
    message = (payload or {}).get("error", {}).get("message", f"HTTP {status}")
    raise ReadinessError(status, payload, message)


def _parse_points(pairs: list[str], labels: dict[str, str]) -> list[dict[str, Any]]:
    points = []
    for pair in pairs:
        metric, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"expected METRIC=VALUE, got {pair!r}")
        point: dict[str, Any] = {"metric": metric, "value": float(value)}
        if labels:
            point["labels"] = labels
        points.append(point)
    return points


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Push metrics to Readiness and ask its deploy gate.")
    parser.add_argument("--url", default=os.environ.get("READINESS_URL", "http://127.0.0.1:8000"))
    parser.add_argument(
        "--token", default=os.environ.get("READINESS_TOKEN"), help="default: $READINESS_TOKEN"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    push_cmd = sub.add_parser("push", help="push points")
    push_cmd.add_argument("points", nargs="*", help="METRIC=VALUE pairs")
    push_cmd.add_argument("--label", action="append", default=[], help="KEY=VALUE label for every point")
    push_cmd.add_argument("--file", help='a JSON file: {"points": [...]} or a list of points')
    gate_cmd = sub.add_parser("gate", help="exit 0 when go, 1 when no-go, 2 on error")
    gate_cmd.add_argument("project", nargs="?", default=os.environ.get("READINESS_PROJECT"))
    gate_cmd.add_argument("--target", choices=["pilot", "production"])
    args = parser.parse_args(argv)
    if not args.token:
        print("error: no token (pass --token or set READINESS_TOKEN)", file=sys.stderr)
        return EXIT_ERROR
    try:
        if args.command == "push":
            labels = dict(label.split("=", 1) for label in args.label)
            points = _parse_points(args.points, labels)
            if args.file:
                with open(args.file, encoding="utf-8") as handle:
                    loaded = json.load(handle)
                points.extend(loaded["points"] if isinstance(loaded, dict) else loaded)
            if not points:
                print("error: nothing to push", file=sys.stderr)
                return EXIT_ERROR
            ids = push(points, url=args.url, token=args.token)
            print(f"accepted {len(points)} point(s) in {len(ids)} batch(es): {', '.join(ids)}")
            return 0
        if not args.project:
            print("error: name the project (or set READINESS_PROJECT)", file=sys.stderr)
            return EXIT_ERROR
        go, summary = gate(args.project, url=args.url, token=args.token, target=args.target)
        print(f"{summary['project']}: {summary['decision']} for {summary['target']}")
        for blocker in summary.get("blockers", []):
            where = "/".join(filter(None, [blocker.get("dimension"), blocker.get("criterion")])) or "project"
            print(f"  - {where}: {blocker['status']}: {blocker['reason']} (owner: {blocker.get('owner')})")
        return EXIT_GO if go else EXIT_NO_GO
    except ReadinessError as exc:
        print(f"error: HTTP {exc.status}: {exc}", file=sys.stderr)
        if exc.body and exc.body.get("error", {}).get("details"):
            print(json.dumps(exc.body["error"]["details"], indent=2), file=sys.stderr)
        return EXIT_ERROR
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
