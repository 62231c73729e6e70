"""Decode, validate and resample audio to float32 mono at a backbone's sample rate.

Every failure is an :class:`~mgcl.errors.AudioError` whose message names the file and the
reason in one line, so a batch can report bad files and go on with the good ones.
"""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import re
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import soundfile as sf
import soxr

from mgcl.errors import AudioError
from mgcl.util.hashing import file_hash, uri_hash
from mgcl.util.uri import UriError, file_type, is_uri, open_seekable, read_bytes

#: Bump when decoding/resampling changes: it is part of every feature- and caption-store key.
PREPROCESS_VERSION = "soundfile+soxr-hq:v1"

#: Extensions decoded through libsndfile (soundfile). mp3 needs libsndfile >= 1.1.
SUPPORTED_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif")


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Average the channels: ``(n,)`` or ``(n, channels)`` -> ``(n,)``."""
    if samples.ndim == 1:
        return samples
    if samples.ndim == 2:
        return samples.mean(axis=1)
    raise ValueError(f"expected 1-D or 2-D samples, got shape {samples.shape}")


def resample(samples: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Band-limited resampling with libsoxr (high quality); a no-op when rates agree."""
    if orig_sr == target_sr:
        return samples
    return soxr.resample(samples, orig_sr, target_sr, quality="HQ").astype(np.float32, copy=False)


def validate_waveform(samples: np.ndarray, source: str = "<waveform>") -> np.ndarray:
    """Check a decoded mono waveform; return it as contiguous float32.

    Raises AudioError for an empty signal or non-finite samples.
    """
    samples = np.asarray(samples)
    if samples.ndim != 1:
        raise AudioError(source, f"expected a mono 1-D waveform, got shape {samples.shape}")
    if samples.size == 0:
        raise AudioError(source, "empty audio (zero samples)")
    if not np.issubdtype(samples.dtype, np.floating):
        raise AudioError(source, f"expected floating-point samples, got {samples.dtype}")
    if not np.all(np.isfinite(samples)):
        raise AudioError(source, "audio contains NaN or infinite samples")
    return np.ascontiguousarray(samples, dtype=np.float32)


def _not_found(path: str | os.PathLike) -> str:
    """The reason for a missing file: "file not found", with the absolute path that was tried
    when the given one is relative (a manifest's rows are resolved against its folder: the
    message shows where that led)."""
    tried = os.path.abspath(path)
    return "file not found" if tried == str(path) else f"file not found (resolved to {tried})"


def _unsupported(source: str, suffix: str) -> AudioError:
    return AudioError(
        source, f"unsupported format '{suffix or '(no extension)'}' (supported: {', '.join(SUPPORTED_EXTENSIONS)})"
    )


def sndfile_reason(exc: BaseException) -> str:
    """A decoder error's first line without libsndfile's "Error opening '<path>': " (or
    "<_io.BytesIO ...>: ", "<pyarrow.NativeFile ...>: " for file objects): the file is named
    beside it anyway."""
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return re.sub(r"^Error opening <[^>]*>: ", "", reason).split("': ", 1)[-1].rstrip(".")


def _decode(target, source: str, sample_rate: int) -> np.ndarray:
    """``sf.read`` of a path or a binary file object, validated, mono, at ``sample_rate``
    (AudioError naming ``source``)."""
    try:
        samples, sr = sf.read(target, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioError(source, f"not audio or undecodable ({sndfile_reason(exc)})") from None
    if samples.shape[0] == 0:
        raise AudioError(source, "zero-length audio (no samples)")
    mono = validate_waveform(to_mono(samples), source)
    return validate_waveform(resample(mono, int(sr), int(sample_rate)), source)


def load_audio(path: str | os.PathLike, sample_rate: int) -> np.ndarray:
    """Read an audio file as float32 mono at ``sample_rate``.

    Returns a ``(n,)`` array. Raises AudioError (one line: path and reason) when the file
    is missing, not a supported format, undecodable, empty, or holds NaN/inf samples.
    """
    path = Path(path)
    source = str(path)
    if not path.exists():
        raise AudioError(source, _not_found(path))
    if path.is_dir():
        raise AudioError(source, "is a directory, not an audio file")
    if path.suffix.lower() not in SUPPORTED_EXTENSIONS:
        raise _unsupported(source, path.suffix)
    if path.stat().st_size == 0:
        raise AudioError(source, "empty file (0 bytes)")
    return _decode(str(path), source, sample_rate)


def decode_audio_bytes(data: bytes, sample_rate: int, source: str = "<bytes>") -> np.ndarray:
    """:func:`load_audio` of a file's bytes held in memory (the format read from its header):
    ``(n,)`` float32 mono at ``sample_rate``, the same samples as from the file; AudioError
    naming ``source`` with the same reasons."""
    if len(data) == 0:
        raise AudioError(source, "empty file (0 bytes)")
    return _decode(io.BytesIO(data), source, sample_rate)


def _uri_error(exc: UriError) -> AudioError:
    """A URI's failure in the words of a local file's."""
    reason = {"missing": "file not found", "directory": "is a directory, not an audio file"}.get(exc.kind, exc.reason)
    return AudioError(exc.uri, reason)


def load_uri_audio(uri: str, sample_rate: int) -> np.ndarray:
    """:func:`load_audio` of a file named by a URI (``s3://``, ``gs://``, ``file://``, ...),
    read through pyarrow.fs (:mod:`mgcl.util.uri`) and decoded from memory; AudioError (one
    line, the URI and a local file's reason) when it is missing, unreadable or not audio, or
    when pyarrow is missing or does not know the scheme."""
    check_uri(uri)
    try:
        data = read_bytes(uri)
    except UriError as exc:
        raise _uri_error(exc) from None
    return decode_audio_bytes(data, sample_rate, uri)


def check_uri(uri: str) -> None:
    """AudioError (one line, a local file's reasons) unless ``uri`` names a non-empty file of a
    supported audio format: the file's info, one request."""
    suffix = posixpath.splitext(urlsplit(uri).path)[1]
    try:
        kind, size = file_type(uri)
    except UriError as exc:
        raise _uri_error(exc) from None
    if kind == "missing":
        raise AudioError(uri, "file not found")
    if kind == "directory":
        raise AudioError(uri, "is a directory, not an audio file")
    if suffix.lower() not in SUPPORTED_EXTENSIONS:
        raise _unsupported(uri, suffix)
    if not size:
        raise AudioError(uri, "empty file (0 bytes)")


def open_uri_audio(uri: str):
    """An audio file named by a URI, opened for random access
    (:func:`mgcl.util.uri.open_seekable`: one request, a failure classified on the error path
    only) and checked as :func:`check_uri` does, from the open file (its size, no second
    request): soundfile reads it a block at a time."""
    try:
        f = open_seekable(uri)
    except UriError as exc:
        raise _uri_error(exc) from None
    suffix = posixpath.splitext(urlsplit(uri).path)[1]
    if suffix.lower() not in SUPPORTED_EXTENSIONS:
        f.close()
        raise _unsupported(uri, suffix)
    if f.size() == 0:
        f.close()
        raise AudioError(uri, "empty file (0 bytes)")
    return f


# ----------------------------------------------------------------------------- sources
# A source is an audio file path, a URI (``s3://...``, ``file://...``: read through pyarrow.fs)
# or an in-memory ``(waveform, sample_rate)`` pair.


def file_digest(path: str | os.PathLike) -> str:
    """BLAKE2b-128 of a file's bytes (hex); raises AudioError when it cannot be read."""
    try:
        return file_hash(path, "blake2b", digest_size=16)
    except FileNotFoundError:
        raise AudioError(str(path), _not_found(path)) from None
    except IsADirectoryError:
        raise AudioError(str(path), "is a directory, not an audio file") from None
    except OSError as exc:
        raise AudioError(str(path), f"cannot read ({exc.strerror or exc})") from None


def uri_digest(uri: str) -> str:
    """:func:`file_digest` of the file at a URI, streamed through pyarrow.fs: the same key
    for the same bytes wherever they lie; AudioError as :func:`load_uri_audio`."""
    try:
        return uri_hash(uri, "blake2b", digest_size=16)
    except UriError as exc:
        raise _uri_error(exc) from None


def waveform_digest(wave: np.ndarray, sample_rate: int) -> str:
    """BLAKE2b-128 of a float32 waveform's samples and its rate (hex)."""
    h = hashlib.blake2b(np.ascontiguousarray(wave, dtype=np.float32).tobytes(), digest_size=16)
    h.update(str(int(sample_rate)).encode())
    return "w" + h.hexdigest()


def source_name(src) -> str:
    return f"<waveform {id(src[0]):x}>" if isinstance(src, tuple) else str(src)


def source_digest(src) -> str:
    """Content hash of a source: a file path, a URI or a ``(waveform, sample_rate)`` pair (a
    file and a URI of the same bytes have the same hash)."""
    if isinstance(src, tuple):
        wave, sr = src
        return waveform_digest(validate_waveform(np.asarray(wave), source_name(src)), sr)
    return uri_digest(src) if is_uri(src) else file_digest(src)


def load_source(src, sample_rate: int) -> np.ndarray:
    """Decode a source to float32 mono at ``sample_rate`` (AudioError on bad input)."""
    if isinstance(src, tuple):
        wave, sr = src
        wave = validate_waveform(np.asarray(wave, dtype=np.float32), source_name(src))
        return resample(wave, int(sr), sample_rate)
    return load_uri_audio(src, sample_rate) if is_uri(src) else load_audio(src, sample_rate)
