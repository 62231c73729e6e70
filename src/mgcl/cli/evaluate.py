"""``mgcl evaluate``: compare few-shot methods over shots x seeds (x folds) on one labelled set."""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

from mgcl.cli.common import (
    add_backbone,
    add_command,
    add_descriptions,
    add_engine,
    add_open_set,
    add_param,
    add_store,
    backbone_options,
    engine_of,
    method_list,
    parse_params,
    parse_shots,
    report_failures,
    seconds,
    split_list,
    write_json,
)
from mgcl.data.catalog import from_layout
from mgcl.data.sources import Dataset, from_manifest
from mgcl.errors import MgclError
from mgcl.evaluation.protocols import Protocol
from mgcl.evaluation.specs import method_specs
from mgcl.evaluation.summary import format_open_set_table, format_table
from mgcl.pipeline import DEMO_METHODS, check_evaluation, check_text_needs, evaluate, make_backbone

HELP = "compare few-shot methods over shots x seeds on a labelled manifest"

DESCRIPTION = textwrap.fill(
    "The few-shot protocol on a labelled manifest or dataset: for every shot count K and seed, draw K "
    "support clips per class, fit every method on them and score it on the query clips. "
    "Support and query never mix: with a fold column, each fold in turn is the test fold "
    "(every clip of it a query, the support drawn from the other folds; --test-fold F for "
    "fold F only); with a split column (train/test), support from train and query = test; "
    "otherwise the query is every clip not drawn for the support. Methods choose their "
    "hyper-parameters inside the support set only. Features come from the store: a second "
    "run on the same audio runs no backbone forward. Prints a table (accuracy %, mean ± std "
    "over seeds and folds) and, with --out, writes the results JSON {backbone, dataset, "
    "protocol, results: [{method, shots, accuracy_mean, accuracy_std, n_seeds, n_query, ...}], "
    "timing}.",
    88,
)

EPILOG = (
    "examples:\n"
    "  mgcl evaluate --manifest esc50/manifest.csv --methods prototype,tip_adapter,mgcl \\\n"
    "      --shots 1,2,4,8,16 --seeds 5 --test-fold 1 --ablate fc,ft --out results.json\n"
    "  mgcl evaluate --dataset urbansound8k --root ~/data/UrbanSound8K --test-fold 10 \\\n"
    "      --shots 1,4,16 --out us8k.json\n"
    "(`mgcl benchmark` runs several datasets and writes tables and plots)"
)


def register(sub) -> argparse.ArgumentParser:
    p = add_command(sub, "evaluate", run, HELP, DESCRIPTION, EPILOG)
    p.add_argument(
        "--manifest", type=Path, help="manifest CSV (path,label[,fold]); the dataset is named after its folder"
    )
    p.add_argument(
        "--dataset",
        metavar="NAME",
        help="instead of --manifest: a dataset in its official layout under --root "
        "(`mgcl data list` shows them; e.g. esc50, urbansound8k)",
    )
    p.add_argument(
        "--root", type=Path, metavar="DIR", help="with --dataset: the dataset's folder (e.g. ~/data/ESC-50-master)"
    )
    p.add_argument(
        "--names",
        type=Path,
        metavar="FILE",
        help="a JSON file {label: readable name} overriding the class names of the text "
        "prompts (default: labels made readable, air_conditioner -> air conditioner)",
    )
    add_backbone(p)
    p.add_argument(
        "--methods",
        default=",".join(DEMO_METHODS),
        help=f"comma-separated methods (default {','.join(DEMO_METHODS)}). Choices: {method_list()}",
    )
    p.add_argument(
        "--shots",
        default="1,2,4,8,16",
        help="comma-separated support clips per class (default 1,2,4,8,16); every class "
        "needs that many clips available for the support (and one more for the query "
        "without folds)",
    )
    p.add_argument("--seeds", type=int, default=5, help="random support draws per shot count (default 5)")
    p.add_argument(
        "--test-fold",
        metavar="F",
        help="query = every clip of fold F, support drawn from the other folds "
        "(needs a fold column; default: every fold in turn)",
    )
    p.add_argument(
        "--ablate",
        metavar="NAME,...",
        help="for each mgcl method, add one row per name with that part switched off, "
        "reported as e.g. mgcl_f-fc. Branches: zs (zero-shot), cc (coarse cache), "
        "fc (fine cache), ft (fine text OT), gc (caption cache); mgcl_f loss terms: "
        "ce, coarse, fine, instance; views (without the audio views of the support)",
    )
    add_open_set(p)
    add_param(p, prefixed=True)
    add_descriptions(p)
    add_store(p)
    p.add_argument("--out", type=Path, metavar="RESULTS_JSON", help="write the results JSON here")
    add_engine(p)
    return p


def dataset_of(args) -> Dataset:
    """The data ``--manifest CSV`` or ``--dataset NAME --root DIR`` names."""
    if args.manifest is not None and args.dataset is not None:
        raise MgclError("give either --manifest or --dataset, not both")
    if args.manifest is not None:
        if args.root is not None:
            raise MgclError("--root goes with --dataset; a manifest's paths are relative to its own folder")
        return from_manifest(Path(args.manifest).resolve().parent.name, args.manifest, args.names)
    if args.dataset is None:
        raise MgclError("give --manifest CSV or --dataset NAME --root DIR")
    return from_layout(args.dataset, args.root, args.names)


def run(args) -> int:
    engine = engine_of(args)
    dataset = dataset_of(args)
    where = args.manifest if args.manifest is not None else f"dataset '{dataset.name}'"
    methods = split_list(args.methods)
    if not methods:
        raise MgclError("--methods is empty")
    shots = parse_shots(args.shots)
    if args.seeds < 1:
        raise MgclError(f"--seeds must be at least 1, got {args.seeds}")
    specs = method_specs(methods, parse_params(args.param, prefixed=True), split_list(args.ablate))
    if args.out is not None and args.out.is_dir():
        raise MgclError(f"--out {args.out}: is a folder; give a file name such as results.json")
    if args.test_fold is not None and dataset.folds is None:
        missing = [r for r in dataset.rows if r.fold is None]
        example = f" ({len(missing)} rows have none, e.g. {missing[0].path.name})" if missing else ""
        raise MgclError(f"--test-fold needs a 'fold' column in {where}{example}")
    protocol = Protocol(
        "full-way",
        tuple(shots),
        args.seeds,
        None if args.test_fold is None else (str(args.test_fold),),
        open_set=args.open_set,
    )
    check_evaluation(dataset, protocol)  # bad shots / fold: fail before embedding
    backbone = make_backbone(args.backbone, **backbone_options(args))
    check_text_needs(methods, backbone)
    # the header before the work (embedding, views and fits can take minutes)
    folds = dataset.fold_ids if dataset.folds is not None else []
    shown = [str(args.test_fold)] if args.test_fold is not None else folds
    print(
        f"{dataset.name}: {len(dataset.rows)} clips, {len(dataset.classes)} classes, backbone {backbone.name}, "
        f"methods {', '.join(s.label for s in specs)}, shots {', '.join(map(str, shots))}, "
        f"{args.seeds} seed{'s' if args.seeds != 1 else ''}"
        + (f", test fold{'s' if len(shown) > 1 else ''} {', '.join(shown)}" if shown else "")
        + (
            f", open set: {args.open_set} class{'es' if args.open_set != 1 else ''} held out per seed"
            if args.open_set
            else ""
        )
        + f" (chance {100.0 / len(dataset.classes):.1f}%)",
        flush=True,
    )

    ev = evaluate(
        dataset,
        backbone,
        specs,
        protocol,
        args.store,
        args.batch_size,
        args.descriptions,
        args.captions,
        args.captioner,
        getattr(args, "device", None),
        engine=engine,
    )
    res, doc = ev.embedded, ev.doc
    if res.errors:
        print(
            f"{len(res.errors)} of {len(dataset.rows)} file(s) could not be embedded and were left out "
            "of the evaluation:",
            file=sys.stderr,
        )
        report_failures(res.errors)
    if args.out is not None:
        write_json(args.out, doc)
    print(f"\naccuracy (%) on {doc['n_clips']} clips, {doc['protocol']['spread']}:\n")
    print(format_table(doc["results"]))
    opened = format_open_set_table(doc["results"])
    if opened:
        print(
            "\nopen set (%): the table above is closed-set accuracy (known queries); AUROC known vs "
            "unknown and accuracy on all queries at the threshold chosen on the support:\n"
        )
        print(opened)
    s = ev.seconds
    views = ev.views
    print(
        f"\ntime: embed {seconds(res.seconds)} ({res.computed} computed, {res.cache_hits} cache hits)"
        + (
            f", audio views {seconds(s['views'])} ({views.computed} computed, {views.cache_hits} cache hits)"
            if views is not None
            else ""
        )
        + f", evaluate {seconds(s['evaluate'])}, total {seconds(s['total'])}"
    )
    if args.out is not None:
        print(f"results: {args.out}")
    return 1 if res.errors else 0
