"""The few-shot protocol: shots x seeds (x folds) -> accuracy table.

Support and query never mix: with a test fold, support comes from the other folds and the
query is the whole test fold; without one, each seed draws K support clips per class and
the query is everything else. Methods choose their hyper-parameters on the support set
only (they never see query labels).
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

import numpy as np
import torch

from mgcl.backbones.base import AudioFeatures
from mgcl.errors import MgclError
from mgcl.methods import SupportViews, TextFeatures, method_class

if TYPE_CHECKING:
    from mgcl.features import ViewCache

#: Names ``--ablate`` understands: MGCL branches (constructor arg ``ablate``) and mgcl_f
#: loss terms (constructor arg ``losses``, the name is removed).
ABLATE_BRANCHES = ("zs", "cc", "fc", "ft", "gc")
ABLATE_LOSSES = ("ce", "coarse", "fine", "instance")
#: Ablations of an input: ``views`` fits mgcl / mgcl_f without the audio views of the support.
ABLATE_INPUTS = ("views",)


def encode_labels(labels: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """String labels -> (int codes (N,), sorted class names)."""
    classes = sorted(set(labels))
    index = {c: i for i, c in enumerate(classes)}
    return np.array([index[label] for label in labels], dtype=np.int64), classes


def sample_support(y: np.ndarray, candidates: np.ndarray, shots: int, rng: np.random.Generator,
                   classes: Sequence[str] | None = None) -> np.ndarray:
    """K indices per class drawn without replacement from ``candidates`` (sorted output)."""
    chosen = []
    for c in range(int(y.max()) + 1):
        pool = candidates[y[candidates] == c]
        if len(pool) < shots:
            name = classes[c] if classes is not None else c
            raise MgclError(
                f"class '{name}' has {len(pool)} clips available for support, fewer than "
                f"--shots {shots}"
            )
        chosen.append(rng.choice(pool, size=shots, replace=False))
    return np.sort(np.concatenate(chosen))


def few_shot_split(
    y: np.ndarray,
    shots: int,
    seed: int,
    folds: Sequence[str] | None = None,
    test_fold: str | None = None,
    classes: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(support indices, query indices) for one seed.

    With ``test_fold``: support from rows whose fold differs, query = every row of the test
    fold. Without: K per class for support, every other row is the query (a class needs at
    least K + 1 clips).
    """
    rng = np.random.default_rng(seed)
    all_idx = np.arange(len(y))
    if test_fold is not None:
        if folds is None:
            raise MgclError("--test-fold needs a 'fold' column in the manifest")
        folds = np.asarray([str(f) for f in folds])
        query = all_idx[folds == str(test_fold)]
        if len(query) == 0:
            raise MgclError(f"no rows in test fold '{test_fold}' (folds: {', '.join(sorted(set(folds)))})")
        support = sample_support(y, all_idx[folds != str(test_fold)], shots, rng, classes)
        return support, query
    counts = np.bincount(y)
    if (counts <= shots).any():
        c = int(np.argmin(counts))
        name = classes[c] if classes is not None else c
        raise MgclError(
            f"class '{name}' has {counts[c]} clips: --shots {shots} leaves none for the query "
            "(use fewer shots or --test-fold)"
        )
    support = sample_support(y, all_idx, shots, rng, classes)
    return support, np.setdiff1d(all_idx, support)


@dataclass
class MethodSpec:
    """One row of the results table: ``label`` (e.g. ``"mgcl_f-fc"``) = ``method`` with ``params``."""

    label: str
    method: str
    params: dict = field(default_factory=dict)

    def build(self):
        from mgcl.classifier import build_method

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
    from mgcl.classifier import coerce_params

    method_params = {k: dict(v) for k, v in (method_params or {}).items()}
    unknown = [m for m in method_params if m not in methods]
    if unknown:
        raise MgclError(f"parameters given for method '{unknown[0]}', which is not among the "
                        f"evaluated methods ({', '.join(methods)})")
    for name in list(method_params):  # '1,4' -> (1, 4) where a tuple is expected
        method_params[name] = coerce_params(method_class(name), method_params[name], name)
    bad = [a for a in ablate if a not in ABLATE_BRANCHES + ABLATE_LOSSES + ABLATE_INPUTS]
    if bad:
        raise MgclError(f"unknown ablation '{bad[0]}' (branches: {', '.join(ABLATE_BRANCHES)}; "
                        f"losses: {', '.join(ABLATE_LOSSES)}; inputs: {', '.join(ABLATE_INPUTS)})")
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
        raise MgclError(f"--ablate {unused[0]} applies to none of {', '.join(n for n, _ in family)} "
                        "(loss terms exist only in the fine-tuned mgcl_f, audio views in mgcl and mgcl_f)")
    return specs


def check_shots_and_classes(labels: Sequence[str], shots: Sequence[int]) -> tuple[np.ndarray, list[str]]:
    """Shots are positive integers and the data has at least 2 classes; returns
    :func:`encode_labels` of ``labels``."""
    if not shots:
        raise MgclError("no shots given")
    if any(int(k) != k or k < 1 for k in shots):
        raise MgclError(f"shots must be positive integers, got {list(shots)}")
    y, classes = encode_labels(labels)
    if len(classes) < 2:
        raise MgclError(f"need at least 2 classes, the data has {len(classes)}")
    return y, classes


def check_protocol(
    labels: Sequence[str],
    shots: Sequence[int],
    folds: Sequence[str] | None = None,
    test_fold: str | None = None,
) -> None:
    """Raise the MgclError that the protocol would raise, before any expensive work."""
    y, classes = check_shots_and_classes(labels, shots)
    for k in shots:
        few_shot_split(y, int(k), 0, folds, test_fold, classes)


def protocol_description(shots: Sequence[int], seeds: int, test_fold: str | None) -> dict:
    """The ``protocol`` object of the results JSON."""
    if test_fold is not None:
        support = (f"K clips per class drawn at random (one draw per seed) from the rows whose "
                   f"fold is not '{test_fold}'")
        query = f"every row of fold '{test_fold}'"
    else:
        support = "K clips per class drawn at random (one draw per seed) from all rows"
        query = "every row not drawn for the support"
    return {"test_fold": test_fold, "shots": [int(k) for k in shots], "seeds": int(seeds),
            "support": support, "query": query,
            "model_selection": "inside the support set only (the query labels are never seen)"}


@dataclass
class RunResult:
    method: str
    shots: int
    seed: int
    accuracy: float  # percent
    n_query: int
    fit_seconds: float
    predict_seconds: float
    predictions: np.ndarray


def run_protocol(
    features: AudioFeatures,
    labels: Sequence[str],
    methods: Sequence[str | MethodSpec],
    shots: Sequence[int],
    seeds: int,
    folds: Sequence[str] | None = None,
    test_fold: str | None = None,
    text_fn: Callable[[np.ndarray, list[str]], TextFeatures | None] | None = None,
    method_params: dict[str, dict] | None = None,
    progress: Callable[[int], None] | None = None,
    views: ViewCache | None = None,
) -> tuple[list[RunResult], list[str]]:
    """Every (method, shots, seed): fit on the support, score on the query.

    ``methods`` are names (with ``method_params[name]``) or :class:`MethodSpec` rows.
    ``text_fn(support_indices, classes)`` gives the text side (or None, audio-only).
    ``views``: audio views of the rows, for methods that train on them (else they train
    without).
    Returns the per-run results and the class names.
    """
    specs = [
        m if isinstance(m, MethodSpec) else MethodSpec(m, m, dict((method_params or {}).get(m, {})))
        for m in methods
    ]
    y, classes = encode_labels(labels)
    runs = []
    for k in shots:
        for seed in range(seeds):
            s_idx, q_idx = few_shot_split(y, k, seed, folds, test_fold, classes)
            text = text_fn(s_idx, classes) if text_fn is not None else None
            runs += fit_and_score(specs, features[s_idx], y[s_idx], features[q_idx], y[q_idx],
                                  len(classes), k, seed, text=text, progress=progress,
                                  views=views_of(views, s_idx))
    return runs, classes


def views_of(cache: ViewCache | None, support_idx: np.ndarray):
    """``names -> SupportViews`` of one support set, or None without a view cache."""
    if cache is None:
        return None
    return lambda names: cache.views(support_idx, names)


def protocol_support_rows(y: np.ndarray, shots: Sequence[int], seeds: int, folds=None,
                          test_fold: str | None = None, classes=None) -> np.ndarray:
    """Every row that some (shots, seed) of :func:`run_protocol` draws into the support."""
    rows = [few_shot_split(y, int(k), seed, folds, test_fold, classes)[0] for k in shots for seed in range(seeds)]
    return np.unique(np.concatenate(rows))


def view_requests(specs: Sequence[MethodSpec]) -> list[tuple[str, ...]]:
    """The distinct, non-empty sets of audio views that the specs' methods train on."""
    out = []
    for spec in specs:
        names = spec.build().view_names()
        if names and names not in out:
            out.append(names)
    return out


def fit_and_score(
    specs: Sequence[MethodSpec],
    support: AudioFeatures,
    y_support: np.ndarray,
    query: AudioFeatures,
    y_query: np.ndarray,
    n_classes: int,
    shots: int,
    seed: int,
    text: TextFeatures | None = None,
    progress: Callable[[int], None] | None = None,
    views: Callable[[tuple[str, ...]], SupportViews | None] | None = None,
) -> list[RunResult]:
    """One support/query split: fit every spec on the support, score it on the query.

    ``views(names)``: audio views of the support clips, for a method whose
    ``view_names()`` asks for them. Labels are int codes in ``[0, n_classes)``; ``seed``
    seeds torch before each fit. The one fit/predict loop of the project:
    :func:`run_protocol` and :mod:`mgcl.protocols` use it.
    """
    ys = torch.as_tensor(np.asarray(y_support))
    y_query = np.asarray(y_query)
    runs = []
    for spec in specs:
        torch.manual_seed(seed)
        m = spec.build()
        t0 = time.perf_counter()
        names = m.view_names()
        m.fit(support, ys, text=text, n_classes=n_classes,
              views=views(names) if names and views is not None else None)
        t1 = time.perf_counter()
        pred = m.predict(query).numpy()
        t2 = time.perf_counter()
        acc = 100.0 * float((pred == y_query).mean())
        runs.append(RunResult(spec.label, shots, seed, acc, len(y_query), t1 - t0, t2 - t1, pred))
        if progress is not None:
            progress(1)
    return runs


def method_timing(runs: Sequence[RunResult]) -> dict[str, dict]:
    """Per method: total and mean-per-run fit and predict seconds."""
    out = {}
    for name in dict.fromkeys(r.method for r in runs):
        group = [r for r in runs if r.method == name]
        fit = sum(r.fit_seconds for r in group)
        pred = sum(r.predict_seconds for r in group)
        out[name] = {
            "runs": len(group),
            "fit_seconds": round(fit, 4),
            "predict_seconds": round(pred, 4),
            "fit_seconds_per_run": round(fit / len(group), 4),
            "predict_seconds_per_run": round(pred / len(group), 4),
        }
    return out


def summarise(runs: Sequence[RunResult]) -> list[dict]:
    """Mean and std (over seeds) of accuracy per (method, shots), DESIGN §3 fields."""
    out = []
    keys = sorted({(r.method, r.shots) for r in runs}, key=lambda k: (k[1],))
    order = list(dict.fromkeys(r.method for r in runs))
    keys.sort(key=lambda k: (order.index(k[0]), k[1]))
    for method, k in keys:
        accs = np.array([r.accuracy for r in runs if r.method == method and r.shots == k])
        group = [r for r in runs if r.method == method and r.shots == k]
        out.append(
            {
                "method": method,
                "shots": k,
                "accuracy_mean": round(float(accs.mean()), 2),
                "accuracy_std": round(float(accs.std(ddof=0)), 2),
                "n_seeds": len(accs),
                "n_query": int(np.mean([r.n_query for r in group])),
                "fit_seconds_mean": round(float(np.mean([r.fit_seconds for r in group])), 4),
                "predict_seconds_mean": round(float(np.mean([r.predict_seconds for r in group])), 4),
            }
        )
    return out


def format_table(results: Sequence[dict]) -> str:
    """Plain-text table: methods as rows, shots as columns, 'mean ± std' cells."""
    methods = list(dict.fromkeys(r["method"] for r in results))
    shots = sorted({r["shots"] for r in results})
    cell = {(r["method"], r["shots"]): f"{r['accuracy_mean']:.1f} ± {r['accuracy_std']:.1f}" for r in results}
    head = ["method"] + [f"{k}-shot" for k in shots]
    rows = [[m] + [cell.get((m, k), "-") for k in shots] for m in methods]
    widths = [max(len(str(r[i])) for r in [head] + rows) for i in range(len(head))]
    line = lambda r: "  ".join(str(v).ljust(w) if i == 0 else str(v).rjust(w) for i, (v, w) in enumerate(zip(r, widths)))
    return "\n".join([line(head), line(["-" * w for w in widths])] + [line(r) for r in rows])
