"""``mgcl benchmark``: the field's few-shot protocols on whole datasets, with reports.

``register(subparsers)`` adds the sub-command to the ``mgcl`` parser. Exit codes as for
every ``mgcl`` command: 0 on success, 1 when some files could not be embedded (left out,
listed), 2 with a one-line error on bad input.

:func:`rows_for` gives ``mgcl evaluate`` the same ``--dataset NAME --root DIR`` /
``--manifest CSV`` resolution.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from mgcl.errors import MgclError

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


# ----------------------------------------------------------------------------- data sources
@dataclass
class DataSource:
    """A labelled dataset ready for a protocol.

    ``rows``: Row(path, label, fold, split); ``display``: label -> the readable class name for
    text prompts and plots; ``kind``: 'folds', 'split' or 'random' (how support and query are
    kept apart); ``manifest``: the file caption keys are relative to (the CSV, or
    ``root/manifest.csv`` for a dataset layout); ``origin``: where the rows came from.
    """

    name: str
    rows: list
    display: dict[str, str] = field(default_factory=dict)
    kind: str = "random"
    manifest: Path | None = None
    origin: str = ""

    @property
    def folds(self):
        return [r.fold for r in self.rows] if self.kind == "folds" else None

    @property
    def splits(self):
        return [r.split for r in self.rows] if self.kind == "split" else None

    def names(self, classes) -> list[str]:
        return [self.display.get(c, c) for c in classes]


def known_datasets() -> list[str]:
    """Names of the dataset layouts mgcl reads."""
    from mgcl.data.datasets import available_datasets

    return list(available_datasets())


def _display_names(labels, names) -> dict[str, str]:
    """``{label: readable name}`` from a JSON file of overrides, checked against ``labels``."""
    if names is None:
        return {}
    from mgcl.data.datasets import load_names

    override = load_names(Path(names).expanduser())
    unknown = sorted(set(override) - set(labels))
    if unknown:
        raise MgclError(f"--names {names}: labels not in the data: {', '.join(unknown[:5])}"
                        + (", ..." if len(unknown) > 5 else ""))
    bad = [k for k, v in override.items() if not isinstance(v, str) or not v.strip()]
    if bad:
        raise MgclError(f"--names {names}: the name of '{bad[0]}' must be a non-empty string")
    return {k: v.strip() for k, v in override.items()}


def from_manifest(name: str, csv_path: str | Path, names: str | Path | None = None) -> DataSource:
    """A manifest CSV: folds when every row has one, else a split when every row has one.
    ``names``: a JSON file ``{label: readable name}`` for the text prompts and plots."""
    from mgcl.data.manifest import read_manifest
    from mgcl.protocols import layout

    rows = read_manifest(csv_path)
    kind = layout([r.fold for r in rows], [r.split for r in rows])
    display = _display_names({r.label for r in rows}, names)
    return DataSource(name, rows, display, kind, Path(csv_path), str(csv_path))


def from_layout(name: str, root: str | Path | None, names: str | Path | None = None) -> DataSource:
    """A dataset in its official layout under ``root`` (:func:`mgcl.data.datasets.load_dataset`);
    ``names``: a JSON file overriding the readable class names."""
    from mgcl.data import datasets
    from mgcl.protocols import layout

    if datasets.canonical_name(name) is None:
        raise MgclError(f"unknown dataset '{name}' (choose from: {', '.join(datasets.available_datasets())}; "
                        f"or give a manifest with --manifest {name}=CSV)")
    if root is None:
        raise MgclError(f"dataset '{name}' needs --root DIR, the folder of its official layout "
                        f"(`mgcl data download {name} --root DIR` fetches it)")
    root = Path(root).expanduser()
    if not root.exists():
        raise MgclError(f"--root {root}: folder not found (dataset '{name}')")
    ds = datasets.load_dataset(name, root, None if names is None else Path(names).expanduser())
    display = dict(ds.display_names)
    protocol = ds.protocol
    if protocol == "folds":
        kind = "folds"
    elif protocol == "split":
        kind = "split"
    else:
        kind = layout([r.fold for r in ds.rows], [r.split for r in ds.rows])
    base = Path(ds.root or root)  # the folder the loader found the files in
    manifest = base if base.suffix.lower() == ".csv" else base / "manifest.csv"
    return DataSource(name, list(ds.rows), display, kind, manifest, str(root))


def rows_for(args) -> DataSource:
    """The data ``mgcl evaluate`` (or any command) names with ``--manifest CSV`` or
    ``--dataset NAME --root DIR``; ``.rows`` are the manifest rows, ``.name`` the dataset
    name, ``.manifest`` the file caption keys are relative to, ``.names(classes)`` the
    readable class names for text prompts."""
    manifest = getattr(args, "manifest", None)
    dataset = getattr(args, "dataset", None)
    root = getattr(args, "root", None)
    names = getattr(args, "names", None)
    if manifest is not None and dataset is not None:
        raise MgclError("give either --manifest or --dataset, not both")
    if manifest is not None:
        if root is not None:
            raise MgclError("--root goes with --dataset; a manifest's paths are relative to its own folder")
        return from_manifest(Path(manifest).resolve().parent.name, manifest, names)
    if dataset is None:
        raise MgclError("give --manifest CSV or --dataset NAME --root DIR")
    return from_layout(dataset, root, names)


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


def resolve_sources(datasets: list[str], roots, manifests, names=None) -> list[DataSource]:
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
            raise MgclError(f"--root '{bare_root[0]}' is not of the form NAME=DIR (a bare --root DIR is "
                            f"allowed only when one dataset is named; here: {', '.join(layout_names) or 'none'})")
        named_root[layout_names[0]] = bare_root[0]
    extra = [n for n in named_root if n not in layout_names]
    if extra:
        why = "it has a --manifest" if extra[0] in named_csv else f"it is not in --datasets ({', '.join(all_names)})"
        raise MgclError(f"--root names dataset '{extra[0]}', but {why}")
    named_names, bare_names = parse_named(names, "--names", "FILE")
    if bare_names and len(all_names) != 1:
        raise MgclError(f"--names '{bare_names[0]}' is not of the form NAME=FILE (a bare --names FILE is "
                        "allowed only when one dataset is named)")
    if bare_names:
        named_names[all_names[0]] = bare_names[-1]
    extra = [n for n in named_names if n not in all_names]
    if extra:
        raise MgclError(f"--names names dataset '{extra[0]}', which is not benchmarked ({', '.join(all_names)})")
    return [from_manifest(n, named_csv[n], named_names.get(n)) if n in named_csv
            else from_layout(n, named_root.get(n), named_names.get(n)) for n in all_names]


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
def _progress_total(args, specs, shots, folds, test_folds) -> int:
    from mgcl.protocols import select_test_folds

    if args.protocol == "episodes":
        return len(specs) * len(shots) * args.episodes
    n_folds = len(select_test_folds(folds, test_folds)) if folds is not None else 1
    return len(specs) * len(shots) * args.seeds * n_folds


def cmd_benchmark(args) -> int:
    from mgcl import __version__, protocols, report
    from mgcl.cli import (
        check_text_needs,
        embed_rows,
        make_backbone,
        parse_params,
        parse_shots,
        report_failures,
        results_header,
        run_timing,
        seconds,
        split_list,
        support_views,
    )
    from mgcl.concepts.text import resolve_captions, resolve_descriptions, text_features
    from mgcl.evaluate import encode_labels, method_specs
    from mgcl.features import atomic_write_bytes
    from mgcl.progress import progress_bar

    t_start = time.perf_counter()
    if args.protocol not in protocols.PROTOCOLS:
        raise MgclError(f"unknown protocol '{args.protocol}' (choose from: {', '.join(protocols.PROTOCOLS)})")
    methods = split_list(args.methods)
    if not methods:
        raise MgclError("--methods is empty")
    shots = parse_shots(args.shots) if args.shots is not None else list(protocols.DEFAULT_SHOTS[args.protocol])
    if args.seeds < 1:
        raise MgclError(f"--seeds must be at least 1, got {args.seeds}")
    if args.protocol == "episodes":
        for k in shots:
            protocols.check_episode_args(args.ways, k, args.queries, args.episodes)
    specs = method_specs(methods, parse_params(args.param, prefixed=True), split_list(args.ablate))
    out = Path(args.out).expanduser()
    if out.exists() and not out.is_dir():
        raise MgclError(f"--out {out}: exists and is not a folder")
    test_folds = split_list(args.test_folds) or None

    sources = resolve_sources(split_list(args.datasets), args.root, args.manifest, args.names)
    if len({s.name for s in sources}) != len(sources):
        raise MgclError("a dataset is named twice")
    names = [s.name for s in sources]

    def check(source: DataSource, labels, keep=None) -> None:
        pick = (lambda xs: xs) if keep is None else (lambda xs: None if xs is None else [xs[i] for i in keep])
        try:
            protocols.check(args.protocol, labels, shots, pick(source.folds), pick(source.splits), test_folds,
                            args.ways, args.queries, args.episodes)
        except MgclError as exc:
            raise MgclError(f"{source.name}: {exc}") from None

    for s in sources:  # every dataset's protocol is checked before any embedding
        check(s, [r.label for r in s.rows])
    backbone = make_backbone(args)
    check_text_needs(methods, backbone)
    if backbone.has_text:  # a missing text file fails now, not after a long embedding
        for s in sources:
            for option, items, default, words in (("--descriptions", args.descriptions, "builtin", ("builtin", "none")),
                                                  ("--captions", args.captions, "none", ("auto", "none"))):
                spec = per_dataset(items, s.name, names, default)
                if spec.lower() not in words and not Path(spec).expanduser().is_file():
                    raise MgclError(f"{option} {spec}: file not found (dataset '{s.name}')")

    docs, folders, failed = [], [], 0
    for source in sources:
        t0 = time.perf_counter()
        rows = source.rows
        res = embed_rows(backbone, [r.path for r in rows], args.store, args.batch_size,
                         desc=f"embedding {source.name}")
        t1 = time.perf_counter()
        if res.errors:
            failed += len(res.errors)
            print(f"{source.name}: {len(res.errors)} of {len(rows)} file(s) could not be embedded and are "
                  "left out:", file=sys.stderr)
            report_failures(res)
        ok = res.ok
        if not ok:
            raise MgclError(f"{source.name}: no file could be embedded")
        labels = [rows[i].label for i in ok]
        check(source, labels, ok)
        folds = None if source.folds is None else [source.folds[i] for i in ok]
        splits = None if source.splits is None else [source.splits[i] for i in ok]
        features = res.stacked(ok)
        _, classes = encode_labels(labels)
        shown = source.names(classes)

        descriptions = resolve_descriptions(per_dataset(args.descriptions, source.name, names, "builtin"),
                                            shown, backbone.has_text)
        captions = resolve_captions(per_dataset(args.captions, source.name, names, "none"),
                                    [rows[i].path for i in ok], source.manifest, backbone.has_text,
                                    args.captioner, args.store, device=getattr(args, "device", None))
        text = text_features(backbone, shown, descriptions, captions)
        t2 = time.perf_counter()

        needed = protocols.support_rows(args.protocol, labels, shots, args.seeds, folds, splits, test_folds,
                                        args.ways, args.queries, args.episodes, args.seed)
        views = support_views(backbone, [rows[i].path for i in ok], specs, needed, args.store, args.batch_size,
                              desc=f"{source.name}: support views")
        t_views = time.perf_counter()
        total = _progress_total(args, specs, shots, folds, test_folds)
        with progress_bar(total, f"{source.name}: {args.protocol}", unit="run") as update:
            if args.protocol == "full-way":
                runs, _ = protocols.full_way(features, labels, specs, shots, args.seeds, folds, splits,
                                             test_folds, text=text, progress=update, views=views)
            else:
                runs, _ = protocols.episodes(features, labels, specs, args.ways, shots, args.episodes,
                                             args.queries, args.seed, folds, splits, test_folds,
                                             text=text, progress=update, views=views)
        t3 = time.perf_counter()
        used_folds = protocols.select_test_folds(folds, test_folds) if source.kind == "folds" else None
        doc = {
            **results_header(backbone, source, len(ok), classes, specs),
            "protocol": protocols.describe(args.protocol, shots, args.seeds, source.kind, used_folds,
                                           args.ways, args.episodes, args.queries, args.seed),
            "results": protocols.summarise_runs(runs),
            "timing": run_timing(res, t2 - t1, t3 - t_views, t3 - t0, runs, views, t_views - t2),
        }
        if res.errors:
            doc["failed_files"] = [res.errors[i] for i in sorted(res.errors)]
        folder = _folder_name(source.name)
        written = report.write_report(doc, runs, out / folder, shown)
        docs.append(doc)
        folders.append(folder)

        main_rows, _ = report.split_results(doc["results"])
        spread = "95 % CI over episodes" if args.protocol == "episodes" else "std"
        print(f"\n{source.name}: {len(ok)} clips, {len(classes)} classes, backbone {backbone.name}, "
              f"{report.protocol_line(doc)} (accuracy %, mean ± {spread})\n")
        print(report.markdown_table(main_rows))
        abl = report.ablation_table(doc["results"])
        if abl:
            print("\n" + abl)
        print(f"\ntime: embed {seconds(res.seconds)} ({res.computed} computed, {res.cache_hits} cache hits), "
              + (f"audio views {seconds(t_views - t2)} ({views.computed} computed, {views.cache_hits} cache hits), "
                 if views is not None else "")
              + f"evaluate {seconds(t3 - t_views)}; wrote {', '.join(p.name for p in written.values())} in {out / folder}")

    combined = report.combined_markdown(docs, folders)
    atomic_write_bytes(out / report.FILES["markdown"], combined.encode("utf-8"))
    summary = {
        "mgcl_version": __version__,
        "backbone": backbone.name,
        "protocol": args.protocol,
        "datasets": {d["dataset"]: f"{f}/{report.FILES['json']}" for d, f in zip(docs, folders)},
        "total_seconds": round(time.perf_counter() - t_start, 3),
    }
    atomic_write_bytes(out / "benchmark.json", (json.dumps(summary, indent=2) + "\n").encode("utf-8"))
    print(f"\nreport: {out / report.FILES['markdown']} (total {seconds(time.perf_counter() - t_start)})")
    return 1 if failed else 0


def _folder_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-]+", "_", name).strip("._") or "dataset"


def register(subparsers) -> argparse.ArgumentParser:
    """Add ``benchmark`` to an ``argparse`` sub-parsers object; returns its parser."""
    from mgcl.cli import add_machine_options
    from mgcl.backbones import available_backbones
    from mgcl.demo import DEMO_METHODS
    from mgcl.methods import available_methods

    p = subparsers.add_parser(
        "benchmark",
        help="the field's few-shot protocols (full-way folds, N-way episodes) on datasets, "
        "with results.json, results.md and plots",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    known = known_datasets()
    p.add_argument("--datasets", metavar="NAME[,NAME]",
                   help="datasets in their official layout" + (f" ({', '.join(known)})" if known else "")
                   + "; names given by --manifest are added")
    p.add_argument("--root", action="append", metavar="DIR|NAME=DIR",
                   help="the dataset's folder: a bare DIR when one dataset is named, else NAME=DIR once "
                   "per dataset")
    p.add_argument("--manifest", action="append", metavar="NAME=CSV",
                   help="a dataset given as a manifest CSV (path,label[,fold|split], paths relative to the "
                   "CSV); repeatable; a bare CSV is named after its folder")
    p.add_argument("--names", action="append", metavar="[NAME=]FILE",
                   help="a JSON file {label: readable name} overriding the class names used in text "
                   "prompts and plots (default: labels made readable, air_conditioner -> air conditioner)")
    p.add_argument("--protocol", default="full-way", choices=list(_protocols()),
                   help="full-way (default) or episodes (see above)")
    p.add_argument("--methods", default=",".join(DEMO_METHODS),
                   help=f"comma-separated methods (default {','.join(DEMO_METHODS)}). "
                   f"Choices: {', '.join(available_methods())}")
    p.add_argument("--shots", metavar="K[,K]",
                   help="comma-separated support clips per class (default 1,2,4,8,16 for full-way, "
                   "1,5 for episodes)")
    p.add_argument("--seeds", type=int, default=3, help="full-way: random support draws per K and fold (default 3)")
    p.add_argument("--test-folds", metavar="F[,F]",
                   help="use only these folds as test folds (default: every fold)")
    p.add_argument("--ways", type=int, default=5, help="episodes: classes per episode (default 5)")
    p.add_argument("--episodes", type=int, default=600, help="episodes: episodes per K (default 600)")
    p.add_argument("--queries", type=int, default=15, help="episodes: query clips per class (default 15)")
    p.add_argument("--seed", type=int, default=0, help="episodes: seed of the episode draws (default 0)")
    p.add_argument("--ablate", metavar="NAME,...",
                   help="for each mgcl method, one more row per name with that part switched off "
                   "(e.g. mgcl-fc), shown in an ablation table and plot. Branches: zs, cc, fc, ft, gc; "
                   "mgcl_f losses: ce, coarse, fine, instance; views (without the support's audio views)")
    p.add_argument("--param", action="append", metavar="METHOD.KEY=VALUE",
                   help="a hyper-parameter of one method, e.g. --param mgcl.topk=16 (repeatable)")
    backbones = "; ".join(f"{k}: {v}" for k, v in available_backbones().items())
    p.add_argument("--backbone", default="aisfx", help=f"backbone name (default aisfx). {backbones}")
    p.add_argument("--checkpoint", help="checkpoint id or local folder (--backbone clap)")
    add_machine_options(p)
    p.add_argument("--descriptions", action="append", metavar="[NAME=]FILE|builtin|none",
                   help="class descriptions for text backbones (default builtin); NAME=... for one dataset")
    p.add_argument("--captions", action="append", metavar="[NAME=]FILE|auto|none",
                   help="one caption per clip for text backbones (default none); a FILE is keyed by the "
                   "paths as written in the manifest (relative to --root for a dataset layout)")
    p.add_argument("--captioner", metavar="ID_OR_PATH", help="audio-captioning checkpoint for --captions auto")
    from mgcl.cli import default_store

    p.add_argument("--store", type=Path, default=default_store(),
                   help="feature store folder (default $MGCL_STORE or ~/.cache/mgcl/features)")
    p.add_argument("--batch-size", type=int, default=16, help="clips read and handed to the backbone at a time (default 16; "
                   "--backbone-batch-size sets windows per forward)")
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="report folder: DIR/NAME/{results.json,results.md,*.png} per dataset and DIR/results.md")
    p.set_defaults(func=cmd_benchmark)
    return p


def _protocols():
    from mgcl.protocols import PROTOCOLS

    return PROTOCOLS
