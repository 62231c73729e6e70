"""A small seeded soundscape mixer: long recordings with event clips at known onsets over a
background, at a controlled event-to-background ratio, with their annotations.

Why not scaper (the field's synthesiser, JAMS annotations)? scaper 1.6.5 needs
``soxbindings``, which has no wheel for this Python/Linux and builds only against the C
headers of libsox (a system package, ``libsox-dev``), plus the ``sox`` command-line program
for its time/pitch changes; mgcl installs from pip alone. The part of scaper a detection
benchmark needs - place given clips at chosen onsets over a background at a given ratio and
write the annotation - is the few pure functions below, seeded and exact.

    background(n)  : clips of the background classes, crossfaded end to end, to n samples
    events         : [(label, waveform)] placed without overlap at random onsets (a minimum gap)
    ratio (EBR)    : event power over the background's power under the event, in dB
                     (uniform in a range per event), as :func:`mgcl.data.synthetic.synth_clip`
    annotation     : filename,onset,offset,event_label per event (DCASE format)

:func:`active_span` trims a real clip to where it sounds (frames within 20 dB of its loudest),
so that an annotation's onset and offset are those of the sound, not of the file.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from mgcl.util.atomic import atomic_write_bytes

#: Default event-to-background ratio range (dB) and minimum gap between events (s).
EBR_DB = (0.0, 12.0)
MIN_GAP = 1.0


@dataclass(frozen=True)
class PlacedEvent:
    """One event of a soundscape: seconds, label, the clip it came from, its EBR in dB."""

    onset: float
    offset: float
    label: str
    source: str = ""
    ebr_db: float = 0.0


def active_span(wave: np.ndarray, sr: int, floor_db: float = 20.0, frame: float = 0.05) -> tuple[int, int]:
    """``[start, end)`` samples of the part of a clip that sounds: from the first to the last
    ``frame``-second frame whose RMS is within ``floor_db`` of the loudest frame's."""
    n = max(1, int(frame * sr))
    k = max(1, len(wave) // n)
    rms = np.sqrt(np.mean(np.asarray(wave[: k * n], dtype=np.float64).reshape(k, n) ** 2, axis=1) + 1e-20)
    loud = np.flatnonzero(20.0 * np.log10(rms / rms.max()) >= -floor_db)
    if len(loud) == 0:
        return 0, len(wave)
    return int(loud[0] * n), int(min(len(wave), (loud[-1] + 1) * n))


def crossfade_concat(pieces: Sequence[np.ndarray], n: int, sr: int, fade: float = 0.5) -> np.ndarray:
    """Pieces joined end to end with ``fade``-second linear crossfades, cycled until ``n``
    samples."""
    if not pieces:
        raise ValueError("no background pieces")
    f = max(1, int(fade * sr))
    out = np.zeros(0, dtype=np.float64)
    i = 0
    while len(out) < n:
        p = np.asarray(pieces[i % len(pieces)], dtype=np.float64)
        i += 1
        if len(out) == 0 or len(p) <= 2 * f or len(out) <= f:
            out = np.concatenate([out, p])
            continue
        ramp = np.linspace(0.0, 1.0, f)
        out[-f:] = out[-f:] * (1.0 - ramp) + p[:f] * ramp
        out = np.concatenate([out, p[f:]])
    return out[:n]


def place_onsets(
    rng: np.random.Generator, lengths: Sequence[float], duration: float, min_gap: float = MIN_GAP, start: float = 0.0
) -> list[float]:
    """Random non-overlapping onsets (s) for events of ``lengths`` seconds in ``[start, duration]``,
    at least ``min_gap`` apart, in the given order: the free time is split at uniform random
    points. ValueError when the events do not fit."""
    lengths = [float(x) for x in lengths]
    free = duration - start - sum(lengths) - min_gap * (len(lengths) + 1)
    if free < 0:
        raise ValueError(f"{len(lengths)} events of {sum(lengths):.1f} s do not fit in {duration - start:.1f} s")
    cuts = np.sort(rng.uniform(0.0, free, size=len(lengths)))
    onsets, t, prev = [], start + min_gap, 0.0
    for length, c in zip(lengths, cuts):
        t += c - prev
        prev = c
        onsets.append(round(t, 4))
        t += length + min_gap
    return onsets


def mix(
    background: np.ndarray,
    events: Sequence[tuple[np.ndarray, float]],
    sr: int,
    ebr_db: Sequence[float],
    peak: float = 0.9,
) -> np.ndarray:
    """The background with each ``(wave, onset_seconds)`` event added at its EBR: the event is
    scaled so that its power is ``ebr`` dB above the background's over the event's span;
    the mixture is then scaled to the given peak. -> float32 (n,)."""
    out = np.asarray(background, dtype=np.float64).copy()

    def power(x):
        return float(np.mean(np.square(x))) + 1e-20

    for (wave, onset), ebr in zip(events, ebr_db):
        s = int(round(onset * sr))
        w = np.asarray(wave, dtype=np.float64)[: max(0, len(out) - s)]
        if len(w) == 0:
            continue
        gain = np.sqrt(power(out[s : s + len(w)]) * 10.0 ** (float(ebr) / 10.0) / power(w))
        out[s : s + len(w)] += gain * w
    top = np.abs(out).max()
    return (out * (peak / top if top > 0 else 1.0)).astype(np.float32)


def soundscape(
    rng: np.random.Generator,
    sr: int,
    duration: float,
    background: Callable[[int], np.ndarray],
    events: Sequence[tuple[str, np.ndarray, str]],
    ebr_db: tuple[float, float] = EBR_DB,
    min_gap: float = MIN_GAP,
    start: float = 0.0,
) -> tuple[np.ndarray, list[PlacedEvent]]:
    """One recording: ``events`` = ``[(label, wave, source)]`` in order of onset, placed at
    random non-overlapping onsets from ``start`` on, over ``background(n)``, each at a random
    EBR in ``ebr_db``. -> (float32 waveform (n,), [PlacedEvent] by onset)."""
    n = int(round(duration * sr))
    onsets = place_onsets(rng, [len(w) / sr for _, w, _ in events], duration, min_gap, start)
    ebrs = rng.uniform(*ebr_db, size=len(events))
    wave = mix(background(n), [(w, t) for (_, w, _), t in zip(events, onsets)], sr, ebrs)
    placed = [
        PlacedEvent(round(t, 4), round(t + len(w) / sr, 4), label, src, round(float(e), 2))
        for (label, w, src), t, e in zip(events, onsets, ebrs)
    ]
    return wave, placed


def write_annotations(path, rows: Sequence[tuple[str, PlacedEvent]]) -> None:
    """``filename,onset,offset,event_label,source,ebr_db`` (a header, one row per event), atomically."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["filename", "onset", "offset", "event_label", "source", "ebr_db"])
    for name, e in rows:
        w.writerow([name, f"{e.onset:.4f}", f"{e.offset:.4f}", e.label, e.source, f"{e.ebr_db:.2f}"])
    atomic_write_bytes(path, buf.getvalue().encode("utf-8"))


def read_annotations(path) -> list[tuple[str, PlacedEvent]]:
    """The rows written by :func:`write_annotations`."""
    with open(path, newline="", encoding="utf-8") as f:
        return [
            (
                r["filename"],
                PlacedEvent(
                    float(r["onset"]),
                    float(r["offset"]),
                    r["event_label"],
                    r.get("source", ""),
                    float(r.get("ebr_db") or 0),
                ),
            )
            for r in csv.DictReader(f)
        ]


__all__ = [
    "EBR_DB",
    "MIN_GAP",
    "PlacedEvent",
    "active_span",
    "crossfade_concat",
    "mix",
    "place_onsets",
    "read_annotations",
    "soundscape",
    "write_annotations",
]
