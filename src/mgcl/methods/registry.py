"""Few-shot methods by name: ``make_method("mgcl", **hyper_parameters)``, ``build_method``
with checked parameters (one-line errors), and the parameter types JSON and a command line lose."""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping
from typing import Any

from mgcl.errors import MgclError
from mgcl.methods.base import Method
from mgcl.methods.baselines.linear_probe import LinearProbe
from mgcl.methods.baselines.plot import Plot
from mgcl.methods.baselines.prototype import Prototype
from mgcl.methods.baselines.tip_adapter import TipAdapter, TipAdapterF
from mgcl.methods.baselines.treff import Treff
from mgcl.methods.baselines.zero_shot import ZeroShot, ZeroShotDesc
from mgcl.methods.mgcl.finetuned import MGCLF
from mgcl.methods.mgcl.training_free import MGCL

_METHODS: dict[str, type[Method]] = {
    "zero_shot": ZeroShot,
    "zero_shot_desc": ZeroShotDesc,
    "prototype": Prototype,
    "linear_probe": LinearProbe,
    "tip_adapter": TipAdapter,
    "tip_adapter_f": TipAdapterF,
    "treff": Treff,
    "plot": Plot,
    "mgcl": MGCL,
    "mgcl_f": MGCLF,
}


def available_methods() -> list[str]:
    return list(_METHODS)


def method_class(name: str) -> type[Method]:
    if name not in _METHODS:
        raise MgclError(f"unknown method '{name}' (choose from: {', '.join(_METHODS)})")
    return _METHODS[name]


def make_method(name: str, **params) -> Method:
    return method_class(name)(**params)


def coerce_params(cls: type, params: Mapping[str, Any], method_name: str | None = None) -> dict:
    """Check ``params`` against ``cls.__init__`` and restore types JSON / a command line lose.

    A list (or a comma-separated string) becomes a tuple where the parameter's default is
    a tuple or its annotation says ``tuple``. Unknown names raise a one-line MgclError.
    """
    sig = inspect.signature(cls.__init__)
    accepted = {k: p for k, p in sig.parameters.items() if k != "self"}
    has_var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
    name = method_name or getattr(cls, "name", cls.__name__)
    out = {}
    for key, value in params.items():
        if key not in accepted and not has_var_kw:
            choices = ", ".join(k for k, p in accepted.items() if p.kind is not inspect.Parameter.VAR_KEYWORD)
            raise MgclError(f"method '{name}' has no parameter '{key}' (parameters: {choices})")
        p = accepted.get(key)
        wants_tuple = p is not None and (isinstance(p.default, tuple) or "tuple" in str(p.annotation))
        if wants_tuple and isinstance(value, str):
            value = tuple(_parse_scalar(v) for v in value.split(",") if v.strip())
        elif wants_tuple and isinstance(value, list):
            value = tuple(value)
        out[key] = value
    return out


def _parse_scalar(text: str):
    text = text.strip()
    try:
        return json.loads(text)
    except ValueError:
        return text


def build_method(name: str, params: Mapping[str, Any] | None = None):
    """``make_method`` with the parameter names checked (one-line errors instead of TypeError);
    their values are checked by the method's ``fit`` (``__init__`` only stores them)."""
    cls = method_class(name)
    params = coerce_params(cls, dict(params or {}), name)
    try:
        return cls(**params)
    except (TypeError, ValueError) as exc:
        raise MgclError(f"method '{name}': bad parameters {params} ({exc})".splitlines()[0]) from None
