"""Fit / predict speed of the methods on cached features (no backbone involved).

    python benchmarks/fit_speed.py --out fit_speed.json

Synthetic L2-normalised features with class structure: C classes x K shots of support,
Q queries, T frames per clip, D dims (defaults 50 x 16, 2000, 32, 512 — an ESC-50-sized
problem). Times `fit` and `predict` of each method and, as the in-run baseline, the
prototype classifier. A method that learns from audio views (mgcl, mgcl_f) gets ``--views`` views
per support clip (default 3, as many as its default ``augment``; synthetic: the clip plus
noise), as ``mgcl fit`` would give it. Targets (2 CPU cores): mgcl fit + predict <= 2 s,
mgcl_f fit <= 60 s.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

from mgcl.methods import make_method
from mgcl.types import AudioFeatures, SupportViews, l2_normalize

FRAME_STEP = 8 * 1024 / 44100  # seconds per frame, as aisfx's (T=32 frames: a ~6 s clip)


def synthetic(
    centres: torch.Tensor, per_class: int, t: int, gen: torch.Generator
) -> tuple[AudioFeatures, torch.Tensor]:
    """Clips = class centre + noise; frames = clip + per-frame noise, random real lengths."""
    c, d = centres.shape
    labels = torch.arange(c).repeat_interleave(per_class)
    clip = l2_normalize(centres[labels] + 1.5 * torch.randn(len(labels), d, generator=gen))
    frames = l2_normalize(clip[:, None] + 0.1 * torch.randn(len(labels), t, d, generator=gen))
    lengths = torch.randint(t // 2, t + 1, (len(labels),), generator=gen)
    mask = torch.arange(t)[None] < lengths[:, None]
    return AudioFeatures(clip, frames * mask.unsqueeze(-1), mask, FRAME_STEP), labels


def views_of(support: AudioFeatures, per_clip: int, gen: torch.Generator) -> SupportViews:
    """``per_clip`` views of every support clip: the unit clip (and its frames) plus noise of
    norm ~0.3, with the clip's real frames.  source (N * per_clip,) = the clip each view was
    made from."""
    source = torch.arange(len(support)).repeat(per_clip)
    sigma = 0.3 / support.dim**0.5
    clip = l2_normalize(support.clip[source] + sigma * torch.randn(len(source), support.dim, generator=gen))
    mask = support.frame_mask[source]
    frames = support.frames[source]
    frames = l2_normalize(frames + sigma * torch.randn(frames.shape, generator=gen))
    return SupportViews(AudioFeatures(clip, frames * mask.unsqueeze(-1), mask, FRAME_STEP), source)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--classes", type=int, default=50)
    ap.add_argument("--shots", type=int, default=16)
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--views", type=int, default=3, help="audio views per support clip (default 3)")
    ap.add_argument("--methods", default="prototype,linear_probe,tip_adapter,tip_adapter_f,mgcl,mgcl_f")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)

    gen = torch.Generator().manual_seed(0)
    centres = torch.randn(args.classes, args.dim, generator=gen)
    support, ys = synthetic(centres, args.shots, args.frames, gen)
    query, yq = synthetic(centres, -(-args.queries // args.classes), args.frames, gen)
    query, yq = query[torch.arange(args.queries)], yq[: args.queries]
    views = views_of(support, args.views, gen) if args.views else None

    rows = {}
    for name in args.methods.split(","):
        m = make_method(name)
        t0 = time.perf_counter()
        m.fit(support, ys, n_classes=args.classes, views=views if m.view_names() else None)
        t1 = time.perf_counter()
        pred = m.predict(query)
        t2 = time.perf_counter()
        rows[name] = {
            "fit_seconds": round(t1 - t0, 3),
            "predict_seconds": round(t2 - t1, 3),
            "fit_plus_predict_seconds": round(t2 - t0, 3),
            "accuracy": round(100 * float((pred == yq).float().mean()), 2),
            "views": len(views) if views is not None and m.view_names() else 0,
        }
        print(f"{name:14s} fit {t1 - t0:7.2f} s  predict {t2 - t1:6.2f} s  acc {rows[name]['accuracy']:.1f}")
    out = {
        "problem": {k: getattr(args, k) for k in ("classes", "shots", "queries", "frames", "dim", "views")},
        "methods": rows,
        "targets": {"mgcl_fit_plus_predict_max_s": 2.0, "mgcl_f_fit_max_s": 60.0},
        "baseline": "prototype (same run)",
        "torch_threads": torch.get_num_threads(),
        "machine": platform.platform(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
    }
    if "mgcl" in rows and "prototype" in rows:
        out["mgcl_vs_prototype_time_ratio"] = round(
            rows["mgcl"]["fit_plus_predict_seconds"] / max(rows["prototype"]["fit_plus_predict_seconds"], 1e-6), 1
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
