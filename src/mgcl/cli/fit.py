"""``mgcl fit``: a few-shot classifier from a support set (a folder per class, or a manifest),
saved as a folder."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import textwrap
from pathlib import Path

from mgcl.audio.decode import SUPPORTED_EXTENSIONS
from mgcl.classifier.persistence import CARD_FILE, CONFIG_FILE, WEIGHTS_FILE
from mgcl.cli.common import (
    add_backbone,
    add_command,
    add_descriptions,
    add_param,
    add_store,
    audio_inputs,
    backbone_options,
    describe_choices,
    format_params,
    learned_choices,
    machine_options,
    method_list,
    open_set_line,
    parse_params,
    plain_params,
    print_chosen,
    report_failures,
    seconds,
)
from mgcl.data.inputs import class_folders
from mgcl.data.manifest import read_manifest
from mgcl.errors import InputsFailed, MgclError
from mgcl.methods.openset import UNKNOWN_LABEL, check_reject
from mgcl.pipeline import fit_classifier, make_backbone

log = logging.getLogger(__name__)


HELP = "fit a few-shot classifier on a labelled support set and save it"

DESCRIPTION = textwrap.fill(
    "Fit a few-shot classifier on a support set and save it as a folder (config.json + "
    "weights.safetensors + a README.md model card, no pickle) for `mgcl predict` and "
    "`mgcl info`. The support set is a folder with one sub-folder per class (--folders: the "
    "sub-folder's name is the class, the audio files below it its clips) or a manifest "
    "(--manifest: CSV with header path,label). A handful of clips per class is enough. "
    "Embeddings are cached in the store, so refitting with another method costs no forward "
    "pass. Hyper-parameters are chosen by cross-validation inside the support set. "
    "mgcl and mgcl_f also learn from audio views of each support clip (background "
    "noise, low-pass, high-pass: 3 more backbone calls per clip, cached in the store; "
    "--param augment= for none). Prints what was done, step by step, and what the method "
    "chose on the support set (the raw learned values with -v, everything as JSON with --json). "
    "If any support file cannot be decoded, they are all listed and no model is written "
    "(exit status 1): a support set silently missing clips is worse than an error.",
    88,
)

EPILOG = """examples:
  mgcl fit --folders my_sounds/ --out my_model
  mgcl fit --manifest support.csv --method tip_adapter --out my_model
  mgcl fit --folders my_sounds/ --reject auto --background room_noise/ --out my_model

open set (--reject): a clip whose calibrated probability of its best class is below a
threshold is predicted as 'unknown' (--unknown-label). 'auto' chooses the threshold on the
support only: it accepts 95 % of the support clips held out by leave-one-shot-out fits
(the fits that calibrate the probabilities); with --background clips of "nothing of
interest" it best separates them from the held-out support clips; with one clip per class
and no background it rejects nothing. A number in [0, 1] sets it. See docs/open-set.md."""


def register(sub) -> argparse.ArgumentParser:
    p = add_command(sub, "fit", run, HELP, DESCRIPTION, EPILOG)
    support = p.add_mutually_exclusive_group(required=True)
    support.add_argument(
        "--folders",
        type=Path,
        metavar="DIR",
        help="support folder: one sub-folder per class, named after it, holding its audio files (searched recursively)",
    )
    support.add_argument("--manifest", type=Path, help="support manifest CSV (path,label)")
    add_backbone(p)
    p.add_argument("--method", default="mgcl_f", help=f"few-shot method (default mgcl_f). Choices: {method_list()}")
    add_param(p, prefixed=False)
    p.add_argument(
        "--reject",
        default="none",
        metavar="auto|none|P",
        help="open-set rejection: 'auto' (threshold chosen on the support), a probability P in "
        "[0, 1], or 'none' (default: every clip gets one of the classes)",
    )
    p.add_argument(
        "--unknown-label",
        default=UNKNOWN_LABEL,
        metavar="LABEL",
        help=f"the label of a rejected clip (default '{UNKNOWN_LABEL}')",
    )
    p.add_argument(
        "--background",
        type=Path,
        action="append",
        metavar="CSV|DIR",
        help="clips of 'nothing of interest' (a folder, searched recursively, or a manifest CSV; "
        "repeatable) that --reject auto learns to reject; never a class",
    )
    add_descriptions(p)
    add_store(p)
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="MODEL_DIR",
        help="folder to write the model to (created; existing model files replaced)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON document (support, backbone, views, method, choices, learned values, "
        "model, seconds) instead of the summary",
    )
    return p


def support_set(args) -> tuple[list[Path], list[str], Path]:
    """The support clips, their labels and where they came from (--folders or --manifest)."""
    if args.folders is not None:
        if str(args.captions).lower() not in ("none", "auto"):
            raise MgclError(
                f"--captions {args.captions}: a caption file is keyed by a manifest's paths; use it with "
                "--manifest (or --captions auto)"
            )
        classes = class_folders(args.folders, SUPPORTED_EXTENSIONS)
        return [f for _, files in classes for f in files], [c for c, files in classes for _ in files], args.folders
    rows = read_manifest(args.manifest)
    return [r.path for r in rows], [r.label for r in rows], args.manifest


def run(args) -> int:
    sources, labels, origin = support_set(args)
    if args.out.exists() and not args.out.is_dir():
        raise MgclError(f"--out {args.out}: exists and is not a folder")
    if len(set(labels)) < 2:
        raise MgclError(f"{origin}: need at least 2 classes to fit, found {len(set(labels))} ('{labels[0]}')")
    params = parse_params(args.param)
    reject = check_reject(args.reject)
    if args.background and reject != "auto":
        raise MgclError("--background is used only to choose the threshold of --reject auto: add it")
    background = [str(f) for f in audio_inputs(args.background)] if args.background else []
    if args.background and not background:
        raise MgclError(f"--background {args.background[0]}: no audio files found")
    backbone = make_backbone(args.backbone, **backbone_options(args))
    options = {k: v for k, v in backbone_options(args).items() if k not in machine_options(args)}
    try:
        report = fit_classifier(
            backbone,
            sources,
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
            reject=reject,
            unknown_label=args.unknown_label,
            background=background,
        )
    except InputsFailed as exc:
        if args.manifest is not None:
            where = (
                f"remove them from {args.manifest}, whose relative paths are resolved against "
                f"{os.path.abspath(args.manifest.parent)}"
            )
        else:
            where = "remove them from their folders"
        what = getattr(exc, "what", "support")
        total = len(background) if what == "background" else len(sources)
        if what == "background":
            where = "remove them from --background"
        print(
            f"{len(exc.errors)} of {total} {what} file(s) could not be embedded; no model written (fix or {where}):",
            file=sys.stderr,
        )
        report_failures(exc.errors)
        return 1
    clf = report.classifier
    clf.save(args.out)
    _, learned = clf.method_.learned_state()
    doc = summary(args, report, backbone, origin, params, learned)
    if args.json:
        print(json.dumps(doc, indent=2, ensure_ascii=False, default=str))
        return 0
    print_summary(doc, verbose=bool(getattr(args, "verbose", False)))
    return 0


def summary(args, report, backbone, origin: Path, params: dict, learned: dict) -> dict:
    """What fit did, in the order the work happened, as one JSON-able document."""
    clf, res, s = report.classifier, report.embedded, report.seconds
    used = clf.method_.get_params()  # the given hyper-parameters as the method took them ("2,8" -> (2, 8))
    views = None
    if report.views is not None:
        views = {
            "count": report.n_views,
            "names": list(clf.method_.view_names()),
            "computed": report.views.computed,
            "cache_hits": report.views.cache_hits,
        }
    return {
        "support": {
            "source": str(origin),
            "kind": "folders" if args.folders is not None else "manifest",
            "clips": sum(report.counts.values()),
            "classes": {c: report.counts[c] for c in clf.classes_},
        },
        "backbone": {
            "name": backbone.name,
            "identity": backbone.identity,
            "computed": res.computed,
            "cache_hits": res.cache_hits,
        },
        "views": views,
        "method": {"name": args.method, "params": plain_params({k: used.get(k, v) for k, v in params.items()})},
        "chosen": describe_choices(args.method, learned),
        "open_set": open_set_summary(clf, report),
        "learned": learned_choices(learned),
        "model": {"folder": str(args.out), "files": [CONFIG_FILE, WEIGHTS_FILE, CARD_FILE]},
        "seconds": {
            "embed": round(res.seconds, 3),
            **({"views": round(s["views"], 3)} if views is not None else {}),
            "text": round(s["text"], 3),
            "fit": round(s["fit"], 3),
        },
    }


def print_summary(doc: dict, verbose: bool = False) -> None:
    sup, bb, views, meth = doc["support"], doc["backbone"], doc["views"], doc["method"]
    classes = sup["classes"]
    print(f"support: {sup['clips']} clips, {len(classes)} classes ({sup['source']})")
    width = max(len(c) for c in classes)
    for c, n in classes.items():
        print(f"  {c.ljust(width)}  {n} clip{'s' if n != 1 else ''}")
    print(f"backbone: {bb['name']} ({bb['computed']} computed, {bb['cache_hits']} cache hits)")
    if views is not None:
        print(
            f"audio views: {views['count']} ({', '.join(views['names'])}; {views['computed']} computed, "
            f"{views['cache_hits']} cache hits)"
        )
    print(f"method: {meth['name']}" + (f" ({format_params(meth['params'])})" if meth["params"] else ""))
    print_chosen(doc["chosen"])
    print(open_set_line(doc["open_set"]))
    if verbose and doc["learned"]:
        print(f"learned state: {json.dumps(doc['learned'], default=str)}")
    print(f"saved: {doc['model']['folder']} ({', '.join(doc['model']['files'])})")
    s = doc["seconds"]
    print(
        f"time: embed {seconds(s['embed'])}"
        + (f", audio views {seconds(s['views'])}" if "views" in s else "")
        + f", text {seconds(s['text'])}, fit {seconds(s['fit'])}"
    )


def open_set_summary(clf, report) -> dict:
    """The open-set part of the fit summary: the rule, the threshold, how it was chosen."""
    bg = report.background
    return {
        "reject": clf.reject if clf.reject is None or isinstance(clf.reject, str) else float(clf.reject),
        "unknown_label": clf.unknown_label_,
        "threshold": clf.reject_threshold_,
        "method": clf.reject_how_,
        "stats": dict(clf.reject_stats_),
        "background_clips": None if bg is None else len(bg.ok),
    }
