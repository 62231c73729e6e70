"""``mgcl benchmark``: the field's few-shot protocols on whole datasets, with reports.

``register(subparsers)`` adds the sub-command to the ``mgcl`` parser. Exit codes as for
every ``mgcl`` command: 0 on success, 1 when some files could not be embedded (left out,
listed), 2 with a one-line error on bad input.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

from mgcl.cli import benchmark_detection
from mgcl.cli.common import (
    add_backbone,
    add_command,
    add_engine,
    add_open_set,
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
from mgcl.data.catalog import from_layout, known_datasets
from mgcl.data.sources import Dataset, from_manifest
from mgcl.errors import MgclError
from mgcl.evaluation.protocols import DEFAULT_SHOTS, PROTOCOLS, Protocol
from mgcl.evaluation.report import (
    FILES,
    ablation_table,
    combined_markdown,
    markdown_table,
    open_set_table,
    protocol_line,
    split_results,
    write_report,
)
from mgcl.evaluation.specs import method_specs
from mgcl.pipeline import DEMO_METHODS, check_evaluation, check_text_needs, evaluate, make_backbone
from mgcl.util.atomic import atomic_write_bytes
from mgcl.version import __version__

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")

DESCRIPTION = """\
Run a named few-shot protocol on one or more datasets and write, per dataset, results.json
(backbone, dataset, protocol, results: [{method, shots, accuracy_mean, accuracy_std, n_seeds,
n_query, ...}], timing), results.md (methods x shots, mean ± std, best in bold) and PNG plots
(accuracy vs shots, confusion matrix of the best method at the largest K, ablation of the
mgcl branches with --ablate); plus a combined results.md in --out.

protocols (--protocol):
  full-way  every class in each task, K shots per class (--shots, default 1,2,4,8,16) and
            --seeds random draws (default 3). With official folds: each fold in turn is the
            test fold (all its clips are queries), the support comes from the other folds;
            mean ± std over folds x seeds. With a fixed train/test split: support from train,
            queries = test. Otherwise: K per class at random, the rest is the query.
  episodes  N-way K-shot episodes (--ways 5, --shots default 1,5, --episodes 600, --queries
            15 per class): N distinct classes per episode, disjoint support and queries;
            mean ± 95 % confidence interval (1.96 std / sqrt(episodes)). With folds, episode
            e takes its queries from test fold e mod n_folds and its support from the other
            folds; with a split, support from train and queries from test. The backbone is
            frozen and nothing is trained on the dataset, so every class is "novel".
  detection few-shot detection in long recordings built from the dataset's clips (of
            --test-folds): one recording per target class and seed, the first K target
            events (--shots, default 1,3,5) are the support, sed_eval event-based F1 of
            the prototype baseline and mgcl (docs/detection.md); options below.

Features come from the feature store (--store): each dataset is embedded once; a second run
(another protocol, other methods) runs no backbone forward. Methods choose their
hyper-parameters inside each support set; the query labels are never seen.

datasets: --datasets NAME[,NAME] read from their official layout with --root (the
dataset's own folder when one dataset is named, --root NAME=DIR once per dataset
otherwise), or from a manifest CSV (path,label[,fold|split]) with --manifest NAME=CSV."""

EPILOG = """\
examples (CLAP weights, official ESC-50 and UrbanSound8K downloads):
  mgcl data download esc50 --root ~/data           # -> ~/data/ESC-50-master
  mgcl data download urbansound8k --root ~/data    # -> ~/data/UrbanSound8K

  # ESC-50: full-way 1..16-shot, 5-fold cross-validation x 3 seeds, ablation of the branches
  mgcl benchmark --datasets esc50 --root ~/data/ESC-50-master \\
      --backbone clap --checkpoint laion/clap-htsat-unfused \\
      --methods zero_shot,prototype,linear_probe,tip_adapter,tip_adapter_f,treff,mgcl,mgcl_f \\
      --shots 1,2,4,8,16 --seeds 3 --ablate zs,cc,fc,ft --out results/esc50

  # UrbanSound8K: full-way, 10-fold cross-validation
  mgcl benchmark --datasets urbansound8k --root ~/data/UrbanSound8K \\
      --backbone clap --checkpoint laion/clap-htsat-unfused \\
      --methods zero_shot,prototype,tip_adapter,mgcl,mgcl_f --seeds 3 --out results/us8k

  # both at once, then 5-way 1/5-shot episodes (ESC-50 has 8 clips per class and fold)
  mgcl benchmark --datasets esc50,urbansound8k --root esc50=~/data/ESC-50-master \\
      --root urbansound8k=~/data/UrbanSound8K --backbone clap --out results/both
  mgcl benchmark --datasets esc50 --root ~/data/ESC-50-master --backbone clap \\
      --protocol episodes --ways 5 --shots 1,5 --episodes 600 --queries 8 --out results/esc50-episodes

  # no download, no weights: the offline aisfx backbone on any manifest
  mgcl benchmark --manifest env45=../shared/data/env45/manifest.csv --backbone aisfx \\
      --methods prototype,tip_adapter,mgcl --shots 1,2,3 --out results/env45

(the ESC-50 folder holds audio/ and meta/esc50.csv, the UrbanSound8K folder audio/fold1..10
and metadata/UrbanSound8K.csv; `mgcl data list` shows every dataset mgcl can fetch.)"""


def parse_named(items, option: str, what: str) -> tuple[dict[str, str], list[str]]:
    """``NAME=VALUE`` items -> ({name: value}, [bare values]); bad syntax raises one line."""
    named, bare = {}, []
    for item in items or []:
        name, sep, value = str(item).partition("=")
        if sep and _NAME.match(name.strip()):
            name, value = name.strip(), value.strip()
            if not value:
                raise MgclError(f"{option} '{item}' is not of the form NAME={what} ({what} is empty)")
            if name in named:
                raise MgclError(f"{option} given twice for dataset '{name}'")
            named[name] = value
        elif sep and not name.strip():
            raise MgclError(f"{option} '{item}' is not of the form NAME={what} (NAME is empty)")
        else:
            bare.append(str(item))
    return named, bare


def resolve_sources(datasets: list[str], roots, manifests, names=None) -> list[Dataset]:
    """The datasets of ``--datasets``, ``--root`` and ``--manifest``, in order; ``names``:
    the ``--names [NAME=]FILE`` items (class-name overrides)."""
    named_csv, bare_csv = parse_named(manifests, "--manifest", "CSV")
    for csv_path in bare_csv:  # a bare CSV is named after its folder
        name = Path(csv_path).resolve().parent.name
        if name in named_csv:
            raise MgclError(f"--manifest given twice for dataset '{name}'")
        named_csv[name] = csv_path
    all_names = list(dict.fromkeys(list(datasets) + list(named_csv)))
    if not all_names:
        raise MgclError("name the datasets with --datasets NAME[,NAME] (and --root) or --manifest NAME=CSV")
    named_root, bare_root = parse_named(roots, "--root", "DIR")
    layout_names = [n for n in all_names if n not in named_csv]
    if bare_root:
        if len(bare_root) > 1 or named_root or len(layout_names) != 1:
            raise MgclError(
                f"--root '{bare_root[0]}' is not of the form NAME=DIR (a bare --root DIR is "
                f"allowed only when one dataset is named; here: {', '.join(layout_names) or 'none'})"
            )
        named_root[layout_names[0]] = bare_root[0]
    extra = [n for n in named_root if n not in layout_names]
    if extra:
        why = "it has a --manifest" if extra[0] in named_csv else f"it is not in --datasets ({', '.join(all_names)})"
        raise MgclError(f"--root names dataset '{extra[0]}', but {why}")
    named_names, bare_names = parse_named(names, "--names", "FILE")
    if bare_names and len(all_names) != 1:
        raise MgclError(
            f"--names '{bare_names[0]}' is not of the form NAME=FILE (a bare --names FILE is "
            "allowed only when one dataset is named)"
        )
    if bare_names:
        named_names[all_names[0]] = bare_names[-1]
    extra = [n for n in named_names if n not in all_names]
    if extra:
        raise MgclError(f"--names names dataset '{extra[0]}', which is not benchmarked ({', '.join(all_names)})")
    return [
        from_manifest(n, named_csv[n], named_names.get(n))
        if n in named_csv
        else from_layout(n, named_root.get(n), named_names.get(n))
        for n in all_names
    ]


def per_dataset(items, name: str, names: list[str], default: str) -> str:
    """The value of a per-dataset option: ``NAME=VALUE`` for ``name``, else a bare VALUE, else default."""
    chosen = default
    for item in items or []:
        key, sep, value = str(item).partition("=")
        if sep and key.strip() in names:
            if key.strip() == name:
                return value.strip()
        else:
            chosen = str(item)
    return chosen


# ----------------------------------------------------------------------------- the command
def run(args) -> int:
    t_start = time.perf_counter()
    engine = engine_of(args)
    if args.protocol == "detection":
        if engine.kind != "local":
            raise MgclError("--protocol detection runs on the local engine only (drop --engine ray)")
        args.methods_given = args.methods is not None
        args.resolve_sources = lambda: resolve_sources(split_list(args.datasets), args.root, args.manifest, args.names)
        return benchmark_detection.run(args)
    args.methods = args.methods or ",".join(DEMO_METHODS)
    if args.protocol not in PROTOCOLS:
        raise MgclError(f"unknown protocol '{args.protocol}' (choose from: {', '.join(PROTOCOLS)})")
    methods = split_list(args.methods)
    if not methods:
        raise MgclError("--methods is empty")
    shots = parse_shots(args.shots) if args.shots is not None else list(DEFAULT_SHOTS[args.protocol])
    if args.seeds < 1:
        raise MgclError(f"--seeds must be at least 1, got {args.seeds}")
    specs = method_specs(methods, parse_params(args.param, prefixed=True), split_list(args.ablate))
    out = Path(args.out).expanduser()
    if out.exists() and not out.is_dir():
        raise MgclError(f"--out {out}: exists and is not a folder")
    test_folds = split_list(args.test_folds) or None
    protocol = Protocol(
        args.protocol,
        tuple(shots),
        args.seeds,
        None if test_folds is None else tuple(test_folds),
        args.ways,
        args.queries,
        args.episodes,
        args.seed,
        open_set=args.open_set,
    )

    sources = resolve_sources(split_list(args.datasets), args.root, args.manifest, args.names)
    if len({s.name for s in sources}) != len(sources):
        raise MgclError("a dataset is named twice")
    names = [s.name for s in sources]
    for s in sources:  # every dataset's protocol is checked before any embedding
        check_evaluation(s, protocol)
    backbone = make_backbone(args.backbone, **backbone_options(args))
    check_text_needs(methods, backbone)
    if backbone.has_text:  # a missing text file fails now, not after a long embedding
        for s in sources:
            for option, items, default, words in (
                ("--descriptions", args.descriptions, "builtin", ("builtin", "none")),
                ("--captions", args.captions, "none", ("auto", "none")),
            ):
                spec = per_dataset(items, s.name, names, default)
                if spec.lower() not in words and not Path(spec).expanduser().is_file():
                    raise MgclError(f"{option} {spec}: file not found (dataset '{s.name}')")

    docs, folders, failed = [], [], 0
    for source in sources:
        ev = evaluate(
            source,
            backbone,
            specs,
            protocol,
            args.store,
            args.batch_size,
            per_dataset(args.descriptions, source.name, names, "builtin"),
            per_dataset(args.captions, source.name, names, "none"),
            args.captioner,
            getattr(args, "device", None),
            engine=engine,
        )
        res, doc, views = ev.embedded, ev.doc, ev.views
        if res.errors:
            failed += len(res.errors)
            print(
                f"{source.name}: {len(res.errors)} of {len(source.rows)} file(s) could not be embedded and "
                "were left out:",
                file=sys.stderr,
            )
            report_failures(res.errors)
        folder = _folder_name(source.name)
        written = write_report(doc, ev.runs, out / folder, ev.names)
        docs.append(doc)
        folders.append(folder)

        main_rows, _ = split_results(doc["results"])
        spread = "95 % CI over episodes" if args.protocol == "episodes" else "std"
        print(
            f"\n{source.name}: {doc['n_clips']} clips, {len(ev.classes)} classes, backbone {backbone.name}, "
            f"{protocol_line(doc)} (accuracy %, mean ± {spread})\n"
        )
        print(markdown_table(main_rows))
        abl = ablation_table(doc["results"])
        if abl:
            print("\n" + abl)
        opened = open_set_table(main_rows)
        if opened:
            print("\nopen set (%): closed-set accuracy, AUROC known vs unknown, accuracy at the threshold\n")
            print(opened)
        s = ev.seconds
        print(
            f"\ntime: embed {seconds(res.seconds)} ({res.computed} computed, {res.cache_hits} cache hits), "
            + (
                f"audio views {seconds(s['views'])} ({views.computed} computed, {views.cache_hits} cache hits), "
                if views is not None
                else ""
            )
            + f"evaluate {seconds(s['evaluate'])}; wrote {', '.join(p.name for p in written.values())} "
            f"in {out / folder}"
        )

    atomic_write_bytes(out / FILES["markdown"], combined_markdown(docs, folders).encode("utf-8"))
    summary = {
        "mgcl_version": __version__,
        "backbone": backbone.name,
        "protocol": args.protocol,
        "datasets": {d["dataset"]: f"{f}/{FILES['json']}" for d, f in zip(docs, folders)},
        "total_seconds": round(time.perf_counter() - t_start, 3),
    }
    write_json(out / "benchmark.json", summary)
    print(f"\nreport: {out / FILES['markdown']} (total {seconds(time.perf_counter() - t_start)})")
    return 1 if failed else 0


def _folder_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-]+", "_", name).strip("._") or "dataset"


HELP = (
    "the field's few-shot protocols (full-way folds, N-way episodes) on datasets, "
    "with results.json, results.md and plots"
)


def register(subparsers) -> argparse.ArgumentParser:
    """Add ``benchmark`` to an ``argparse`` sub-parsers object; returns its parser."""
    p = add_command(subparsers, "benchmark", run, HELP, DESCRIPTION, EPILOG)
    known = known_datasets()
    p.add_argument(
        "--datasets",
        metavar="NAME[,NAME]",
        help="datasets in their official layout"
        + (f" ({', '.join(known)})" if known else "")
        + "; names given by --manifest are added",
    )
    p.add_argument(
        "--root",
        action="append",
        metavar="DIR|NAME=DIR",
        help="the dataset's folder: a bare DIR when one dataset is named, else NAME=DIR once per dataset",
    )
    p.add_argument(
        "--manifest",
        action="append",
        metavar="NAME=CSV",
        help="a dataset given as a manifest CSV (path,label[,fold|split], paths relative to the "
        "CSV); repeatable; a bare CSV is named after its folder",
    )
    p.add_argument(
        "--names",
        action="append",
        metavar="[NAME=]FILE",
        help="a JSON file {label: readable name} overriding the class names used in text "
        "prompts and plots (default: labels made readable, air_conditioner -> air conditioner)",
    )
    p.add_argument(
        "--protocol",
        default="full-way",
        choices=[*PROTOCOLS, "detection"],
        help="full-way (default), episodes or detection (see above and docs/detection.md)",
    )
    p.add_argument(
        "--methods",
        default=None,
        help=f"comma-separated methods (default {','.join(DEMO_METHODS)}; detection: prototype,mgcl). "
        f"Choices: {method_list()}",
    )
    p.add_argument(
        "--shots",
        metavar="K[,K]",
        help="comma-separated support clips per class (default 1,2,4,8,16 for full-way, 1,5 for episodes)",
    )
    p.add_argument("--seeds", type=int, default=3, help="full-way: random support draws per K and fold (default 3)")
    p.add_argument("--test-folds", metavar="F[,F]", help="use only these folds as test folds (default: every fold)")
    p.add_argument("--ways", type=int, default=5, help="episodes: classes per episode (default 5)")
    p.add_argument("--episodes", type=int, default=600, help="episodes: episodes per K (default 600)")
    p.add_argument("--queries", type=int, default=15, help="episodes: query clips per class (default 15)")
    p.add_argument("--seed", type=int, default=0, help="episodes: seed of the episode draws (default 0)")
    add_open_set(p)
    p.add_argument(
        "--ablate",
        metavar="NAME,...",
        help="for each mgcl method, one more row per name with that part switched off "
        "(e.g. mgcl-fc), shown in an ablation table and plot. Branches: zs, cc, fc, ft, gc; "
        "mgcl_f losses: ce, coarse, fine, instance; views (without the support's audio views)",
    )
    p.add_argument(
        "--param",
        action="append",
        metavar="METHOD.KEY=VALUE",
        help="a hyper-parameter of one method, e.g. --param mgcl.topk=16 (repeatable)",
    )
    add_backbone(p)
    p.add_argument(
        "--descriptions",
        action="append",
        metavar="[NAME=]FILE|builtin|none",
        help="class descriptions for text backbones (default builtin); NAME=... for one dataset",
    )
    p.add_argument(
        "--captions",
        action="append",
        metavar="[NAME=]FILE|auto|none",
        help="one caption per clip for text backbones (default none); a FILE is keyed by the "
        "paths as written in the manifest (relative to --root for a dataset layout)",
    )
    p.add_argument("--captioner", metavar="ID_OR_PATH", help="audio-captioning checkpoint for --captions auto")
    add_store(p)
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="DIR",
        help="report folder: DIR/NAME/{results.json,results.md,*.png} per dataset and DIR/results.md",
    )
    add_engine(p)
    benchmark_detection.add_options(p)
    return p
