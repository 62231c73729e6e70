"""Feature extraction with an on-disk, content-addressed cache.

The backbone runs once per clip: every clip's embeddings are stored under

    <root>/<digest(backbone identity + preprocessing)>/<h[:2]>/<h>.safetensors

where ``h`` hashes the file's bytes (or an in-memory waveform's samples and rate). A
re-run on the same audio is a cache hit that decodes nothing and runs no forward pass.
Entries are written to a temporary file in the same folder and ``os.replace``d into
place, so a crash never leaves a partial entry; readers never lock.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from mgcl.audio.decode import load_source, source_digest, source_name
from mgcl.audio.views import check_views, make_view, view_key
from mgcl.backbones.base import Backbone
from mgcl.errors import AudioError
from mgcl.store.cached import CachedRun, ContentStore, map_cached, tick
from mgcl.types import AudioFeatures, SupportViews
from mgcl.util.atomic import atomic_write

ClipFeatures = tuple[torch.Tensor, torch.Tensor]  # clip (D,), frames (T, D)


def default_store_dir() -> Path:
    """The default feature-store folder of every front end: ``$MGCL_STORE``, else
    ``~/.cache/mgcl/features`` (read at each call, so a changed variable is seen)."""
    env = os.environ.get("MGCL_STORE")
    return Path(env) if env else Path.home() / ".cache" / "mgcl" / "features"


class FeatureStore(ContentStore):
    """Content-addressed cache of clip + frame embeddings for one backbone.

    ``store.get(h)`` -> ``(clip (D,), frames (T, D))`` or None; ``store.put(h, clip, frames)``.
    """

    suffix, info_name = ".safetensors", "backbone.json"

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
        tensors = {
            "clip": clip.detach().float().contiguous().cpu(),
            "frames": frames.detach().float().contiguous().cpu(),
        }
        atomic_write(self.path(key), lambda tmp: save_file(tensors, tmp, metadata={"identity": self.identity}))


def embed_sources(
    backbone: Backbone,
    sources: Sequence,
    store: FeatureStore | None = None,
    batch_size: int = 16,
    progress: Callable[[int], None] | None = None,
) -> CachedRun:
    """Clip and frame embeddings of files / ``(waveform, sr)`` pairs, through the store
    (:func:`map_cached`: hits read without decoding, misses decoded, encoded in batches of
    ``batch_size`` and stored; a bad input is recorded in ``errors`` and never stops the
    others). ``progress(n)`` is called with the number of inputs finished at each step.
    """
    r = map_cached(
        sources,
        backbone.sample_rate,
        lambda waves: backbone.encode_audio(waves).split(),
        get=store.get if store is not None else None,
        put=(lambda key, feats: store.put(key, *feats)) if store is not None else None,
        batch_size=batch_size,
        progress=progress,
        what="backbone",
    )
    r.frame_step = getattr(backbone, "frame_step", None)
    return r


@dataclass(frozen=True)
class ViewSource:
    """View ``name`` of a source whose content digest is ``digest`` (an input of :func:`embed_views`)."""

    source: object
    name: str
    digest: str

    def __str__(self) -> str:
        return f"{source_name(self.source)} ({self.name} view)"


class ViewCache:
    """Audio views (:mod:`mgcl.audio.views`) of the rows of a data set, embedded on first
    use and kept in memory; on disk they go through the feature store like any clip.

    A view's store key is derived from the clip's content digest, the view's name and
    AUGMENT_VERSION, so each view is computed once (a hit decodes nothing).
    ``cache.views(rows, names)`` -> SupportViews of those rows (``source`` = position in
    ``rows``); ``cache.prepare(rows, names, progress)`` embeds ahead of time (``progress(n)``
    counts views). A row whose audio or view fails has no views; ``errors`` says why.
    """

    def __init__(self, backbone: Backbone, sources: Sequence, store: FeatureStore | None = None, batch_size: int = 16):
        self.backbone, self.sources, self.store, self.batch_size = backbone, list(sources), store, batch_size
        self._feats: dict[tuple[int, str], ClipFeatures] = {}
        self.errors: dict[int, str] = {}
        self.computed = self.cache_hits = 0

    def missing(self, rows, names: Sequence[str]) -> list[int]:
        """Rows (sorted, unique) with a view in ``names`` not embedded yet."""
        return sorted(
            {int(i) for i in rows for n in names if (int(i), n) not in self._feats and int(i) not in self.errors}
        )

    def prepare(self, rows, names: Sequence[str], progress: Callable[[int], None] | None = None) -> None:
        names = check_views(names)
        items, owner = [], []
        for i in self.missing(rows, names):
            try:
                digest = source_digest(self.sources[i])
            except AudioError as exc:
                self.errors[i] = str(exc)
                tick(progress, len(names))
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
            items,
            self.backbone.sample_rate,
            lambda waves: self.backbone.encode_audio(waves).split(),
            get=store.get if store is not None else None,
            put=(lambda k, feats: store.put(k, *feats)) if store is not None else None,
            batch_size=self.batch_size,
            progress=progress,
            what="backbone",
            key=lambda item: view_key(item.digest, item.name),
            load=load_view,
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
        return SupportViews(
            AudioFeatures.stack(items, getattr(self.backbone, "frame_step", None)),
            torch.tensor(source, dtype=torch.long),
        )
