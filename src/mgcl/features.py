"""Feature extraction with an on-disk, content-addressed cache.

The backbone runs once per clip: every clip's embeddings are stored under

    <root>/<digest(backbone identity + preprocessing)>/<h[:2]>/<h>.safetensors

where ``h`` hashes the file's bytes (or an in-memory waveform's samples and rate). A
re-run on the same audio is a cache hit that decodes nothing and runs no forward pass.
Entries are written to a temporary file in the same folder and ``os.replace``d into
place, so a crash never leaves a partial entry; readers never lock.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from mgcl.atomic import atomic_write, atomic_write_bytes  # noqa: F401  (re-exported)
from mgcl.audio import load_audio, validate_waveform
from mgcl.backbones.base import AudioFeatures, Backbone
from mgcl.errors import AudioError

if TYPE_CHECKING:
    from mgcl.methods.base import SupportViews

#: Bump when decoding/resampling changes: it is part of every store key.
PREPROCESS_VERSION = "soundfile+soxr-hq:v1"

ClipFeatures = tuple[torch.Tensor, torch.Tensor]  # clip (D,), frames (T, D)


def file_digest(path: str | os.PathLike) -> str:
    """BLAKE2b-128 of a file's bytes (hex); raises AudioError when it cannot be read."""
    h = hashlib.blake2b(digest_size=16)
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    except FileNotFoundError:
        raise AudioError(str(path), "file not found") from None
    except IsADirectoryError:
        raise AudioError(str(path), "is a directory, not an audio file") from None
    except OSError as exc:
        raise AudioError(str(path), f"cannot read ({exc.strerror or exc})") from None
    return h.hexdigest()


def waveform_digest(wave: np.ndarray, sample_rate: int) -> str:
    """BLAKE2b-128 of a float32 waveform's samples and its rate (hex)."""
    h = hashlib.blake2b(np.ascontiguousarray(wave, dtype=np.float32).tobytes(), digest_size=16)
    h.update(str(int(sample_rate)).encode())
    return "w" + h.hexdigest()


def source_name(src) -> str:
    return f"<waveform {id(src[0]):x}>" if isinstance(src, tuple) else str(src)


def source_digest(src) -> str:
    """Content hash of a source: a file path or a ``(waveform, sample_rate)`` pair."""
    if isinstance(src, tuple):
        wave, sr = src
        return waveform_digest(validate_waveform(np.asarray(wave), source_name(src)), sr)
    return file_digest(src)


def load_source(src, sample_rate: int) -> np.ndarray:
    """Decode a source to float32 mono at ``sample_rate`` (AudioError on bad input)."""
    if isinstance(src, tuple):
        from mgcl.audio import resample

        wave, sr = src
        wave = validate_waveform(np.asarray(wave, dtype=np.float32), source_name(src))
        return resample(wave, int(sr), sample_rate)
    return load_audio(src, sample_rate)


def identity_dir(parent: Path, identity: str, info_name: str) -> Path:
    """``parent/<blake2b-64 of identity>/``, created, with ``info_name`` = {"identity": ...}
    written once so that a person can tell which model a cache folder belongs to."""
    folder = parent / hashlib.blake2b(identity.encode(), digest_size=8).hexdigest()
    folder.mkdir(parents=True, exist_ok=True)
    info = folder / info_name
    if not info.exists():
        atomic_write_bytes(info, json.dumps({"identity": identity}, indent=1).encode())
    return folder


class FeatureStore:
    """Content-addressed cache of clip + frame embeddings for one backbone.

    ``store.get(h)`` -> ``(clip (D,), frames (T, D))`` or None; ``store.put(h, clip, frames)``.
    """

    def __init__(self, root: str | os.PathLike, backbone_identity: str):
        self.root = Path(root)
        self.identity = f"{backbone_identity}|{PREPROCESS_VERSION}"
        self.dir = identity_dir(self.root, self.identity, "backbone.json")

    def path(self, key: str) -> Path:
        return self.dir / key[:2] / f"{key}.safetensors"

    def __contains__(self, key: str) -> bool:
        return self.path(key).is_file()

    def get(self, key: str) -> ClipFeatures | None:
        """The stored features, or None for a miss (or an unreadable entry, treated as a miss)."""
        p = self.path(key)
        if not p.is_file():
            return None
        try:
            t = load_file(str(p))
            return t["clip"], t["frames"]
        except (SafetensorError, OSError, KeyError, ValueError):
            return None

    def put(self, key: str, clip: torch.Tensor, frames: torch.Tensor) -> None:
        """Store one clip's features atomically (temp file + fsync + rename)."""
        tensors = {"clip": clip.detach().float().contiguous().cpu(),
                   "frames": frames.detach().float().contiguous().cpu()}
        atomic_write(self.path(key), lambda tmp: save_file(tensors, tmp, metadata={"identity": self.identity}))


@dataclass
class EmbedResult:
    """Outcome of :func:`embed_sources`, aligned with the inputs.

    features[i] is ``(clip (D,), frames (T, D))`` or None when input i failed;
    errors maps the index of each failed input to its one-line message; frame_step is
    the backbone's (seconds between frames).
    """

    features: list[ClipFeatures | None]
    errors: dict[int, str] = field(default_factory=dict)
    cache_hits: int = 0
    computed: int = 0
    seconds: float = 0.0
    frame_step: float | None = None

    @property
    def ok(self) -> list[int]:
        return [i for i, f in enumerate(self.features) if f is not None]

    def stacked(self, indices: Sequence[int] | None = None) -> AudioFeatures:
        """Pad the (successful) clips' features into one AudioFeatures batch."""
        idx = self.ok if indices is None else list(indices)
        return AudioFeatures.stack([self.features[i] for i in idx], self.frame_step)


def _batches(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


@dataclass
class CachedRun:
    """Outcome of :func:`map_cached`, aligned with the inputs: ``values[i]`` or None when
    input i failed (its one-line message in ``errors[i]``)."""

    values: list
    errors: dict[int, str] = field(default_factory=dict)
    cache_hits: int = 0
    computed: int = 0
    seconds: float = 0.0


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none)."""
    return (str(exc).splitlines() or [type(exc).__name__])[0]


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
    reason: Callable[[BaseException], str] = first_line,
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
    res = CachedRun(values=[None] * len(sources))
    keys: dict[int, str] = {}
    todo: list[int] = []
    for i, src in enumerate(sources):
        try:
            keys[i] = key(src)
        except AudioError as exc:
            res.errors[i] = str(exc)
            _tick(progress, 1)
            continue
        hit = get(keys[i]) if get is not None else None
        if hit is not None:
            res.values[i] = hit
            res.cache_hits += 1
            _tick(progress, 1)
        else:
            todo.append(i)

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
                    _tick(progress, 1)
                else:
                    good.append((i, item))
            for i, value in compute(good):
                res.values[i] = value
                res.computed += 1
                if put is not None:
                    put(keys[i], value)
            _tick(progress, len(good))
    res.seconds = time.perf_counter() - t0
    return res


def embed_sources(
    backbone: Backbone,
    sources: Sequence,
    store: FeatureStore | None = None,
    batch_size: int = 16,
    progress: Callable[[int], None] | None = None,
) -> EmbedResult:
    """Clip and frame embeddings of files / ``(waveform, sr)`` pairs, through the store
    (:func:`map_cached`: hits read without decoding, misses decoded, encoded in batches of
    ``batch_size`` and stored; a bad input is recorded in ``errors`` and never stops the
    others). ``progress(n)`` is called with the number of inputs finished at each step.
    """
    r = map_cached(
        sources, backbone.sample_rate, lambda waves: backbone.encode_audio(waves).split(),
        get=store.get if store is not None else None,
        put=(lambda key, feats: store.put(key, *feats)) if store is not None else None,
        batch_size=batch_size, progress=progress, what="backbone",
    )
    return EmbedResult(r.values, r.errors, r.cache_hits, r.computed, r.seconds,
                       getattr(backbone, "frame_step", None))


@dataclass(frozen=True)
class ViewSource:
    """View ``name`` of a source whose content digest is ``digest`` (an input of :func:`embed_views`)."""

    source: object
    name: str
    digest: str

    def __str__(self) -> str:
        return f"{source_name(self.source)} ({self.name} view)"


class ViewCache:
    """Audio views (:mod:`mgcl.augment_audio`) of the rows of a data set, embedded on first
    use and kept in memory; on disk they go through the feature store like any clip.

    A view's store key is derived from the clip's content digest, the view's name and
    AUGMENT_VERSION, so each view is computed once (a hit decodes nothing).
    ``cache.views(rows, names)`` -> SupportViews of those rows (``source`` = position in
    ``rows``); ``cache.prepare(rows, names, progress)`` embeds ahead of time (``progress(n)``
    counts views). A row whose audio or view fails has no views; ``errors`` says why.
    """

    def __init__(self, backbone: Backbone, sources: Sequence, store: FeatureStore | None = None,
                 batch_size: int = 16):
        self.backbone, self.sources, self.store, self.batch_size = backbone, list(sources), store, batch_size
        self._feats: dict[tuple[int, str], ClipFeatures] = {}
        self.errors: dict[int, str] = {}
        self.computed = self.cache_hits = 0

    def missing(self, rows, names: Sequence[str]) -> list[int]:
        """Rows (sorted, unique) with a view in ``names`` not embedded yet."""
        return sorted({int(i) for i in rows for n in names
                       if (int(i), n) not in self._feats and int(i) not in self.errors})

    def prepare(self, rows, names: Sequence[str], progress: Callable[[int], None] | None = None) -> None:
        from mgcl.augment_audio import check_views, make_view, view_key

        names = check_views(names)
        items, owner = [], []
        for i in self.missing(rows, names):
            try:
                digest = source_digest(self.sources[i])
            except AudioError as exc:
                self.errors[i] = str(exc)
                _tick(progress, len(names))
                continue
            for n in names:
                items.append(ViewSource(self.sources[i], n, digest))
                owner.append(i)
        if not items:
            return
        last: dict = {}

        def load_view(item: ViewSource, sample_rate: int) -> np.ndarray:
            if last.get("digest") != item.digest:  # one clip's views are consecutive: decode once
                last.update(digest=item.digest, wave=load_source(item.source, sample_rate))
            return make_view(last["wave"], sample_rate, item.name, item.digest)

        store = self.store
        r = map_cached(
            items, self.backbone.sample_rate, lambda waves: self.backbone.encode_audio(waves).split(),
            get=store.get if store is not None else None,
            put=(lambda k, feats: store.put(k, *feats)) if store is not None else None,
            batch_size=self.batch_size, progress=progress, what="backbone",
            key=lambda item: view_key(item.digest, item.name), load=load_view,
        )
        self.computed += r.computed
        self.cache_hits += r.cache_hits
        for j, msg in r.errors.items():
            self.errors.setdefault(owner[j], msg)
        for j, value in enumerate(r.values):
            if value is not None:
                self._feats[owner[j], items[j].name] = value

    def views(self, rows, names: Sequence[str]) -> SupportViews | None:
        """Views ``names`` of ``rows`` (embedded now if needed); None when there are none."""
        from mgcl.methods.base import SupportViews

        rows = [int(i) for i in rows]
        self.prepare(rows, names)
        items, source = [], []
        for j, i in enumerate(rows):
            if i in self.errors:
                continue
            for n in names:
                items.append(self._feats[i, n])
                source.append(j)
        if not items:
            return None
        return SupportViews(AudioFeatures.stack(items, getattr(self.backbone, "frame_step", None)),
                            torch.tensor(source, dtype=torch.long))


def _tick(progress, k: int) -> None:
    if progress is not None and k:
        progress(k)
