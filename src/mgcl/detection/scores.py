"""Class scores over time from a stream of frames: windows of frames pooled into clip-like
features and scored by a fitted method, without a second backbone pass.

For every ``hop``-th frame t of the recording, the window of ``width`` frames centred on it,

    W_t = frames [t - width // 2, t - width // 2 + width) ∩ [0, T)

becomes one query of the fitted method: ``AudioFeatures(clip = normalise(pool_{s in W_t} F_s),
frames = F_{W_t}, frame_step)`` with ``pool`` = max (aisfx's own pooling over a network block)
or mean, and the method's calibrated probabilities ``(C,)`` are the scores at the centre of
frame t. Only the frames the next windows need are kept: memory is one batch of windows,
whatever the length of the recording.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import torch

from mgcl.types import AudioFeatures, l2_normalize

#: Windows per call of the scoring function.
BATCH_WINDOWS = 256


@dataclass
class ScoreCurve:
    """Class scores of one recording over time.

    times:    (N,) seconds, the centre of each scored window's centre frame.
    step:     seconds between consecutive scores (hop frames x the backbone's frame step).
    scores:   (N, C) float32 probabilities, columns in ``classes`` order.
    classes:  the C class names.
    duration: the recording's length in seconds.
    """

    times: np.ndarray
    step: float
    scores: np.ndarray
    classes: list[str]
    duration: float = 0.0
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.times)


def pool_windows(
    frames: torch.Tensor, starts: Iterable[int], width: int, frame_step: float | None, pool: str = "max"
) -> AudioFeatures:
    """Windows of frames as a batch of clip-like queries.

    frames (T, D) L2-normalised; window i = frames[max(s_i, 0) : min(s_i + width, T)] for each
    start s_i (may be negative or run past the end: the window is cut to the frames there).
    -> AudioFeatures(clip (B, D) = normalise(max or mean over the window), frames (B, width, D)
    zero-padded, frame_mask (B, width), frame_step).
    """
    if pool not in ("max", "mean"):
        raise ValueError(f"pool must be 'max' or 'mean', got {pool!r}")
    items = []
    t = frames.shape[0]
    for s in starts:
        rows = frames[max(int(s), 0) : min(int(s) + width, t)]
        if len(rows) == 0:
            raise ValueError(f"window at frame {s} of width {width} holds no frame of {t}")
        clip = rows.amax(dim=0) if pool == "max" else rows.mean(dim=0)
        items.append((l2_normalize(clip), rows))
    return AudioFeatures.stack(items, frame_step=frame_step)


def window_frames(seconds: float, frame_step: float) -> int:
    """A duration in seconds -> a whole number of frames, at least 1."""
    return max(1, int(round(float(seconds) / float(frame_step))))


def score_stream(
    pieces: Iterable[tuple[torch.Tensor, np.ndarray]],
    score: Callable[[AudioFeatures], np.ndarray],
    width: int,
    hop: int = 1,
    frame_step: float | None = None,
    pool: str = "max",
    batch: int = BATCH_WINDOWS,
) -> tuple[np.ndarray, np.ndarray]:
    """Scores of the windows centred on frames 0, hop, 2·hop, ... of a frame stream.

    pieces: ``(frames (t_i, D), spans (t_i, 2))`` in order (:func:`mgcl.detection.frames.stream_frames`);
    score: AudioFeatures of B windows -> (B, C) scores. Returns (times (N,), scores (N, C)):
    each window's centre-frame centre in seconds and its scores. A window is scored once every
    frame it needs has arrived (or the stream has ended); frames no later window needs are dropped.
    """
    if width < 1 or hop < 1:
        raise ValueError(f"window width and hop must be at least 1 frame, got {width}, {hop}")
    half = width // 2
    buf = torch.zeros(0)
    centres = np.zeros(0)
    buf0 = 0  # frame index of buf[0]
    next_t = 0
    times: list[np.ndarray] = []
    out: list[np.ndarray] = []

    def flush(upto: int, total: int | None) -> None:
        nonlocal next_t
        while True:
            ts = []
            t = next_t
            while len(ts) < batch and t < upto and (total is not None or t - half + width <= buf0 + len(buf)):
                ts.append(t)
                t += hop
            if not ts:
                return
            starts = [tt - half - buf0 for tt in ts]
            feats = pool_windows(buf, starts, width, frame_step, pool)
            out.append(np.asarray(score(feats), dtype=np.float32))
            times.append(centres[np.array(ts) - buf0])
            next_t = t

    for frames, spans in pieces:
        c = np.asarray(spans, dtype=np.float64).mean(axis=1)
        buf = frames if len(buf) == 0 else torch.cat([buf, frames])
        centres = c if len(centres) == 0 else np.concatenate([centres, c])
        flush(buf0 + len(buf), None)
        drop = max(0, next_t - half - buf0)
        drop = min(drop, len(buf))
        buf, centres, buf0 = buf[drop:], centres[drop:], buf0 + drop
    total = buf0 + len(buf)
    flush(total, total)
    if not out:
        return np.zeros(0), np.zeros((0, 0), dtype=np.float32)
    return np.concatenate(times), np.concatenate(out)


__all__ = ["BATCH_WINDOWS", "ScoreCurve", "pool_windows", "score_stream", "window_frames"]
