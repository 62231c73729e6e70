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

Both protocols fit and score through :func:`mgcl.evaluate.fit_and_score` (the same loop as
``mgcl evaluate``) and return :class:`ProtocolRun` records (a :class:`RunResult` that also
holds the query labels, the test fold and the episode), which :func:`summarise_runs` turns
into the results rows of the JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import numpy as np
import torch

from mgcl.backbones.base import AudioFeatures
from mgcl.errors import MgclError
from mgcl.evaluate import (
    MethodSpec,
    RunResult,
    check_shots_and_classes,
    encode_labels,
    few_shot_split,
    fit_and_score,
    summarise,
    views_of,
)
from mgcl.methods.base import TextFeatures

if TYPE_CHECKING:
    from mgcl.features import ViewCache

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


@dataclass
class ProtocolRun(RunResult):
    """One (method, shots, seed[, fold | episode]) run.

    ``predictions`` and ``targets`` are codes into the dataset's (sorted) class list, also in
    episodes (where the method itself saw labels 0..N-1 of ``ways``).
    """

    fold: str | None = None  # the test fold; "test" for a fixed split; None for a random split
    episode: int | None = None
    targets: np.ndarray | None = None  # query labels, aligned with predictions
    ways: np.ndarray | None = None  # episodes: the N class codes, sorted


def _extend(run: RunResult, **extra) -> ProtocolRun:
    return ProtocolRun(**{f.name: getattr(run, f.name) for f in fields(RunResult)}, **extra)


def _specs(methods: Sequence[str | MethodSpec]) -> list[MethodSpec]:
    return [m if isinstance(m, MethodSpec) else MethodSpec(m, m) for m in methods]


def fold_key(fold: str):
    """Natural order of fold names: '2' < '10'; names that are not numbers after numbers."""
    s = str(fold)
    return (0, int(s), "") if s.isdigit() else (1, 0, s)


def _column(values: Sequence[str | None] | None) -> np.ndarray | None:
    """A fold/split column as strings, or None when any row lacks a value."""
    if values is None or any(v is None or str(v).strip() == "" for v in values):
        return None
    return np.asarray([str(v).strip() for v in values])


def layout(folds: Sequence[str | None] | None = None, splits: Sequence[str | None] | None = None) -> str:
    """How support and query are kept apart: 'folds', 'split' or 'random'."""
    if _column(folds) is not None:
        return "folds"
    if _column(splits) is not None:
        return "split"
    return "random"


def _split_roles(splits: np.ndarray) -> np.ndarray:
    """Per row 'train', 'test' or '' (left out); raises when either side is empty."""
    low = np.char.lower(splits.astype(str))
    roles = np.where(np.isin(low, TRAIN_SPLITS), "train", np.where(np.isin(low, TEST_SPLITS), "test", ""))
    for role in ("train", "test"):
        if not (roles == role).any():
            raise MgclError(f"the split column has no {role} rows (values: {', '.join(sorted(set(splits)))}; "
                            f"train: {'/'.join(TRAIN_SPLITS)}, test: {'/'.join(TEST_SPLITS)})")
    return roles


def select_test_folds(folds: Sequence[str], test_folds: Sequence[str] | None = None) -> list[str]:
    """The folds used as test folds: ``test_folds`` (checked) or every fold, in natural order."""
    present = sorted({str(f) for f in folds}, key=fold_key)
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
) -> tuple[list[ProtocolRun], list[str]]:
    """Full-way K-shot over folds x shots x seeds (see the module docstring).

    ``text`` holds prompts/descriptions of every class (sorted labels) and, optionally, one
    caption per row; ``views`` the rows' audio views for methods that train on them.
    Returns the runs and the sorted class names.
    """
    specs = _specs(methods)
    y, classes = encode_labels(labels)
    runs: list[ProtocolRun] = []
    for k in shots:
        for seed in range(seeds):
            for fold, s_idx, q_idx in full_way_splits(y, int(k), seed, folds, splits, test_folds, classes):
                for r in fit_and_score(specs, features[s_idx], y[s_idx], features[q_idx], y[q_idx],
                                       len(classes), int(k), seed, _text_for(text, s_idx), progress,
                                       views_of(views, s_idx)):
                    runs.append(_extend(r, fold=fold, targets=y[q_idx].copy()))
    return runs, classes


# ----------------------------------------------------------------------------- episodes
@dataclass
class Episode:
    """One N-way K-shot task: class codes (sorted), support and query row indices."""

    index: int
    fold: str | None
    ways: np.ndarray
    support: np.ndarray
    query: np.ndarray


def _pools(n: int, folds, splits, test_folds) -> tuple[list[str | None], Callable[[str | None], tuple]]:
    """The episode test folds and ``pools(fold) -> (support candidates, query candidates, shared)``."""
    all_idx = np.arange(n)
    f = _column(folds)
    if f is not None:
        order = select_test_folds(f, test_folds)
        return order, lambda t: (all_idx[f != t], all_idx[f == t], False)
    s = _column(splits)
    if s is not None:
        roles = _split_roles(s)
        return ["test"], lambda t: (all_idx[roles == "train"], all_idx[roles == "test"], False)
    return [None], lambda t: (all_idx, all_idx, True)


def _eligible(y: np.ndarray, support_pool: np.ndarray, query_pool: np.ndarray, shared: bool,
              shots: int, queries: int, n_classes: int) -> np.ndarray:
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
    return MgclError(f"{ways}-way {shots}-shot episodes need {ways} classes with {need}{where}; "
                     f"only {n_ok} of {n_classes} classes have that ({hint})")


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
) -> Episode:
    """Draw ``ways`` distinct classes among those eligible, then per class ``queries`` query
    clips from ``query_pool`` and ``shots`` support clips from ``support_pool`` minus them."""
    n_classes = int(y.max()) + 1 if n_classes is None else n_classes
    eligible = _eligible(y, support_pool, query_pool, shared, shots, queries, n_classes)
    if len(eligible) < ways:
        raise _too_few(y, ways, shots, queries, fold, n_classes, support_pool, query_pool, shared)
    chosen = np.sort(rng.choice(eligible, size=ways, replace=False))
    # every query before any support: the classes and queries do not depend on K
    qry = [rng.choice(query_pool[y[query_pool] == c], size=queries, replace=False) for c in chosen]
    sup = [rng.choice(np.setdiff1d(support_pool[y[support_pool] == c], q),  # disjoint even in one pool
                      size=shots, replace=False) for c, q in zip(chosen, qry)]
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
):
    """Yield the ``n_episodes`` episodes of one shot count (deterministic in ``seed``).

    Episode e uses its own generator ``default_rng([seed, e])`` and draws classes and queries
    before the support, so it holds the same classes and queries for every K.
    """
    check_episode_args(ways, shots, queries, n_episodes)
    n_classes = int(y.max()) + 1 if n_classes is None else n_classes
    order, pools = _pools(len(y), folds, splits, test_folds)
    for e in range(n_episodes):
        fold = order[e % len(order)]
        support_pool, query_pool, shared = pools(fold)
        yield sample_episode(y, ways, shots, queries, np.random.default_rng([seed, e]), support_pool,
                             query_pool, shared, n_classes, e, fold)


def check_episode_args(ways: int, shots: int, queries: int, n_episodes: int) -> None:
    for name, value, low in (("--ways", ways, 2), ("--shots", shots, 1), ("--queries", queries, 1),
                             ("--episodes", n_episodes, 1)):
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
) -> tuple[list[ProtocolRun], list[str]]:
    """N-way K-shot episodes (see the module docstring). Returns the runs (one per method,
    shot count and episode) and the sorted class names."""
    specs = _specs(methods)
    y, classes = encode_labels(labels)
    runs: list[ProtocolRun] = []
    for k in shots:
        for ep in episode_tasks(y, ways, int(k), queries, n_episodes, seed, folds, splits, test_folds, len(classes)):
            local = np.searchsorted(ep.ways, y)  # global code -> 0..N-1 (for rows of the episode)
            torch_seed = seed * 1_000_003 + ep.index
            for r in fit_and_score(specs, features[ep.support], local[ep.support], features[ep.query],
                                   local[ep.query], ways, int(k), torch_seed,
                                   _text_for(text, ep.support, ep.ways), progress,
                                   views_of(views, ep.support)):
                r.seed = seed
                r.predictions = ep.ways[r.predictions]
                runs.append(_extend(r, fold=ep.fold, episode=ep.index, targets=y[ep.query].copy(),
                                    ways=ep.ways.copy()))
    return runs, classes


def support_rows(
    protocol: str,
    labels: Sequence[str],
    shots: Sequence[int],
    seeds: int = 3,
    folds: Sequence[str | None] | None = None,
    splits: Sequence[str | None] | None = None,
    test_folds: Sequence[str] | None = None,
    ways: int = 5,
    queries: int = 15,
    n_episodes: int = 600,
    seed: int = 0,
) -> np.ndarray:
    """Every row that :func:`full_way` or :func:`episodes` (same arguments) draws into a
    support set: the rows whose audio views a method may need."""
    y, classes = encode_labels(labels)
    if protocol == "full-way":
        parts = [s for k in shots for sd in range(seeds)
                 for _, s, _ in full_way_splits(y, int(k), sd, folds, splits, test_folds, classes)]
    else:
        parts = [ep.support for k in shots
                 for ep in episode_tasks(y, ways, int(k), queries, n_episodes, seed, folds, splits, test_folds,
                                         len(classes))]
    return np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=int)


# ----------------------------------------------------------------------------- checks, summary
def check(
    protocol: str,
    labels: Sequence[str],
    shots: Sequence[int],
    folds: Sequence[str | None] | None = None,
    splits: Sequence[str | None] | None = None,
    test_folds: Sequence[str] | None = None,
    ways: int = 5,
    queries: int = 15,
    n_episodes: int = 600,
) -> None:
    """Raise the MgclError the protocol would raise (cheap: no features), before embedding."""
    if protocol not in PROTOCOLS:
        raise MgclError(f"unknown protocol '{protocol}' (choose from: {', '.join(PROTOCOLS)})")
    y, classes = check_shots_and_classes(labels, shots)
    for k in shots:
        if protocol == "full-way":
            full_way_splits(y, int(k), 0, folds, splits, test_folds, classes)
        else:
            if ways > len(classes):
                raise MgclError(f"--ways {ways} is more than the {len(classes)} classes of the data")
            order, _ = _pools(len(y), folds, splits, test_folds)
            # one episode per test fold exercises every pool
            for _ep in episode_tasks(y, ways, int(k), queries, min(n_episodes, len(order)), 0, folds, splits,
                                     test_folds, len(classes)):
                pass


def ci95(accuracies: Sequence[float]) -> float:
    """Half-width of the 95 % confidence interval of a mean: ``1.96 * std / sqrt(n)`` (std with ddof 0)."""
    a = np.asarray(accuracies, dtype=float)
    return float(1.96 * a.std() / np.sqrt(len(a))) if len(a) else float("nan")


def summarise_runs(runs: Sequence[ProtocolRun]) -> list[dict]:
    """:func:`mgcl.evaluate.summarise` rows plus the protocol's counts.

    Every row: ``n_seeds`` (distinct seeds), ``n_runs``; with folds ``n_folds``; for
    episodes ``n_episodes``, ``ways`` and ``accuracy_ci95`` (percent, 2 decimals).
    """
    rows = summarise(runs)
    for row in rows:
        group = [r for r in runs if r.method == row["method"] and r.shots == row["shots"]]
        row["n_seeds"] = len({r.seed for r in group})
        row["n_runs"] = len(group)
        test = {getattr(r, "fold", None) for r in group} - {None}
        if test:
            row["n_folds"] = len(test)
        if any(getattr(r, "episode", None) is not None for r in group):
            row["n_episodes"] = len({r.episode for r in group})
            row["ways"] = len(group[0].ways)
            row["accuracy_ci95"] = round(ci95([r.accuracy for r in group]), 2)
    return rows


def describe(
    protocol: str,
    shots: Sequence[int],
    seeds: int = 3,
    kind: str = "random",
    test_folds: Sequence[str] | None = None,
    ways: int | None = None,
    n_episodes: int | None = None,
    queries: int | None = None,
    seed: int = 0,
) -> dict:
    """The ``protocol`` object of the results JSON. ``kind`` is :func:`layout`'s answer."""
    out: dict = {"name": protocol, "shots": [int(k) for k in shots]}
    folds = ", ".join(test_folds or [])
    if protocol == "full-way":
        out["seeds"] = int(seeds)
        if kind == "folds":
            out["test_folds"] = list(test_folds or [])
            out["support"] = "K clips per class drawn at random (one draw per seed) from the folds other than the test fold"
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
        out.update({"ways": ways, "episodes": n_episodes, "queries_per_class": queries, "seed": seed})
        if kind == "folds":
            out["test_folds"] = list(test_folds or [])
            out["support"] = "K clips per class of the episode's N classes, from the folds other than its test fold"
            out["query"] = f"Q clips per class from the episode's test fold (episode e: fold e mod {len(test_folds or [])} of {folds})"
        elif kind == "split":
            out["support"] = "K clips per class of the episode's N classes, from the train split"
            out["query"] = "Q clips per class from the test split"
        else:
            out["support"] = "K clips per class of the episode's N classes, from all clips"
            out["query"] = "Q other clips per class (disjoint from the support)"
        out["spread"] = "mean accuracy over episodes ± 95 % confidence interval (1.96 std / sqrt(episodes))"
        out["classes"] = ("N distinct classes drawn per episode; the backbone is frozen and nothing is trained "
                          "on the dataset, so every class is novel")
    out["model_selection"] = "inside the support set only (the query labels are never seen)"
    return out
