"""The few-shot protocol: shots x seeds (x folds) -> accuracy table.

Support and query never mix: with a test fold, support comes from the other folds and the
query is the whole test fold; without one, each seed draws K support clips per class and
the query is everything else. Methods choose their hyper-parameters on the support set
only (they never see query labels).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from mgcl.backbones.base import AudioFeatures
from mgcl.errors import MgclError
from mgcl.methods import TextFeatures, make_method


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
    methods: Sequence[str],
    shots: Sequence[int],
    seeds: int,
    folds: Sequence[str] | None = None,
    test_fold: str | None = None,
    text_fn: Callable[[np.ndarray, list[str]], TextFeatures | None] | None = None,
    method_params: dict[str, dict] | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[RunResult], list[str]]:
    """Every (method, shots, seed): fit on the support, score on the query.

    ``text_fn(support_indices, classes)`` gives the text side (or None, audio-only).
    Returns the per-run results and the class names.
    """
    y, classes = encode_labels(labels)
    runs = []
    for k in shots:
        for seed in range(seeds):
            s_idx, q_idx = few_shot_split(y, k, seed, folds, test_fold, classes)
            support, query = features[s_idx], features[q_idx]
            ys = torch.as_tensor(y[s_idx])
            text = text_fn(s_idx, classes) if text_fn is not None else None
            for name in methods:
                params = (method_params or {}).get(name, {})
                torch.manual_seed(seed)
                m = make_method(name, **params)
                t0 = time.perf_counter()
                m.fit(support, ys, text=text, n_classes=len(classes))
                t1 = time.perf_counter()
                pred = m.predict(query).numpy()
                t2 = time.perf_counter()
                acc = 100.0 * float((pred == y[q_idx]).mean())
                runs.append(RunResult(name, k, seed, acc, len(q_idx), t1 - t0, t2 - t1, pred))
                if progress is not None:
                    progress(1)
    return runs, classes


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
