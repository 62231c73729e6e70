"""The detection benchmark's protocol choices, made on development soundscapes (never fold 10).

Soundscapes of UrbanSound8K **fold 1** (the 8 target classes of ``benchmarks/detection.sh``,
3 seeds: 24 recordings of 120 s) are scored once by the backbone; then every configuration of
the support construction runs on the same frames, for the baseline (prototype) and mgcl:

    grain      "event": one support clip per support span (its frames pooled);
               "window": one per query-sized window centred on each frame of a span
    negatives  the cap on background pieces per positive event (1, 2, 4, or every gap)

For each method the configuration with the best mean F1 over K = 1, 3, 5 is its choice;
``mgcl.detection.benchmark`` (``NEGATIVES_PER_POSITIVE``, ``support_grain``) holds those
choices, and ``benchmarks/detection.sh`` reports them on fold 10.

    python benchmarks/detection_dev.py [--fold 1] [--seeds 3] [--out results/detection_dev.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from mgcl.data.manifest import read_manifest
from mgcl.detection.benchmark import SoundscapeSpec, build_soundscapes, run_benchmark
from mgcl.detection.detect import DetectOptions
from mgcl.pipeline import make_backbone

TARGETS = ["car_horn", "children_playing", "dog_bark", "drilling", "gun_shot", "jackhammer", "siren", "street_music"]
METHODS = ("prototype", "mgcl")
CONFIGS = [("event", 2.0)] + [("window", c) for c in (1.0, 2.0, 4.0, None)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="../shared/data", help="the shared data folder")
    ap.add_argument("--fold", default="1")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--out", default="results/detection_dev.json")
    args = ap.parse_args()
    t0 = time.perf_counter()
    manifest = Path(args.data) / "urbansound8k-3folds" / "manifest.csv"
    rows = [r for r in read_manifest(manifest) if str(r.fold) == args.fold]
    backbone = make_backbone("aisfx")
    frames: dict = {}
    runs = []
    with tempfile.TemporaryDirectory(prefix="mgcl-dev-soundscapes-") as tmp:
        recs = build_soundscapes(rows, tmp, list(range(args.seeds)), SoundscapeSpec(), TARGETS)
        for grain, cap in CONFIGS:
            bench = run_benchmark(
                backbone,
                recs,
                (1, 3, 5),
                METHODS,
                DetectOptions(),
                frames_cache=frames,
                negatives_per_positive=dict.fromkeys(METHODS, cap),
                support_grain=grain,
            )
            for r in bench.doc["results"]:
                runs.append({"grain": grain, "negatives_per_positive": cap, **r})
            print(
                f"{grain:6s} negatives/positive {cap}: "
                + ", ".join(f"{r['method']} K={r['shots']} {r['f1_mean']:.2f}" for r in bench.doc["results"]),
                flush=True,
            )
    choice = {}
    for m in METHODS:
        score = {}
        for grain, cap in CONFIGS:
            f1 = [
                r["f1_mean"]
                for r in runs
                if r["method"] == m and r["grain"] == grain and r["negatives_per_positive"] == cap
            ]
            score[(grain, cap)] = float(np.mean(f1))
        best = max(score, key=score.get)
        choice[m] = {"grain": best[0], "negatives_per_positive": best[1], "mean_f1": round(score[best], 2)}
    doc = {
        "what": "detection protocol choices on development soundscapes (sed_eval F1 %, collar 200 ms)",
        "fold": args.fold,
        "seeds": args.seeds,
        "n_recordings": len(recs),
        "runs": runs,
        "choice": choice,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=2) + "\n")
    print("| grain | negatives/positive | method | 1-shot | 3-shot | 5-shot |\n|---|---|---|---:|---:|---:|")
    for grain, cap in CONFIGS:
        for m in METHODS:
            cells = [
                f"{r['f1_mean']:.2f} ± {r['f1_std']:.2f}"
                for r in runs
                if r["method"] == m and r["grain"] == grain and r["negatives_per_positive"] == cap
            ]
            print(f"| {grain} | {cap if cap is not None else 'all'} | {m} | " + " | ".join(cells) + " |")
    print("choice:", json.dumps(choice), f"({doc['seconds']} s)")


if __name__ == "__main__":
    main()
