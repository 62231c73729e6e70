"""``mgcl predict``: classify audio files, folders and manifests with a model saved by ``mgcl fit``."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import textwrap
from collections import Counter
from pathlib import Path

from mgcl.cli.common import (
    add_command,
    add_engine,
    add_model_options,
    add_store,
    audio_inputs,
    engine_of,
    load_model,
    path_or_uri,
    report_failures,
)
from mgcl.errors import MgclError
from mgcl.pipeline import predict
from mgcl.util.atomic import atomic_write_bytes

HELP = "classify audio files (or folders, manifests) with a model saved by `mgcl fit`"

DESCRIPTION = textwrap.fill(
    "Classify audio with a saved model. Each PATH is an audio file, a folder (its audio "
    "files, recursively, in natural order: clip2 before clip10) or a manifest .csv (the "
    "paths of its rows); they can be mixed, and each may be a URI (s3://..., file://...: "
    "read through pyarrow.fs, which comes with mgcl[ray]). Prints, per file, the predicted label, its "
    "probability and the top-k alternatives (tab-separated), or a JSON list with --json. "
    "--out FILE also writes the predictions to a .csv (columns file,label,probability,top_k; "
    'top_k as "label:p;label:p"), a .jsonl (one JSON object per file) or a .parquet (top_k a '
    "list of {label, probability}; needs pyarrow, which comes with mgcl[ray]) and prints a "
    "summary instead of one line per file. The model's backbone is rebuilt and must be the "
    "one it was fitted with. Files that cannot be decoded are listed on stderr (exit status "
    "1); the others are still classified. A model fitted with --reject labels a clip whose "
    "top probability is below its threshold as 'unknown' (its --unknown-label); probability "
    "and top_k still show the classes it was nearest to.",
    88,
)

EPILOG = """examples:
  mgcl predict my_model clip.wav
  mgcl predict my_model new_clips/ --out predictions.csv
  mgcl predict my_model clips/*.wav more.csv --top-k 3 --json"""

#: What --out can write, by suffix.
OUT_FORMATS = (".csv", ".jsonl", ".parquet")


def register(sub) -> argparse.ArgumentParser:
    p = add_command(sub, "predict", run, HELP, DESCRIPTION, EPILOG)
    p.add_argument("model", type=Path, metavar="MODEL_DIR", help="folder written by `mgcl fit`")
    p.add_argument(
        "inputs",
        type=path_or_uri,
        nargs="+",
        metavar="PATH",
        help="audio files, folders (searched recursively) and manifest .csv files to classify; "
        "local paths or URIs (s3://..., file://...: read through pyarrow.fs, docs/distributed.md)",
    )
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
    p.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help="also write the predictions to FILE: .csv (file,label,probability,top_k), .jsonl "
        "(one object per file: file, label, probability, top_k) or .parquet (the same columns, "
        "top_k a list of {label, probability}); written atomically, bad files left out",
    )
    add_model_options(p)
    add_store(p)
    add_engine(p)
    return p


def render_csv(records: list[dict]) -> bytes:
    """file,label,probability,top_k with top_k as ``label:p;label:p``."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["file", "label", "probability", "top_k"])
    for r in records:
        top = ";".join(f"{a['label']}:{a['score']:.6f}" for a in r["top_k"])
        w.writerow([r["path"], r["label"], f"{r['score']:.6f}", top])
    return buf.getvalue().encode("utf-8")


def render_jsonl(records: list[dict]) -> bytes:
    """One JSON object per line: file, label, probability, top_k [{label, probability}]."""
    lines = [
        json.dumps(
            {
                "file": r["path"],
                "label": r["label"],
                "probability": r["score"],
                "top_k": [{"label": a["label"], "probability": a["score"]} for a in r["top_k"]],
            },
            ensure_ascii=False,
        )
        for r in records
    ]
    return "".join(line + "\n" for line in lines).encode("utf-8")


def render_parquet(records: list[dict]) -> bytes:
    """A Parquet table: file, label, probability (float64), top_k (list of {label, probability})."""
    try:
        import pyarrow as pa  # noqa: PLC0415  (optional dependency)
        import pyarrow.parquet as pq  # noqa: PLC0415
    except ImportError:
        raise MgclError("--out *.parquet needs pyarrow: pip install pyarrow (it comes with 'mgcl[ray]')") from None
    table = pa.table(
        {
            "file": pa.array([r["path"] for r in records], pa.string()),
            "label": pa.array([r["label"] for r in records], pa.string()),
            "probability": pa.array([r["score"] for r in records], pa.float64()),
            "top_k": pa.array(
                [[{"label": a["label"], "probability": a["score"]} for a in r["top_k"]] for r in records],
                pa.list_(pa.struct([("label", pa.string()), ("probability", pa.float64())])),
            ),
        }
    )
    buf = pa.BufferOutputStream()
    pq.write_table(table, buf)
    return buf.getvalue().to_pybytes()


#: The writer of each --out suffix.
RENDER = {".csv": render_csv, ".jsonl": render_jsonl, ".parquet": render_parquet}


def run(args) -> int:
    engine = engine_of(args)
    if args.top_k < 1:
        raise MgclError(f"--top-k must be at least 1, got {args.top_k}")
    if args.out is not None:
        if args.out.suffix.lower() not in OUT_FORMATS:
            raise MgclError(f"--out {args.out}: must end in {' or '.join(OUT_FORMATS)}")
        if args.out.is_dir():
            raise MgclError(f"--out {args.out}: is a folder (give a file name ending in .csv, .jsonl or .parquet)")
        if args.out.suffix.lower() == ".parquet":
            render_parquet([])  # no pyarrow: fail before any work
    paths = [str(p) for p in audio_inputs(args.inputs)]
    clf = load_model(args)
    out = predict(clf, paths, args.store, args.batch_size, args.top_k, engine=engine)
    records = [
        {
            "path": paths[i],
            "label": label,
            "score": round(t[0][1], 6),
            "top_k": [{"label": lab, "score": round(p, 6)} for lab, p in t],
        }
        for i, t, label in zip(out.indices, out.top_k, out.labels)
    ]
    if args.out is not None:
        atomic_write_bytes(args.out, RENDER[args.out.suffix.lower()](records))
    if args.json:
        print(json.dumps(records, indent=2, ensure_ascii=False))
    elif args.out is not None:
        counts = Counter(r["label"] for r in records)
        print(
            f"classified {len(records)} of {len(paths)} file(s): "
            + (", ".join(f"{lab} {n}" for lab, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))) or "none")
        )
        print(f"written: {args.out} ({len(records)} row(s))")
    else:
        for r in records:
            alts = ", ".join(f"{a['label']} {a['score']:.3f}" for a in r["top_k"])
            print(f"{r['path']}\t{r['label']}\t{r['score']:.3f}" + (f"\t[{alts}]" if args.top_k > 1 else ""))
    if out.errors:
        print(f"{len(out.errors)} of {len(paths)} file(s) could not be classified:", file=sys.stderr)
        report_failures(out.errors)
        return 1
    return 0
