"""The text side of fit / evaluate: descriptions and captions -> TextFeatures.

    --descriptions FILE|builtin|none   class descriptions (default builtin: the shipped sets
                                       for the classes whose names match)
    --captions FILE|auto|none          one caption per clip: a file written by `mgcl caption`,
                                       or captioned now with --captioner (cached by audio hash)

Only backbones with a text tower use them; audio-only backbones ignore them with a note.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, Sequence

import torch

from mgcl.errors import MgclError
from mgcl.methods.base import TextFeatures

#: The captioner `--captions auto` uses when none is named (Whisper fine-tuned on AudioCaps/Clotho).
DEFAULT_CAPTIONER = "MU-NLPC/whisper-small-audio-captioning"


def note(message: str) -> None:
    print(f"note: {message}", file=sys.stderr)


def resolve_descriptions(spec: str | None, classes: Sequence[str], has_text: bool,
                         warn: Callable[[str], None] = note) -> dict[str, list[str]] | None:
    """``--descriptions`` for these classes (None when off, or for audio-only backbones)."""
    from mgcl.concepts.descriptions import load_descriptions

    if spec is None or str(spec).lower() == "none":
        return None
    if not has_text:
        if str(spec).lower() != "builtin":  # the default stays silent
            warn("--descriptions ignored: the backbone has no text tower")
        return None
    return load_descriptions(str(spec), classes, warn=warn)


def resolve_captions(
    spec: str | None,
    paths: Sequence[Path],
    manifest: Path,
    has_text: bool,
    captioner: str | None = None,
    store: Path | None = None,
    batch_size: int = 8,
    device: str | None = None,
    warn: Callable[[str], None] = note,
) -> list[str] | None:
    """One caption per path for ``--captions FILE|auto|none`` (None when off / audio-only).

    FILE: JSON or CSV from `mgcl caption`, keyed by the path as written in the manifest (or
    absolute); every clip needs one. auto: caption now with ``captioner`` (cached in the
    store by audio content); a clip that cannot be captioned is an error.
    """
    if spec is None or str(spec).lower() == "none":
        return None
    if not has_text:
        warn("--captions ignored: the backbone has no text tower")
        return None
    from mgcl.concepts.cli_caption import manifest_key

    keys = [manifest_key(p, manifest) for p in paths]
    if str(spec).lower() == "auto":
        from mgcl.concepts.captions import CaptionCache, caption_sources
        from mgcl.concepts.cli_caption import make_captioner
        from mgcl.progress import progress_bar

        model = make_captioner(captioner or DEFAULT_CAPTIONER, device=device, batch_size=batch_size)
        cache = CaptionCache(store, model.identity) if store is not None else None
        with progress_bar(len(paths), "captioning") as update:
            res = caption_sources(model, list(paths), cache=cache, batch_size=batch_size, progress=update)
        if res.errors:
            first = "; ".join(res.errors[i] for i in sorted(res.errors)[:3])
            raise MgclError(f"{len(res.errors)} clip(s) could not be captioned: {first}")
        return list(res.captions)
    from mgcl.concepts.captions import read_caption_file

    table = read_caption_file(spec)
    out, missing = [], []
    for key, p in zip(keys, paths):
        caption = table.get(key, table.get(str(Path(p).resolve()), table.get(str(p))))
        if caption is None:
            missing.append(key)
        out.append(caption or "")
    if missing:
        raise MgclError(f"{spec}: no caption for {len(missing)} of {len(paths)} clips "
                        f"(e.g. {missing[0]}); run `mgcl caption` on the same manifest")
    return out


def text_features(backbone, classes: Sequence[str], descriptions: dict | None,
                  captions: Sequence[str] | None) -> TextFeatures | None:
    """Prompts + descriptions for the classes, and caption embeddings (one per clip, N_all)."""
    if not getattr(backbone, "has_text", False):
        return None
    from mgcl.concepts.prompts import class_text_features

    text = class_text_features(backbone, classes, descriptions)
    if captions is not None:
        text.captions = (backbone.encode_text(list(captions)).detach() if len(captions)
                         else torch.zeros(0, backbone.dim))
    return text


def support_text(text: TextFeatures | None, support_index) -> TextFeatures | None:
    """The text side for a support subset: captions sliced to the support clips."""
    if text is None or text.captions is None:
        return text
    return TextFeatures(text.prompts, text.descriptions, text.captions[torch.as_tensor(support_index)])
