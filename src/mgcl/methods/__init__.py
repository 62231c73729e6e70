"""Few-shot methods by name: ``make_method("mgcl", **hyper_parameters)``."""

from __future__ import annotations

import importlib

from mgcl.errors import MgclError
from mgcl.methods.base import Method, SupportViews, TextFeatures

_METHODS: dict[str, str] = {
    "zero_shot": "mgcl.methods.zero_shot:ZeroShot",
    "zero_shot_desc": "mgcl.methods.zero_shot:ZeroShotDesc",
    "prototype": "mgcl.methods.prototype:Prototype",
    "linear_probe": "mgcl.methods.linear_probe:LinearProbe",
    "tip_adapter": "mgcl.methods.tip_adapter:TipAdapter",
    "tip_adapter_f": "mgcl.methods.tip_adapter:TipAdapterF",
    "treff": "mgcl.methods.treff:Treff",
    "plot": "mgcl.methods.plot:Plot",
    "mgcl": "mgcl.methods.mgcl:MGCL",
    "mgcl_f": "mgcl.methods.mgcl:MGCLF",
}


def available_methods() -> list[str]:
    return list(_METHODS)


def method_class(name: str) -> type[Method]:
    if name not in _METHODS:
        raise MgclError(f"unknown method '{name}' (choose from: {', '.join(_METHODS)})")
    module, _, attr = _METHODS[name].partition(":")
    return getattr(importlib.import_module(module), attr)


def make_method(name: str, **params) -> Method:
    return method_class(name)(**params)


__all__ = ["Method", "SupportViews", "TextFeatures", "available_methods", "make_method", "method_class"]
