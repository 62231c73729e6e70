"""``mgcl detect``: when does each class of a saved model sound in long recordings?"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

from mgcl.cli.common import (
    add_command,
    add_model_options,
    add_store,
    audio_inputs,
    load_model,
    path_or_uri,
    report_failures,
)
from mgcl.detection.detect import BACKGROUND_LABELS, DetectOptions
from mgcl.detection.events import render_csv, render_json
from mgcl.errors import MgclError
from mgcl.pipeline import detect_files
from mgcl.util.atomic import atomic_write_bytes

HELP = "find when the classes of a saved model sound in long recordings (events with onsets and offsets)"

DESCRIPTION = textwrap.fill(
    "Detect events of a model's classes in recordings of any length. The backbone runs once "
    "over each file, streamed (decoded and embedded a block at a time: a 2-hour file takes "
    "bounded memory); windows of its frames (--window seconds, one every --hop seconds) are "
    "scored by the model's few-shot method; the class curves are median-filtered "
    "(--median) and thresholded with hysteresis (an event starts above --threshold and "
    "lasts while its score stays above --low-ratio x threshold); events closer than "
    "--merge-gap are merged and those shorter than --min-duration dropped; with "
    "--split-longer, longer events are re-cut where their score stays above --split-ratio x "
    "their peak (several events joined over the background fall apart). Without "
    "--threshold, each class's threshold is chosen on the model's support clips: half-way "
    "between held-out clips of the class and of the other classes (0.5 when they are not at "
    "hand). A support class named 'background' (see --ignore) and the model's unknown label "
    "are never reported. Output: filename,onset,offset,event_label,score (the DCASE format) "
    "as .csv, or .json with the thresholds; without --out, tab-separated lines on stdout.",
    88,
)

EPILOG = """examples:
  mgcl detect my_model field_recording.wav --out events.csv
  mgcl detect my_model day1.flac day2.flac --hop 0.5 --min-duration 0.5 --out events.json
  mgcl detect my_model recording.wav --threshold 0.7
  mgcl detect my_model barks.wav --split-longer 2 --out events.csv     # barks last under 2 s
  mgcl detect my_model s3://bucket/site4/ --out events.csv              # URIs: streamed too

exit status: 0 written; 1 some files could not be read (the others are processed);
2 usage error, missing model."""

OUT_FORMATS = (".csv", ".json")


def register(sub) -> argparse.ArgumentParser:
    p = add_command(sub, "detect", run, HELP, DESCRIPTION, EPILOG)
    p.add_argument("model", type=Path, metavar="MODEL_DIR", help="folder written by `mgcl fit`")
    p.add_argument(
        "inputs",
        type=path_or_uri,
        nargs="+",
        metavar="FILE",
        help="recordings (or folders, manifests): local paths or URIs (s3://, gs://, file://: streamed)",
    )
    d = DetectOptions()
    p.add_argument(
        "--window", type=float, default=d.window, metavar="S", help=f"seconds per scored window (default {d.window})"
    )
    p.add_argument(
        "--hop", type=float, default=None, metavar="S", help="seconds between scores (default: one backbone frame)"
    )
    p.add_argument(
        "--median",
        type=float,
        default=d.median,
        metavar="S",
        help=f"median filter length in seconds (default {d.median}; 0: none)",
    )
    p.add_argument(
        "--threshold",
        type=float,
        default=None,
        metavar="T",
        help="high threshold (probability) for every class (default: chosen on the support)",
    )
    p.add_argument(
        "--low-ratio",
        type=float,
        default=d.low_ratio,
        metavar="R",
        help=f"low threshold = R x high (default {d.low_ratio})",
    )
    p.add_argument(
        "--merge-gap",
        type=float,
        default=d.merge_gap,
        metavar="S",
        help=f"merge events closer than S seconds (default {d.merge_gap})",
    )
    p.add_argument(
        "--min-duration",
        type=float,
        default=d.min_duration,
        metavar="S",
        help=f"drop events shorter than S seconds (default {d.min_duration})",
    )
    p.add_argument(
        "--split-longer",
        type=float,
        default=d.split_longer,
        metavar="S",
        help="re-cut events longer than S seconds where the score stays above --split-ratio x their peak "
        "(default: never; about 1-1.5 x the longest event you look for)",
    )
    p.add_argument(
        "--split-ratio",
        type=float,
        default=d.split_ratio,
        metavar="R",
        help=f"the fraction of an over-long event's peak its pieces keep (default {d.split_ratio})",
    )
    p.add_argument(
        "--pool",
        choices=("max", "mean"),
        default=d.pool,
        help=f"how a window's frames make its clip embedding (default {d.pool})",
    )
    p.add_argument(
        "--ignore",
        action="append",
        metavar="LABEL",
        help=f"a support class never reported as an event (repeatable; default {', '.join(BACKGROUND_LABELS)})",
    )
    p.add_argument("--out", type=Path, metavar="FILE", help="write the events to FILE (.csv or .json), atomically")
    add_model_options(p)
    add_store(p)
    return p


#: The options an events JSON records (the thresholds are recorded beside them).
OPTION_KEYS = ("window", "hop", "pool", "median", "merge_gap", "min_duration", "split_longer", "split_ratio")


def options_from(args) -> DetectOptions:
    return DetectOptions(
        window=args.window,
        hop=args.hop,
        pool=args.pool,
        median=args.median,
        merge_gap=args.merge_gap,
        min_duration=args.min_duration,
        threshold=args.threshold,
        low_ratio=args.low_ratio,
        split_longer=args.split_longer,
        split_ratio=args.split_ratio,
    ).check()


def run(args) -> int:
    if args.out is not None:
        if args.out.suffix.lower() not in OUT_FORMATS:
            raise MgclError(f"--out {args.out}: must end in {' or '.join(OUT_FORMATS)}")
        if args.out.is_dir():
            raise MgclError(f"--out {args.out}: is a folder (give a file name ending in .csv or .json)")
    options = options_from(args)
    paths = [str(p) for p in audio_inputs(args.inputs)]
    clf = load_model(args, store=args.store)
    ignore = tuple(args.ignore) if args.ignore else BACKGROUND_LABELS
    res = detect_files(clf, paths, options, args.store, args.batch_size, ignore)
    events = [e for d in res.detections for e in d.events]
    if args.out is not None:
        if args.out.suffix.lower() == ".json":
            extra = {
                "model": str(args.model),
                "classes": list(clf.classes_),
                "ignored": list(res.detections[0].ignored) if res.detections else list(ignore),
                "thresholds": {
                    "how": res.thresholds,
                    "high": {c: round(float(h), 4) for c, h in zip(clf.classes_, res.detections[0].high)}
                    if res.detections
                    else {},
                    "low_ratio": options.low_ratio,
                },
                "options": {k: getattr(options, k) for k in OPTION_KEYS},
                "files": [{"filename": d.filename, "duration": round(d.curve.duration, 3)} for d in res.detections],
            }
            atomic_write_bytes(args.out, render_json(events, extra))
        else:
            atomic_write_bytes(args.out, render_csv(events))
        for d in res.detections:
            print(f"{d.filename}\t{d.curve.duration:.1f} s\t{len(d.events)} event(s)")
        print(f"thresholds: {res.thresholds}")
        print(f"written: {args.out} ({len(events)} event(s))")
    else:
        for e in events:
            print(f"{e.filename}\t{e.onset:.3f}\t{e.offset:.3f}\t{e.event_label}\t{e.score:.4f}")
    if res.errors:
        print(f"{len(res.errors)} of {len(paths)} file(s) could not be processed:", file=sys.stderr)
        report_failures(res.errors)
        return 1
    return 0
