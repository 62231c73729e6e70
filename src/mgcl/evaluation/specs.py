"""The rows of a results table: which methods run, with which parameters, and the ablation
rows (a branch, a loss term or the audio views of an mgcl method switched off)."""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from mgcl.errors import MgclError
from mgcl.methods.registry import build_method, coerce_params, method_class

#: Names ``--ablate`` understands: MGCL branches (constructor arg ``ablate``) and mgcl_f
#: loss terms (constructor arg ``losses``, the name is removed).
ABLATE_BRANCHES = ("zs", "cc", "fc", "ft", "gc")
ABLATE_LOSSES = ("ce", "coarse", "fine", "instance")
#: Ablations of an input: ``views`` fits mgcl / mgcl_f without the audio views of the support.
ABLATE_INPUTS = ("views",)


@dataclass
class MethodSpec:
    """One row of the results table: ``label`` (e.g. ``"mgcl_f-fc"``) = ``method`` with ``params``."""

    label: str
    method: str
    params: dict = field(default_factory=dict)

    def build(self):
        return build_method(self.method, self.params)


def _init_default(cls: type, name: str):
    p = inspect.signature(cls.__init__).parameters.get(name)
    return None if p is None or p.default is inspect.Parameter.empty else p.default


def method_specs(
    methods: Sequence[str],
    method_params: Mapping[str, Mapping] | None = None,
    ablate: Sequence[str] = (),
) -> list[MethodSpec]:
    """Rows to evaluate: each method with its parameters, plus one ablation row per
    ``ablate`` name for every mgcl-family method (names starting with ``mgcl``).

    A branch name (``zs cc fc ft gc``) is added to the method's ``ablate`` argument; a loss
    name (``ce coarse fine instance``) is removed from its ``losses`` argument (methods
    without ``losses`` get no row for it); ``views`` empties its ``augment`` argument
    (methods without audio views get no row for it). Unknown methods, parameters or names
    raise a one-line MgclError. Every spec is built once here, so bad parameters fail early.
    """
    method_params = {k: dict(v) for k, v in (method_params or {}).items()}
    unknown = [m for m in method_params if m not in methods]
    if unknown:
        raise MgclError(
            f"parameters given for method '{unknown[0]}', which is not among the "
            f"evaluated methods ({', '.join(methods)})"
        )
    for name in list(method_params):  # '1,4' -> (1, 4) where a tuple is expected
        method_params[name] = coerce_params(method_class(name), method_params[name], name)
    bad = [a for a in ablate if a not in ABLATE_BRANCHES + ABLATE_LOSSES + ABLATE_INPUTS]
    if bad:
        raise MgclError(
            f"unknown ablation '{bad[0]}' (branches: {', '.join(ABLATE_BRANCHES)}; "
            f"losses: {', '.join(ABLATE_LOSSES)}; inputs: {', '.join(ABLATE_INPUTS)})"
        )
    if len(set(methods)) != len(methods):
        raise MgclError(f"a method is listed twice in {', '.join(methods)}")
    specs: list[MethodSpec] = []
    family = []
    for name in methods:
        cls = method_class(name)  # unknown names fail here, with the list of choices
        spec = MethodSpec(name, name, method_params.get(name, {}))
        spec.build()  # validates the parameters (one-line error)
        specs.append(spec)
        if name.startswith("mgcl"):
            family.append((name, cls))
    if ablate and not family:
        raise MgclError("--ablate switches parts of an mgcl method off: add mgcl or mgcl_f to --methods")
    for name, cls in family:
        base = method_params.get(name, {})
        for a in ablate:
            params = dict(base)
            if a in ABLATE_BRANCHES:
                if "ablate" not in inspect.signature(cls.__init__).parameters:
                    continue
                current = base.get("ablate", _init_default(cls, "ablate")) or ()
                params["ablate"] = tuple(current) + ((a,) if a not in current else ())
            elif a in ABLATE_INPUTS:
                if "augment" not in inspect.signature(cls.__init__).parameters:
                    continue
                params["augment"] = ()
            else:
                current = base.get("losses", _init_default(cls, "losses"))
                if current is None:
                    continue  # this method has no loss terms (training-free)
                params["losses"] = tuple(x for x in current if x != a)
            spec = MethodSpec(f"{name}-{a}", name, params)
            spec.build()
            specs.append(spec)
    used = {s.label.rsplit("-", 1)[1] for s in specs if s.label != s.method}
    unused = [a for a in ablate if a not in used]
    if unused:
        raise MgclError(
            f"--ablate {unused[0]} applies to none of {', '.join(n for n, _ in family)} "
            "(loss terms exist only in the fine-tuned mgcl_f, audio views in mgcl and mgcl_f)"
        )
    return specs


def view_requests(specs: Sequence[MethodSpec]) -> list[tuple[str, ...]]:
    """The distinct, non-empty sets of audio views that the specs' methods train on."""
    out = []
    for spec in specs:
        names = spec.build().view_names()
        if names and names not in out:
            out.append(names)
    return out
