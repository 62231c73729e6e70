"""One backbone pass over a recording of any length: its frame embeddings, streamed.

    source -> mgcl.audio.stream blocks (decode + resample, BLOCK_SECONDS at a time)
           -> backbone frames (t_i, D) with their time spans (t_i, 2), piece by piece

A backbone with a ``stream_frames(blocks, peak)`` hook (``aisfx``) gives exactly the frames
of one ``encode_audio`` call on the whole recording (a first streamed pass finds the peak
the backbone normalises by). Any other backbone is run on consecutive chunks of
``chunk_seconds`` with ``context_seconds`` of audio either side, keeping the frames whose
centre falls in the chunk's own part: the same frames up to the edges of the backbone's own
windows (CLAP: exact when ``chunk_seconds`` is a multiple of its 10 s window and the
context is 0). Memory holds one chunk, never the recording.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from mgcl.audio.stream import BLOCK_SECONDS, iter_blocks, peak

#: Seconds per backbone call for backbones without a streaming hook, and the context around.
CHUNK_SECONDS = 60.0
CONTEXT_SECONDS = 0.0


def frame_spans(backbone, n_samples: int, n_frames: int) -> np.ndarray:
    """(T, 2) start/end seconds of a clip's frames: the backbone's ``frame_spans`` when it has
    one, else frames every ``frame_step`` seconds from 0."""
    spans = getattr(backbone, "frame_spans", None)
    if spans is not None:
        out = np.asarray(spans(n_samples, n_frames), dtype=np.float64)
        if len(out) == n_frames:
            return out
    step = float(backbone.frame_step)
    starts = np.arange(n_frames, dtype=np.float64) * step
    return np.stack([starts, starts + step], axis=1)


def _chunked(backbone, blocks: Iterator[np.ndarray], chunk_s: float, context_s: float):
    """The fallback: consecutive chunks (+ context) through ``encode_audio``; frames whose
    centre is in [start, start + chunk) of the recording."""
    sr = int(backbone.sample_rate)
    chunk, ctx = max(1, int(round(chunk_s * sr))), max(0, int(round(context_s * sr)))
    buf = np.zeros(0, dtype=np.float32)
    buf0 = 0  # recording sample index of buf[0]
    start = 0  # next chunk's first sample
    done = False
    it = iter(blocks)
    while not done:
        while len(buf) + buf0 < start + chunk + ctx:
            try:
                buf = np.concatenate([buf, next(it)])
            except StopIteration:
                done = True
                break
        end = buf0 + len(buf)
        if start >= end:
            break
        lo = max(0, start - ctx)
        hi = min(end, start + chunk + ctx)
        piece = buf[lo - buf0 : hi - buf0]
        feats = backbone.encode_audio([piece])
        frames = feats.frames[0][feats.frame_mask[0]]
        spans = frame_spans(backbone, len(piece), len(frames)) + lo / sr
        centre = spans.mean(axis=1)
        last = done and start + chunk >= end
        keep = centre >= start / sr if start > 0 else np.ones(len(centre), dtype=bool)
        if not last:
            keep &= centre < (start + chunk) / sr
        if keep.any():
            yield frames[torch.as_tensor(keep)], spans[keep]
        start += chunk
        drop = max(0, start - ctx - buf0)
        buf, buf0 = buf[drop:], buf0 + drop
        if last:
            break


def stream_frames(
    backbone,
    source,
    block_seconds: float = BLOCK_SECONDS,
    chunk_seconds: float = CHUNK_SECONDS,
    context_seconds: float = CONTEXT_SECONDS,
) -> Iterator[tuple[torch.Tensor, np.ndarray]]:
    """``(frames (t, D), spans (t, 2) seconds)`` pieces of a whole recording, in order.

    ``source``: a file path or ``(waveform, rate)``; decoded ``block_seconds`` at a time.
    Backbones with ``stream_frames(blocks, peak)`` use it (two streamed passes: the peak,
    then the frames); others go chunk by chunk (``chunk_seconds``, ``context_seconds``)."""
    sr = int(backbone.sample_rate)
    hook = getattr(backbone, "stream_frames", None)
    if hook is not None:
        top, _ = peak(source, sr, block_seconds)
        yield from hook(iter_blocks(source, sr, block_seconds), top)
        return
    yield from _chunked(backbone, iter_blocks(source, sr, block_seconds), chunk_seconds, context_seconds)


__all__ = ["CHUNK_SECONDS", "CONTEXT_SECONDS", "frame_spans", "stream_frames"]
