"""The one cached-batch loop of the project: a model over audio sources, through a cache
keyed by content (features, audio views and captions all go through :func:`map_cached`)."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mgcl.audio.decode import PREPROCESS_VERSION, load_source, source_digest, source_name
from mgcl.errors import AudioError
from mgcl.types import AudioFeatures
from mgcl.util.atomic import atomic_write_bytes
from mgcl.util.text import one_line


def identity_dir(parent: Path, identity: str, info_name: str) -> Path:
    """``parent/<blake2b-64 of identity>/``, created, with ``info_name`` = {"identity": ...}
    written once so that a person can tell which model a cache folder belongs to."""
    folder = parent / hashlib.blake2b(identity.encode(), digest_size=8).hexdigest()
    folder.mkdir(parents=True, exist_ok=True)
    info = folder / info_name
    if not info.exists():
        atomic_write_bytes(info, json.dumps({"identity": identity}, indent=1).encode())
    return folder


class ContentStore:
    """Entries of one model's outputs, by content key, under
    ``<root>[/<subfolder>]/<blake2b-64 of identity>/<key[:2]>/<key><suffix>``; the folder's
    ``info_name`` file says which model it belongs to. Subclasses read and write entries."""

    subfolder = ""
    suffix = ""
    info_name = "model.json"

    def __init__(self, root: str | os.PathLike, model_identity: str):
        self.root = Path(root)
        self.identity = f"{model_identity}|{PREPROCESS_VERSION}"
        base = self.root / self.subfolder if self.subfolder else self.root
        self.dir = identity_dir(base, self.identity, self.info_name)

    def path(self, key: str) -> Path:
        return self.dir / key[:2] / f"{key}{self.suffix}"


@dataclass
class CachedRun:
    """Outcome of :func:`map_cached`, aligned with the inputs: ``values[i]`` or None when
    input i failed (its one-line message in ``errors[i]``). For features, values are
    ``(clip (D,), frames (T, D))`` pairs and ``frame_step`` is the backbone's."""

    values: list
    errors: dict[int, str] = field(default_factory=dict)
    cache_hits: int = 0
    computed: int = 0
    seconds: float = 0.0
    frame_step: float | None = None

    @property
    def ok(self) -> list[int]:
        """Indices of the inputs that succeeded."""
        return [i for i, v in enumerate(self.values) if v is not None]

    def stacked(self, indices: Sequence[int] | None = None) -> AudioFeatures:
        """Features only: the (successful) clips padded into one AudioFeatures batch."""
        idx = self.ok if indices is None else list(indices)
        return AudioFeatures.stack([self.values[i] for i in idx], self.frame_step)


def _batches(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def lookup(
    sources: Sequence,
    get: Callable[[str], object | None] | None = None,
    progress: Callable[[int], None] | None = None,
    key: Callable[[object], str] = source_digest,
) -> tuple[CachedRun, dict[int, str], list[int]]:
    """The first step of every engine: each source's cache key and the cache hits.

    Returns ``(run, keys, todo)``: ``run`` holds the hits (``values[i]``) and the sources whose
    key could not be computed (``errors[i]``, e.g. a missing file); ``keys[i]`` is source i's
    key; ``todo`` lists, in order, the sources still to compute. ``progress(n)`` hears each
    hit and error."""
    res = CachedRun(values=[None] * len(sources))
    keys: dict[int, str] = {}
    todo: list[int] = []
    for i, src in enumerate(sources):
        try:
            keys[i] = key(src)
        except AudioError as exc:
            res.errors[i] = str(exc)
            tick(progress, 1)
            continue
        hit = get(keys[i]) if get is not None else None
        if hit is not None:
            res.values[i] = hit
            res.cache_hits += 1
            tick(progress, 1)
        else:
            todo.append(i)
    return res, keys, todo


def map_cached(
    sources: Sequence,
    sample_rate: int,
    run: Callable[[list[np.ndarray]], list],
    get: Callable[[str], object | None] | None = None,
    put: Callable[[str, object], None] | None = None,
    batch_size: int = 16,
    progress: Callable[[int], None] | None = None,
    what: str = "model",
    catch: tuple[type[BaseException], ...] = (RuntimeError, ValueError),
    reason: Callable[[BaseException], str] = one_line,
    key: Callable[[object], str] = source_digest,
    load: Callable[[object, int], np.ndarray] = load_source,
) -> CachedRun:
    """``run`` (a model) over files / ``(waveform, sr)`` pairs, through a cache keyed by content.

    Hits (``get(key)`` not None) are read without decoding; misses are decoded at
    ``sample_rate`` (the next batch in a background thread while the model runs), passed to
    ``run`` in batches of ``batch_size`` (one output per waveform) and ``put`` in the cache.
    A bad input is recorded in ``errors`` and never stops the others: a batch whose ``run``
    raises one of ``catch`` is retried clip by clip, so one bad clip fails alone, as
    "NAME: {what} failed (reason)". ``progress(n)`` gets the inputs finished at each step.
    ``key(source)`` and ``load(source, sample_rate)`` give a source's cache key and waveform
    (defaults: its content digest, and the decoded audio).
    The one cached-batch loop of the project: embeddings and captions use it.
    """
    t0 = time.perf_counter()
    res, keys, todo = lookup(sources, get, progress, key)

    def decode(batch: list[int]) -> list[tuple[int, np.ndarray | AudioError]]:
        out = []
        for i in batch:
            try:
                out.append((i, load(sources[i], sample_rate)))
            except AudioError as exc:
                out.append((i, exc))
        return out

    def compute(good: list[tuple[int, np.ndarray]]) -> list[tuple[int, object]]:
        if not good:
            return []
        try:
            out = list(run([w for _, w in good]))
            if len(out) != len(good):
                raise RuntimeError(f"{what} returned {len(out)} outputs for {len(good)} clips")
            return [(i, o) for (i, _), o in zip(good, out)]
        except catch as exc:
            if len(good) == 1:
                i = good[0][0]
                res.errors[i] = f"{source_name(sources[i])}: {what} failed ({reason(exc)})"
                return []
            return [pair for item in good for pair in compute([item])]

    with ThreadPoolExecutor(max_workers=1) as pool:
        batches = list(_batches(todo, max(1, int(batch_size))))
        pending = pool.submit(decode, batches[0]) if batches else None
        for b in range(len(batches)):
            decoded = pending.result()
            pending = pool.submit(decode, batches[b + 1]) if b + 1 < len(batches) else None
            good = []
            for i, item in decoded:
                if isinstance(item, AudioError):
                    res.errors[i] = str(item)
                    tick(progress, 1)
                else:
                    good.append((i, item))
            for i, value in compute(good):
                res.values[i] = value
                res.computed += 1
                if put is not None:
                    put(keys[i], value)
            tick(progress, len(good))
    res.seconds = time.perf_counter() - t0
    return res


def tick(progress, k: int) -> None:
    if progress is not None and k:
        progress(k)
