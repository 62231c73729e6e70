"""Synthetic check of the fine branch: does the fine cache beat the coarse cache on events
at a random onset inside background noise?

    python benchmarks/fine_vs_coarse.py --out results/fine_vs_coarse.json

For each clip length in ``--durations`` (default 4 s, the demo's, and 10 s, AudioSet's) it
writes the seeded synthetic set of ``mgcl.data.synthetic`` (10 classes, ``--n-per-class``
clips each; every clip holds one 0.5-2.5 s event at a random onset and SNR in coloured
noise, half of them a quieter distractor of another class), embeds it with aisfx through
the feature store (once; a re-run computes nothing), and for each K and seed draws K
support clips per class (the rest is the query) and fits training-free mgcl three ways:

    coarse   only the coarse cache   (branches=cc)
    fine     only the fine cache     (branches=fc, cc ablated; every support clip gets OT)
    mgcl     both, weights by support cross-validation (the default mgcl, audio-only)

Output: JSON with accuracy mean ± std over seeds per (duration, K, variant) and the paired
difference fine − coarse (mean ± std over seeds, and wins out of seeds). Nothing here is a
timed test; it takes ~2 min the first time (embedding), seconds afterwards.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

VARIANTS = {
    "coarse": {"branches": ("cc",)},
    "fine": {"branches": ("fc",), "ablate": ("cc",), "topk": 10**6},
    "mgcl": {"branches": ("cc", "fc")},
}


def run(durations, shots, seeds, n_per_class, workdir: Path, store: Path, batch_size: int) -> dict:
    from mgcl.backbones import get_backbone
    from mgcl.data.manifest import read_manifest
    from mgcl.data.synthetic import make_dataset
    from mgcl.evaluation.protocols import few_shot_split
    from mgcl.methods.base import encode_labels
    from mgcl.methods.mgcl.training_free import MGCL
    from mgcl.pipeline import embed

    backbone = get_backbone("aisfx")
    out = {}
    for duration in durations:
        manifest = make_dataset(
            workdir / f"synthetic-{duration:g}s-n{n_per_class}", n_per_class=n_per_class, duration=duration, seed=1
        )
        rows = read_manifest(manifest)
        res = embed(backbone, [r.path for r in rows], store, batch_size, desc=f"embedding {duration:g} s clips")
        if res.errors:
            for i, why in sorted(res.errors.items()):
                print(f"{rows[i].path}: {why}", file=sys.stderr)
            raise SystemExit(1)
        feats = res.stacked()
        y_np, classes = encode_labels([r.label for r in rows])
        y = torch.from_numpy(y_np)
        table = {}
        for k in shots:
            acc = {name: [] for name in VARIANTS}
            for seed in range(seeds):
                support, query = few_shot_split(y_np, k, seed, classes=classes)
                s, q = torch.from_numpy(support), torch.from_numpy(query)
                for name, params in VARIANTS.items():
                    m = MGCL(**params).fit(feats[s], y[s], n_classes=len(classes))
                    acc[name].append(100.0 * float((m.predict(feats[q]) == y[q]).float().mean()))
            diff = np.array(acc["fine"]) - np.array(acc["coarse"])
            table[str(k)] = {
                **{
                    name: {"mean": round(float(np.mean(v)), 2), "std": round(float(np.std(v)), 2), "runs": v}
                    for name, v in acc.items()
                },
                "fine_minus_coarse": {
                    "mean": round(float(diff.mean()), 2),
                    "std": round(float(diff.std()), 2),
                    "wins": int((diff > 0).sum()),
                    "seeds": seeds,
                },
            }
            print(
                f"{duration:4g} s  K={k:2d}  "
                + "  ".join(f"{name} {np.mean(v):5.1f} ± {np.std(v):4.1f}" for name, v in acc.items())
                + f"   fine - coarse {diff.mean():+5.1f} ± {diff.std():.1f} (wins {int((diff > 0).sum())}/{seeds})",
                flush=True,
            )
        out[f"{duration:g}s"] = {
            "clips": len(rows),
            "classes": len(classes),
            "frames_per_clip": float(feats.frame_mask.sum(1).float().mean()),
            "shots": table,
        }
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--durations", default="4,10", help="clip lengths in seconds (default 4,10)")
    ap.add_argument("--shots", default="1,2,4")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--n-per-class", type=int, default=20)
    ap.add_argument(
        "--workdir",
        type=Path,
        default=Path.home() / ".cache" / "mgcl" / "fine_vs_coarse",
        help="where the synthetic audio is written",
    )
    ap.add_argument("--store", type=Path, default=None, help="feature store (default: WORKDIR/features)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    results = run(
        [float(d) for d in args.durations.split(",")],
        [int(k) for k in args.shots.split(",")],
        args.seeds,
        args.n_per_class,
        args.workdir,
        args.store or args.workdir / "features",
        args.batch_size,
    )
    out = {
        "check": "fine cache vs coarse cache, training-free mgcl, synthetic events at random onsets",
        "variants": {k: {a: list(b) if isinstance(b, tuple) else b for a, b in v.items()} for k, v in VARIANTS.items()},
        "results": results,
        "seconds": round(time.perf_counter() - t0, 1),
        "machine": platform.platform(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
    }
    from mgcl.util.atomic import atomic_write_bytes

    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(args.out, json.dumps(out, indent=2).encode())
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
