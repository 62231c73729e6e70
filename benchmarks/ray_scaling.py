"""Ray engine scaling: the local engine, Ray with 1 worker and Ray with 2 workers, one run.

    python benchmarks/ray_scaling.py --backbone aisfx --n 400 --out results/ray_scaling.json

The same n real clips (UrbanSound8K fold 1 from ../shared/data, 4 s; synthetic 4 s clips when
absent), a fresh (cold) feature store for every engine so the backbone really runs, each
engine's whole embedding pass timed (hash, store look-up, decode, forward, store writes):

  local_1thread      the local engine with 1 torch thread: the compute of one Ray worker
  local_default      the local engine with torch's default threads (this machine's cores)
  ray_1worker        --engine ray --workers 1 --cpus-per-worker 1 (1 torch thread)
  ray_2workers       --engine ray --workers 2 --cpus-per-worker 1 (1 torch thread each)

The Ray instance (num_cpus = 2, bounded object store) is started once before the Ray runs and
its start-up is reported apart (a cluster is up before a job); each Ray run still pays for its
actors (process start, imports, backbone load). Ratios:

  ray1_overhead_pct   100 * (1 - ray_1worker / local_1thread clips/s)     (target <= 15)
  ray2_speedup        ray_2workers / ray_1worker clips/s                  (target >= 1.6 on 2 cores)

and the driver's own cost per computed clip (content hash of the file, reading a result row,
one atomic store write), measured on the same clips: with one writer, N machines of
``per_machine_clips_per_s`` each saturate the driver at N = driver_clips_per_s /
per_machine_clips_per_s. Every engine must give the local engine's features (max abs
difference reported; 0.0 = bit-identical).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

from mgcl.audio.decode import source_digest
from mgcl.backbones import get_backbone
from mgcl.data.manifest import read_manifest
from mgcl.engines import Engine, embed_with
from mgcl.engines.ray_engine import decode_row
from mgcl.store.features import FeatureStore, embed_sources
from mgcl.util.threads import torch_threads

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "urbansound8k-3folds" / "manifest.csv"


def pick_clips(n: int, workdir: Path) -> tuple[list[str], str]:
    """The first n clips of UrbanSound8K fold 1, else synthetic 4 s clips."""
    if SHARED.is_file():
        rows = [r for r in read_manifest(SHARED) if str(r.fold) == "1"][:n]
        return [str(r.path) for r in rows], f"urbansound8k-3folds fold 1 (first {len(rows)} clips)"
    from mgcl.data.synthetic import make_dataset

    manifest = make_dataset(workdir / "synthetic", n_per_class=max(1, -(-n // 10)), seed=0)
    return [str(r.path) for r in read_manifest(manifest)[:n]], "synthetic 4 s clips"


def max_diff(a, b) -> float:
    worst = 0.0
    for i in a.ok:
        (ca, fa), (cb, fb) = a.values[i], b.values[i]
        worst = max(worst, float((ca - cb).abs().max()), float((fa - fb).abs().max()))
    return worst


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", default="aisfx")
    ap.add_argument("--n", type=int, default=400, help="clips (default 400)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    load_start = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="mgcl-ray-bench-", dir="/tmp"))
    if not any(k in os.environ for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")):
        # token authentication as Ray 2.60 starts it, with a token of this run (not ~/.ray/auth_token);
        # Ray reads these when it is imported
        (tmp / "auth_token").write_text(secrets.token_hex(32))
        os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(tmp / "auth_token"))
    import ray

    try:
        paths, source = pick_clips(args.n, tmp)
        backbone = get_backbone(args.backbone)
        rates, runs = {}, {}

        def timed(name, fn):
            t0 = time.perf_counter()
            run = fn(FeatureStore(tmp / name, backbone.identity))
            seconds = time.perf_counter() - t0
            assert run.computed + len(run.errors) == len(paths), (name, run.computed, run.errors)
            rates[name] = {"seconds": round(seconds, 3), "clips_per_s": round(len(paths) / seconds, 3)}
            runs[name] = run
            print(f"{name}: {len(paths)} clips in {seconds:.1f} s ({len(paths) / seconds:.2f} clips/s)", flush=True)

        def local(threads):
            def go(store):
                with torch_threads(threads):
                    return embed_sources(backbone, paths, store=store, batch_size=args.batch_size)

            return go

        def on_ray(workers):
            engine = Engine("ray", workers=workers, cpus_per_worker=1)
            return lambda store: embed_with(engine, backbone, paths, store=store, batch_size=args.batch_size)

        with torch_threads(1):
            backbone.encode_audio([torch.zeros(44100).numpy()])  # warm-up
        default_threads = torch.get_num_threads()
        timed("local_1thread", local(1))
        timed("local_default", local(default_threads))
        t0 = time.perf_counter()
        ray.init(
            num_cpus=2,
            object_store_memory=256 * 2**20,
            include_dashboard=False,
            logging_level=logging.WARNING,
            _temp_dir=str(tmp / "ray"),
        )
        startup = time.perf_counter() - t0
        try:
            timed("ray_1worker", on_ray(1))
            timed("ray_2workers", on_ray(2))
        finally:
            ray.shutdown()
        ref = runs["local_1thread"]
        diffs = {k: max_diff(ref, r) for k, r in runs.items() if k != "local_1thread"}
        same_errors = all(r.errors == ref.errors for r in runs.values())
        t0 = time.perf_counter()
        keys = [source_digest(p) for p in paths]
        hash_s = time.perf_counter() - t0
        rows = [(c.numpy().tobytes(), f.numpy().tobytes(), f.shape[0]) for c, f in (ref.values[i] for i in ref.ok)]
        t0 = time.perf_counter()
        values = [decode_row(*r) for r in rows]
        row_s = time.perf_counter() - t0
        store = FeatureStore(tmp / "driver-store", backbone.identity)
        t0 = time.perf_counter()
        for i, v in zip(ref.ok, values):
            store.put(keys[i], *v)
        write_s = time.perf_counter() - t0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    n = len(paths)
    r = {k: v["clips_per_s"] for k, v in rates.items()}
    driver_ms = 1000 * (hash_s / n + (row_s + write_s) / max(1, len(ref.ok)))
    per_machine = r["ray_2workers"]
    out = {
        "backbone": args.backbone,
        "clips": n,
        "source": source,
        "batch_size": args.batch_size,
        "engines": rates,
        "ray_startup_seconds": round(startup, 3),
        "ray1_overhead_pct": round(100 * (1 - r["ray_1worker"] / r["local_1thread"]), 2),
        "ray1_vs_local_default_pct": round(100 * (1 - r["ray_1worker"] / r["local_default"]), 2),
        "ray2_speedup": round(r["ray_2workers"] / r["ray_1worker"], 3),
        "ray2_vs_local_default": round(r["ray_2workers"] / r["local_default"], 3),
        "max_abs_diff_vs_local": {k: float(v) for k, v in diffs.items()},
        "same_errors": same_errors,
        "driver": {
            "hash_ms_per_clip": round(1000 * hash_s / n, 3),
            "read_row_ms_per_clip": round(1000 * row_s / max(1, len(ref.ok)), 3),
            "store_write_ms_per_clip": round(1000 * write_s / max(1, len(ref.ok)), 3),
            "total_ms_per_clip": round(driver_ms, 3),
            "driver_clips_per_s": round(1000 / driver_ms, 1),
            "per_machine_clips_per_s": per_machine,
            "machines_until_the_writer_limits": round(1000 / driver_ms / per_machine, 1),
        },
        "targets": {"ray1_overhead_pct_max": 15.0, "ray2_speedup_min": 1.6},
        "default_torch_threads": default_threads,
        "load_average_start": [round(x, 2) for x in load_start],
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "ray": ray.__version__,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    d = out["driver"]
    print(
        f"{args.backbone}, {n} clips: local (1 thread) {r['local_1thread']:.2f} clips/s, local ({default_threads} "
        f"threads) {r['local_default']:.2f}, ray 1 worker {r['ray_1worker']:.2f} (overhead "
        f"{out['ray1_overhead_pct']} %), ray 2 workers {r['ray_2workers']:.2f} ({out['ray2_speedup']}x 1 worker); "
        f"driver {d['total_ms_per_clip']} ms/clip -> single writer limits at ~{d['machines_until_the_writer_limits']} "
        f"machines like this one; max diff {max(diffs.values()):.2g} -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
