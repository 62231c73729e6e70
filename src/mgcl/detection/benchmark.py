"""The detection benchmark: soundscapes built from real clips, a DCASE Task 5 style protocol,
sed_eval's event-based F1, and the sliding-window prototype baseline beside mgcl.

**Soundscapes** (:func:`build_soundscapes`, the mixer of :mod:`mgcl.data.soundscapes`): one
recording per (seed, target class): ``n_target`` clips of the target class and
``n_distractors`` clips of other event classes, each trimmed to where it sounds
(:func:`~mgcl.data.soundscapes.active_span`), placed without overlap at random onsets (the
first after ``lead`` seconds) over a bed of background-class clips, each at a random
event-to-background ratio in ``ebr_db``. Clips are drawn from the given folds only.

**Protocol** (DCASE 2024 Task 5, few-shot bioacoustic event detection): in each recording,
the first K events of the target class are the support; the support region ends at the K-th
event's offset. Positives: those K events. Negatives ("background"): the rest of the support
region (gaps, and any distractor in them) cut into pieces of ``negative_seconds``, every
piece or at most a method's ``NEGATIVES_PER_POSITIVE`` · K of them. The support clips are
made at the grain of the queries (``support_grain="window"``): one per window of the scored
width centred on each frame of a positive or negative span, the very windows the recording
is scored with (``"event"``: one clip per span). A method is fitted on them (classes
``background`` and the target), its thresholds are chosen on the same support
(:mod:`mgcl.detection.thresholds`), and it detects the target in the rest of the recording;
references and detections are the target events with onset after the support region.
Scored with ``sed_eval.sound_event.EventBasedMetrics`` (collar 200 ms on onsets, offsets
within max(200 ms, 50 % of the event's length)), micro-averaged over the recordings of a
seed; mean ± std over seeds, and each method's F1 minus the baseline's paired by seed. The
grain, the negatives and the post-processing of the score curve (hysteresis low ratio, median
filter, re-cutting of detections longer than a multiple of the longest support event:
``POSTPROCESS``) were chosen per method on fold-1 soundscapes
(``benchmarks/detection_dev.py``), each method at its best there.

**Methods** (the same windows, hop and thresholds rule for all):

    prototype            the baseline: the prototype (nearest class mean, the DCASE baseline's
                         idea) on sliding windows, each window's clip embedding pooled from the
                         one backbone pass's frames (the same clip-like features mgcl gets)
    prototype_forwarded  the prototype on windows FORWARDED through the backbone one by one
                         (each support span and each sliding window of ``baseline_window``
                         seconds, every ``forward_hop`` frames, is its own backbone call): the
                         classic sliding-window cost; not in the default run
    mgcl, ...            any registered method on the pooled windows: mgcl (training-free)
                         adds the fine cache (OT between the window's frame segments and the
                         support's) to the coarse cache
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from mgcl.audio.decode import load_audio
from mgcl.classifier.estimator import FewShotAudioClassifier
from mgcl.data.soundscapes import (
    EBR_DB,
    PlacedEvent,
    active_span,
    crossfade_concat,
    read_annotations,
    soundscape,
    write_annotations,
)
from mgcl.detection.detect import DetectOptions, curve_events
from mgcl.detection.frames import stream_frames
from mgcl.detection.scores import ScoreCurve, pool_windows, window_frames
from mgcl.detection.thresholds import support_thresholds
from mgcl.errors import MgclError
from mgcl.types import AudioFeatures
from mgcl.util.atomic import atomic_write_bytes

log = logging.getLogger(__name__)

#: Default classes of UrbanSound8K used as the background bed (steady sounds).
BACKGROUND_CLASSES = ("air_conditioner", "engine_idling")
BASELINE = "prototype"
FORWARDED = "prototype_forwarded"
DEFAULT_METHODS = (BASELINE, "mgcl")
#: Negative pieces per positive event in a method's support (:func:`support_spans`; a method
#: not named: every gap of the support region). Chosen per method on the fold-1 development
#: soundscapes (``benchmarks/detection_dev.py``): the prototype's class mean is best with a
#: few negatives, mgcl's class-balanced caches with all of them.
NEGATIVES_PER_POSITIVE = {BASELINE: 2.0, FORWARDED: 2.0}
#: Post-processing per method (fields of :class:`~mgcl.detection.detect.DetectOptions` over the
#: run's options, and ``split_factor``: re-cut events longer than that many times the longest
#: support event, :func:`recording_options`; a method not named: the run's options as given).
#: Chosen per method on the fold-1 development soundscapes (``benchmarks/detection_dev.py``,
#: stages 2 and 3), like any hyper-parameter.
POSTPROCESS: dict[str, dict[str, float]] = {
    BASELINE: {"low_ratio": 0.5, "median": 0.8, "split_factor": 1.0, "split_ratio": 0.5},
    FORWARDED: {"low_ratio": 0.5, "median": 0.8, "split_factor": 1.0, "split_ratio": 0.5},
    "mgcl": {"low_ratio": 0.7, "median": 0.8, "split_factor": 1.5, "split_ratio": 0.7},
}
COLLAR = 0.2
#: The lenient collar reported beside the 200 ms one (seconds).
WIDE_COLLAR = 0.5


@dataclass
class SoundscapeSpec:
    """How the benchmark's recordings are built (seconds, dB)."""

    duration: float = 120.0
    n_target: int = 12
    n_distractors: int = 6
    ebr_db: tuple[float, float] = EBR_DB
    min_gap: float = 1.0
    lead: float = 4.0
    max_event: float = 4.0
    sample_rate: int = 22050
    background_classes: tuple[str, ...] = BACKGROUND_CLASSES


@dataclass
class Recording:
    name: str
    path: Path
    target: str
    seed: int
    events: list[PlacedEvent]


def _rng(seed: int, label: str) -> np.random.Generator:
    return np.random.default_rng([int(seed), *label.encode()])


def build_soundscapes(
    rows: Sequence,
    out_dir: str | Path,
    seeds: Sequence[int],
    spec: SoundscapeSpec,
    targets: Sequence[str] | None = None,
) -> list[Recording]:
    """Write one recording per (seed, target class) into ``out_dir`` (WAV + annotations.csv +
    soundscapes.json) from ``rows`` (``.path``, ``.label``); reused when the folder already
    holds the same recordings (same spec, seeds, clips)."""
    out = Path(out_dir)
    by_class: dict[str, list[str]] = {}
    for r in rows:
        by_class.setdefault(r.label, []).append(str(r.path))
    events_classes = sorted(c for c in by_class if c not in spec.background_classes)
    targets = sorted(targets or [c for c in events_classes if len(by_class[c]) >= spec.n_target])
    bg_paths = sorted(p for c in spec.background_classes for p in by_class.get(c, []))
    if not bg_paths:
        raise MgclError(f"no clip of the background classes {', '.join(spec.background_classes)}")
    meta = {"spec": asdict(spec), "seeds": list(seeds), "targets": targets, "n_rows": len(rows)}
    ann = out / "annotations.csv"
    meta_file = out / "soundscapes.json"
    if ann.is_file() and meta_file.is_file() and json.loads(meta_file.read_text()) == json.loads(json.dumps(meta)):
        return _recordings(out, read_annotations(ann))
    out.mkdir(parents=True, exist_ok=True)
    sr = spec.sample_rate
    cache: dict[str, np.ndarray] = {}

    def clip(path: str, trim: bool) -> np.ndarray:
        if path not in cache:
            cache[path] = load_audio(path, sr)
        w = cache[path]
        if trim:
            s, e = active_span(w, sr)
            w = w[s : min(e, s + int(spec.max_event * sr))]
        return w

    table = []
    for seed in seeds:
        for target in targets:
            rng = _rng(seed, target)
            pool = by_class[target]
            chosen = [pool[i] for i in rng.choice(len(pool), size=min(spec.n_target, len(pool)), replace=False)]
            others = [c for c in events_classes if c != target]
            distract = []
            for _ in range(spec.n_distractors):
                c = others[int(rng.integers(len(others)))]
                distract.append((c, by_class[c][int(rng.integers(len(by_class[c])))]))
            items = [(target, clip(p, True), Path(p).name) for p in chosen]
            items += [(c, clip(p, True), Path(p).name) for c, p in distract]
            order = rng.permutation(len(items))
            items = [items[i] for i in order]
            bg = [
                clip(bg_paths[int(i)], False)
                for i in rng.choice(len(bg_paths), size=min(8, len(bg_paths)), replace=False)
            ]
            wave, placed = soundscape(
                rng,
                sr,
                spec.duration,
                lambda n, bg=bg: crossfade_concat(bg, n, sr),
                items,
                spec.ebr_db,
                spec.min_gap,
                spec.lead,
            )
            name = f"seed{seed}_{target}.wav"
            sf.write(out / name, wave, sr, subtype="FLOAT")
            table += [(name, e) for e in placed]
            cache.clear()
    write_annotations(ann, table)
    atomic_write_bytes(meta_file, json.dumps(meta, indent=2).encode())
    return _recordings(out, read_annotations(ann))


def _recordings(out: Path, table) -> list[Recording]:
    recs: dict[str, Recording] = {}
    for name, e in table:
        if name not in recs:
            seed_s, target = Path(name).stem.split("_", 1)
            recs[name] = Recording(name, out / name, target, int(seed_s[4:]), [])
        recs[name].events.append(e)
    return list(recs.values())


# ----------------------------------------------------------------------------- the protocol
@dataclass
class Support:
    """One recording's K-shot support: positive and negative time spans, and where it ends."""

    positives: list[tuple[float, float]]
    negatives: list[tuple[float, float]]
    end: float


def support_spans(
    rec: Recording, k: int, negative_seconds: float, margin: float = 0.2, negatives_per_positive: float | None = 2.0
) -> Support:
    """The first ``k`` target events, and the gaps of ``[0, end]`` between them (``margin``
    seconds away from them) cut into pieces of ``negative_seconds`` (a shorter gap: one piece);
    at most ``negatives_per_positive · k`` pieces, evenly spread over the support region (a
    cache method sums over its keys, so a class with many more clips would win by number)."""
    targets = sorted((e for e in rec.events if e.label == rec.target), key=lambda e: e.onset)
    if len(targets) <= k:
        raise MgclError(f"{rec.name}: {len(targets)} target events, need more than {k}")
    pos = [(e.onset, e.offset) for e in targets[:k]]
    end = pos[-1][1]
    negs, t = [], 0.0
    for on, off in pos:
        a, b = t, on - margin
        while b - a >= 0.5 * negative_seconds:
            negs.append((a, min(b, a + negative_seconds)))
            a += negative_seconds
        t = off + margin
    if negatives_per_positive is not None and len(negs) > negatives_per_positive * k:
        keep = np.unique(np.round(np.linspace(0, len(negs) - 1, max(1, int(negatives_per_positive * k)))).astype(int))
        negs = [negs[i] for i in keep]
    return Support(pos, negs, end)


def span_frames(centres: np.ndarray, span: tuple[float, float]) -> np.ndarray:
    """Indices of the frames whose centre lies in ``[on, off)`` (at least the nearest one)."""
    on, off = span
    idx = np.flatnonzero((centres >= on) & (centres < off))
    if len(idx) == 0:
        idx = np.array([int(np.argmin(np.abs(centres - 0.5 * (on + off))))])
    return idx


def frame_rows(frames: torch.Tensor, centres: np.ndarray, span: tuple[float, float]) -> torch.Tensor:
    """The frames whose centre lies in ``[on, off)`` (at least the nearest one)."""
    return frames[torch.as_tensor(span_frames(centres, span))]


def pooled_support(
    frames, centres, sup: Support, frame_step: float, pool: str, width: int | None = None, hop: int = 1
) -> tuple[AudioFeatures, list[str]]:
    """Support clips made of the recording's frames, labelled ``target`` / ``background``.

    ``width`` None: one clip per positive and negative span (all its frames pooled).
    ``width`` W frames: clips at the grain of the queries, one per window of W frames
    centred on every ``hop``-th frame whose centre lies in a span (the same
    :func:`~mgcl.detection.scores.pool_windows` windows the recording is scored with).
    """
    items, labels = [], []
    for spans, lab in ((sup.positives, "target"), (sup.negatives, "background")):
        for s in spans:
            if width is None:
                rows = frame_rows(frames, centres, s)
                feats = pool_windows(rows, [0], len(rows), frame_step, pool)
                items.append((feats.clip[0], rows))
                labels.append(lab)
                continue
            idx = span_frames(centres, s)[::hop]
            feats = pool_windows(frames, [int(t) - width // 2 for t in idx], width, frame_step, pool)
            items += [(feats.clip[i], feats.frames[i][feats.frame_mask[i]]) for i in range(len(idx))]
            labels += [lab] * len(idx)
    return AudioFeatures.stack(items, frame_step), labels


def audio_support(backbone, wave, sr, sup: Support) -> tuple[AudioFeatures, list[str]]:
    """Support clips forwarded through the backbone: the audio of each span."""
    spans = [(s, "target") for s in sup.positives] + [(s, "background") for s in sup.negatives]
    clips = [wave[int(a * sr) : max(int(b * sr), int(a * sr) + 1)] for (a, b), _ in spans]
    return backbone.encode_audio(clips), [lab for _, lab in spans]


def forwarded_windows(backbone, wave, centres: np.ndarray, seconds: float, batch: int = 64) -> torch.Tensor:
    """(N, D) clip embeddings of windows of ``seconds`` of audio centred on ``centres``, each
    forwarded through the backbone (the sliding-window baseline's cost: one call per window)."""
    sr = int(backbone.sample_rate)
    half = int(round(seconds * sr / 2))
    out = []
    for i in range(0, len(centres), batch):
        clips = []
        for c in centres[i : i + batch]:
            m = int(round(c * sr))
            clips.append(wave[max(0, m - half) : max(m + half, max(0, m - half) + 1)])
        out.append(backbone.encode_audio(clips).clip)
    return torch.cat(out)


def sed_metrics(references: list[dict], estimates: list[dict], labels: Sequence[str]) -> dict:
    """sed_eval's event-based precision, recall and F1 (collar 200 ms on onset and offset,
    offset collar at least 50 % of the event's length), F1 on onsets only (200 ms), and F1
    with a 500 ms collar (``wide_f1``)."""
    try:
        import dcase_util
        import sed_eval
    except ImportError as exc:  # pragma: no cover - the dev extra installs it
        raise MgclError(f"the detection benchmark needs sed_eval (pip install -e '.[dev]'): {exc}") from None
    out = {}
    for key, offset, collar in (("", True, COLLAR), ("onset_", False, COLLAR), ("wide_", True, WIDE_COLLAR)):
        m = sed_eval.sound_event.EventBasedMetrics(
            event_label_list=list(labels), t_collar=collar, percentage_of_length=0.5, evaluate_offset=offset
        )
        files = sorted({r["filename"] for r in references} | {e["filename"] for e in estimates})
        for f in files:
            ref = dcase_util.containers.MetaDataContainer([r for r in references if r["filename"] == f])
            est = dcase_util.containers.MetaDataContainer([e for e in estimates if e["filename"] == f])
            m.evaluate(reference_event_list=ref, estimated_event_list=est)
        res = m.results_overall_metrics()["f_measure"]
        out[f"{key}f1"] = 100.0 * float(res["f_measure"] or 0.0)
        if not key:
            out["precision"] = 100.0 * float(res["precision"] or 0.0)
            out["recall"] = 100.0 * float(res["recall"] or 0.0)
    return out


def boundary_shift(found: Sequence[tuple[float, float]], truth: Sequence[tuple[float, float]], limit: float = 1.0):
    """(onset shift, offset shift) in seconds: the median of (true - detected) onsets and
    offsets over the support events that a detection overlaps, each within ±``limit``
    ((0, 0) when none does). The detections' systematic lead or lag (a frame sees audio
    around it) is measured on the support region, where the truth is known."""
    d_on, d_off = [], []
    for a, b in truth:
        hits = [(on, off) for on, off in found if on < b and off > a]
        if hits:
            on, off = min(hits, key=lambda h: abs(h[0] - a))
            d_on.append(a - on)
            d_off.append(b - off)
    if not d_on:
        return 0.0, 0.0
    return tuple(float(np.clip(np.median(d), -limit, limit)) for d in (d_on, d_off))


def shifted(found, shift: tuple[float, float], duration: float) -> list[tuple[float, float]]:
    """Detections with their boundaries moved by ``shift``, clipped to the recording; an event
    that would end before it starts keeps its centre and no length."""
    out = []
    for on, off in found:
        a, b = max(0.0, on + shift[0]), min(duration, off + shift[1])
        if b <= a:
            a = b = 0.5 * (on + off)
        out.append((round(a, 4), round(b, 4)))
    return out


@dataclass
class DetectionBenchmark:
    """What :func:`run_benchmark` measured: the results document and per-recording events."""

    doc: dict
    events: list[dict] = field(default_factory=list)


def window_thresholds(probs: np.ndarray, centres: np.ndarray, sup: Support, classes: Sequence[str]) -> np.ndarray:
    """(C,) thresholds from the support region's own windows: for the target, half-way between
    the median probability of the windows centred inside the K support events and that of
    the windows centred inside the negative spans (the other columns: 0.5)."""
    high = np.full(len(classes), 0.5)
    inside = lambda spans: np.any([(centres >= a) & (centres < b) for a, b in spans], axis=0)  # noqa: E731
    pos, neg = inside(sup.positives), inside(sup.negatives) if sup.negatives else np.zeros(len(centres), bool)
    c = list(classes).index("target")
    if pos.any() and neg.any():
        high[c] = 0.5 * (np.median(probs[pos, c]) + np.median(probs[neg, c]))
    return high


#: Post-processing options a method may change (fields of DetectOptions, and ``split_factor``).
POSTPROCESS_KEYS = ("median", "low_ratio", "merge_gap", "min_duration", "threshold", "split_ratio", "split_factor")


def method_postprocess(options: DetectOptions, changes: Mapping[str, float] | None) -> DetectOptions:
    """``options`` with a method's post-processing ``changes`` (DetectOptions fields other than
    the scored window: ``median``, ``low_ratio``, ``merge_gap``, ``min_duration``,
    ``threshold``, ``split_ratio``; ``split_factor`` is per recording: :func:`recording_options`)."""
    changes = dict(changes or {})
    bad = set(changes) - set(POSTPROCESS_KEYS)
    if bad:
        raise MgclError(f"post-processing options must not change {', '.join(sorted(bad))}")
    factor = changes.pop("split_factor", None)
    if factor is not None and not factor > 0:
        raise MgclError(f"split_factor must be positive, got {factor}")
    return replace(options, **changes).check()


def recording_options(options: DetectOptions, changes: Mapping[str, float] | None, sup: Support) -> DetectOptions:
    """A method's options for one recording's support: with ``split_factor`` f, events longer
    than f times the longest support event are re-cut (``split_longer``, the DCASE practice of
    adapting post-processing to the support events' length)."""
    factor = (changes or {}).get("split_factor")
    if factor is None:
        return options
    return replace(options, split_longer=float(factor) * max(b - a for a, b in sup.positives))


def _fit_and_score(method: str, support: AudioFeatures, labels: list[str], queries: AudioFeatures, backbone):
    clf = FewShotAudioClassifier(backbone=backbone, method=method, store=False)
    clf.fit_features(support, labels)
    codes = [clf.classes_.index(lab) for lab in labels]
    high, _ = support_thresholds(clf.method_, support, codes, len(clf.classes_), clf.temperature_)
    probs = np.concatenate([clf.predict_proba_features(queries[i : i + 512]) for i in range(0, len(queries), 512)])
    return clf.classes_, probs, high


def run_benchmark(
    backbone,
    recordings: Sequence[Recording],
    shots: Sequence[int] = (1, 3, 5),
    methods: Sequence[str] = DEFAULT_METHODS,
    options: DetectOptions | None = None,
    baseline_window: float = 1.0,
    forward_hop: int = 3,
    negative_seconds: float = 1.0,
    progress: Callable[[str], None] | None = None,
    frames_cache: dict | None = None,
    negatives_per_positive: float | None | Mapping[str, float | None] = None,
    align: bool = True,
    threshold_rule: str = "held-out",
    support_grain: str = "window",
    postprocess: Mapping[str, Mapping[str, float]] | None = None,
    scores_cache: dict | None = None,
) -> DetectionBenchmark:
    """Every method at every K on every recording (see the module docstring).

    ``negatives_per_positive``: the cap of :func:`support_spans` (None: every gap), one for
    all methods or ``{method: cap}`` (a method not named: every gap); None:
    ``NEGATIVES_PER_POSITIVE``. ``support_grain``: "window" (support clips at the grain of the
    queries, :func:`pooled_support` with the window's width) or "event" (one per span).
    ``postprocess``: ``{method: {option: value}}`` over ``options`` (a method not named:
    ``options``); None: ``POSTPROCESS``. ``scores_cache``: a dict kept between calls that
    holds each (recording, K, method, support)'s fitted scores, so runs that differ only in
    post-processing fit nothing again.
    """
    options = (options or DetectOptions()).check()
    if support_grain not in ("window", "event"):
        raise MgclError(f"support grain must be 'window' or 'event', got {support_grain!r}")
    caps = NEGATIVES_PER_POSITIVE if negatives_per_positive is None else negatives_per_positive
    cap = (lambda m: caps.get(m)) if isinstance(caps, Mapping) else (lambda m: caps)  # noqa: E731
    post = POSTPROCESS if postprocess is None else postprocess
    method_options = {m: method_postprocess(options, post.get(m)) for m in methods}
    step = float(backbone.frame_step)
    width = window_frames(options.window, step)
    seeds = sorted({r.seed for r in recordings})
    refs: dict[tuple, list[dict]] = {}
    ests: dict[tuple, list[dict]] = {}
    timing = {"backbone_pass_s": 0.0, "baseline_windows_s": 0.0, "scoring_s": {}}
    all_events = []
    for n, rec in enumerate(recordings):
        if progress:
            progress(f"[{n + 1}/{len(recordings)}] {rec.name}")
        t0 = time.perf_counter()
        if frames_cache is not None and str(rec.path) in frames_cache:
            frames, centres = frames_cache[str(rec.path)]
        else:
            pieces = list(stream_frames(backbone, str(rec.path)))
            frames = torch.cat([f for f, _ in pieces])
            centres = np.concatenate([s for _, s in pieces]).mean(axis=1)
            if frames_cache is not None:
                frames_cache[str(rec.path)] = (frames, centres)
        timing["backbone_pass_s"] += time.perf_counter() - t0
        wave = load_audio(rec.path, int(backbone.sample_rate))
        duration = len(wave) / backbone.sample_rate
        pooled = pool_windows(frames, [t - width // 2 for t in range(len(frames))], width, step, options.pool)
        window_clips = None
        if FORWARDED in methods:
            t0 = time.perf_counter()
            fw = np.arange(0, len(centres), forward_hop)
            clips = forwarded_windows(backbone, wave, centres[fw], baseline_window)
            window_clips = clips[
                torch.as_tensor(
                    np.minimum(np.round(np.arange(len(centres)) / forward_hop), len(fw) - 1).astype(np.int64)
                )
            ]
            timing["baseline_windows_s"] += time.perf_counter() - t0
        for k in shots:
            end = support_spans(rec, k, negative_seconds).end  # where the support region ends
            truth = [
                {"filename": rec.name, "onset": e.onset, "offset": e.offset, "event_label": rec.target}
                for e in rec.events
                if e.label == rec.target and e.onset >= end
            ]
            for m in methods:
                t0 = time.perf_counter()
                sup = support_spans(rec, k, negative_seconds, negatives_per_positive=cap(m))
                key = (str(rec.path), k, m, cap(m), support_grain, width, options.pool, baseline_window, forward_hop)
                if scores_cache is not None and key in scores_cache:
                    classes, probs, high = scores_cache[key]
                elif m == FORWARDED:
                    s_feats, labels = audio_support(backbone, wave, int(backbone.sample_rate), sup)
                    q = AudioFeatures(
                        window_clips,
                        window_clips.unsqueeze(1),
                        torch.ones(len(window_clips), 1, dtype=torch.bool),
                        step,
                    )
                    classes, probs, high = _fit_and_score("prototype", s_feats, labels, q, backbone)
                else:
                    grain = width if support_grain == "window" else None
                    s_feats, labels = pooled_support(frames, centres, sup, step, options.pool, grain)
                    classes, probs, high = _fit_and_score(m, s_feats, labels, pooled, backbone)
                if scores_cache is not None:
                    scores_cache[key] = (classes, probs, high)
                timing["scoring_s"][m] = timing["scoring_s"].get(m, 0.0) + time.perf_counter() - t0
                if threshold_rule == "windows":
                    high = window_thresholds(probs, centres, sup, classes)
                curve = ScoreCurve(centres, step, probs, list(classes), duration)
                opts = recording_options(method_options[m], post.get(m), sup)
                det = curve_events(curve, rec.name, opts, support_high=high, ignore=("background",))
                found = [(e.onset, e.offset) for e in det.events if e.event_label == "target"]
                shift = boundary_shift(found, sup.positives) if align else (0.0, 0.0)
                est = [
                    {"filename": rec.name, "onset": on, "offset": off, "event_label": rec.target}
                    for on, off in shifted(found, shift, duration)
                    if on >= sup.end
                ]
                refs.setdefault((m, k, rec.seed), []).extend(truth)
                ests.setdefault((m, k, rec.seed), []).extend(est)
                all_events += [{**e, "method": m, "shots": k} for e in est]
    labels = sorted({r.target for r in recordings})
    results = []
    f1 = {}
    for m in methods:
        for k in shots:
            per_seed = [sed_metrics(refs[(m, k, s)], ests[(m, k, s)], labels) for s in seeds]
            row = {"method": m, "shots": k, "n_seeds": len(seeds), "n_recordings": len(recordings)}
            for key in ("f1", "precision", "recall", "onset_f1", "wide_f1"):
                vals = [p[key] for p in per_seed]
                row[f"{key}_mean"] = round(float(np.mean(vals)), 2)
                row[f"{key}_std"] = round(float(np.std(vals)), 2)
            row["n_reference"] = sum(len(refs[(m, k, s)]) for s in seeds)
            row["n_estimated"] = sum(len(ests[(m, k, s)]) for s in seeds)
            f1[m, k] = np.array([p["f1"] for p in per_seed])
            results.append(row)
    if BASELINE in methods:  # paired over seeds: the same recordings for every method
        for row in results:
            if row["method"] != BASELINE:
                diff = f1[row["method"], row["shots"]] - f1[BASELINE, row["shots"]]
                row["f1_vs_baseline_mean"] = round(float(np.mean(diff)), 2)
                row["f1_vs_baseline_std"] = round(float(np.std(diff)), 2)
                row["seeds_above_baseline"] = int(np.sum(diff > 0))
    timing = {
        "backbone_pass_s": round(timing["backbone_pass_s"], 2),
        "baseline_windows_s": round(timing["baseline_windows_s"], 2),
        "scoring_s": {m: round(v, 2) for m, v in timing["scoring_s"].items()},
    }
    doc = {
        "backbone": backbone.name,
        "protocol": "detection",
        "metric": "sed_eval event-based F1 (%), collar 200 ms (offset: max(200 ms, 50 % of length)); "
        "onset_f1: onsets only",
        "options": {
            **asdict(options),
            "baseline_window": baseline_window,
            "negative_seconds": negative_seconds,
            "negatives_per_positive": {m: cap(m) for m in methods},
            "support_grain": support_grain,
            "postprocess": {m: dict(post.get(m) or {}) for m in methods},
            "align_boundaries_on_support": align,
            "threshold_rule": threshold_rule,
        },
        "results": results,
        "timing": timing,
    }
    return DetectionBenchmark(doc, all_events)


# ----------------------------------------------------------------------------- report
def markdown(doc: dict) -> str:
    """Methods x K table of ``F1 mean ± std`` (best of each K in bold), then onset-only F1."""
    rows = doc["results"]
    shots = sorted({r["shots"] for r in rows})
    methods = list(dict.fromkeys(r["method"] for r in rows))
    cell = {(r["method"], r["shots"]): r for r in rows}
    lines = []
    for key, title in (
        ("f1", "event-based F1 (%), collar 200 ms"),
        ("onset_f1", "onset-only F1 (%), collar 200 ms"),
        ("wide_f1", "event-based F1 (%), collar 500 ms"),
    ):
        best = {k: max(cell[(m, k)][f"{key}_mean"] for m in methods) for k in shots}
        lines += [f"**{title}**", "", "| method | " + " | ".join(f"{k}-shot" for k in shots) + " |"]
        lines.append("|---|" + "---:|" * len(shots))
        for m in methods:
            cells = []
            for k in shots:
                r = cell[(m, k)]
                text = f"{r[f'{key}_mean']:.2f} ± {r[f'{key}_std']:.2f}"
                cells.append(f"**{text}**" if r[f"{key}_mean"] == best[k] else text)
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        lines.append("")
    paired = [m for m in methods if "f1_vs_baseline_mean" in cell[(m, shots[0])]]
    if paired:
        lines += [
            f"**F1 minus the baseline's ({BASELINE}), paired by seed: mean ± std (seeds above)**",
            "",
            "| method | " + " | ".join(f"{k}-shot" for k in shots) + " |",
            "|---|" + "---:|" * len(shots),
        ]
        for m in paired:
            cells = [
                f"{cell[(m, k)]['f1_vs_baseline_mean']:+.2f} ± {cell[(m, k)]['f1_vs_baseline_std']:.2f} "
                f"({cell[(m, k)]['seeds_above_baseline']}/{cell[(m, k)]['n_seeds']})"
                for k in shots
            ]
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def plot(doc: dict) -> bytes:
    """PNG: F1 vs K per method, error bars = std over seeds."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0, 4.0), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for m in dict.fromkeys(r["method"] for r in doc["results"]):
        rows = sorted((r for r in doc["results"] if r["method"] == m), key=lambda r: r["shots"])
        ax.errorbar(
            [r["shots"] for r in rows],
            [r["f1_mean"] for r in rows],
            yerr=[r["f1_std"] for r in rows],
            marker="o",
            capsize=3,
            label=m,
        )
    ax.set_xlabel("support events (K)")
    ax.set_ylabel("event-based F1 (%)")
    ax.set_title(f"detection on soundscapes ({doc.get('dataset', '')})")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


def write_benchmark(bench: DetectionBenchmark, out_dir: str | Path) -> dict[str, Path]:
    """results.json, results.md, f1.png and events.csv (every detection) in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "json": out / "results.json",
        "md": out / "results.md",
        "plot": out / "f1.png",
        "events": out / "events.csv",
    }
    atomic_write_bytes(files["json"], (json.dumps(bench.doc, indent=2) + "\n").encode())
    head = f"# Detection: {bench.doc.get('dataset', '')} ({bench.doc['backbone']})\n\n"
    atomic_write_bytes(files["md"], (head + markdown(bench.doc) + "\n![F1](f1.png)\n").encode())
    atomic_write_bytes(files["plot"], plot(bench.doc))
    lines = ["method,shots,filename,onset,offset,event_label"]
    lines += [
        f"{e['method']},{e['shots']},{e['filename']},{e['onset']:.3f},{e['offset']:.3f},{e['event_label']}"
        for e in bench.events
    ]
    atomic_write_bytes(files["events"], ("\n".join(lines) + "\n").encode())
    return files


__all__ = [
    "BASELINE",
    "DEFAULT_METHODS",
    "FORWARDED",
    "NEGATIVES_PER_POSITIVE",
    "POSTPROCESS",
    "POSTPROCESS_KEYS",
    "DetectionBenchmark",
    "Recording",
    "SoundscapeSpec",
    "build_soundscapes",
    "method_postprocess",
    "recording_options",
    "run_benchmark",
    "sed_metrics",
    "support_spans",
    "write_benchmark",
    "markdown",
]
