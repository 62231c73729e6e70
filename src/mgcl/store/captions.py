"""Captions of audio clips, cached by audio content: ``caption_sources`` runs a captioner
(:mod:`mgcl.text.captioners`) through :class:`CaptionCache` with the one cached-batch loop."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from mgcl.errors import AudioError
from mgcl.store.cached import CachedRun, ContentStore, map_cached
from mgcl.text.captioners import Captioner
from mgcl.util.atomic import atomic_write_bytes


class CaptionCache(ContentStore):
    """Captions of one captioner, by audio content hash, inside a feature store folder.

    ``<root>/captions/<digest(identity)>/<h[:2]>/<h>.json`` holding ``{"caption": "..."}``,
    written atomically (readers see the old entry or the new one, never half).
    """

    subfolder, suffix, info_name = "captions", ".json", "captioner.json"

    def __contains__(self, key: str) -> bool:
        return self.get(key) is not None

    def get(self, key: str) -> str | None:
        """The stored caption, or None for a miss (an unreadable entry counts as a miss)."""
        p = self.path(key)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            return None
        cap = data.get("caption") if isinstance(data, dict) else None
        return cap if isinstance(cap, str) else None

    def put(self, key: str, caption: str) -> None:
        doc = {"caption": str(caption)}
        atomic_write_bytes(self.path(key), (json.dumps(doc, ensure_ascii=False) + "\n").encode("utf-8"))


def caption_sources(
    captioner: Captioner,
    sources: Sequence,
    cache: CaptionCache | None = None,
    batch_size: int = 8,
    progress: Callable[[int], None] | None = None,
) -> CachedRun:
    """Captions of files / ``(waveform, sr)`` pairs, through the cache
    (:func:`mgcl.store.cached.map_cached`: hits read without decoding; misses decoded at
    ``captioner.sample_rate``, captioned in batches of ``batch_size`` and cached; a batch
    that fails is retried clip by clip; a bad input is recorded in ``errors`` and never
    stops the others). ``progress(n)`` is called with the number of inputs finished.
    ``values[i]`` of the result is input i's caption ("" when the model said nothing).
    """
    r = map_cached(
        sources,
        captioner.sample_rate,
        lambda waves: [str(t) for t in captioner.caption(waves)],
        get=cache.get if cache is not None else None,
        put=cache.put if cache is not None else None,
        batch_size=batch_size,
        progress=progress,
        what="captioner",
        catch=(RuntimeError, ValueError, AudioError),
    )
    return r
