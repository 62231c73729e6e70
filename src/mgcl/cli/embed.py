"""``mgcl embed``: clip + frame embeddings of the files of a manifest, cached in the store."""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

from mgcl.cli.common import (
    add_backbone,
    add_command,
    add_engine,
    add_store,
    backbone_options,
    engine_of,
    path_or_uri,
    report_failures,
)
from mgcl.data.manifest import read_manifest
from mgcl.pipeline import embed, make_backbone

HELP = "compute and cache clip + frame embeddings for the files of a manifest"

DESCRIPTION = textwrap.fill(
    "Embed every file of a manifest (CSV with header path,label[,fold,split]; paths relative "
    "to the CSV's folder, absolute, or URIs such as s3://bucket/a.wav read through pyarrow.fs) "
    "and cache clip and frame embeddings in the store. "
    "Files already in the store cost no forward pass. Bad files are listed at the end "
    "(exit status 1); the good ones are still embedded.",
    88,
)

EPILOG = """examples:
  mgcl embed --manifest clips/manifest.csv --backbone aisfx
  mgcl embed --manifest archive/manifest.csv --engine ray --address auto --workers 8   (docs/distributed.md)
  mgcl embed --manifest s3://bucket/archive/manifest.csv --engine ray --address auto"""


def register(sub) -> argparse.ArgumentParser:
    p = add_command(sub, "embed", run, HELP, DESCRIPTION, EPILOG)
    p.add_argument(
        "--manifest",
        type=path_or_uri,
        required=True,
        help="manifest CSV; it and its paths may be URIs (s3://..., file://...: docs/distributed.md)",
    )
    add_backbone(p)
    add_store(p)
    add_engine(p)
    return p


def run(args) -> int:
    engine = engine_of(args)
    rows = read_manifest(args.manifest)
    backbone = make_backbone(args.backbone, **backbone_options(args))
    # only the store is wanted: the Ray engine then holds no features (archives of millions of clips)
    res = embed(backbone, [r.path for r in rows], args.store, args.batch_size, engine=engine, keep=False)
    rate = (res.computed / res.seconds) if res.seconds > 0 else float("inf")
    print(
        f"embedded {len(res.ok)}/{len(rows)} files with {backbone.name} in {res.seconds:.1f} s "
        f"({len(rows) / max(res.seconds, 1e-9):.1f} clips/s overall, {rate:.1f} clips/s computed)"
    )
    print(f"computed: {res.computed}, cache hits: {res.cache_hits}, failed: {len(res.errors)}")
    print(f"store: {Path(args.store).resolve()}")
    if res.errors:
        print(f"{len(res.errors)} file(s) could not be embedded:", file=sys.stderr)
        report_failures(res.errors)
        return 1
    return 0
