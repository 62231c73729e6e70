"""What every front end shares: make a backbone, embed audio through the store, the text side
of a run, audio views of the support, fit a classifier, predict, run a protocol on a dataset,
and the demo.

The command line (:mod:`mgcl.cli`) and any other front end (a service, a notebook) call these
functions; they never print (progress goes to a callback or the ``mgcl.progress`` logger,
notes to ``mgcl.*`` loggers) and raise :class:`~mgcl.errors.MgclError` with one line.

    audio -> embed() -> FeatureStore -> (views, text_for()) -> fit_classifier() / evaluate() -> results
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mgcl.backbones import get_backbone
from mgcl.classifier.estimator import FewShotAudioClassifier
from mgcl.data.manifest import read_manifest
from mgcl.data.sources import Dataset
from mgcl.data.synthetic import make_dataset
from mgcl.detection.detect import BACKGROUND_LABELS, Detection, DetectOptions, detect, ignored_labels, model_scorer
from mgcl.detection.thresholds import DEFAULT_THRESHOLD, support_thresholds
from mgcl.engines import Engine, embed_with
from mgcl.errors import InputsFailed, MgclError
from mgcl.evaluation.protocols import Protocol, RunResult
from mgcl.evaluation.specs import MethodSpec, method_specs, view_requests
from mgcl.evaluation.summary import method_timing, summarise
from mgcl.methods.base import encode_labels
from mgcl.methods.openset import UNKNOWN_LABEL, check_reject
from mgcl.methods.registry import build_method, method_class
from mgcl.store.cached import CachedRun
from mgcl.store.captions import CaptionCache, caption_sources
from mgcl.store.features import FeatureStore, ViewCache, default_store_dir
from mgcl.text.captioners import make_captioner
from mgcl.text.prompts import class_text_features
from mgcl.text.resolve import (
    DEFAULT_CAPTIONER,
    captions_from_file,
    captions_wanted,
    resolve_descriptions,
    text_features,
)
from mgcl.types import TextFeatures
from mgcl.util.progress import progress_bar
from mgcl.util.threads import torch_threads
from mgcl.version import __version__

log = logging.getLogger(__name__)

#: Torch threads while methods fit and score: their tensors are small, so one thread is as
#: fast as several and leaves the other cores to the backbone and to other work
#: (:mod:`mgcl.util.threads`).
FIT_THREADS = 1

#: Methods compared by the demo, cheapest first.
DEMO_METHODS = ("prototype", "tip_adapter", "mgcl", "mgcl_f")


# ----------------------------------------------------------------------------- backbone, store
def default_store() -> Path:
    """$MGCL_STORE, else ~/.cache/mgcl/features (the classifier's default too)."""
    return default_store_dir()


def make_backbone(name: str, **options):
    """A backbone by registry name with its options (``checkpoint``, ``device``, ``batch_size``)."""
    return get_backbone(name, **options)


def feature_store(backbone, store_dir: str | os.PathLike | None) -> FeatureStore | None:
    """The backbone's feature store under ``store_dir`` (None: no store)."""
    return FeatureStore(Path(store_dir).expanduser(), backbone.identity) if store_dir is not None else None


def check_text_needs(method_names: Sequence[str], backbone) -> None:
    """Fail before embedding when a method needs a text tower the backbone lacks."""
    if getattr(backbone, "has_text", False):
        return
    need = [m for m in method_names if getattr(method_class(m), "needs_text", False)]
    if need:
        raise MgclError(
            f"method '{need[0]}' needs a text encoder, but backbone '{backbone.name}' is audio-only "
            "(use a CLAP backbone or another method)"
        )


def embed(
    backbone,
    sources: Sequence,
    store_dir=None,
    batch_size: int = 16,
    desc: str = "embedding",
    engine: Engine | None = None,
    keep: bool = True,
) -> CachedRun:
    """Clip and frame features of files / ``(waveform, sr)`` pairs through the feature store,
    with progress; a bad input is an entry of ``errors``, never an exception. ``engine``: where
    the backbone runs (:mod:`mgcl.engines`; None: in this process); ``keep=False``: only fill
    the store (:func:`mgcl.engines.embed_with`)."""
    with progress_bar(len(sources), desc) as update:
        return embed_with(
            engine,
            backbone,
            list(sources),
            store=feature_store(backbone, store_dir),
            batch_size=batch_size,
            progress=update,
            keep=keep,
        )


def support_views(
    backbone,
    sources: Sequence,
    specs: Sequence[MethodSpec],
    rows,
    store_dir=None,
    batch_size: int = 16,
    desc: str = "embedding support views",
) -> ViewCache | None:
    """A :class:`~mgcl.store.features.ViewCache` over ``sources`` when a method in ``specs``
    trains on audio views (else None), with the views of ``rows`` embedded now."""
    requests = view_requests(specs)
    if not requests:
        return None
    cache = ViewCache(backbone, list(sources), feature_store(backbone, store_dir), batch_size)
    for names in requests:
        with progress_bar(len(cache.missing(rows, names)) * len(names), desc, unit="view") as update:
            cache.prepare(rows, names, update)
    for i in sorted(cache.errors):
        log.warning("no audio views for %s", cache.errors[i])
    return cache


# ----------------------------------------------------------------------------- text side
def caption_clips(
    sources: Sequence, captioner: str | None = None, store_dir=None, device=None, batch_size: int = 8
) -> list[str]:
    """One caption per source from an audio-captioning model, cached in the store's
    captions/ folder by audio content; a clip that cannot be captioned is an error."""
    model = make_captioner(captioner or DEFAULT_CAPTIONER, device=device, batch_size=batch_size)
    cache = CaptionCache(Path(store_dir).expanduser(), model.identity) if store_dir is not None else None
    with progress_bar(len(sources), "captioning") as update:
        res = caption_sources(model, list(sources), cache=cache, batch_size=batch_size, progress=update)
    if res.errors:
        first = "; ".join(res.errors[i] for i in sorted(res.errors)[:3])
        raise MgclError(f"{len(res.errors)} clip(s) could not be captioned: {first}")
    return list(res.values)


def text_for(
    backbone,
    classes: Sequence[str],
    descriptions: str | None = "builtin",
    captions: str | None = "none",
    sources: Sequence = (),
    manifest: Path | None = None,
    captioner: str | None = None,
    store_dir=None,
    device=None,
) -> tuple[TextFeatures | None, dict | None]:
    """The text side of a run: (TextFeatures or None for audio-only backbones, the class
    descriptions used or None). Prompts and descriptions of ``classes`` (readable names;
    ``descriptions``: a file, "builtin" or "none"), and one caption per source
    (``captions``: a file written by `mgcl caption` on ``manifest``, "auto" to caption now
    with ``captioner``, or "none")."""
    has_text = getattr(backbone, "has_text", False)
    desc = resolve_descriptions(descriptions, classes, has_text)
    caps = None
    if captions_wanted(captions, has_text):
        if str(captions).lower() == "auto":
            caps = caption_clips(sources, captioner, store_dir, device)
        else:
            caps = captions_from_file(captions, list(sources), manifest)
    return text_features(backbone, classes, desc, caps), desc


# ----------------------------------------------------------------------------- fit, predict
@dataclass
class FitReport:
    """What :func:`fit_classifier` did: the model and the counts and seconds of each step."""

    classifier: FewShotAudioClassifier
    counts: dict[str, int]
    embedded: CachedRun
    views: ViewCache | None = None
    n_views: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    background: CachedRun | None = None  # the background clips' embedding, when given


def fit_classifier(
    backbone,
    sources: Sequence,
    labels: Sequence[str],
    method: str = "mgcl_f",
    params: dict | None = None,
    store_dir=None,
    batch_size: int = 16,
    descriptions: str | None = "builtin",
    captions: str | None = "none",
    manifest: Path | None = None,
    captioner: str | None = None,
    device=None,
    backbone_options: dict | None = None,
    reject: str | float | None = None,
    unknown_label: str = UNKNOWN_LABEL,
    background: Sequence = (),
) -> FitReport:
    """Embed the support (and the audio views the method trains on) and fit a classifier.

    Every support file must embed: a support set silently missing clips is worse than an
    error, so any failure raises one line naming the files (and nothing is fitted).
    ``reject`` / ``unknown_label``: open-set rejection (:class:`FewShotAudioClassifier`);
    ``background``: clips of "nothing of interest" (files / pairs) that ``reject="auto"``
    learns to reject; they must all embed too."""
    labels = [str(v) for v in labels]
    params = dict(params or {})
    view_names = build_method(method, params).view_names()  # bad method / parameter: fail now
    counts = Counter(labels)
    if len(counts) < 2:
        raise MgclError(
            f"need at least 2 classes to fit, found {len(counts)}" + (f" ('{labels[0]}')" if labels else "")
        )
    check_text_needs([method], backbone)
    t0 = time.perf_counter()
    text, desc = text_for(
        backbone, sorted(counts), descriptions, captions, sources, manifest, captioner, store_dir, device
    )
    t1 = time.perf_counter()
    res = embed(backbone, sources, store_dir, batch_size, desc="embedding support")
    if res.errors:
        shown = "; ".join(res.errors[i] for i in sorted(res.errors)[:3])
        more = f" (and {len(res.errors) - 3} more)" if len(res.errors) > 3 else ""
        raise InputsFailed(
            f"{len(res.errors)} of {len(sources)} support file(s) could not be embedded; no model "
            f"fitted (fix or remove them): {shown}{more}",
            res.errors,
        )
    bg_run, bg = None, None
    if len(background):
        if check_reject(reject) != "auto":
            raise MgclError("background clips are used only to choose the threshold of --reject auto: add it")
        bg_run = embed(backbone, background, store_dir, batch_size, desc="embedding background")
        if bg_run.errors:
            shown = "; ".join(bg_run.errors[i] for i in sorted(bg_run.errors)[:3])
            err = InputsFailed(
                f"{len(bg_run.errors)} of {len(background)} background file(s) could not be embedded; no model "
                f"fitted (fix or remove them): {shown}",
                bg_run.errors,
            )
            err.what = "background"  # which inputs failed, for the front end's message
            raise err
        bg = bg_run.stacked()
    t2 = time.perf_counter()
    cache = support_views(
        backbone, sources, [MethodSpec(method, method, params)], range(len(sources)), store_dir, batch_size
    )
    views = cache.views(range(len(sources)), view_names) if cache is not None else None
    t3 = time.perf_counter()
    clf = FewShotAudioClassifier(
        backbone=backbone,
        method=method,
        method_params=params,
        backbone_options=backbone_options,
        store=False if store_dir is None else store_dir,
        batch_size=batch_size,
        descriptions=desc,
        reject=reject,
        unknown_label=unknown_label,
    )
    with torch_threads(FIT_THREADS):
        clf.fit_features(res.stacked(), labels, text=text, views=views, names=[str(s) for s in sources], background=bg)
    t4 = time.perf_counter()
    return FitReport(
        clf,
        dict(counts),
        res,
        cache,
        0 if views is None else len(views),
        {"text": t1 - t0, "embed": t2 - t1, "views": t3 - t2, "fit": t4 - t3},
        background=bg_run,
    )


@dataclass
class Predictions:
    """Per input that embedded: its index, top-k ``[(label, probability), ...]`` (classes
    only) and its predicted label (``labels``: the top class, or the classifier's unknown
    label when the clip is rejected); the inputs that failed in ``errors`` (index -> one-line
    reason)."""

    indices: list[int]
    top_k: list[list[tuple[str, float]]]
    errors: dict[int, str]
    embedded: CachedRun
    labels: list[str] | None = None


def predict(
    classifier: FewShotAudioClassifier,
    sources: Sequence,
    store_dir=None,
    batch_size: int = 16,
    top_k: int = 3,
    engine: Engine | None = None,
) -> Predictions:
    """Classify audio files / ``(waveform, sr)`` pairs with a fitted classifier; bad inputs
    are reported in ``errors`` and the others are still classified. ``engine``: where the
    backbone runs (None: in this process)."""
    if int(top_k) != top_k or top_k < 1:
        raise MgclError(f"top-k must be at least 1, got {top_k}")
    res = embed(classifier.get_backbone(), sources, store_dir, batch_size, desc="embedding queries", engine=engine)
    good = res.ok
    feats = res.stacked(good) if good else None
    top = classifier.top_k_features(feats, int(top_k)) if good else []
    labels = classifier.predict_features(feats) if good else []
    return Predictions(good, top, dict(res.errors), res, labels)


# ----------------------------------------------------------------------------- evaluation
@dataclass
class Evaluation:
    """A protocol run on one dataset: the results document (DESIGN §3), the per-run records
    and what the report needs."""

    doc: dict
    runs: list[RunResult]
    classes: list[str]
    names: list[str]
    embedded: CachedRun
    views: ViewCache | None
    seconds: dict[str, float]


def results_header(backbone, dataset: Dataset, n_clips: int, classes: list[str], specs) -> dict:
    """What every results JSON starts with: versions, backbone, dataset, classes, methods."""
    return {
        "mgcl_version": __version__,
        "backbone": backbone.name,
        "backbone_identity": backbone.identity,
        "dataset": dataset.name,
        "source": dataset.origin,
        "n_clips": n_clips,
        "n_classes": len(classes),
        "classes": classes,
        "class_names": dataset.names(classes),
        "methods": {s.label: {"method": s.method, "params": _json_params(s.params)} for s in specs},
    }


def _json_params(params: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}


def run_timing(res: CachedRun, seconds: dict[str, float], runs, views: ViewCache | None = None) -> dict:
    """The ``timing`` object of a results JSON: embedding (computed / cache hits / failed),
    text, audio views (when a method used them), evaluation and total seconds, and
    per-method fit / predict seconds."""
    extra = (
        {}
        if views is None
        else {
            "views": {
                "seconds": round(seconds["views"], 3),
                "computed": views.computed,
                "cache_hits": views.cache_hits,
                "failed": len(views.errors),
            }
        }
    )
    return {
        "embed_seconds": round(res.seconds, 3),
        "computed": res.computed,
        "cache_hits": res.cache_hits,
        "failed": len(res.errors),
        "text_seconds": round(seconds["text"], 3),
        "evaluate_seconds": round(seconds["evaluate"], 3),
        "total_seconds": round(seconds["total"], 3),
        **extra,
        "methods": method_timing(runs),
    }


def check_evaluation(dataset: Dataset, protocol: Protocol, labels=None, keep=None) -> None:
    """The protocol's one-line error on this dataset (rows ``keep`` only), before any work."""
    pick = (lambda xs: xs) if keep is None else (lambda xs: None if xs is None else [xs[i] for i in keep])
    labels = [r.label for r in dataset.rows] if labels is None else labels
    try:
        protocol.check(labels, pick(dataset.folds), pick(dataset.splits))
    except MgclError as exc:
        raise MgclError(f"{dataset.name}: {exc}") from None


def evaluate(
    dataset: Dataset,
    backbone,
    specs: Sequence[MethodSpec],
    protocol: Protocol,
    store_dir=None,
    batch_size: int = 16,
    descriptions: str | None = "builtin",
    captions: str | None = "none",
    captioner: str | None = None,
    device=None,
    engine: Engine | None = None,
) -> Evaluation:
    """Run ``protocol`` with every method of ``specs`` on ``dataset`` (cached features): embed,
    the text side, the support's audio views, the tasks, and the results document.

    Files that cannot be embedded are left out (listed in ``doc["failed_files"]``). ``engine``
    runs the embedding pass over the dataset (None: in this process); the support's audio
    views, a few per support clip, are embedded here."""
    t0 = time.perf_counter()
    rows = dataset.rows
    res = embed(
        backbone, [r.path for r in rows], store_dir, batch_size, desc=f"embedding {dataset.name}", engine=engine
    )
    t1 = time.perf_counter()
    ok = res.ok
    if not ok:
        raise MgclError(f"{dataset.name}: no file could be embedded")
    labels = [rows[i].label for i in ok]
    check_evaluation(dataset, protocol, labels, ok)
    folds = None if dataset.folds is None else [dataset.folds[i] for i in ok]
    splits = None if dataset.splits is None else [dataset.splits[i] for i in ok]
    features = res.stacked(ok)
    _, classes = encode_labels(labels)
    names = dataset.names(classes)
    paths = [rows[i].path for i in ok]
    text, _ = text_for(backbone, names, descriptions, captions, paths, dataset.manifest, captioner, store_dir, device)
    t2 = time.perf_counter()
    views = support_views(
        backbone,
        paths,
        specs,
        protocol.support_rows(labels, folds, splits),
        store_dir,
        batch_size,
        desc=f"{dataset.name}: support views",
    )
    t3 = time.perf_counter()
    desc = f"{dataset.name}: {protocol.name}"
    with progress_bar(protocol.n_runs(len(specs), folds), desc, unit="run") as update, torch_threads(FIT_THREADS):
        runs, _ = protocol.run(features, labels, specs, folds, splits, text=text, progress=update, views=views)
    t4 = time.perf_counter()
    seconds = {"embed": t1 - t0, "text": t2 - t1, "views": t3 - t2, "evaluate": t4 - t3, "total": t4 - t0}
    doc = {
        **results_header(backbone, dataset, len(ok), classes, specs),
        "protocol": protocol.describe(dataset.protocol, folds, classes),
        "results": summarise(runs),
        "timing": run_timing(res, seconds, runs, views),
    }
    if res.errors:
        doc["failed_files"] = [res.errors[i] for i in sorted(res.errors)]
    return Evaluation(doc, runs, classes, names, res, views, seconds)


# ----------------------------------------------------------------------------- demo
@dataclass
class Demo:
    """The demo's outcome: where the set is, its size, and the results rows."""

    manifest: Path
    n_clips: int
    n_classes: int
    results: list[dict]
    embedded: CachedRun
    views: ViewCache | None
    seconds: dict[str, float]


def run_demo(
    workdir: Path,
    n_per_class: int = 16,
    shots: Sequence[int] = (1, 2, 4, 8),
    seeds: int = 3,
    seed: int = 0,
    batch_size: int = 16,
    methods: Sequence[str] = DEMO_METHODS,
    backbone_name: str = "aisfx",
    on_step: Callable[[str], None] | None = None,
) -> Demo:
    """The whole pipeline on a seeded synthetic sound-event set: generate (cached on disk),
    embed with ``backbone_name`` (cached), K support clips per class drawn per seed, the rest
    is the query. ``on_step(message)`` hears each finished step."""
    say = on_step or log.info
    t0 = time.perf_counter()
    workdir = Path(workdir)
    manifest = make_dataset(workdir / f"synthetic-seed{seed}-n{n_per_class}", n_per_class=n_per_class, seed=seed)
    rows = read_manifest(manifest)
    labels = [r.label for r in rows]
    n_classes = len(set(labels))
    say(f"synthetic set: {len(rows)} clips, {n_classes} classes ({manifest})")
    t1 = time.perf_counter()
    backbone = make_backbone(backbone_name)
    res = embed(backbone, [r.path for r in rows], workdir / "features", batch_size)
    if res.errors:
        raise MgclError(
            f"{len(res.errors)} synthetic clip(s) could not be embedded: "
            + "; ".join(res.errors[i] for i in sorted(res.errors)[:3])
        )
    t2 = time.perf_counter()
    say(f"embedded with {backbone.name}: {res.computed} computed, cache hits: {res.cache_hits} ({res.seconds:.1f} s)")
    specs = method_specs(list(methods))
    protocol = Protocol("full-way", tuple(shots), seeds, calibrate=False)  # the demo reports accuracy only
    views = support_views(
        backbone, [r.path for r in rows], specs, protocol.support_rows(labels), workdir / "features", batch_size
    )
    if views is not None:
        say(f"audio views of the support clips: {views.computed} computed, cache hits: {views.cache_hits}")
    t3 = time.perf_counter()
    with progress_bar(protocol.n_runs(len(specs)), "evaluating", unit="run") as update, torch_threads(FIT_THREADS):
        runs, _ = protocol.run(res.stacked(), labels, specs, progress=update, views=views)
    t4 = time.perf_counter()
    seconds = {"generate": t1 - t0, "embed": t2 - t1, "views": t3 - t2, "evaluate": t4 - t3, "total": t4 - t0}
    return Demo(manifest, len(rows), n_classes, summarise(runs), res, views, seconds)


# ----------------------------------------------------------------------------- detection
@dataclass
class DetectionRun:
    """``mgcl detect`` on several recordings: one Detection per good file, errors by index,
    and how the thresholds were chosen (in words)."""

    detections: list[Detection]
    indices: list[int]
    errors: dict[int, str]
    thresholds: str


def detection_thresholds(classifier: FewShotAudioClassifier, store_dir=None, batch_size: int = 16):
    """Per-class high thresholds chosen on the model's support clips (held out one shot at a
    time, :func:`mgcl.detection.thresholds.support_thresholds`), re-embedded through the
    store from the paths the model recorded, with their audio views when the method trains
    on them; ``(None, why)`` when they are not all at hand."""
    names = getattr(classifier, "support_names_", None) or []
    if not names or any(n.startswith("<waveform") or not os.path.isfile(n) for n in names):
        return None, f"{DEFAULT_THRESHOLD} (the model's support clips are not at hand to choose one)"
    bb = classifier.get_backbone()
    res = embed(bb, names, store_dir, batch_size, desc="embedding the support")
    if res.errors:
        return None, f"{DEFAULT_THRESHOLD} (some support clips could not be read)"
    codes = [classifier.classes_.index(lab) for lab in classifier.support_labels_]
    text = class_text_features(bb, classifier.classes_, classifier.descriptions) if bb.has_text else None
    views = None
    view_names = classifier.method_.view_names()
    if view_names:  # fitted with the clips' audio views (store hits): the held-out clones are too
        views = ViewCache(bb, names, feature_store(bb, store_dir), batch_size).views(range(len(names)), view_names)
    with torch_threads(FIT_THREADS):
        return support_thresholds(
            classifier.method_, res.stacked(), codes, len(classifier.classes_), classifier.temperature_, text, views
        )


def detect_files(
    classifier: FewShotAudioClassifier,
    sources: Sequence,
    options: DetectOptions,
    store_dir=None,
    batch_size: int = 16,
    ignore: Sequence[str] = BACKGROUND_LABELS,
    on_file: Callable[[int, Detection], None] | None = None,
) -> DetectionRun:
    """Detect the model's classes in each recording (any length, streamed): one backbone pass
    per file, the fitted method scoring windows of its frames, events from the curves. The
    thresholds are ``options.threshold`` or chosen on the model's support
    (:func:`detection_thresholds`); labels in ``ignore`` and the model's unknown label are
    never events. A file that cannot be read is an entry of ``errors``."""
    options.check()
    high, how = None, f"{options.threshold} (given)"
    if options.threshold is None:
        high, how = detection_thresholds(classifier, store_dir, batch_size)
    bb = classifier.get_backbone()
    score = model_scorer(classifier)
    skip = ignored_labels(classifier, ignore)
    out, indices, errors = [], [], {}
    for i, src in enumerate(sources):
        try:
            det = detect(bb, score, classifier.classes_, src, options, support_high=high, ignore=skip)
        except MgclError as exc:
            errors[i] = str(exc)
            continue
        out.append(det)
        indices.append(i)
        if on_file is not None:
            on_file(i, det)
    return DetectionRun(out, indices, errors, how)
