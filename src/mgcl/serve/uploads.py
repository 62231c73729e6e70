"""Uploaded audio on its way to the pipeline: written under a per-request temporary folder
with a safe name, checked for decoded duration, and the pipeline's one-line reasons given
back with the client's file name (never a server path).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf

from mgcl.audio.decode import file_digest
from mgcl.errors import AudioError

_UNSAFE = re.compile(r"[^A-Za-z0-9._ ()+-]+")

#: Samples read at a time when counting a clip's decoded length.
BLOCK = 1 << 16


@dataclass(frozen=True)
class Upload:
    """One uploaded file: the client's name (cleaned) and where it lies on disk."""

    name: str
    path: Path


def safe_filename(name: str | None, index: int) -> str:
    """A file name that is safe on disk and keeps the client's name and extension where it
    can: ``../../x.wav`` -> ``x.wav``, empty -> ``upload-<index>``."""
    base = Path(str(name or "").replace("\\", "/")).name
    base = _UNSAFE.sub("_", base).strip(" .")[:100]
    return base or f"upload-{index}"


def save_uploads(folder: Path, items) -> list[Upload]:
    """Write ``(client name, bytes)`` items as ``folder/<i>/<safe name>``."""
    out = []
    for i, (name, data) in enumerate(items):
        sub = Path(folder) / str(i)
        sub.mkdir(parents=True, exist_ok=True)
        fname = safe_filename(name, i)
        p = sub / fname
        p.write_bytes(data)
        out.append(Upload(fname, p))
    return out


def decoded_seconds_over(path: str | Path, max_seconds: float) -> float | None:
    """The clip's duration in seconds when it is longer than ``max_seconds``, else None.

    The header's length is checked first; then the clip is decoded block by block (bounded
    memory: a highly compressed file cannot expand in RAM) and counting stops as soon as it
    passes the limit. A file soundfile cannot open gives None: the pipeline reports why.
    """
    try:
        with sf.SoundFile(str(path)) as f:
            sr = float(f.samplerate)
            if f.frames > 0 and f.frames / sr > max_seconds:
                return f.frames / sr
            limit = int(max_seconds * sr)
            n = 0
            while True:
                block = f.read(BLOCK, dtype="float32", always_2d=True)
                if not len(block):
                    return None
                n += len(block)
                if n > limit:
                    return n / sr
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError):
        return None


def content_key(path: str | Path) -> str | None:
    """The feature store's key of a file (its content digest), None when unreadable."""
    try:
        return file_digest(path)
    except AudioError:
        return None


def public_reason(message: str, upload: Upload) -> str:
    """A pipeline error about ``upload`` as the client should read it: the reason, without
    the server-side path that starts it."""
    text = str(message)
    for prefix in (str(upload.path), str(upload.path.resolve())):
        if text.startswith(prefix + ": "):
            return text[len(prefix) + 2 :]
        text = text.replace(prefix, upload.name)
    folder = str(upload.path.parent.parent)
    return text.replace(folder, "<upload>")
