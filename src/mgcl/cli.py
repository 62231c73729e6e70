"""The ``mgcl`` command: embed, fit, predict, evaluate, benchmark, describe, caption, data, explain, demo.

Every sub-command has ``--help``. Exit status: 0 on success, 1 when some inputs were bad
(the good ones are still processed and each bad one is listed), 2 on a usage error or an
unusable input (one line on stderr).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
import time
from pathlib import Path

from mgcl import __version__
from mgcl.errors import MgclError


def default_store() -> Path:
    """$MGCL_STORE, else ~/.cache/mgcl/features."""
    env = os.environ.get("MGCL_STORE")
    return Path(env) if env else Path.home() / ".cache" / "mgcl" / "features"


def make_backbone(args):
    from mgcl.backbones import get_backbone

    return get_backbone(args.backbone, **backbone_options(args))


def embed_rows(backbone, paths, store_dir, batch_size, desc="embedding"):
    """Embed files through the feature store with a progress bar; returns EmbedResult."""
    from mgcl.features import FeatureStore, embed_sources
    from mgcl.progress import progress_bar

    store = FeatureStore(Path(store_dir).expanduser(), backbone.identity) if store_dir is not None else None
    with progress_bar(len(paths), desc) as update:
        return embed_sources(backbone, paths, store=store, batch_size=batch_size, progress=update)


def support_views(backbone, paths, specs, rows, store_dir, batch_size, desc="embedding support views"):
    """A :class:`~mgcl.features.ViewCache` over ``paths`` when a method in ``specs`` trains
    on audio views (else None), with the views of ``rows`` embedded now (progress bar)."""
    from mgcl.evaluate import view_requests
    from mgcl.features import FeatureStore, ViewCache
    from mgcl.progress import progress_bar

    requests = view_requests(specs)
    if not requests:
        return None
    store = FeatureStore(Path(store_dir).expanduser(), backbone.identity) if store_dir is not None else None
    cache = ViewCache(backbone, paths, store, batch_size)
    for names in requests:
        with progress_bar(len(cache.missing(rows, names)) * len(names), desc, unit="view") as update:
            cache.prepare(rows, names, update)
    for i in sorted(cache.errors):
        print(f"  no audio views for {cache.errors[i]}", file=sys.stderr)
    return cache


def report_failures(result) -> None:
    for i in sorted(result.errors):
        print(f"  FAILED {result.errors[i]}", file=sys.stderr)


def split_list(text: str | None) -> list[str]:
    """'a, b,c' -> ['a', 'b', 'c'] (empty items dropped)."""
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def parse_shots(text: str) -> list[int]:
    try:
        shots = [int(t) for t in split_list(text)]
    except ValueError:
        raise MgclError(f"--shots must be comma-separated positive integers, got '{text}'") from None
    if not shots or any(k < 1 for k in shots):
        raise MgclError(f"--shots must be comma-separated positive integers, got '{text}'")
    return sorted(set(shots))


def parse_value(text: str):
    """A --param value: JSON when it parses (numbers, true/false, lists, objects), else a string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_params(items: list[str] | None, prefixed: bool = False) -> dict:
    """``key=value`` items -> {key: value}; with ``prefixed``: ``method.key=value`` ->
    {method: {key: value}}. Values are JSON when they parse; '1,2,4' gives a tuple for
    tuple-valued parameters."""
    out: dict = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip()
        form = "method.key=value" if prefixed else "key=value"
        if not sep or not key:
            raise MgclError(f"--param '{item}' is not of the form {form}")
        if prefixed:
            method, dot, name = key.partition(".")
            if not dot or not method or not name:
                raise MgclError(f"--param '{item}' is not of the form {form} (e.g. mgcl.topk=16)")
            out.setdefault(method, {})[name] = parse_value(value)
        else:
            out[key] = parse_value(value)
    return out


def machine_options(args) -> dict:
    """Backbone options that describe the machine, not the model (never saved in a model):
    ``--device`` and ``--backbone-batch-size``."""
    options = {}
    if getattr(args, "device", None):
        options["device"] = args.device
    batch = getattr(args, "backbone_batch_size", None)
    if batch is not None:
        if batch < 1:
            raise MgclError(f"--backbone-batch-size must be at least 1, got {batch}")
        options["batch_size"] = batch
    return options


def backbone_options(args) -> dict:
    options = {}
    if getattr(args, "checkpoint", None):
        options["checkpoint"] = args.checkpoint
    return {**options, **machine_options(args)}


def add_machine_options(p) -> None:
    """``--device`` and ``--backbone-batch-size`` on a command that runs a backbone."""
    p.add_argument("--device", help="torch device, e.g. cpu or cuda (default: cuda if available)")
    p.add_argument("--backbone-batch-size", type=int, metavar="N",
                   help="windows per backbone forward: CLAP 10 s windows (default 8), aisfx 2.3 s "
                   "blocks (default 64). Larger is faster on many cores and a GPU, and takes more "
                   "memory (the released CLAP: about 0.6 s per window at 16, 2-4 s at 1, on 2 cores)")


def check_text_needs(method_names, backbone) -> None:
    """Fail before embedding when a method needs a text tower the backbone lacks."""
    from mgcl.methods import method_class

    if getattr(backbone, "has_text", False):
        return
    need = [m for m in method_names if getattr(method_class(m), "needs_text", False)]
    if need:
        raise MgclError(
            f"method '{need[0]}' needs a text encoder, but backbone '{backbone.name}' is audio-only "
            "(use a CLAP backbone or another method)"
        )


def seconds(x: float) -> str:
    return f"{x:.1f} s"


# ---------------------------------------------------------------------------- embed
def cmd_embed(args) -> int:
    from mgcl.data.manifest import read_manifest

    rows = read_manifest(args.manifest)
    backbone = make_backbone(args)
    res = embed_rows(backbone, [r.path for r in rows], args.store, args.batch_size)
    n_ok = len(res.ok)
    rate = (res.computed / res.seconds) if res.seconds > 0 else float("inf")
    print(
        f"embedded {n_ok}/{len(rows)} files with {backbone.name} in {res.seconds:.1f} s "
        f"({len(rows) / max(res.seconds, 1e-9):.1f} clips/s overall, {rate:.1f} clips/s computed)"
    )
    print(f"computed: {res.computed}, cache hits: {res.cache_hits}, failed: {len(res.errors)}")
    print(f"store: {Path(args.store).resolve()}")
    if res.errors:
        print(f"{len(res.errors)} file(s) could not be embedded:", file=sys.stderr)
        report_failures(res)
        return 1
    return 0


# ---------------------------------------------------------------------------- fit
def cmd_fit(args) -> int:
    from collections import Counter

    from mgcl.classifier import CONFIG_FILE, WEIGHTS_FILE, FewShotAudioClassifier, build_method
    from mgcl.concepts.text import resolve_captions, resolve_descriptions, text_features
    from mgcl.data.manifest import read_manifest

    t0 = time.perf_counter()
    rows = read_manifest(args.manifest)
    labels = [r.label for r in rows]
    params = parse_params(args.param)
    view_names = build_method(args.method, params).view_names()  # bad method / parameter: fail now
    counts = Counter(labels)
    if len(counts) < 2:
        raise MgclError(f"{args.manifest}: need at least 2 classes to fit, found {len(counts)} "
                        f"('{labels[0]}')")
    if args.out.exists() and not args.out.is_dir():
        raise MgclError(f"--out {args.out}: exists and is not a folder")
    backbone = make_backbone(args)
    check_text_needs([args.method], backbone)
    descriptions = resolve_descriptions(args.descriptions, sorted(counts), backbone.has_text)
    captions = resolve_captions(args.captions, [r.path for r in rows], args.manifest, backbone.has_text,
                                args.captioner, args.store, device=getattr(args, "device", None))

    res = embed_rows(backbone, [r.path for r in rows], args.store, args.batch_size, desc="embedding support")
    t1 = time.perf_counter()
    if res.errors:
        print(f"{len(res.errors)} of {len(rows)} support file(s) could not be embedded; "
              "no model written (fix or remove them from the manifest):", file=sys.stderr)
        report_failures(res)
        return 1

    from mgcl.evaluate import MethodSpec

    paths = [r.path for r in rows]
    cache = support_views(backbone, paths, [MethodSpec(args.method, args.method, params)], range(len(rows)),
                          args.store, args.batch_size)
    views = cache.views(range(len(rows)), view_names) if cache is not None else None
    t_views = time.perf_counter()
    clf = FewShotAudioClassifier(
        backbone=backbone, method=args.method, method_params=params,
        backbone_options=backbone_options(args) or None, store=args.store,
        batch_size=args.batch_size, descriptions=descriptions,
    )
    clf.fit_features(res.stacked(), labels, text=text_features(backbone, sorted(counts), descriptions, captions),
                     views=views)
    t2 = time.perf_counter()
    clf.save(args.out)
    t3 = time.perf_counter()

    width = max(len(c) for c in clf.classes_)
    print(f"support: {len(rows)} clips, {len(clf.classes_)} classes ({args.manifest})")
    for c in clf.classes_:
        print(f"  {c.ljust(width)}  {counts[c]} clip{'s' if counts[c] != 1 else ''}")
    print(f"backbone: {backbone.name} ({res.computed} computed, {res.cache_hits} cache hits)")
    print(f"method: {args.method}" + (f" {json.dumps(params)}" if params else ""))
    _, learned = clf.method_.learned_state()
    chosen = {
        k: v for k, v in learned.items()
        if k not in ("n_classes_", "dim_") and v is not None
        and not (isinstance(v, dict) and ("__tensor_list__" in v or "__tensor_dict__" in v))
    }
    if chosen:
        print(f"chosen on the support set: {json.dumps(chosen, default=str)}")
    print(f"saved: {args.out} ({CONFIG_FILE}, {WEIGHTS_FILE})")
    if cache is not None:
        print(f"audio views: {len(views) if views is not None else 0} ({', '.join(view_names)}; "
              f"{cache.computed} computed, {cache.cache_hits} cache hits)")
    print(f"time: embed {seconds(res.seconds)}"
          + (f", audio views {seconds(t_views - t1)}" if cache is not None else "")
          + f", fit {seconds(t2 - t_views)}, save {seconds(t3 - t2)}, "
          f"total {seconds(t3 - t0)}")
    return 0


# ---------------------------------------------------------------------------- predict
def cmd_predict(args) -> int:
    from mgcl.classifier import FewShotAudioClassifier

    if args.top_k < 1:
        raise MgclError(f"--top-k must be at least 1, got {args.top_k}")
    clf = FewShotAudioClassifier.load(args.model, backbone_options=machine_options(args) or None,
                                      strict_backbone=not args.allow_backbone_mismatch)
    backbone = clf.get_backbone()
    paths = [str(p) for p in args.files]
    res = embed_rows(backbone, paths, args.store, args.batch_size, desc="embedding queries")
    good = res.ok
    top = clf.top_k_features(res.stacked(good), args.top_k) if good else []
    records = [
        {"path": paths[i], "label": t[0][0], "score": round(t[0][1], 6),
         "top_k": [{"label": lab, "score": round(p, 6)} for lab, p in t]}
        for i, t in zip(good, top)
    ]
    if args.json:
        print(json.dumps(records, indent=2, ensure_ascii=False))
    else:
        for r in records:
            alts = ", ".join(f"{a['label']} {a['score']:.3f}" for a in r["top_k"])
            print(f"{r['path']}\t{r['label']}\t{r['score']:.3f}" + (f"\t[{alts}]" if args.top_k > 1 else ""))
    if res.errors:
        print(f"{len(res.errors)} of {len(paths)} file(s) could not be classified:", file=sys.stderr)
        report_failures(res)
        return 1
    return 0


# ---------------------------------------------------------------------------- evaluate
def cmd_evaluate(args) -> int:
    from mgcl.concepts.text import resolve_captions, resolve_descriptions, support_text, text_features
    from mgcl.features import atomic_write_bytes
    from mgcl.evaluate import (
        check_protocol,
        encode_labels,
        format_table,
        method_specs,
        protocol_description,
        protocol_support_rows,
        run_protocol,
        summarise,
    )
    from mgcl.progress import progress_bar

    from mgcl.cli_benchmark import rows_for

    t0 = time.perf_counter()
    source = rows_for(args)
    rows = source.rows
    where = args.manifest if args.manifest is not None else f"dataset '{source.name}'"
    methods = split_list(args.methods)
    if not methods:
        raise MgclError("--methods is empty")
    shots = parse_shots(args.shots)
    if args.seeds < 1:
        raise MgclError(f"--seeds must be at least 1, got {args.seeds}")
    specs = method_specs(methods, parse_params(args.param, prefixed=True), split_list(args.ablate))
    if args.out is not None and args.out.is_dir():
        raise MgclError(f"--out {args.out}: is a folder; give a file name such as results.json")
    test_fold = args.test_fold
    folds = None
    if test_fold is not None:
        missing = [r for r in rows if r.fold is None]
        if missing:
            raise MgclError(f"--test-fold needs a 'fold' column in {where} "
                            f"({len(missing)} rows have none, e.g. {missing[0].path.name})")
        folds = [r.fold for r in rows]
    labels = [r.label for r in rows]
    check_protocol(labels, shots, folds, test_fold)  # bad shots / fold: fail before embedding
    backbone = make_backbone(args)
    check_text_needs(methods, backbone)

    t_setup = time.perf_counter()
    res = embed_rows(backbone, [r.path for r in rows], args.store, args.batch_size)
    t1 = time.perf_counter()
    if res.errors:
        print(f"{len(res.errors)} of {len(rows)} file(s) could not be embedded and are left out "
              "of the evaluation:", file=sys.stderr)
        report_failures(res)
    ok = res.ok
    if not ok:
        raise MgclError(f"no file of {where} could be embedded")
    labels = [labels[i] for i in ok]
    folds = [folds[i] for i in ok] if folds is not None else None
    check_protocol(labels, shots, folds, test_fold)
    features = res.stacked(ok)
    _, classes = encode_labels(labels)

    shown = source.names(classes)  # readable names for the text prompts
    descriptions = resolve_descriptions(args.descriptions, shown, backbone.has_text)
    captions = resolve_captions(args.captions, [rows[i].path for i in ok], source.manifest, backbone.has_text,
                                args.captioner, args.store, device=getattr(args, "device", None))
    text = text_features(backbone, shown, descriptions, captions)
    t2 = time.perf_counter()

    y, _ = encode_labels(labels)
    views = support_views(backbone, [rows[i].path for i in ok], specs,
                          protocol_support_rows(y, shots, args.seeds, folds, test_fold, classes),
                          args.store, args.batch_size)
    t_views = time.perf_counter()
    n_runs = len(specs) * len(shots) * args.seeds
    with progress_bar(n_runs, "evaluating", unit="run") as update:
        runs, _ = run_protocol(features, labels, specs, shots, args.seeds, folds, test_fold,
                               text_fn=lambda s_idx, cls: support_text(text, s_idx), progress=update,
                               views=views)
    t3 = time.perf_counter()
    results = summarise(runs)
    doc = {
        **results_header(backbone, source, len(ok), classes, specs),
        "protocol": protocol_description(shots, args.seeds, test_fold),
        "results": results,
        "timing": {"setup_seconds": round(t_setup - t0, 3),
                   **run_timing(res, t2 - t1, t3 - t_views, t3 - t0, runs, views, t_views - t2)},
    }
    if res.errors:
        doc["failed_files"] = [res.errors[i] for i in sorted(res.errors)]
    if args.out is not None:
        atomic_write_bytes(args.out, (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    chance = 100.0 / len(classes)
    print(f"{doc['dataset']}: {len(ok)} clips, {len(classes)} classes, backbone {backbone.name}, "
          f"{args.seeds} seed{'s' if args.seeds != 1 else ''}"
          + (f", test fold {test_fold}" if test_fold is not None else "")
          + f" (chance {chance:.1f}%)")
    print("accuracy (%), mean ± std over seeds:\n")
    print(format_table(results))
    print(f"\ntime: embed {seconds(res.seconds)} ({res.computed} computed, {res.cache_hits} cache hits)"
          + (f", audio views {seconds(t_views - t2)} ({views.computed} computed, {views.cache_hits} cache hits)"
             if views is not None else "")
          + f", evaluate {seconds(t3 - t_views)}, total {seconds(t3 - t0)}")
    if args.out is not None:
        print(f"results: {args.out}")
    return 1 if res.errors else 0


def results_header(backbone, source, n_clips: int, classes: list[str], specs) -> dict:
    """What every results JSON starts with: versions, backbone, dataset, classes, methods."""
    return {
        "mgcl_version": __version__,
        "backbone": backbone.name,
        "backbone_identity": backbone.identity,
        "dataset": source.name,
        "source": source.origin,
        "n_clips": n_clips,
        "n_classes": len(classes),
        "classes": classes,
        "class_names": source.names(classes),
        "methods": {s.label: {"method": s.method, "params": _json_params(s.params)} for s in specs},
    }


def run_timing(res, text_seconds: float, evaluate_seconds: float, total_seconds: float, runs,
               views=None, views_seconds: float = 0.0) -> dict:
    """The ``timing`` object of a results JSON: embedding (computed / cache hits / failed),
    text, audio views (when a method used them), evaluation and total seconds, and
    per-method fit / predict seconds."""
    from mgcl.evaluate import method_timing

    extra = {} if views is None else {"views": {
        "seconds": round(views_seconds, 3), "computed": views.computed, "cache_hits": views.cache_hits,
        "failed": len(views.errors)}}
    return {
        "embed_seconds": round(res.seconds, 3),
        "computed": res.computed,
        "cache_hits": res.cache_hits,
        "failed": len(res.errors),
        "text_seconds": round(text_seconds, 3),
        "evaluate_seconds": round(evaluate_seconds, 3),
        "total_seconds": round(total_seconds, 3),
        **extra,
        "methods": method_timing(runs),
    }


def _json_params(params: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}


# ---------------------------------------------------------------------------- demo
def cmd_demo(args) -> int:
    from mgcl.demo import run_demo
    from mgcl.evaluate import method_specs

    methods = split_list(args.methods)
    if not methods:
        raise MgclError("--methods is empty")
    method_specs(methods)  # unknown names fail before generating anything

    return run_demo(
        workdir=args.workdir,
        n_per_class=args.per_class,
        shots=parse_shots(args.shots),
        seeds=args.seeds,
        seed=args.seed,
        batch_size=args.batch_size,
        methods=tuple(split_list(args.methods)),
    )


# ---------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    from mgcl.backbones import available_backbones
    from mgcl.concepts.cli_caption import register as register_caption
    from mgcl.concepts.cli_describe import register as register_describe
    from mgcl.cli_benchmark import register as register_benchmark
    from mgcl.cli_explain import register as register_explain
    from mgcl.data.cli_data import register as register_data
    from mgcl.demo import DEMO_METHODS

    parser = argparse.ArgumentParser(
        prog="mgcl",
        description=(
            "Few-shot audio recognition on pretrained audio(-language) models. Typical flow: "
            "`mgcl embed` (features, cached) -> `mgcl evaluate` / `mgcl fit` -> `mgcl predict` -> "
            "`mgcl explain`. Datasets: `mgcl data download`, then `mgcl benchmark` runs the field's "
            "protocols with tables and plots. Try `mgcl demo` first."
        ),
    )
    parser.add_argument("--version", action="version", version=f"mgcl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    backbones = "; ".join(f"{k}: {v}" for k, v in available_backbones().items())

    def add_backbone(p, default="aisfx"):
        p.add_argument("--backbone", default=default, help=f"backbone name (default {default}). {backbones}")
        p.add_argument("--checkpoint", help="checkpoint id or local folder (--backbone clap)")
        add_machine_options(p)

    def add_store(p):
        p.add_argument(
            "--store", type=Path, default=default_store(),
            help="feature store folder; embeddings are cached here by audio content "
            "(default $MGCL_STORE or ~/.cache/mgcl/features)",
        )
        p.add_argument("--batch-size", type=int, default=16, help="clips read and handed to the backbone at a time (default 16; "
                       "--backbone-batch-size sets windows per forward)")

    p = sub.add_parser(
        "embed",
        help="compute and cache clip + frame embeddings for the files of a manifest",
        description=(
            "Embed every file of a manifest (CSV with header path,label[,fold,split]; paths relative "
            "to the CSV's folder or absolute) and cache clip and frame embeddings in the store. "
            "Files already in the store cost no forward pass. Bad files are listed at the end "
            "(exit status 1); the good ones are still embedded."
        ),
    )
    p.add_argument("--manifest", type=Path, required=True, help="manifest CSV")
    add_backbone(p)
    add_store(p)
    p.set_defaults(func=cmd_embed)

    def add_param(p, prefixed: bool):
        if prefixed:
            p.add_argument(
                "--param", action="append", metavar="METHOD.KEY=VALUE",
                help="set a hyper-parameter of one evaluated method, e.g. --param mgcl.topk=16 "
                "--param tip_adapter.betas=1,4,16 (repeatable; values are JSON when they parse, "
                "comma lists become tuples)",
            )
        else:
            p.add_argument(
                "--param", action="append", metavar="KEY=VALUE",
                help="set a hyper-parameter of the method, e.g. --param topk=16 --param betas=1,4,16 "
                "(repeatable; values are JSON when they parse, comma lists become tuples). "
                "Parameters not given are chosen by cross-validation on the support set or keep "
                "their defaults",
            )

    def add_descriptions(p):
        p.add_argument(
            "--descriptions", default="builtin", metavar="FILE|builtin|none",
            help='class descriptions for text backbones: a JSON/YAML file {"class": ["a sharp, '
            'high-pitched bark", ...]} (see `mgcl describe`), "builtin" (default: the shipped sets '
            'for classes whose names match) or "none"',
        )
        p.add_argument(
            "--captions", default="none", metavar="FILE|auto|none",
            help="one caption per clip for the caption branches of text backbones: a file written "
            "by `mgcl caption` on the same manifest, \"auto\" (caption now with --captioner, cached "
            "in the store) or \"none\" (default)",
        )
        p.add_argument("--captioner", metavar="ID_OR_PATH",
                       help="audio-captioning checkpoint for --captions auto "
                       "(default MU-NLPC/whisper-small-audio-captioning)")

    from mgcl.methods import available_methods

    method_list = ", ".join(available_methods())

    p = sub.add_parser(
        "fit",
        help="fit a few-shot classifier on a labelled support set and save it",
        description=(
            "Fit a few-shot classifier on the clips of a support manifest (CSV with header "
            "path,label; a handful of clips per class is enough) and save it as a folder "
            "(config.json + weights.safetensors, no pickle) for `mgcl predict`. Embeddings are "
            "cached in the store, so refitting with another method costs no forward pass. "
            "Hyper-parameters are chosen by cross-validation inside the support set. "
            "mgcl and mgcl_f also learn from audio views of each support clip (background "
            "noise, low-pass, high-pass: 3 more backbone calls per clip, cached in the store; "
            "--param augment= for none). "
            "If any support file cannot be decoded, they are all listed and no model is written "
            "(exit status 1): a support set silently missing clips is worse than an error."
        ),
        epilog="example: mgcl fit --manifest support.csv --method tip_adapter --out my_model",
    )
    p.add_argument("--manifest", type=Path, required=True, help="support manifest CSV (path,label)")
    add_backbone(p)
    p.add_argument("--method", default="mgcl_f",
                   help=f"few-shot method (default mgcl_f). Choices: {method_list}")
    add_param(p, prefixed=False)
    add_descriptions(p)
    add_store(p)
    p.add_argument("--out", type=Path, required=True, metavar="MODEL_DIR",
                   help="folder to write the model to (created; existing model files replaced)")
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser(
        "predict",
        help="classify audio files with a model saved by `mgcl fit`",
        description=(
            "Classify audio files with a saved model: prints, per file, the predicted label, its "
            "probability and the top-k alternatives (tab-separated), or a JSON list with --json. "
            "The model's backbone is rebuilt and must be the one it was fitted with. Files that "
            "cannot be decoded are listed on stderr (exit status 1); the others are still classified."
        ),
        epilog="example: mgcl predict my_model clips/*.wav --top-k 3 --json",
    )
    p.add_argument("model", type=Path, metavar="MODEL_DIR", help="folder written by `mgcl fit`")
    p.add_argument("files", type=Path, nargs="+", metavar="FILE", help="audio files to classify")
    p.add_argument("--top-k", type=int, default=3,
                   help="how many most probable classes to show per file (default 3, at most the "
                   "number of classes)")
    p.add_argument("--json", action="store_true",
                   help='print a JSON list of {"path", "label", "score", "top_k": [{"label", "score"}]}')
    add_machine_options(p)
    p.add_argument("--allow-backbone-mismatch", action="store_true",
                   help="only warn (instead of failing) when the backbone's identity differs from "
                   "the one the model was fitted with")
    add_store(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser(
        "evaluate",
        help="compare few-shot methods over shots x seeds on a labelled manifest",
        description=textwrap.fill(
            "The few-shot protocol on a labelled manifest or dataset: for every shot count K and seed, draw K "
            "support clips per class, fit every method on them and score it on the query clips. "
            "Without --test-fold the query is every clip not drawn for the support; with "
            "--test-fold F the support is drawn from the other folds and the query is the whole "
            "fold F (support and query never mix). Methods choose their hyper-parameters inside "
            "the support set only. Features come from the store: a second run on the same audio "
            "runs no backbone forward. Prints a table (accuracy %, mean ± std over seeds) and, "
            "with --out, writes the results JSON {backbone, dataset, protocol, results: [{method, "
            "shots, accuracy_mean, accuracy_std, n_seeds, n_query, ...}], timing}.", 88
        ),
        epilog=(
            "examples:\n"
            "  mgcl evaluate --manifest esc50/manifest.csv --methods prototype,tip_adapter,mgcl \\\n"
            "      --shots 1,2,4,8,16 --seeds 5 --test-fold 1 --ablate fc,ft --out results.json\n"
            "  mgcl evaluate --dataset urbansound8k --root ~/data/UrbanSound8K --test-fold 10 \\\n"
            "      --shots 1,4,16 --out us8k.json\n"
            "(`mgcl benchmark` runs every fold in turn and writes tables and plots)"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--manifest", type=Path,
                   help="manifest CSV (path,label[,fold]); the dataset is named after its folder")
    p.add_argument("--dataset", metavar="NAME",
                   help="instead of --manifest: a dataset in its official layout under --root "
                   "(`mgcl data list` shows them; e.g. esc50, urbansound8k)")
    p.add_argument("--root", type=Path, metavar="DIR",
                   help="with --dataset: the dataset's folder (e.g. ~/data/ESC-50-master)")
    p.add_argument("--names", type=Path, metavar="FILE",
                   help="a JSON file {label: readable name} overriding the class names of the text "
                   "prompts (default: labels made readable, air_conditioner -> air conditioner)")
    add_backbone(p)
    p.add_argument("--methods", default=",".join(DEMO_METHODS),
                   help=f"comma-separated methods (default {','.join(DEMO_METHODS)}). Choices: {method_list}")
    p.add_argument("--shots", default="1,2,4,8,16",
                   help="comma-separated support clips per class (default 1,2,4,8,16); every class "
                   "needs that many clips available for the support (and one more for the query "
                   "without --test-fold)")
    p.add_argument("--seeds", type=int, default=5, help="random support draws per shot count (default 5)")
    p.add_argument("--test-fold", metavar="F",
                   help="query = every clip of fold F, support drawn from the other folds "
                   "(needs a fold column)")
    p.add_argument("--ablate", metavar="NAME,...",
                   help="for each mgcl method, add one row per name with that part switched off, "
                   "reported as e.g. mgcl_f-fc. Branches: zs (zero-shot), cc (coarse cache), "
                   "fc (fine cache), ft (fine text OT), gc (caption cache); mgcl_f loss terms: "
                   "ce, coarse, fine, instance; views (without the audio views of the support)")
    add_param(p, prefixed=True)
    add_descriptions(p)
    add_store(p)
    p.add_argument("--out", type=Path, metavar="RESULTS_JSON", help="write the results JSON here")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "demo",
        help="generate a synthetic sound-event set, embed it with aisfx, compare few-shot methods",
        description=(
            "The whole pipeline on a seeded synthetic set (sirens, alarms, engine hum, knocks, rain, "
            "chirps, ... at random onsets in background noise), with the offline pretrained aisfx "
            "backbone: no download needed. Prints accuracy (mean ± std over seeds) per method and shots."
        ),
    )
    p.add_argument("--workdir", type=Path, default=Path.home() / ".cache" / "mgcl" / "demo",
                   help="where the synthetic audio and its features go (default ~/.cache/mgcl/demo)")
    p.add_argument("--per-class", type=int, default=16, help="clips per class to generate (default 16)")
    p.add_argument("--shots", default="1,2,4,8", help="comma-separated shots (default 1,2,4,8)")
    p.add_argument("--seeds", type=int, default=3, help="random support draws per shot (default 3)")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic set (default 0)")
    p.add_argument("--methods", default=",".join(DEMO_METHODS),
                   help=f"comma-separated methods to compare (default {','.join(DEMO_METHODS)})")
    p.add_argument("--batch-size", type=int, default=16, help="clips read and handed to the backbone at a time (default 16; "
                       "--backbone-batch-size sets windows per forward)")
    p.set_defaults(func=cmd_demo)
    register_describe(sub)
    register_caption(sub)
    register_data(sub)
    register_benchmark(sub)
    register_explain(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except MgclError as exc:
        print(f"mgcl {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"mgcl {args.command}: interrupted{getattr(args, 'interrupt_hint', '')}", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
