"""Few-shot detection in a long recording: when does each support class sound?

    recording --(one streamed backbone pass: frames.stream_frames)--> frames (T, D)
      --(windows of frames pooled, scored by the fitted method: scores.score_stream)--> (N, C)
      --(median filter, hysteresis per class, merge, min duration: events)--> events

The backbone runs once over the recording; each window of ``window`` seconds centred on every
``hop``-th frame is made of frames already computed, pooled into a clip-like query and scored
by the fitted few-shot method (calibrated probabilities). Classes named in ``ignore``
(background, the model's unknown label) are scored like any other but never become events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from mgcl.audio.stream import duration as source_duration
from mgcl.detection.events import Event, events_from_curve
from mgcl.detection.frames import stream_frames
from mgcl.detection.scores import ScoreCurve, score_stream, window_frames
from mgcl.detection.thresholds import DEFAULT_THRESHOLD, LOW_RATIO
from mgcl.errors import MgclError
from mgcl.types import AudioFeatures

#: Labels that are never reported as events (a background class of the support).
BACKGROUND_LABELS = ("background",)


@dataclass
class DetectOptions:
    """How scores become events (seconds unless said otherwise).

    window:       length of the window of frames scored at each step (0.5 s: 3 aisfx frames).
    hop:          seconds between scores; None: every frame (aisfx 0.186 s, CLAP 0.3125 s).
    pool:         "max" or "mean": how a window's frames make its clip embedding.
    median:       length of the median filter over the score curve (0: none).
    merge_gap:    events of a class closer than this are merged.
    min_duration: shorter events are dropped.
    threshold:    the high hysteresis threshold for every class; None: per class from the support.
    low_ratio:    the low threshold as a fraction of the high one.
    split_longer: events longer than this are re-cut where the score stays at least
                  ``split_ratio`` times their peak (a score that hovers above the low threshold
                  joins several events and the background between them); None: never. About
                  the length of the events sought or a little more (the detection
                  benchmark: 1 to 1.5 times the longest support event).
    split_ratio:  the fraction of an over-long event's peak that its pieces keep.
    """

    window: float = 0.5
    hop: float | None = None
    pool: str = "max"
    median: float = 0.5
    merge_gap: float = 0.3
    min_duration: float = 0.2
    threshold: float | None = None
    low_ratio: float = LOW_RATIO
    split_longer: float | None = None
    split_ratio: float = 0.7

    def check(self) -> DetectOptions:
        """Self, or a one-line MgclError naming the first bad option."""
        if not self.window > 0:
            raise MgclError(f"window must be positive seconds, got {self.window}")
        if self.hop is not None and not self.hop > 0:
            raise MgclError(f"hop must be positive seconds, got {self.hop}")
        if self.pool not in ("max", "mean"):
            raise MgclError(f"pool must be 'max' or 'mean', got {self.pool!r}")
        for name in ("median", "merge_gap", "min_duration"):
            if getattr(self, name) < 0:
                raise MgclError(f"{name.replace('_', '-')} must be >= 0 seconds, got {getattr(self, name)}")
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise MgclError(f"threshold must be a probability in [0, 1], got {self.threshold}")
        if not 0.0 < self.low_ratio <= 1.0:
            raise MgclError(f"low ratio must be in (0, 1], got {self.low_ratio}")
        if self.split_longer is not None and not self.split_longer > 0:
            raise MgclError(f"split-longer must be positive seconds, got {self.split_longer}")
        if not 0.0 < self.split_ratio <= 1.0:
            raise MgclError(f"split ratio must be in (0, 1], got {self.split_ratio}")
        return self


@dataclass
class Detection:
    """Detection in one recording: its score curve, events and the thresholds used."""

    filename: str
    curve: ScoreCurve
    events: list[Event]
    high: np.ndarray
    low: np.ndarray
    ignored: tuple[str, ...] = ()
    meta: dict = field(default_factory=dict)


def thresholds(options: DetectOptions, n_classes: int, support: np.ndarray | None = None):
    """(high (C,), low (C,)): ``options.threshold`` for every class when given, else the
    support's per-class thresholds, else ``DEFAULT_THRESHOLD``; low = low_ratio · high."""
    if options.threshold is not None:
        high = np.full(n_classes, float(options.threshold))
    elif support is not None:
        high = np.asarray(support, dtype=np.float64)
    else:
        high = np.full(n_classes, DEFAULT_THRESHOLD)
    return high, high * options.low_ratio


def ignored_labels(model, extra: Iterable[str] = BACKGROUND_LABELS) -> tuple[str, ...]:
    """Labels never reported as events: ``extra`` (background) and the model's
    ``unknown_label`` when it has one (open-set rejection)."""
    unknown = getattr(model, "unknown_label", None)
    return tuple(dict.fromkeys([*extra, *([str(unknown)] if unknown else [])]))


def reject_unknown(model, proba: np.ndarray) -> np.ndarray:
    """Scores with every class zeroed in windows the model would answer ``unknown`` for: a
    model with ``reject_threshold_`` (open-set rejection) rejects windows whose best
    probability is below it. Models without it: unchanged."""
    t = getattr(model, "reject_threshold_", None)
    if t is None:
        return proba
    keep = proba.max(axis=1, keepdims=True) >= float(t)
    return np.where(keep, proba, 0.0).astype(np.float32)


def model_scorer(model) -> Callable[[AudioFeatures], np.ndarray]:
    """The scoring function of a fitted FewShotAudioClassifier: calibrated probabilities,
    windows it rejects as unknown zeroed."""
    return lambda feats: reject_unknown(model, model.predict_proba_features(feats))


def score_curve(
    backbone,
    score: Callable[[AudioFeatures], np.ndarray],
    classes: Sequence[str],
    source,
    options: DetectOptions,
) -> ScoreCurve:
    """The class scores over one recording (one streamed backbone pass)."""
    options.check()
    step = float(backbone.frame_step)
    width = window_frames(options.window, step)
    hop = 1 if options.hop is None else window_frames(options.hop, step)
    pieces = stream_frames(backbone, source)
    times, scores = score_stream(pieces, score, width, hop, frame_step=step, pool=options.pool)
    if scores.ndim != 2 or (len(scores) and scores.shape[1] != len(classes)):
        raise MgclError(f"scores of shape {scores.shape} do not match {len(classes)} classes")
    return ScoreCurve(
        times=times,
        step=hop * step,
        scores=scores,
        classes=list(classes),
        duration=source_duration(source),
        meta={"window_frames": width, "hop_frames": hop, "frame_step": step, "pool": options.pool},
    )


def curve_events(
    curve: ScoreCurve,
    filename: str,
    options: DetectOptions,
    support_high: np.ndarray | None = None,
    ignore: Iterable[str] = BACKGROUND_LABELS,
) -> Detection:
    """Events of a score curve under ``options`` (thresholds: see :func:`thresholds`)."""
    high, low = thresholds(options, len(curve.classes), support_high)
    median = max(1, int(round(options.median / curve.step))) if options.median > 0 else 1
    ignore = tuple(ignore)
    events = events_from_curve(
        filename,
        curve.times,
        curve.step,
        curve.scores,
        curve.classes,
        high,
        low,
        median=median,
        merge_gap=options.merge_gap,
        min_duration=options.min_duration,
        ignore=ignore,
        duration=curve.duration,
        split_longer=options.split_longer,
        split_ratio=options.split_ratio,
    )
    return Detection(filename, curve, events, high, low, ignore)


def detect(
    backbone,
    score: Callable[[AudioFeatures], np.ndarray],
    classes: Sequence[str],
    source,
    options: DetectOptions | None = None,
    support_high: np.ndarray | None = None,
    ignore: Iterable[str] = BACKGROUND_LABELS,
    filename: str | None = None,
) -> Detection:
    """Score one recording and turn its curves into events (see the module docstring)."""
    options = (options or DetectOptions()).check()
    curve = score_curve(backbone, score, classes, source, options)
    name = filename if filename is not None else (str(source) if not isinstance(source, tuple) else "<waveform>")
    return curve_events(curve, name, options, support_high, ignore)


__all__ = [
    "BACKGROUND_LABELS",
    "DetectOptions",
    "Detection",
    "curve_events",
    "detect",
    "ignored_labels",
    "model_scorer",
    "reject_unknown",
    "score_curve",
    "thresholds",
]
