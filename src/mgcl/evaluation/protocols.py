"""The field's few-shot protocols, by name, on cached features.

``full-way``  every class of the dataset in each task; K support clips per class, K in
              ``shots`` (default 1, 2, 4, 8, 16), ``seeds`` random draws (default 3).
              * official folds: cross-validation, each fold in turn is the test fold (its
                every clip is a query) and the support is drawn from the other folds; the
                table gives mean ± std over folds x seeds;
              * a fixed split (``split`` column train/test): support drawn from the train
                rows, query = every test row (validation rows are left out); mean ± std
                over seeds;
              * neither: K per class drawn at random, every other clip is a query.
``episodes``  N-way K-shot episodes (default 5-way, K in 1 and 5, 600 episodes, Q = 15
              queries per class): each episode draws N distinct classes, then Q query clips
              and K support clips per class, disjoint; the table gives the mean accuracy over
              episodes ± the 95 % confidence interval ``1.96 * std / sqrt(episodes)``.
              * official folds: episode e tests on fold ``folds[e % n_folds]``: queries come
                from that fold, support from the other folds (clips cut from one recording
                share a fold, so support and query never come from one recording);
              * a fixed split: support from train, queries from test;
              * neither: support and queries from all clips (disjoint).
              Only classes with at least Q query candidates and K support candidates take
              part. Episode e draws the same classes and queries for every K (a paired
              comparison across shots) and is reproducible from ``seed``.

In meta-learning benchmarks, episodes are drawn from "novel" classes never seen in
training. mgcl trains nothing on the dataset: the backbone is frozen and every method fits
on the episode's support alone, so every class is novel and episodes may use all classes
(restricted to the test fold or split as above).

``--open-set U`` (full-way): for each seed, U classes drawn at random (the same for every
K and test fold of that seed) are held out of the support; every clip of theirs in the
query pool (the test fold, the test split, or all of their clips without either) is added
to the queries as *unknown*. Each run reports the closed-set accuracy (known queries
only), the AUROC of known vs unknown queries on the calibrated top probability
(``max softmax(logits / T)``, T fitted on the support), and the accuracy on all queries at
the threshold ``reject="auto"`` chooses on the support alone (:mod:`mgcl.methods.openset`;
a rejected unknown query counts as correct, a rejected known one as wrong; with one shot
there is no held-out support clip and nothing is rejected).

Support and query never mix, and methods choose their hyper-parameters on the support set
only (they never see query labels). Both protocols fit and score through
:func:`fit_and_score`, the one fit/predict loop of the project, and return :class:`RunResult`
records, which :func:`mgcl.evaluation.summary.summarise` turns into the rows of the results
JSON. ``mgcl evaluate --test-fold F`` is the full-way protocol restricted to test fold F.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from mgcl.errors import MgclError
from mgcl.evaluation.specs import MethodSpec
from mgcl.methods.base import encode_labels
from mgcl.methods.calibration import (
    CALIBRATION_FOLDS,
    calibrated_probabilities,
    expected_calibration_error,
    fit_temperature,
    held_out_fits,
)
from mgcl.methods.openset import choose_threshold, known_unknown_auroc, max_probability
from mgcl.store.features import ViewCache
from mgcl.types import AudioFeatures, SupportViews, TextFeatures
from mgcl.util.text import natural_key

#: Protocol names and what they are.
PROTOCOLS: dict[str, str] = {
    "full-way": "all classes, K shots per class, cross-validation over the official folds "
    "(or the fixed train/test split), mean ± std over folds x seeds",
    "episodes": "N-way K-shot episodes, mean accuracy ± 95 % confidence interval over episodes",
}
DEFAULT_SHOTS = {"full-way": (1, 2, 4, 8, 16), "episodes": (1, 5)}

TRAIN_SPLITS = ("train", "training")
TEST_SPLITS = ("test", "testing", "eval", "evaluation")

Progress = Callable[[int], None]

#: Whether :func:`fit_and_score` fits a temperature per run (on the run's support, up to
#: ``CALIBRATION_FOLDS`` more fits of each method) to report the calibrated ECE. Set it to
#: False to skip those fits (``ece`` and ``temperature`` are then None); accuracy is the
#: same either way.
CALIBRATE = True


@dataclass
class RunResult:
    """One (method, shots, seed[, fold | episode]) run.

    ``predictions`` and ``targets`` are codes into the dataset's (sorted) class list, also in
    episodes (where the method itself saw labels 0..N-1 of ``ways``).

    Calibration (:mod:`mgcl.methods.calibration`): ``ece_raw`` is the expected calibration
    error (percent, 15 bins) of the query probabilities ``softmax(logits)``; ``ece`` that of
    ``softmax(logits / temperature)``, the temperature fitted on the run's support
    (leave-one-shot-out; 1.0 with one shot per class); ``calibration_seconds`` the time of
    those extra fits. ``ece`` and ``temperature`` are None when calibration was off.
    """

    method: str
    shots: int
    seed: int
    accuracy: float  # percent
    n_query: int
    fit_seconds: float
    predict_seconds: float
    predictions: np.ndarray
    fold: str | None = None  # the test fold; "test" for a fixed split; None for a random split
    episode: int | None = None
    targets: np.ndarray | None = None  # query labels, aligned with predictions
    ways: np.ndarray | None = None  # episodes: the N class codes, sorted
    ece_raw: float | None = None  # percent
    ece: float | None = None  # percent, with the temperature
    temperature: float | None = None
    calibration_seconds: float = 0.0
    # open set (queries of classes held out of the support; ``accuracy`` is then the
    # closed-set accuracy on the known queries): percent, None outside the open-set protocol
    n_unknown: int = 0
    auroc: float | None = None  # known vs unknown queries on the calibrated top probability
    open_accuracy: float | None = None  # all queries at the threshold (rejected unknown = correct)
    no_reject_accuracy: float | None = None  # all queries, nothing rejected (every unknown one wrong)
    threshold: float | None = None  # chosen on the support; None: nothing rejected (one shot)
    known_accept: float | None = None  # known queries accepted
    unknown_reject: float | None = None  # unknown queries rejected
    unknown_classes: np.ndarray | None = None  # class codes held out of the support


def _specs(methods: Sequence[str | MethodSpec]) -> list[MethodSpec]:
    return [m if isinstance(m, MethodSpec) else MethodSpec(m, m) for m in methods]


def _column(values: Sequence[str | None] | None) -> np.ndarray | None:
    """A fold/split column as strings, or None when any row lacks a value."""
    if values is None or any(v is None or str(v).strip() == "" for v in values):
        return None
    return np.asarray([str(v).strip() for v in values])


def _split_roles(splits: np.ndarray) -> np.ndarray:
    """Per row 'train', 'test' or '' (left out); raises when either side is empty."""
    low = np.char.lower(splits.astype(str))
    roles = np.where(np.isin(low, TRAIN_SPLITS), "train", np.where(np.isin(low, TEST_SPLITS), "test", ""))
    for role in ("train", "test"):
        if not (roles == role).any():
            raise MgclError(
                f"the split column has no {role} rows (values: {', '.join(sorted(set(splits)))}; "
                f"train: {'/'.join(TRAIN_SPLITS)}, test: {'/'.join(TEST_SPLITS)})"
            )
    return roles


def _no_folds(test_folds) -> None:
    if test_folds:
        raise MgclError(f"test fold '{list(test_folds)[0]}' given, but the data has no fold column")


def select_test_folds(folds: Sequence[str], test_folds: Sequence[str] | None = None) -> list[str]:
    """The folds used as test folds: ``test_folds`` (checked) or every fold, in natural order."""
    present = sorted({str(f) for f in folds}, key=natural_key)
    if not test_folds:
        return present
    wanted = [str(f) for f in test_folds]
    missing = [f for f in wanted if f not in present]
    if missing:
        raise MgclError(f"no test fold '{missing[0]}' in the data (folds: {', '.join(present)})")
    return list(dict.fromkeys(wanted))


def _text_for(text: TextFeatures | None, support_idx: np.ndarray, class_idx: np.ndarray | None = None):
    """The text side for one task: captions of the support clips, the task's classes."""
    if text is None:
        return None
    captions = text.captions[torch.as_tensor(support_idx)] if text.captions is not None else None
    if class_idx is None:
        return TextFeatures(text.prompts, text.descriptions, captions)
    idx = [int(c) for c in class_idx]
    descriptions = [text.descriptions[c] for c in idx] if text.descriptions else []
    return TextFeatures(text.prompts[torch.as_tensor(idx)], descriptions, captions)


def sample_support(
    y: np.ndarray, candidates: np.ndarray, shots: int, rng: np.random.Generator, classes: Sequence[str] | None = None
) -> np.ndarray:
    """K indices per class drawn without replacement from ``candidates`` (sorted output)."""
    chosen = []
    for c in range(int(y.max()) + 1):
        pool = candidates[y[candidates] == c]
        if len(pool) < shots:
            name = classes[c] if classes is not None else c
            raise MgclError(f"class '{name}' has {len(pool)} clips available for support, fewer than --shots {shots}")
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


def views_of(cache: ViewCache | None, support_idx: np.ndarray):
    """``names -> SupportViews`` of one support set, or None without a view cache."""
    if cache is None:
        return None
    return lambda names: cache.views(support_idx, names)


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
    calibrate: bool | None = None,
) -> list[RunResult]:
    """One support/query split: fit every spec on the support, score it on the query.

    A query label of -1 marks a clip of a class held out of the support (open set): the
    run's ``accuracy`` is then the closed-set accuracy on the other queries, and it also
    reports ``auroc``, ``open_accuracy`` at the threshold of ``reject="auto"`` (chosen on the
    support only, from the leave-one-shot-out fits that give the temperature, which is
    always fitted then), ``known_accept`` and ``unknown_reject``.

    ``views(names)``: audio views of the support clips, for a method whose
    ``view_names()`` asks for them. Labels are int codes in ``[0, n_classes)``; ``seed``
    seeds torch before each fit. The one fit/predict loop of the project:
    :func:`run_protocol` and :mod:`mgcl.evaluation.tasks` use it.

    Each run also records the ECE of its query probabilities, raw and with a temperature
    fitted on the support (``calibrate``, default :data:`CALIBRATE`): clones of the fitted
    method, its choices on the support pinned, fitted on leave-one-shot-out folds of the
    support (seeded with ``seed``, in a forked RNG) score the held-out clips. The
    temperature changes no argmax: predictions and accuracy are those of the method alone.
    """
    calibrate = CALIBRATE if calibrate is None else bool(calibrate)
    ys = torch.as_tensor(np.asarray(y_support))
    y_query = np.asarray(y_query)
    known = y_query >= 0
    open_set = not known.all()
    yq = torch.as_tensor(y_query[known])
    kq = torch.as_tensor(known)
    runs = []
    for spec in specs:
        torch.manual_seed(seed)
        m = spec.build()
        t0 = time.perf_counter()
        names = m.view_names()
        sv = views(names) if names and views is not None else None
        m.fit(support, ys, text=text, n_classes=n_classes, views=sv)
        t1 = time.perf_counter()
        logits = m.logits(query)
        pred = logits.argmax(dim=1).numpy()
        t2 = time.perf_counter()
        acc = 100.0 * float((pred[known] == y_query[known]).mean()) if known.any() else float("nan")
        run = RunResult(spec.label, shots, seed, acc, len(y_query), t1 - t0, t2 - t1, pred)
        run.ece_raw = 100.0 * expected_calibration_error(logits[kq].softmax(dim=1), yq)
        if calibrate or open_set:
            held = held_out_fits(m, support, ys, text, sv, n_classes, CALIBRATION_FOLDS, seed)
            t = fit_temperature(held.logits, held.labels) if held is not None else 1.0
            run.temperature = t
            run.ece = 100.0 * expected_calibration_error(calibrated_probabilities(logits[kq], t), yq)
            if open_set:
                score_open_set(run, logits, pred, y_query, t, choose_threshold("auto", t, held).threshold)
            run.calibration_seconds = time.perf_counter() - t2
        runs.append(run)
        if progress is not None:
            progress(1)
    return runs


def score_open_set(
    run: RunResult,
    logits: torch.Tensor,
    pred: np.ndarray,
    y_query: np.ndarray,
    temperature: float,
    threshold: float | None,
) -> RunResult:
    """Fill the open-set fields of ``run`` from the query logits (Q, C), the argmax ``pred``
    (Q,), the labels (Q,) with -1 for unknown queries, the temperature and the threshold
    (None: nothing rejected). With ``s = max softmax(z / T)`` and accepted = ``s >= τ``:
    ``auroc = AUROC(s of known, s of unknown)``; ``open_accuracy`` = mean over all queries of
    [known: accepted and right; unknown: rejected] (percent); ``no_reject_accuracy`` the same
    with nothing rejected (the baseline rejection has to beat)."""
    known = y_query >= 0
    conf = max_probability(logits, temperature).numpy()
    accepted = np.ones(len(conf), dtype=bool) if threshold is None else conf >= threshold
    auc = known_unknown_auroc(conf[known], conf[~known])
    right = np.where(known, accepted & (pred == y_query), ~accepted)
    run.n_unknown = int((~known).sum())
    run.auroc = None if auc is None else 100.0 * auc
    run.open_accuracy = 100.0 * float(right.mean())
    run.no_reject_accuracy = 100.0 * float((known & (pred == y_query)).mean())
    run.threshold = threshold
    run.known_accept = 100.0 * float(accepted[known].mean()) if known.any() else None
    run.unknown_reject = 100.0 * float((~accepted[~known]).mean()) if (~known).any() else None
    return run


# ----------------------------------------------------------------------------- open set
def unknown_classes(n_classes: int, n_unknown: int, seed: int) -> np.ndarray:
    """The ``n_unknown`` class codes held out of the support for ``seed`` (sorted), the same
    for every shot count and test fold; at least 2 classes stay known."""
    if int(n_unknown) != n_unknown or not 1 <= n_unknown <= n_classes - 2:
        raise MgclError(
            f"--open-set must be an integer from 1 to {n_classes - 2} (classes held out of the support; "
            f"the data has {n_classes} classes and at least 2 must stay known), got {n_unknown}"
        )
    return np.sort(np.random.default_rng([int(seed), 1_000_003]).choice(n_classes, size=int(n_unknown), replace=False))


def open_set_splits(
    y: np.ndarray,
    shots: int,
    seed: int,
    unknown: np.ndarray,
    folds: Sequence[str | None] | None = None,
    splits: Sequence[str | None] | None = None,
    test_folds: Sequence[str] | None = None,
    classes: Sequence[str] | None = None,
) -> list[tuple[str | None, np.ndarray, np.ndarray]]:
    """:func:`full_way_splits` of the known classes (those not in ``unknown``), each query
    set joined by every row of an unknown class in the same query pool: the test fold, the
    test split, or (without either) every such row. Support rows are of known classes only."""
    unknown = np.asarray(unknown)
    n_classes = int(y.max()) + 1
    known = np.setdiff1d(np.arange(n_classes), unknown)
    is_known = np.isin(y, known)
    rows, others = np.flatnonzero(is_known), np.flatnonzero(~is_known)
    f, s = _column(folds), _column(splits)
    roles = _split_roles(s) if f is None and s is not None else None
    y_known = np.searchsorted(known, y[rows])
    names = None if classes is None else [classes[c] for c in known]
    out = []
    for fold, sup, qry in full_way_splits(
        y_known,
        shots,
        seed,
        None if f is None else f[rows],
        None if s is None else s[rows],
        test_folds,
        names,
    ):
        if f is not None:
            extra = others[f[others] == fold]
        elif roles is not None:
            extra = others[roles[others] == "test"]
        else:
            extra = others
        out.append((fold, rows[sup], np.sort(np.concatenate([rows[qry], extra]))))
    return out


def full_way_tasks(
    y: np.ndarray,
    shots: int,
    seed: int,
    folds=None,
    splits=None,
    test_folds=None,
    classes: Sequence[str] | None = None,
    open_set: int = 0,
) -> list[tuple[str | None, np.ndarray, np.ndarray, np.ndarray | None]]:
    """``[(test fold, support rows, query rows, unknown class codes or None)]`` of one (K,
    seed): :func:`full_way_splits`, or :func:`open_set_splits` with ``open_set`` classes held
    out (:func:`unknown_classes`)."""
    if not open_set:
        splits_ = full_way_splits(y, shots, seed, folds, splits, test_folds, classes)
        return [(t, sup, qry, None) for t, sup, qry in splits_]
    unknown = unknown_classes(int(y.max()) + 1, open_set, seed)
    return [
        (t, sup, qry, unknown)
        for t, sup, qry in open_set_splits(y, shots, seed, unknown, folds, splits, test_folds, classes)
    ]


# ----------------------------------------------------------------------------- full-way
def full_way_splits(
    y: np.ndarray,
    shots: int,
    seed: int,
    folds: Sequence[str | None] | None = None,
    splits: Sequence[str | None] | None = None,
    test_folds: Sequence[str] | None = None,
    classes: Sequence[str] | None = None,
) -> list[tuple[str | None, np.ndarray, np.ndarray]]:
    """``[(test fold, support indices, query indices)]`` of one (shots, seed).

    Folds: one entry per test fold (:func:`few_shot_split` with that fold). Fixed split: one
    entry, fold 'test' (support from train rows, query = test rows). Otherwise one random
    split, fold None.
    """
    f = _column(folds)
    if f is not None:
        return [(t, *few_shot_split(y, shots, seed, f, t, classes)) for t in select_test_folds(f, test_folds)]
    _no_folds(test_folds)
    s = _column(splits)
    if s is not None:
        roles = _split_roles(s)
        keep = np.flatnonzero(roles != "")
        sup, qry = few_shot_split(y[keep], shots, seed, roles[keep], "test", classes)
        return [("test", keep[sup], keep[qry])]
    return [(None, *few_shot_split(y, shots, seed, classes=classes))]


def full_way(
    features: AudioFeatures,
    labels: Sequence[str],
    methods: Sequence[str | MethodSpec],
    shots: Sequence[int] = DEFAULT_SHOTS["full-way"],
    seeds: int = 3,
    folds: Sequence[str | None] | None = None,
    splits: Sequence[str | None] | None = None,
    test_folds: Sequence[str] | None = None,
    text: TextFeatures | None = None,
    progress: Progress | None = None,
    views: ViewCache | None = None,
    calibrate: bool | None = None,
    open_set: int = 0,
) -> tuple[list[RunResult], list[str]]:
    """Full-way K-shot over folds x shots x seeds (see the module docstring).

    ``text`` holds prompts/descriptions of every class (sorted labels) and, optionally, one
    caption per row; ``views`` the rows' audio views for methods that train on them;
    ``open_set`` > 0 holds that many classes out of the support (per seed) and adds their
    clips to the queries as unknown. Returns the runs and the sorted class names.
    """
    specs = _specs(methods)
    y, classes = encode_labels(labels)
    runs: list[RunResult] = []
    for k in shots:
        for seed in range(seeds):
            tasks = full_way_tasks(y, int(k), seed, folds, splits, test_folds, classes, open_set)
            for fold, s_idx, q_idx, unknown in tasks:
                if unknown is None:
                    known, local, n_known, task_text = None, y, len(classes), _text_for(text, s_idx)
                else:  # the method sees the known classes only, as 0..C-U-1; unknown queries are -1
                    known = np.setdiff1d(np.arange(len(classes)), unknown)
                    local = np.where(np.isin(y, known), np.searchsorted(known, y), -1)
                    n_known, task_text = len(known), _text_for(text, s_idx, known)
                for r in fit_and_score(
                    specs,
                    features[s_idx],
                    local[s_idx],
                    features[q_idx],
                    local[q_idx],
                    n_known,
                    int(k),
                    seed,
                    task_text,
                    progress,
                    views_of(views, s_idx),
                    calibrate=calibrate,
                ):
                    if known is not None:
                        r.predictions, r.unknown_classes = known[r.predictions], unknown.copy()
                    r.fold, r.targets = fold, y[q_idx].copy()
                    runs.append(r)
    return runs, classes


# ----------------------------------------------------------------------------- episodes
@dataclass
class Episode:
    """One N-way K-shot task: class codes (sorted), support and query row indices; with the
    open set, ``unknown``: the class codes whose clips are queries only (sorted)."""

    index: int
    fold: str | None
    ways: np.ndarray
    support: np.ndarray
    query: np.ndarray
    unknown: np.ndarray | None = None


def _pools(n: int, folds, splits, test_folds) -> tuple[list[str | None], Callable[[str | None], tuple]]:
    """The episode test folds and ``pools(fold) -> (support candidates, query candidates, shared)``."""
    all_idx = np.arange(n)
    f = _column(folds)
    if f is not None:
        order = select_test_folds(f, test_folds)
        return order, lambda t: (all_idx[f != t], all_idx[f == t], False)
    _no_folds(test_folds)
    s = _column(splits)
    if s is not None:
        roles = _split_roles(s)
        return ["test"], lambda t: (all_idx[roles == "train"], all_idx[roles == "test"], False)
    return [None], lambda t: (all_idx, all_idx, True)


def _eligible(
    y: np.ndarray,
    support_pool: np.ndarray,
    query_pool: np.ndarray,
    shared: bool,
    shots: int,
    queries: int,
    n_classes: int,
) -> np.ndarray:
    s = np.bincount(y[support_pool], minlength=n_classes)
    q = np.bincount(y[query_pool], minlength=n_classes)
    ok = (s >= shots + queries) if shared else (s >= shots) & (q >= queries)
    return np.flatnonzero(ok)


def _too_few(y, ways, shots, queries, fold, n_classes, support_pool, query_pool, shared) -> MgclError:
    where = f" with test fold '{fold}'" if fold not in (None, "test") else (" with the test split" if fold else "")
    q = np.bincount(y[query_pool], minlength=n_classes)
    if shared:
        need = f"{shots + queries} clips ({shots} support + {queries} queries)"
        hint = "use fewer --queries, --shots or --ways"
    else:
        need = f"{shots} support clips and {queries} query clips"
        s = np.bincount(y[support_pool], minlength=n_classes)
        q_ok = np.sort(q[s >= shots])[::-1]
        best = int(q_ok[ways - 1]) if len(q_ok) >= ways else 0
        if best >= queries or best < 1:
            hint = "use fewer --shots or --ways"
        else:
            hint = f"--queries {best} or fewer gives {ways} classes"
    n_ok = len(_eligible(y, support_pool, query_pool, shared, shots, queries, n_classes))
    return MgclError(
        f"{ways}-way {shots}-shot episodes need {ways} classes with {need}{where}; "
        f"only {n_ok} of {n_classes} classes have that ({hint})"
    )


def sample_episode(
    y: np.ndarray,
    ways: int,
    shots: int,
    queries: int,
    rng: np.random.Generator,
    support_pool: np.ndarray,
    query_pool: np.ndarray,
    shared: bool = False,
    n_classes: int | None = None,
    index: int = 0,
    fold: str | None = None,
    open_set: int = 0,
) -> Episode:
    """Draw ``ways`` distinct classes among those eligible, then per class ``queries`` query
    clips from ``query_pool`` and ``shots`` support clips from ``support_pool`` minus them.

    ``open_set`` = U > 0: ``ways + U`` classes are drawn and given queries, then U of them
    (drawn before any support) are unknown: queries only, no support. With U = 0 the draws
    are exactly those of the closed set."""
    n_classes = int(y.max()) + 1 if n_classes is None else n_classes
    eligible = _eligible(y, support_pool, query_pool, shared, shots, queries, n_classes)
    if len(eligible) < ways + open_set:
        raise _too_few(y, ways + open_set, shots, queries, fold, n_classes, support_pool, query_pool, shared)
    chosen = np.sort(rng.choice(eligible, size=ways + open_set, replace=False))
    # every query before any support: the classes and queries do not depend on K
    qry = [rng.choice(query_pool[y[query_pool] == c], size=queries, replace=False) for c in chosen]
    unknown = None
    if open_set:
        unknown = np.sort(rng.choice(chosen, size=open_set, replace=False))
        keep = ~np.isin(chosen, unknown)
        all_qry, chosen = np.concatenate(qry), chosen[keep]
        qry = [q for q, k in zip(qry, keep) if k]
    sup = [
        rng.choice(
            np.setdiff1d(support_pool[y[support_pool] == c], q),  # disjoint even in one pool
            size=shots,
            replace=False,
        )
        for c, q in zip(chosen, qry)
    ]
    if unknown is not None:
        return Episode(index, fold, chosen, np.concatenate(sup), all_qry, unknown)
    return Episode(index, fold, chosen, np.concatenate(sup), np.concatenate(qry))


def episode_tasks(
    y: np.ndarray,
    ways: int,
    shots: int,
    queries: int,
    n_episodes: int,
    seed: int = 0,
    folds: Sequence[str | None] | None = None,
    splits: Sequence[str | None] | None = None,
    test_folds: Sequence[str] | None = None,
    n_classes: int | None = None,
    open_set: int = 0,
):
    """Yield the ``n_episodes`` episodes of one shot count (deterministic in ``seed``).

    Episode e uses its own generator ``default_rng([seed, e])`` and draws classes and queries
    before the support, so it holds the same classes and queries for every K (and, with
    ``open_set`` = U, U more classes whose queries are unknown: :func:`sample_episode`).
    """
    check_episode_args(ways, shots, queries, n_episodes)
    n_classes = int(y.max()) + 1 if n_classes is None else n_classes
    order, pools = _pools(len(y), folds, splits, test_folds)
    for e in range(n_episodes):
        fold = order[e % len(order)]
        support_pool, query_pool, shared = pools(fold)
        yield sample_episode(
            y,
            ways,
            shots,
            queries,
            np.random.default_rng([seed, e]),
            support_pool,
            query_pool,
            shared,
            n_classes,
            e,
            fold,
            open_set,
        )


def check_episode_args(ways: int, shots: int, queries: int, n_episodes: int) -> None:
    for name, value, low in (
        ("--ways", ways, 2),
        ("--shots", shots, 1),
        ("--queries", queries, 1),
        ("--episodes", n_episodes, 1),
    ):
        if int(value) != value or value < low:
            raise MgclError(f"{name} must be an integer of at least {low}, got {value}")


def episodes(
    features: AudioFeatures,
    labels: Sequence[str],
    methods: Sequence[str | MethodSpec],
    ways: int = 5,
    shots: Sequence[int] = DEFAULT_SHOTS["episodes"],
    n_episodes: int = 600,
    queries: int = 15,
    seed: int = 0,
    folds: Sequence[str | None] | None = None,
    splits: Sequence[str | None] | None = None,
    test_folds: Sequence[str] | None = None,
    text: TextFeatures | None = None,
    progress: Progress | None = None,
    views: ViewCache | None = None,
    calibrate: bool | None = None,
    open_set: int = 0,
) -> tuple[list[RunResult], list[str]]:
    """N-way K-shot episodes (see the module docstring); ``open_set`` = U adds U classes per
    episode whose Q queries each are unknown. Returns the runs (one per method, shot count
    and episode) and the sorted class names."""
    specs = _specs(methods)
    y, classes = encode_labels(labels)
    runs: list[RunResult] = []
    for k in shots:
        tasks = episode_tasks(
            y, ways, int(k), queries, n_episodes, seed, folds, splits, test_folds, len(classes), open_set
        )
        for ep in tasks:
            local = np.searchsorted(ep.ways, y)  # global code -> 0..N-1 (for rows of the episode)
            if ep.unknown is not None:  # the unknown classes' queries are -1
                local = np.where(np.isin(y, ep.ways), local, -1)
            torch_seed = seed * 1_000_003 + ep.index
            for r in fit_and_score(
                specs,
                features[ep.support],
                local[ep.support],
                features[ep.query],
                local[ep.query],
                ways,
                int(k),
                torch_seed,
                _text_for(text, ep.support, ep.ways),
                progress,
                views_of(views, ep.support),
                calibrate=calibrate,
            ):
                r.seed = seed
                r.predictions = ep.ways[r.predictions]
                r.unknown_classes = None if ep.unknown is None else ep.unknown.copy()
                r.fold, r.episode, r.targets, r.ways = ep.fold, ep.index, y[ep.query].copy(), ep.ways.copy()
                runs.append(r)
    return runs, classes


# ----------------------------------------------------------------------------- one object
@dataclass(frozen=True)
class Protocol:
    """A protocol and its settings, in one place for every step that needs them.

    ``name``: "full-way" or "episodes"; ``shots``: K values; ``seeds`` (full-way): support
    draws per K; ``test_folds``: restrict the test folds (None: every fold); ``ways``,
    ``queries``, ``episodes``, ``seed``: the episodes' N, Q per class, count and seed;
    ``calibrate``: fit a temperature per run to report the calibrated ECE (None:
    :data:`CALIBRATE`; it costs up to ``CALIBRATION_FOLDS`` more fits of each method);
    ``open_set``: classes held out of the support per seed (full-way; 0: closed set).
    The data's ``folds`` / ``splits`` (per-row columns, or None) choose how support and query
    are kept apart (:func:`mgcl.data.sources.protocol_of`).
    """

    name: str = "full-way"
    shots: tuple[int, ...] = DEFAULT_SHOTS["full-way"]
    seeds: int = 3
    test_folds: tuple[str, ...] | None = None
    ways: int = 5
    queries: int = 15
    episodes: int = 600
    seed: int = 0
    calibrate: bool | None = None
    open_set: int = 0

    def check(self, labels: Sequence[str], folds=None, splits=None) -> None:
        """Raise the MgclError this protocol would raise on these rows (cheap: no features),
        before any embedding."""
        if self.name not in PROTOCOLS:
            raise MgclError(f"unknown protocol '{self.name}' (choose from: {', '.join(PROTOCOLS)})")
        if self.name == "episodes":
            for k in self.shots:
                check_episode_args(self.ways, k, self.queries, self.episodes)
        y, classes = check_shots_and_classes(labels, self.shots)
        if self.open_set and self.name == "full-way":
            unknown_classes(len(classes), self.open_set, 0)
        elif self.open_set:
            u = self.open_set
            if int(u) != u or u < 1 or self.ways + u > len(classes):
                raise MgclError(
                    f"--open-set must be an integer from 1 to {len(classes) - self.ways} with --ways {self.ways} "
                    f"(the data has {len(classes)} classes), got {u}"
                )
        for k in self.shots:
            if self.name == "full-way":
                for sd in range(self.seeds if self.open_set else 1):  # another seed holds other classes out
                    full_way_tasks(y, int(k), sd, folds, splits, self.test_folds, classes, self.open_set)
                continue
            if self.ways > len(classes):
                raise MgclError(f"--ways {self.ways} is more than the {len(classes)} classes of the data")
            order, _ = _pools(len(y), folds, splits, self.test_folds)
            # one episode per test fold exercises every pool
            n = min(self.episodes, len(order))
            for _ in episode_tasks(
                y, self.ways, int(k), self.queries, n, 0, folds, splits, self.test_folds, len(classes), self.open_set
            ):
                pass

    def support_rows(self, labels: Sequence[str], folds=None, splits=None) -> np.ndarray:
        """Every row that :meth:`run` draws into some support set (on the same rows): the
        rows whose audio views a method may need."""
        y, classes = encode_labels(labels)
        if self.name == "full-way":
            parts = [
                s
                for k in self.shots
                for sd in range(self.seeds)
                for _, s, _, _ in full_way_tasks(y, int(k), sd, folds, splits, self.test_folds, classes, self.open_set)
            ]
        else:
            parts = [
                ep.support
                for k in self.shots
                for ep in episode_tasks(
                    y,
                    self.ways,
                    int(k),
                    self.queries,
                    self.episodes,
                    self.seed,
                    folds,
                    splits,
                    self.test_folds,
                    len(classes),
                    self.open_set,
                )
            ]
        return np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=int)

    def n_runs(self, n_specs: int, folds=None) -> int:
        """How many (method, task) fits :meth:`run` makes (for a progress bar)."""
        if self.name == "episodes":
            return n_specs * len(self.shots) * self.episodes
        n_folds = len(select_test_folds(folds, self.test_folds)) if folds is not None else 1
        return n_specs * len(self.shots) * self.seeds * n_folds

    def run(
        self,
        features: AudioFeatures,
        labels: Sequence[str],
        methods: Sequence[str | MethodSpec],
        folds=None,
        splits=None,
        text: TextFeatures | None = None,
        progress: Progress | None = None,
        views: ViewCache | None = None,
    ) -> tuple[list[RunResult], list[str]]:
        """Every task of the protocol: the runs and the sorted class names."""
        if self.name == "full-way":
            return full_way(
                features,
                labels,
                methods,
                self.shots,
                self.seeds,
                folds,
                splits,
                self.test_folds,
                text=text,
                progress=progress,
                views=views,
                calibrate=self.calibrate,
                open_set=self.open_set,
            )
        return episodes(
            features,
            labels,
            methods,
            self.ways,
            self.shots,
            self.episodes,
            self.queries,
            self.seed,
            folds,
            splits,
            self.test_folds,
            text=text,
            progress=progress,
            views=views,
            calibrate=self.calibrate,
            open_set=self.open_set,
        )

    def describe(self, kind: str, folds=None, classes: Sequence[str] | None = None) -> dict:
        """The ``protocol`` object of the results JSON for data whose ``kind`` (how support and
        query are kept apart, :func:`mgcl.data.sources.protocol_of`) is "folds", "split" or
        "random"; ``folds``: the rows' folds, to name the test folds used; ``classes``: the
        sorted class names, to name the classes an open-set run holds out per seed."""
        test_folds = select_test_folds(folds, self.test_folds) if kind == "folds" and folds is not None else None
        out: dict = {"name": self.name, "shots": [int(k) for k in self.shots]}
        folds = ", ".join(test_folds or [])
        if self.name == "full-way":
            out["seeds"] = int(self.seeds)
            if kind == "folds":
                out["test_folds"] = list(test_folds or [])
                out["support"] = (
                    "K clips per class drawn at random (one draw per seed) from the folds other than the test fold"
                )
                out["query"] = f"every clip of the test fold, each fold in turn ({folds})"
                out["spread"] = "mean ± std over folds x seeds"
            elif kind == "split":
                out["support"] = "K clips per class drawn at random (one draw per seed) from the train split"
                out["query"] = "every clip of the test split"
                out["spread"] = "mean ± std over seeds"
            else:
                out["support"] = "K clips per class drawn at random (one draw per seed) from all clips"
                out["query"] = "every clip not drawn for the support"
                out["spread"] = "mean ± std over seeds"
        else:
            out.update(
                {"ways": self.ways, "episodes": self.episodes, "queries_per_class": self.queries, "seed": self.seed}
            )
            if kind == "folds":
                out["test_folds"] = list(test_folds or [])
                out["support"] = "K clips per class of the episode's N classes, from the folds other than its test fold"
                n = len(test_folds or [])
                out["query"] = f"Q clips per class from the episode's test fold (episode e: fold e mod {n} of {folds})"
            elif kind == "split":
                out["support"] = "K clips per class of the episode's N classes, from the train split"
                out["query"] = "Q clips per class from the test split"
            else:
                out["support"] = "K clips per class of the episode's N classes, from all clips"
                out["query"] = "Q other clips per class (disjoint from the support)"
            out["spread"] = "mean accuracy over episodes ± 95 % confidence interval (1.96 std / sqrt(episodes))"
            out["classes"] = (
                "N distinct classes drawn per episode; the backbone is frozen and nothing is trained "
                "on the dataset, so every class is novel"
            )
        out["model_selection"] = "inside the support set only (the query labels are never seen)"
        if self.open_set:
            held_out = (
                "classes drawn per seed (the same for every K and test fold), absent from the support; every "
                "clip of theirs in the query pool is an unknown query"
                if self.name == "full-way"
                else "more classes drawn per episode (the same for every K), absent from the support; their "
                "Q query clips each are unknown queries"
            )
            out["open_set"] = {
                "unknown_classes": int(self.open_set),
                "held_out": held_out,
                "score": "max calibrated probability, softmax(logits / T), T fitted on the support",
                "threshold": "reject='auto' chosen on the support only: accepts 95 % of the held-out "
                "support clips (leave-one-shot-out); with 1 shot nothing is rejected",
                "accuracy": "closed-set: known queries only; open_accuracy: all queries at the threshold, "
                "a rejected unknown query counts as correct",
            }
            if classes is not None and self.name == "full-way":
                out["open_set"]["held_out_per_seed"] = {
                    str(sd): [classes[c] for c in unknown_classes(len(classes), self.open_set, sd)]
                    for sd in range(self.seeds)
                }
        return out
