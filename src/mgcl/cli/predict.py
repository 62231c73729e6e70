"""``mgcl predict``: classify audio files with a model saved by ``mgcl fit``."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path

from mgcl.cli.common import add_command, add_model_options, add_store, load_model, report_failures
from mgcl.errors import MgclError
from mgcl.pipeline import predict

HELP = "classify audio files with a model saved by `mgcl fit`"

DESCRIPTION = textwrap.fill(
    "Classify audio files with a saved model: prints, per file, the predicted label, its "
    "probability and the top-k alternatives (tab-separated), or a JSON list with --json. "
    "The model's backbone is rebuilt and must be the one it was fitted with. Files that "
    "cannot be decoded are listed on stderr (exit status 1); the others are still classified.",
    88,
)

EPILOG = "example: mgcl predict my_model clips/*.wav --top-k 3 --json"


def register(sub) -> argparse.ArgumentParser:
    p = add_command(sub, "predict", run, HELP, DESCRIPTION, EPILOG)
    p.add_argument("model", type=Path, metavar="MODEL_DIR", help="folder written by `mgcl fit`")
    p.add_argument("files", type=Path, nargs="+", metavar="FILE", help="audio files to classify")
    p.add_argument(
        "--top-k",
        type=int,
        default=3,
        help="how many most probable classes to show per file (default 3, at most the number of classes)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help='print a JSON list of {"path", "label", "score", "top_k": [{"label", "score"}]}',
    )
    add_model_options(p)
    add_store(p)
    return p


def run(args) -> int:
    if args.top_k < 1:
        raise MgclError(f"--top-k must be at least 1, got {args.top_k}")
    clf = load_model(args)
    paths = [str(p) for p in args.files]
    out = predict(clf, paths, args.store, args.batch_size, args.top_k)
    records = [
        {
            "path": paths[i],
            "label": t[0][0],
            "score": round(t[0][1], 6),
            "top_k": [{"label": lab, "score": round(p, 6)} for lab, p in t],
        }
        for i, t in zip(out.indices, out.top_k)
    ]
    if args.json:
        print(json.dumps(records, indent=2, ensure_ascii=False))
    else:
        for r in records:
            alts = ", ".join(f"{a['label']} {a['score']:.3f}" for a in r["top_k"])
            print(f"{r['path']}\t{r['label']}\t{r['score']:.3f}" + (f"\t[{alts}]" if args.top_k > 1 else ""))
    if out.errors:
        print(f"{len(out.errors)} of {len(paths)} file(s) could not be classified:", file=sys.stderr)
        report_failures(out.errors)
        return 1
    return 0
