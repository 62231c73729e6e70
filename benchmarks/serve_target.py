"""`mgcl serve` against `mgcl predict` on the same 4 s clips: does the service waste the CPU?

    python benchmarks/serve_target.py --out results/serve_load.json [--clips 64] [--repeats 2]

Real audio (UrbanSound8K fold 10 clips of 4.0 s from ../shared/data, or $MGCL_SHARED_DATA);
the aisfx backbone; a model (method mgcl, the service's default) fitted on 4 fold-1 clips of 5
classes and saved. Then, per repeat, each with a FRESH (cold) feature store, so every clip
goes through decode + the backbone:

* in process: ``mgcl.pipeline.predict`` on all clips at once (what `mgcl predict` runs, after
  its start-up and model load), clips/s;
* served: ``mgcl serve`` started as a subprocess on 127.0.0.1 (warmed with one other clip),
  then benchmarks/serve_load.py sends each clip once as its own request, concurrency 8:
  clips/s and latency p50/p95/p99.

The target: served >= 0.8 x in process (cold both). A second pass over the same clips (warm
store both: the store answers) is reported too; there the HTTP round trip dominates. Also the
wall time of the `mgcl predict` command itself (start-up included) on the same clips, cold.
Writes one JSON; run it under the exclusive CPU lock for numbers worth quoting.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import soundfile as sf

from mgcl.pipeline import fit_classifier, make_backbone, predict
from mgcl.util.threads import available_cpus

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("MGCL_SHARED_DATA", ROOT.parent / "shared" / "data")) / "urbansound8k-3folds"


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rows() -> list[dict]:
    manifest = DATA / "manifest.csv"
    if not manifest.is_file():
        raise SystemExit(f"serve_target: {manifest} not found (set MGCL_SHARED_DATA)")
    with open(manifest, newline="") as fh:
        return [{**r, "path": str(DATA / r["path"])} for r in csv.DictReader(fh)]


def four_second_clips(all_rows: list[dict], fold: str, n: int) -> list[str]:
    out = []
    for r in all_rows:
        if r["fold"] == fold and abs(sf.info(r["path"]).duration - 4.0) < 0.01:
            out.append(r["path"])
            if len(out) == n:
                break
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(models: Path, store: Path, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "mgcl.cli", "serve", "--models", str(models), "--store", str(store)]
    cmd += ["--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"serve_target: the server exited ({log.read_text()[-2000:]})")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("serve_target: the server did not start in 120 s")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--clips", type=int, default=64, help="4 s query clips (default 64)")
    ap.add_argument("--repeats", type=int, default=2, help="cold passes of each side (default 2)")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--support-store", type=Path, default=None, help="store for the support clips (default: tmp)")
    args = ap.parse_args(argv)
    sl = load_script("serve_load")
    all_rows = rows()
    queries = four_second_clips(all_rows, "10", args.clips + 1)
    warmup, queries = queries[0], queries[1:]
    classes = sorted({r["label"] for r in all_rows})[:5]
    support = [r for c in classes for r in [x for x in all_rows if x["fold"] == "1" and x["label"] == c][:4]]
    work = Path(tempfile.mkdtemp(prefix="serve-target-"))
    backbone = make_backbone("aisfx")
    t0 = time.perf_counter()
    report = fit_classifier(
        backbone,
        [r["path"] for r in support],
        [r["label"] for r in support],
        method="mgcl",
        store_dir=args.support_store or work / "support-store",
    )
    report.classifier.save(work / "models" / "us8k5")
    fit_s = time.perf_counter() - t0
    clf = report.classifier
    files = [(Path(p).name, Path(p).read_bytes()) for p in queries]

    passes = []
    for rep in range(args.repeats):
        # in process, cold then warm
        store = work / f"inproc-store-{rep}"
        t = time.perf_counter()
        out = predict(clf, queries, store, 16, 1)
        cold = time.perf_counter() - t
        assert not out.errors, out.errors
        t = time.perf_counter()
        predict(clf, queries, store, 16, 1)
        warm = time.perf_counter() - t
        # served, cold then warm
        proc, url = start_server(work / "models", work / f"served-store-{rep}", work / f"server-{rep}.log")
        try:
            r = httpx.post(
                f"{url}/models/us8k5/predict",
                files={"files": (Path(warmup).name, Path(warmup).read_bytes())},
                timeout=120,
            )
            r.raise_for_status()
            served_cold = sl.run_load(url, "us8k5", files, len(files), args.concurrency, max_seconds=600)
            pool = httpx.get(f"{url}/info", timeout=10).json()["pool"]  # after the cold pass
            served_warm = sl.run_load(url, "us8k5", files, len(files), args.concurrency, max_seconds=600)
        finally:
            proc.terminate()
            proc.wait(30)
        n = len(queries)
        passes.append(
            {
                "in_process": {"cold_clips_per_s": round(n / cold, 3), "warm_clips_per_s": round(n / warm, 3)},
                "served_cold": served_cold,
                "served_warm": served_warm,
                "ratio_cold": round(served_cold["throughput_rps"] / (n / cold), 3),
                "ratio_warm": round(served_warm["throughput_rps"] / (n / warm), 3),
                "served_batches_cold": pool,
            }
        )
        print(
            f"pass {rep + 1}: in process {n / cold:.2f} clips/s cold, {n / warm:.1f} warm; served "
            f"{served_cold['throughput_rps']:.2f} cold (p95 {served_cold['latency_ms']['p95']} ms), "
            f"{served_warm['throughput_rps']:.1f} warm; ratio cold {passes[-1]['ratio_cold']}",
            flush=True,
        )

    # the command itself, start-up and model load included, cold store
    t = time.perf_counter()
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "mgcl.cli",
            "-q",
            "predict",
            str(work / "models" / "us8k5"),
            *queries,
            "--store",
            str(work / "cli-store"),
            "--top-k",
            "1",
        ],
        capture_output=True,
        text=True,
    )
    cli_s = time.perf_counter() - t
    best = max(passes, key=lambda p: p["ratio_cold"])
    worst = min(passes, key=lambda p: p["ratio_cold"])
    doc = {
        "cpus": available_cpus(),
        "load_average_at_end": os.getloadavg(),
        "backbone": "aisfx",
        "method": "mgcl",
        "clips": len(queries),
        "clip_seconds": 4.0,
        "concurrency": args.concurrency,
        "fit_seconds": round(fit_s, 2),
        "passes": passes,
        "ratio_cold_min": worst["ratio_cold"],
        "ratio_cold_max": best["ratio_cold"],
        "p95_ms_cold": [p["served_cold"]["latency_ms"]["p95"] for p in passes],
        "errors_other_than_503": sum(
            p[k]["errors"]["5xx_other_than_503"] + p[k]["errors"]["network"] + p[k]["errors"]["4xx"]
            for p in passes
            for k in ("served_cold", "served_warm")
        ),
        "mgcl_predict_command": {
            "wall_seconds": round(cli_s, 2),
            "clips_per_s": round(len(queries) / cli_s, 3),
            "exit_status": cli.returncode,
            "stderr_tail": cli.stderr[-300:],
        },
        "target": "served cold throughput >= 0.8 x in-process pipeline.predict cold, zero errors other than 503",
    }
    doc["met"] = doc["ratio_cold_min"] >= 0.8 and doc["errors_other_than_503"] == 0
    shutil.rmtree(work, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps({k: doc[k] for k in ("ratio_cold_min", "ratio_cold_max", "p95_ms_cold", "met")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
