"""The project's hashes: of files (feature-store keys, download checksums, weights), and the
identity strings of models (what changes whenever their outputs would)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from typing import Any

from mgcl.util.uri import blocks

CHUNK = 1 << 20


def blocks_hash(blocks: Iterable[bytes], algo: str = "blake2b", digest_size: int | None = None) -> str:
    """Hex digest of the concatenation of ``blocks`` (the one hashing loop: files and URIs)."""
    h = hashlib.new(algo, digest_size=digest_size) if digest_size else hashlib.new(algo)
    for block in blocks:
        h.update(block)
    return h.hexdigest()


def file_hash(path: str | os.PathLike, algo: str = "blake2b", digest_size: int | None = None) -> str:
    """Hex digest of a file's bytes, read in 1 MiB blocks. ``algo``: any :mod:`hashlib` name
    (``blake2b`` takes a ``digest_size`` in bytes). OSError when it cannot be read."""
    with open(path, "rb") as fh:
        return blocks_hash(iter(lambda: fh.read(CHUNK), b""), algo, digest_size)


def uri_hash(uri: str, algo: str = "blake2b", digest_size: int | None = None) -> str:
    """:func:`file_hash` of the file at a URI (``s3://``, ``file://``, ...), streamed through
    pyarrow.fs in 1 MiB blocks: the same digest for the same bytes. UriError when it cannot
    be read (:mod:`mgcl.util.uri`)."""
    return blocks_hash(blocks(uri, CHUNK), algo, digest_size)


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
