"""``mgcl fit``: a few-shot classifier from a support manifest, saved as a folder."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import textwrap
from pathlib import Path

from mgcl.classifier.persistence import CONFIG_FILE, WEIGHTS_FILE
from mgcl.cli.common import (
    add_backbone,
    add_command,
    add_descriptions,
    add_param,
    add_store,
    backbone_options,
    machine_options,
    method_list,
    parse_params,
    report_failures,
    seconds,
)
from mgcl.data.manifest import read_manifest
from mgcl.errors import InputsFailed, MgclError
from mgcl.pipeline import fit_classifier, make_backbone

log = logging.getLogger(__name__)


HELP = "fit a few-shot classifier on a labelled support set and save it"

DESCRIPTION = textwrap.fill(
    "Fit a few-shot classifier on the clips of a support manifest (CSV with header "
    "path,label; a handful of clips per class is enough) and save it as a folder "
    "(config.json + weights.safetensors, no pickle) for `mgcl predict`. Embeddings are "
    "cached in the store, so refitting with another method costs no forward pass. "
    "Hyper-parameters are chosen by cross-validation inside the support set. "
    "mgcl and mgcl_f also learn from audio views of each support clip (background "
    "noise, low-pass, high-pass: 3 more backbone calls per clip, cached in the store; "
    "--param augment= for none). "
    "If any support file cannot be decoded, they are all listed and no model is written "
    "(exit status 1): a support set silently missing clips is worse than an error.",
    88,
)

EPILOG = "example: mgcl fit --manifest support.csv --method tip_adapter --out my_model"


def register(sub) -> argparse.ArgumentParser:
    p = add_command(sub, "fit", run, HELP, DESCRIPTION, EPILOG)
    p.add_argument("--manifest", type=Path, required=True, help="support manifest CSV (path,label)")
    add_backbone(p)
    p.add_argument("--method", default="mgcl_f", help=f"few-shot method (default mgcl_f). Choices: {method_list()}")
    add_param(p, prefixed=False)
    add_descriptions(p)
    add_store(p)
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="MODEL_DIR",
        help="folder to write the model to (created; existing model files replaced)",
    )
    return p


def run(args) -> int:
    rows = read_manifest(args.manifest)
    labels = [r.label for r in rows]
    if args.out.exists() and not args.out.is_dir():
        raise MgclError(f"--out {args.out}: exists and is not a folder")
    if len(set(labels)) < 2:
        raise MgclError(f"{args.manifest}: need at least 2 classes to fit, found {len(set(labels))} ('{labels[0]}')")
    params = parse_params(args.param)
    backbone = make_backbone(args.backbone, **backbone_options(args))
    options = {k: v for k, v in backbone_options(args).items() if k not in machine_options(args)}
    try:
        report = fit_classifier(
            backbone,
            [r.path for r in rows],
            labels,
            args.method,
            params,
            args.store,
            args.batch_size,
            args.descriptions,
            args.captions,
            args.manifest,
            args.captioner,
            getattr(args, "device", None),
            backbone_options=options or None,
        )
    except InputsFailed as exc:
        print(
            f"{len(exc.errors)} of {len(rows)} support file(s) could not be embedded; no model written "
            "(fix or remove them from the manifest):",
            file=sys.stderr,
        )
        report_failures(exc.errors)
        return 1
    clf = report.classifier
    clf.save(args.out)

    width = max(len(c) for c in clf.classes_)
    print(f"support: {len(rows)} clips, {len(clf.classes_)} classes ({args.manifest})")
    for c in clf.classes_:
        n = report.counts[c]
        print(f"  {c.ljust(width)}  {n} clip{'s' if n != 1 else ''}")
    res = report.embedded
    print(f"backbone: {backbone.name} ({res.computed} computed, {res.cache_hits} cache hits)")
    if report.views is not None:
        names = clf.method_.view_names()
        print(
            f"audio views: {report.n_views} ({', '.join(names)}; {report.views.computed} computed, "
            f"{report.views.cache_hits} cache hits)"
        )
    print(f"method: {args.method}" + (f" {json.dumps(params)}" if params else ""))
    _, learned = clf.method_.learned_state()
    chosen = {
        k: v
        for k, v in learned.items()
        if k not in ("n_classes_", "dim_")
        and v is not None
        and not (isinstance(v, dict) and ("__tensor_list__" in v or "__tensor_dict__" in v))
    }
    if chosen:
        print(f"chosen on the support set: {json.dumps(chosen, default=str)}")
    s = report.seconds
    print(f"saved: {args.out} ({CONFIG_FILE}, {WEIGHTS_FILE})")
    print(
        f"time: embed {seconds(res.seconds)}"
        + (f", audio views {seconds(s['views'])}" if report.views is not None else "")
        + f", text {seconds(s['text'])}, fit {seconds(s['fit'])}"
    )
    return 0
