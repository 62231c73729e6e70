"""Read a recording of any length in blocks: decode, down-mix and resample piece by piece.

A two-hour file never sits in memory: :func:`iter_blocks` yields consecutive float32 mono
blocks at the target rate (soundfile's block reader + libsoxr's streaming resampler, the
same HQ filter as :func:`mgcl.audio.decode.resample`), :func:`peak` is one such pass
that keeps only ``max |x|``. A source is a file path, a URI (``s3://...``, ``file://...``:
opened for random access through pyarrow.fs, read a block at a time like a local file) or
an in-memory ``(waveform, rate)``. Errors are one-line :class:`~mgcl.errors.AudioError`
naming the file, as in ``decode``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from mgcl.audio.decode import (
    SUPPORTED_EXTENSIONS,
    _not_found,
    open_uri_audio,
    resample,
    sndfile_reason,
    source_name,
    to_mono,
    validate_waveform,
)
from mgcl.errors import AudioError
from mgcl.util.uri import is_uri

#: Seconds of audio decoded per block (bounded memory: 30 s at 44.1 kHz is 5 MB of float32).
BLOCK_SECONDS = 30.0


def check_file(path: str | os.PathLike) -> Path:
    """The path when it names a readable audio file of a supported format, else AudioError."""
    path = Path(path)
    if not path.exists():
        raise AudioError(str(path), _not_found(path))
    if path.is_dir():
        raise AudioError(str(path), "is a directory, not an audio file")
    if path.suffix.lower() not in SUPPORTED_EXTENSIONS:
        raise AudioError(
            str(path),
            f"unsupported format '{path.suffix or '(no extension)'}' (supported: {', '.join(SUPPORTED_EXTENSIONS)})",
        )
    if path.stat().st_size == 0:
        raise AudioError(str(path), "empty file (0 bytes)")
    return path


@contextlib.contextmanager
def _sound_file(src) -> Iterator[tuple[sf.SoundFile, str]]:
    """(an open ``sf.SoundFile`` of a checked local path or of a URI's random-access file, the
    source's name); the URI's file is closed with it. AudioError (one line) when it is missing,
    unsupported, empty or not audio."""
    with contextlib.ExitStack() as stack:
        if is_uri(src):
            name = str(src)
            raw = stack.enter_context(open_uri_audio(name))
        else:
            name = raw = str(check_file(src))
        try:
            f = sf.SoundFile(raw)
        except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
            raise AudioError(name, f"not audio or undecodable ({sndfile_reason(exc)})") from None
        with f:
            yield f, name


def duration(src) -> float:
    """Length of a source in seconds (from the file header; no decoding)."""
    if isinstance(src, tuple):
        wave, sr = src
        return len(np.asarray(wave)) / float(sr)
    with _sound_file(src) as (f, _):
        return f.frames / float(f.samplerate)


def _file_blocks(src, sample_rate: int, block_seconds: float) -> Iterator[np.ndarray]:
    with _sound_file(src) as (f, name):
        sr = int(f.samplerate)
        stream = None if sr == sample_rate else soxr.ResampleStream(sr, sample_rate, 1, dtype="float32", quality="HQ")
        n_block = max(1, int(block_seconds * sr))
        got = 0
        try:
            for block in f.blocks(blocksize=n_block, dtype="float32", always_2d=True):
                got += block.shape[0]
                mono = np.ascontiguousarray(to_mono(block), dtype=np.float32)
                if not np.all(np.isfinite(mono)):
                    raise AudioError(name, "audio contains NaN or infinite samples")
                out = mono if stream is None else stream.resample_chunk(mono)
                if len(out):
                    yield out
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            raise AudioError(name, f"undecodable ({str(exc).splitlines()[0]})") from None
        if got == 0:
            raise AudioError(name, "zero-length audio (no samples)")
        if stream is not None:
            tail = stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
            if len(tail):
                yield tail


def iter_blocks(src, sample_rate: int, block_seconds: float = BLOCK_SECONDS) -> Iterator[np.ndarray]:
    """Consecutive float32 mono blocks of a source at ``sample_rate``; concatenated they are
    the whole recording (up to the resampler's rounding: within 1e-6 of
    :func:`~mgcl.audio.decode.load_source` for files at the target rate, exactly equal).
    AudioError (one line) on a missing, unsupported, empty or undecodable source."""
    if isinstance(src, tuple):
        wave, sr = src
        wave = validate_waveform(np.asarray(wave, dtype=np.float32), source_name(src))
        wave = resample(wave, int(sr), sample_rate)
        n = max(1, int(block_seconds * sample_rate))
        for i in range(0, len(wave), n):
            yield wave[i : i + n]
        return
    yield from _file_blocks(src, int(sample_rate), float(block_seconds))


def peak(src, sample_rate: int, block_seconds: float = BLOCK_SECONDS) -> tuple[float, int]:
    """``(max |x|, n_samples)`` of a source at ``sample_rate``, in one streamed pass."""
    top, n = 0.0, 0
    for block in iter_blocks(src, sample_rate, block_seconds):
        top = max(top, float(np.abs(block).max(initial=0.0)))
        n += len(block)
    return top, n


__all__ = ["BLOCK_SECONDS", "check_file", "duration", "iter_blocks", "peak"]
