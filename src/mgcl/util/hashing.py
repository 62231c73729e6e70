"""The project's hashes: of files (feature-store keys, download checksums, weights), and the
identity strings of models (what changes whenever their outputs would)."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

CHUNK = 1 << 20


def file_hash(path: str | os.PathLike, algo: str = "blake2b", digest_size: int | None = None) -> str:
    """Hex digest of a file's bytes, read in 1 MiB blocks. ``algo``: any :mod:`hashlib` name
    (``blake2b`` takes a ``digest_size`` in bytes). OSError when it cannot be read."""
    h = hashlib.new(algo, digest_size=digest_size) if digest_size else hashlib.new(algo)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def stable_hash(*objects: Any) -> str:
    """Short sha256 of JSON dicts, ignoring bookkeeping keys (paths, library versions)."""

    def clean(x):
        if isinstance(x, dict):
            return {
                str(k): clean(v)
                for k, v in x.items()
                if not str(k).startswith("_") and k not in ("transformers_version", "processor_class")
            }
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        return x

    text = json.dumps([clean(o) for o in objects], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def weights_stamp(folder: str) -> str:
    """Size and mtime of a local folder's weight files (empty for hub ids)."""
    if not os.path.isdir(folder):
        return ""
    parts = []
    for name in sorted(os.listdir(folder)):
        if name.endswith((".safetensors", ".bin")):
            st = os.stat(os.path.join(folder, name))
            parts.append(f"{name}:{st.st_size}:{st.st_mtime_ns}")
    return ";".join(parts)
