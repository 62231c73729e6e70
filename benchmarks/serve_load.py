"""Load on a running `mgcl serve`: N predict requests at concurrency C, latency and throughput.

    python benchmarks/serve_load.py --url http://127.0.0.1:8000 --model my_model \
        --files clips/*.wav --requests 200 --concurrency 8 --out results/serve_load_run.json

Each request uploads one file (request i sends file i mod the number of files) to
``POST /models/MODEL/predict``. Bounded: at most --requests requests and --max-seconds of
wall time; loopback URLs only (it is a load generator: never point it at another machine).
Writes JSON: completed requests, seconds, throughput (requests/s), latency p50/p95/p99/mean/max
(ms), counts per status, and the errors that matter: 5xx other than 503, 503s, other 4xx,
network errors. The token comes from --token or $MGCL_TOKEN.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx
import numpy as np

from mgcl.serve.config import is_loopback

MAX_REQUESTS = 100_000
MAX_CONCURRENCY = 256


def percentiles(values_ms: list[float]) -> dict:
    """p50 / p95 / p99 / mean / max of latencies in ms (None when empty)."""
    if not values_ms:
        return {"p50": None, "p95": None, "p99": None, "mean": None, "max": None}
    a = np.asarray(values_ms, dtype=float)
    return {
        "p50": round(float(np.percentile(a, 50)), 2),
        "p95": round(float(np.percentile(a, 95)), 2),
        "p99": round(float(np.percentile(a, 99)), 2),
        "mean": round(float(a.mean()), 2),
        "max": round(float(a.max()), 2),
    }


def check_url(url: str) -> str:
    host = urlparse(url).hostname or ""
    if not is_loopback(host):
        raise SystemExit(f"serve_load: --url must be a loopback address (127.0.0.1, ::1, localhost), got '{host}'")
    return url.rstrip("/")


def run_load(
    url: str,
    model: str,
    files: list[tuple[str, bytes]],
    requests: int,
    concurrency: int,
    max_seconds: float = 300.0,
    token: str | None = None,
    top_k: int = 1,
    timeout: float = 120.0,
) -> dict:
    """Send ``requests`` predict requests from ``concurrency`` threads; the summary document."""
    url = check_url(url)
    requests = max(0, min(int(requests), MAX_REQUESTS))
    concurrency = max(1, min(int(concurrency), MAX_CONCURRENCY, max(1, requests)))
    if not files:
        raise ValueError("no files to send")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    target = f"{url}/models/{model}/predict?top_k={int(top_k)}"
    lock = threading.Lock()
    state = {"next": 0}
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    deadline = time.monotonic() + float(max_seconds)

    def take() -> int | None:
        with lock:
            i = state["next"]
            if i >= requests or time.monotonic() > deadline:
                return None
            state["next"] = i + 1
            return i

    def worker() -> None:
        with httpx.Client(timeout=timeout, headers=headers) as client:
            while (i := take()) is not None:
                name, data = files[i % len(files)]
                t0 = time.perf_counter()
                try:
                    r = client.post(target, files={"files": (name, data, "application/octet-stream")})
                    key = str(r.status_code)
                except httpx.HTTPError as exc:
                    key = f"network:{type(exc).__name__}"
                dt = (time.perf_counter() - t0) * 1000
                with lock:
                    statuses[key] = statuses.get(key, 0) + 1
                    if key == "200":
                        latencies.append(dt)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    done = sum(statuses.values())
    ok = statuses.get("200", 0)
    return {
        "url": url,
        "model": model,
        "requests": requests,
        "completed": done,
        "ok": ok,
        "concurrency": concurrency,
        "distinct_files": len(files),
        "seconds": round(seconds, 3),
        "throughput_rps": round(ok / seconds, 3) if seconds > 0 else None,
        "latency_ms": percentiles(latencies),
        "status_counts": dict(sorted(statuses.items())),
        "errors": {
            "5xx_other_than_503": sum(n for k, n in statuses.items() if k.startswith("5") and k != "503"),
            "503": statuses.get("503", 0),
            "4xx": sum(n for k, n in statuses.items() if k.startswith("4")),
            "network": sum(n for k, n in statuses.items() if k.startswith("network")),
        },
        "stopped_by_time": done < requests,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True, help="base URL of the server (loopback only)")
    ap.add_argument("--model", required=True, help="served model name")
    ap.add_argument("--files", nargs="+", type=Path, required=True, help="audio files to send (cycled)")
    ap.add_argument("--requests", type=int, default=100, help=f"requests to send (at most {MAX_REQUESTS})")
    ap.add_argument("--concurrency", type=int, default=8, help=f"requests in flight (at most {MAX_CONCURRENCY})")
    ap.add_argument("--max-seconds", type=float, default=300.0, help="stop sending after this long (default 300)")
    ap.add_argument("--top-k", type=int, default=1)
    ap.add_argument("--token", default=os.environ.get("MGCL_TOKEN"))
    ap.add_argument("--out", type=Path, required=True, help="JSON to write")
    args = ap.parse_args(argv)
    files = [(p.name, p.read_bytes()) for p in args.files]
    doc = run_load(
        args.url, args.model, files, args.requests, args.concurrency, args.max_seconds, args.token, args.top_k
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    lat = doc["latency_ms"]
    print(
        f"{doc['ok']}/{doc['requests']} ok in {doc['seconds']} s: {doc['throughput_rps']} req/s, "
        f"p50 {lat['p50']} ms, p95 {lat['p95']} ms, p99 {lat['p99']} ms; errors {doc['errors']}"
    )
    return 0 if doc["errors"]["5xx_other_than_503"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
