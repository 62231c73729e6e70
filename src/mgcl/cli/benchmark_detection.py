"""``mgcl benchmark --protocol detection``: few-shot detection on soundscapes built from a
dataset's clips (:mod:`mgcl.detection.benchmark`), with results.json, results.md and a plot.

Kept beside :mod:`.benchmark` (which registers the options and hands the run over here)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from mgcl.cli.common import backbone_options, parse_shots, seconds, split_list
from mgcl.detection.benchmark import (
    DEFAULT_METHODS,
    SoundscapeSpec,
    build_soundscapes,
    markdown,
    run_benchmark,
    write_benchmark,
)
from mgcl.detection.detect import DetectOptions
from mgcl.errors import MgclError
from mgcl.pipeline import make_backbone

#: Support sizes (first K target events of each recording) when --shots is not given.
DEFAULT_SHOTS = (1, 3, 5)


def add_options(p: argparse.ArgumentParser) -> None:
    """The detection protocol's options (a group of the benchmark command)."""
    g = p.add_argument_group("--protocol detection")
    spec = SoundscapeSpec()
    g.add_argument(
        "--soundscapes",
        type=Path,
        metavar="DIR",
        help="where the recordings are written (default OUT/NAME/soundscapes)",
    )
    g.add_argument(
        "--duration", type=float, default=spec.duration, help=f"seconds per recording (default {spec.duration:g})"
    )
    g.add_argument(
        "--targets",
        metavar="C[,C]",
        help="target classes, one recording per class and seed (default: all event classes)",
    )
    g.add_argument(
        "--background-classes",
        default=",".join(spec.background_classes),
        metavar="C[,C]",
        help=f"classes whose clips make the background bed (default {','.join(spec.background_classes)})",
    )
    g.add_argument("--window", type=float, default=DetectOptions().window, metavar="S", help="scored window (seconds)")
    g.add_argument(
        "--forwarded", action="store_true", help="add the prototype on windows forwarded through the backbone (slow)"
    )


def run(args) -> int:
    t0 = time.perf_counter()
    shots = parse_shots(args.shots) if args.shots is not None else list(DEFAULT_SHOTS)
    methods = split_list(args.methods) if args.methods_given else list(DEFAULT_METHODS)
    if args.forwarded and "prototype_forwarded" not in methods:
        methods.insert(0, "prototype_forwarded")
    sources = args.resolve_sources()
    spec = SoundscapeSpec(duration=args.duration, background_classes=tuple(split_list(args.background_classes)))
    backbone = make_backbone(args.backbone, **backbone_options(args))
    options = DetectOptions(window=args.window).check()
    out = Path(args.out).expanduser()
    folds = split_list(args.test_folds) or None
    for source in sources:
        rows = [r for r in source.rows if folds is None or str(r.fold) in folds]
        if not rows:
            raise MgclError(f"{source.name}: no clip in folds {', '.join(folds or [])}")
        folder = out / source.name
        recs = build_soundscapes(
            rows,
            args.soundscapes or folder / "soundscapes",
            list(range(args.seeds)),
            spec,
            split_list(args.targets) or None,
        )
        print(
            f"{source.name}: {len(recs)} recordings of {spec.duration:g} s (folds {', '.join(folds or ['all'])})",
            file=sys.stderr,
        )
        bench = run_benchmark(backbone, recs, shots, methods, options, progress=lambda s: print(s, file=sys.stderr))
        bench.doc["dataset"] = f"{source.name} soundscapes" + (f" (folds {', '.join(folds)})" if folds else "")
        bench.doc["soundscapes"] = {
            **vars(spec),
            "seeds": args.seeds,
            "n_recordings": len(recs),
        }
        written = write_benchmark(bench, folder)
        print(f"\n{bench.doc['dataset']}, backbone {backbone.name}: first K target events are the support\n")
        print(markdown(bench.doc))
        print(f"wrote {', '.join(p.name for p in written.values())} in {folder}")
    print(f"total {seconds(time.perf_counter() - t0)}")
    return 0
