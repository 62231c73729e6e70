"""Class descriptions: the generators of :mod:`mgcl.text.llm` behind a cache (given by the
caller, :class:`mgcl.store.descriptions.DescriptionCache`), and the loader behind
``--descriptions FILE|builtin|none``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from mgcl.errors import MgclError
from mgcl.text.llm import BuiltinGenerator, DescriptionGenerator, FileGenerator, _norm_sentence

log = logging.getLogger(__name__)


def clean_descriptions(items, class_name: str, per_class: int, source: str) -> list[str]:
    """Stripped, de-duplicated (ignoring case, spacing and a final full stop), non-empty
    sentences, trimmed to ``per_class``; MgclError when fewer than ``per_class`` remain."""
    if not isinstance(items, (list, tuple)):
        raise MgclError(f"{source} gave no list of descriptions for '{class_name}'")
    out, seen = [], set()
    for s in items:
        if not isinstance(s, str) or not s.strip():
            continue
        key = _norm_sentence(s)
        if key not in seen:
            seen.add(key)
            out.append(re.sub(r"\s+", " ", s).strip())
    if len(out) < per_class:
        raise MgclError(
            f"{source} gave {len(out)} distinct description{'s' if len(out) != 1 else ''} for "
            f"'{class_name}', {per_class} needed"
        )
    return out[:per_class]


def _valid(items, per_class: int) -> bool:
    try:
        clean_descriptions(items, "", per_class, "")
    except MgclError:
        return False
    return True


def get_descriptions(
    class_names: Sequence[str],
    generator: DescriptionGenerator,
    per_class: int = 8,
    cache=None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, list[str]]:
    """``{class: [per_class sentences]}`` in class order.

    Cached classes cost nothing; the others are asked from ``generator`` in batches of its
    ``classes_per_request`` (each batch cached as soon as it arrives), with the whole class
    list as siblings. ``cache``: any object with ``get(generator, class)``, ``put(generator,
    class, sentences)`` and ``hits`` / ``misses`` counters (e.g.
    :class:`mgcl.store.descriptions.DescriptionCache`). Generators with ``cacheable = False``
    (files, shipped sets) bypass the cache. ``progress(k)`` is called with the number of classes done after each step.
    """
    if per_class < 1:
        raise MgclError(f"--per-class must be at least 1, got {per_class}")
    names = list(dict.fromkeys(str(c) for c in class_names))
    if not names:
        raise MgclError("no class names to describe")
    if any(not c.strip() for c in names):
        raise MgclError("empty class name in the class list")
    use_cache = cache is not None and getattr(generator, "cacheable", True)
    raw: dict[str, list[str]] = {}
    if use_cache:
        for c in names:
            hit = cache.get(generator, c)
            if hit is not None and _valid(hit, per_class):
                raw[c] = hit
                cache.hits += 1
        if raw and progress:
            progress(len(raw))
    missing = [c for c in names if c not in raw]
    size = max(1, int(getattr(generator, "classes_per_request", 0) or len(missing) or 1))
    source = f"generator {generator.identity}"
    for i in range(0, len(missing), size):
        chunk = missing[i : i + size]
        got = generator.describe(chunk, per_class, names)
        for c in chunk:
            if c not in got:
                raise MgclError(f"{source} gave no descriptions for '{c}'")
            clean_descriptions(got[c], c, per_class, source)  # validate before caching
            raw[c] = list(got[c])
            if use_cache:
                cache.put(generator, c, got[c])
                cache.misses += 1
        if progress:
            progress(len(chunk))
    return {c: clean_descriptions(raw[c], c, per_class, source) for c in names}


def _warn(message: str) -> None:
    log.warning(message)


def load_descriptions(
    spec: str | Path | None,
    classes: Sequence[str],
    warn: Callable[[str], None] | None = None,
) -> dict[str, list[str]] | None:
    """Descriptions for ``--descriptions FILE|builtin|none`` of fit / evaluate.

    ``None`` or ``"none"``: None. ``"builtin"``: the shipped sets, for the classes that match
    (by label, then readable name); a path: a JSON/YAML file (:class:`FileGenerator`). The
    result is keyed by the labels of ``classes`` and holds only classes that were found; the
    others are reported through ``warn(message)`` (default: :func:`warnings.warn`). Returns
    None when no class matched.
    """
    warn = warn or _warn
    if spec is None or (isinstance(spec, str) and spec.strip().lower() in ("", "none")):
        return None
    if isinstance(spec, str) and spec.strip().lower() == "builtin":
        source, where = BuiltinGenerator(None), "the shipped description sets"
    else:
        path = Path(spec)
        if not path.exists():
            raise MgclError(f"{path}: descriptions file not found (give a JSON or YAML file, 'builtin' or 'none')")
        source, where = FileGenerator(path), str(path)
    found = {c: d for c in classes if (d := source.lookup(c)) is not None}
    missing = [c for c in classes if c not in found]
    if missing:
        shown = ", ".join(repr(c) for c in missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
        if found:
            warn(
                f"no descriptions in {where} for {len(missing)} of {len(classes)} classes ({shown}); "
                "those use the class prompt only"
            )
        else:
            warn(f"none of the {len(classes)} classes has descriptions in {where}; no descriptions used")
    return found or None
