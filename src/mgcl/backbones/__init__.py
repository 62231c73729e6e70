"""Backbone registry: ``get_backbone("aisfx")``, ``get_backbone("clap", checkpoint=...)``.

Each entry is a factory taking keyword options; modules are imported lazily so that an
audio-only user never imports transformers.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable

from mgcl.backbones.base import Backbone
from mgcl.errors import BackboneError
from mgcl.types import AudioFeatures, l2_normalize

# name -> ("module:factory", one-line description)
_REGISTRY: dict[str, tuple[str, str]] = {
    "aisfx": (
        "mgcl.backbones.aisfx:AisfxBackbone",
        "pretrained sound-effects CNN shipped in the aisfx wheel (offline, audio-only, 512-d)",
    ),
    "clap": (
        "mgcl.backbones.clap:ClapBackbone",
        "Hugging Face CLAP; --checkpoint ID_OR_DIR (default laion/clap-htsat-unfused)",
    ),
    "clap-random": (
        "mgcl.backbones.clap:random_clap",
        "the released CLAP architecture (153.5 M parameters, published audio settings) with RANDOM "
        "weights and a BPE tokenizer trained on mgcl's descriptions (speed/memory checks only, meaningless output)",
    ),
    "clap-tiny-random": (
        "mgcl.backbones.clap:tiny_random_clap",
        "tiny CLAP with RANDOM weights (tests only, meaningless output)",
    ),
}


def available_backbones() -> dict[str, str]:
    """Registry names and their one-line descriptions."""
    return {name: desc for name, (_, desc) in _REGISTRY.items()}


def register_backbone(name: str, target: str, description: str = "") -> None:
    """Register a factory given as ``"package.module:callable"``."""
    _REGISTRY[name] = (target, description)


def _resolve(target: str) -> Callable[..., Backbone]:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def get_backbone(name: str, **options) -> Backbone:
    """Build a backbone by registry name; unknown names give a one-line error listing choices.
    The backbone's ``registry_spec`` is ``(name, "module:factory", options)``: what rebuilds it
    in another process (``register_backbone(name, target)``, then ``get_backbone(name, **options)``)."""
    if name not in _REGISTRY:
        raise BackboneError(f"unknown backbone '{name}' (choose from: {', '.join(sorted(_REGISTRY))})")
    target = _REGISTRY[name][0]
    backbone = _resolve(target)(**options)
    # how to build it again elsewhere (a Ray worker): registry name, factory and options; an
    # object that takes no new attribute is shipped whole by the engines instead
    with contextlib.suppress(AttributeError):
        backbone.registry_spec = (name, target, dict(options))
    return backbone


__all__ = [
    "AudioFeatures",
    "Backbone",
    "available_backbones",
    "get_backbone",
    "l2_normalize",
    "register_backbone",
]
