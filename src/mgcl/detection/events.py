"""From score curves to events: median smoothing, hysteresis thresholds, merging, minimum
duration, and the DCASE event list ``filename,onset,offset,event_label,score``.

All pure numpy on a curve sampled every ``step`` seconds; sample k stands for the stretch
``[t_k - step/2, t_k + step/2)`` of the recording.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy.ndimage import median_filter as _median

#: Columns of an event list (DCASE's sound event detection format plus the event's score).
COLUMNS = ("filename", "onset", "offset", "event_label", "score")


@dataclass(frozen=True)
class Event:
    """One detected event: ``onset``/``offset`` in seconds, ``score`` its peak smoothed score."""

    filename: str
    onset: float
    offset: float
    event_label: str
    score: float


def median_smooth(scores: np.ndarray, size: int) -> np.ndarray:
    """Running median of ``size`` samples along time, edges repeated: (N, C) -> (N, C).

    ``y_k = median(x_{k - size//2}, ..., x_{k + size//2})`` (x_j = x_0 for j < 0, x_{N-1} for
    j >= N); size <= 1 returns the input unchanged. An even size is made odd (+1), so that the
    window stays centred."""
    x = np.asarray(scores, dtype=np.float32)
    if size <= 1 or len(x) == 0:
        return x
    size = int(size) | 1
    return _median(x, size=(size,) + (1,) * (x.ndim - 1), mode="nearest")


def hysteresis(x: np.ndarray, high: float, low: float) -> list[tuple[int, int]]:
    """Runs ``[s, e)`` of samples with ``x >= low`` that hold at least one ``x >= high``.

    x (N,); ``low <= high``. An event starts where the score rises above ``high``, reaches
    back to where it first rose above ``low``, and lasts while it stays above ``low``:
    brief dips between ``low`` and ``high`` do not split it, and a bump that never reaches
    ``high`` is no event."""
    if low > high:
        raise ValueError(f"low threshold {low} is above the high one {high}")
    x = np.asarray(x, dtype=np.float64)
    above = np.concatenate([[False], x >= low, [False]])
    edges = np.flatnonzero(above[1:] != above[:-1])
    runs = []
    for s, e in zip(edges[::2], edges[1::2]):
        if np.any(x[s:e] >= high):
            runs.append((int(s), int(e)))
    return runs


def merge_close(intervals: Sequence[tuple[float, float]], gap: float) -> list[tuple[float, float]]:
    """Sorted ``(onset, offset)`` intervals with those less than ``gap`` seconds apart joined."""
    out: list[list[float]] = []
    for on, off in sorted(intervals):
        if out and on - out[-1][1] < gap:
            out[-1][1] = max(out[-1][1], off)
        else:
            out.append([on, off])
    return [(a, b) for a, b in out]


def drop_short(intervals: Sequence[tuple[float, float]], min_duration: float) -> list[tuple[float, float]]:
    """The intervals lasting at least ``min_duration`` seconds."""
    return [(a, b) for a, b in intervals if b - a >= min_duration]


def split_long(
    times: np.ndarray,
    step: float,
    curve: np.ndarray,
    intervals: Sequence[tuple[float, float]],
    longer: float,
    ratio: float,
) -> list[tuple[float, float]]:
    """Intervals lasting more than ``longer`` seconds re-cut at a fraction of their own peak.

    Inside such an interval only the runs of samples with ``x >= ratio · max(x inside)`` remain
    (each ``[t_s - step/2, t_{e-1} + step/2)``, clipped to the interval): a detection that a
    score hovering just above the low threshold stretched over several events and the
    background between them falls apart into the events, where the score peaks. Shorter
    intervals are kept as they are. times (N,), curve (N,)."""
    out = []
    for on, off in intervals:
        inside = np.flatnonzero((times >= on) & (times <= off))
        if off - on <= longer or len(inside) == 0:
            out.append((on, off))
            continue
        x = curve[inside]
        above = np.concatenate([[False], x >= ratio * x.max(), [False]])
        edges = np.flatnonzero(above[1:] != above[:-1])
        out += [
            (max(on, float(times[inside[s]]) - step / 2), min(off, float(times[inside[e - 1]]) + step / 2))
            for s, e in zip(edges[::2], edges[1::2])
        ]
    return out


def class_events(
    times: np.ndarray,
    step: float,
    curve: np.ndarray,
    high: float,
    low: float,
    merge_gap: float = 0.0,
    min_duration: float = 0.0,
    duration: float | None = None,
    split_longer: float | None = None,
    split_ratio: float = 0.7,
) -> list[tuple[float, float, float]]:
    """Events of one class from its (smoothed) curve: ``[(onset, offset, score), ...]``.

    times (N,) sample centres, curve (N,). Hysteresis runs ``[s, e)`` become
    ``[t_s - step/2, t_{e-1} + step/2)`` clipped to ``[0, duration]``; runs closer than
    ``merge_gap`` are merged, then those shorter than ``min_duration`` dropped; with
    ``split_longer``, events longer than that are re-cut at ``split_ratio`` times their peak
    (:func:`split_long`) and the pieces merged and dropped alike; the score is the curve's
    maximum inside the event."""
    times = np.asarray(times, dtype=np.float64)
    curve = np.asarray(curve, dtype=np.float64)
    end = float(duration) if duration is not None else (float(times[-1]) + step / 2 if len(times) else 0.0)
    spans = [
        (max(0.0, times[s] - step / 2), min(end, times[e - 1] + step / 2)) for s, e in hysteresis(curve, high, low)
    ]
    spans = drop_short(merge_close(spans, merge_gap), min_duration)
    if split_longer is not None:
        pieces = split_long(times, step, curve, spans, split_longer, split_ratio)
        spans = drop_short(merge_close(pieces, merge_gap), min_duration)
    out = []
    for on, off in spans:
        inside = (times >= on) & (times <= off)
        out.append((round(on, 4), round(off, 4), float(curve[inside].max()) if inside.any() else float(high)))
    return out


def events_from_curve(
    filename: str,
    times: np.ndarray,
    step: float,
    scores: np.ndarray,
    classes: Sequence[str],
    high: Sequence[float],
    low: Sequence[float],
    median: int = 1,
    merge_gap: float = 0.0,
    min_duration: float = 0.0,
    ignore: Iterable[str] = (),
    duration: float | None = None,
    split_longer: float | None = None,
    split_ratio: float = 0.7,
) -> list[Event]:
    """Every class's events, sorted by onset: smoothing (``median`` samples), hysteresis per
    class (``high[c]``, ``low[c]``), merging, the minimum duration and, with ``split_longer``,
    over-long events re-cut at ``split_ratio`` of their peak (:func:`class_events`). Classes
    in ``ignore`` (background, unknown) never give an event."""
    skip = set(ignore)
    smooth = median_smooth(scores, median)
    events = []
    for c, name in enumerate(classes):
        if name in skip:
            continue
        for on, off, sc in class_events(
            times, step, smooth[:, c], high[c], low[c], merge_gap, min_duration, duration, split_longer, split_ratio
        ):
            events.append(Event(filename, on, off, name, round(sc, 6)))
    return sorted(events, key=lambda e: (e.filename, e.onset, e.event_label))


def render_csv(events: Sequence[Event]) -> bytes:
    """``filename,onset,offset,event_label,score`` with a header, one row per event."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for e in events:
        w.writerow([e.filename, f"{e.onset:.3f}", f"{e.offset:.3f}", e.event_label, f"{e.score:.4f}"])
    return buf.getvalue().encode("utf-8")


def render_json(events: Sequence[Event], extra: dict | None = None) -> bytes:
    """``{"events": [{filename, onset, offset, event_label, score}, ...], **extra}``."""
    doc = {**(extra or {}), "events": [asdict(e) for e in events]}
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


__all__ = [
    "COLUMNS",
    "Event",
    "class_events",
    "drop_short",
    "events_from_curve",
    "hysteresis",
    "median_smooth",
    "merge_close",
    "render_csv",
    "render_json",
    "split_long",
]
