"""The text side of a run: descriptions and captions -> TextFeatures.

    --descriptions FILE|builtin|none   class descriptions (default builtin: the shipped sets
                                       for the classes whose names match)
    --captions FILE|auto|none          one caption per clip: a file written by `mgcl caption`
                                       (read here), or captioned now (``auto``: the pipeline
                                       runs a captioner through the caption store)

Only backbones with a text tower use them; audio-only backbones ignore them with a note.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from mgcl.errors import MgclError
from mgcl.text.captioners import manifest_key, read_caption_file
from mgcl.text.descriptions import load_descriptions
from mgcl.text.prompts import class_text_features
from mgcl.types import TextFeatures

log = logging.getLogger(__name__)

#: The captioner `--captions auto` uses when none is named (Whisper fine-tuned on AudioCaps/Clotho).
DEFAULT_CAPTIONER = "MU-NLPC/whisper-small-audio-captioning"


def resolve_descriptions(
    spec: str | None, classes: Sequence[str], has_text: bool, warn: Callable[[str], None] = log.warning
) -> dict[str, list[str]] | None:
    """``--descriptions`` for these classes (None when off, or for audio-only backbones)."""
    if spec is None or str(spec).lower() == "none":
        return None
    if not has_text:
        if str(spec).lower() != "builtin":  # the default stays silent
            warn("--descriptions ignored: the backbone has no text tower")
        return None
    return load_descriptions(str(spec), classes, warn=warn)


def captions_wanted(spec: str | None, has_text: bool, warn: Callable[[str], None] = log.warning) -> bool:
    """Whether ``--captions`` asks for captions this backbone can use (a note when it cannot)."""
    if spec is None or str(spec).lower() == "none":
        return False
    if not has_text:
        warn("--captions ignored: the backbone has no text tower")
        return False
    return True


def captions_from_file(spec: str | Path, paths: Sequence[Path], manifest: Path) -> list[str]:
    """One caption per path from a file written by `mgcl caption` on the same manifest,
    keyed by the path as written in the manifest (or absolute); every clip needs one."""
    table = read_caption_file(spec)
    out, missing = [], []
    for p in paths:
        key = manifest_key(p, manifest)
        caption = table.get(key, table.get(str(Path(p).resolve()), table.get(str(p))))
        if caption is None:
            missing.append(key)
        out.append(caption or "")
    if missing:
        raise MgclError(
            f"{spec}: no caption for {len(missing)} of {len(paths)} clips "
            f"(e.g. {missing[0]}); run `mgcl caption` on the same manifest"
        )
    return out


def text_features(
    backbone, classes: Sequence[str], descriptions: dict | None, captions: Sequence[str] | None
) -> TextFeatures | None:
    """Prompts + descriptions for the classes, and caption embeddings (one per clip, N_all)."""
    if not getattr(backbone, "has_text", False):
        return None
    text = class_text_features(backbone, classes, descriptions)
    if captions is not None:
        text.captions = backbone.encode_text(list(captions)).detach() if len(captions) else torch.zeros(0, backbone.dim)
    return text
