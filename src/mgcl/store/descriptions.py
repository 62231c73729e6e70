"""Class descriptions on disk: one small JSON file per (generator identity, model, class
name, prompt version), written atomically, so an interrupted run keeps what it got and a
second run asks the language model nothing."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

from mgcl.errors import MgclError
from mgcl.util.atomic import atomic_write_bytes


def default_cache_dir() -> Path:
    """``$MGCL_CACHE/descriptions``, else ``~/.cache/mgcl/descriptions``."""
    env = os.environ.get("MGCL_CACHE")
    return (Path(env) if env else Path.home() / ".cache" / "mgcl") / "descriptions"


def _gen_fields(generator) -> tuple[str, str, str]:
    return (
        str(generator.identity),
        str(getattr(generator, "model", None) or ""),
        str(getattr(generator, "prompt_version", None) or ""),
    )


class DescriptionCache:
    """Descriptions on disk, one JSON file per (generator identity, model, class, prompt version).

    ``folder/<2 hex>/<sha256>.json`` holds ``{"generator", "model", "class", "prompt_version",
    "descriptions"}``; an unreadable or mismatching file counts as a miss.
    """

    def __init__(self, folder: str | Path | None = None):
        self.folder = Path(folder).expanduser() if folder is not None else default_cache_dir()
        self.hits = 0
        self.misses = 0

    def path(self, generator, class_name: str) -> Path:
        identity, model, version = _gen_fields(generator)
        key = json.dumps([identity, model, class_name, version], ensure_ascii=False)
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
        return self.folder / digest[:2] / f"{digest}.json"

    def get(self, generator, class_name: str) -> list[str] | None:
        p = self.path(generator, class_name)
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            return None
        identity, model, version = _gen_fields(generator)
        ok = (
            isinstance(doc, dict)
            and doc.get("generator") == identity
            and doc.get("model") == model
            and doc.get("class") == class_name
            and doc.get("prompt_version") == version
            and isinstance(doc.get("descriptions"), list)
            and all(isinstance(s, str) for s in doc["descriptions"])
        )
        return list(doc["descriptions"]) if ok else None

    def put(self, generator, class_name: str, descriptions: Sequence[str]) -> Path:
        identity, model, version = _gen_fields(generator)
        doc = {
            "generator": identity,
            "model": model,
            "class": class_name,
            "prompt_version": version,
            "descriptions": list(descriptions),
        }
        p = self.path(generator, class_name)
        try:
            atomic_write_bytes(p, (json.dumps(doc, indent=1, ensure_ascii=False) + "\n").encode("utf-8"))
        except OSError as exc:
            raise MgclError(f"cannot write the description cache {self.folder}: {exc.strerror or exc}") from None
        return p
