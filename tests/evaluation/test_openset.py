"""The open-set protocol (--open-set U): held-out classes, splits, the threshold chosen on
the support only, the summary columns and the report."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mgcl.errors import MgclError
from mgcl.evaluation import protocols
from mgcl.evaluation.protocols import (
    Protocol,
    RunResult,
    fit_and_score,
    full_way,
    open_set_splits,
    score_open_set,
    unknown_classes,
)
from mgcl.evaluation.report import dataset_markdown, open_set_table
from mgcl.evaluation.specs import MethodSpec
from mgcl.evaluation.summary import format_open_set_table, summarise
from mgcl.methods.base import encode_labels
from tests.evaluation.test_protocols import dataset

SPECS = [MethodSpec("prototype", "prototype"), MethodSpec("tip_adapter", "tip_adapter")]


def test_unknown_classes_depend_on_the_seed_only():
    a = unknown_classes(10, 3, seed=0)
    assert len(a) == 3 and len(set(a.tolist())) == 3 and list(a) == sorted(a)
    assert np.array_equal(a, unknown_classes(10, 3, seed=0))
    assert any(not np.array_equal(a, unknown_classes(10, 3, seed=s)) for s in range(1, 5))
    for bad in (0, 9, 2.5):
        with pytest.raises(MgclError, match=r"^--open-set must be an integer from 1 to 8"):
            unknown_classes(10, bad, 0)


def test_open_set_splits_keep_unknown_classes_out_of_the_support_and_folds_apart():
    _, labels, folds = dataset(n_classes=6, n_per_class=8, folds=4)
    y, classes = encode_labels(labels)
    unknown = np.array([1, 4])
    f = np.array(folds)
    for fold, sup, qry in open_set_splits(y, 2, 0, unknown, folds, test_folds=["4"], classes=classes):
        assert fold == "4"
        assert not np.isin(y[sup], unknown).any() and (f[sup] != "4").all()
        assert np.bincount(y[sup], minlength=6)[[0, 2, 3, 5]].tolist() == [2, 2, 2, 2]
        assert set(qry.tolist()) == set(np.flatnonzero(f == "4").tolist())  # every clip of the test fold
        assert np.isin(y[qry], unknown).sum() == 4  # 2 unknown classes x 2 clips in fold 4
    # without folds: the unknown classes' every clip is a query
    (_, sup, qry), *_ = open_set_splits(y, 2, 0, unknown, classes=classes)
    assert set(np.flatnonzero(np.isin(y, unknown))) <= set(qry.tolist())
    assert set(sup.tolist()).isdisjoint(qry.tolist())


def test_score_open_set_on_paper():
    logits = torch.tensor([[4.0, 0.0], [0.0, 4.0], [0.0, 0.1], [3.0, 0.0]])
    y = np.array([0, 0, -1, -1])  # query 1 is known but wrong, queries 2 and 3 unknown
    pred = logits.argmax(1).numpy()
    run = RunResult("m", 2, 0, 50.0, 4, 0.0, 0.0, pred)
    conf = logits.softmax(1).max(1).values.numpy()  # .98 .98 .52 .95
    score_open_set(run, logits, pred, y, 1.0, 0.9)
    # accepted: 0, 1, 3; right: q0 (accepted and right), q2 (rejected unknown)
    assert run.open_accuracy == 50.0 and run.n_unknown == 2 and run.no_reject_accuracy == 25.0
    assert run.known_accept == 100.0 and run.unknown_reject == 50.0
    assert run.auroc == pytest.approx(100.0 * np.mean([c > u for c in conf[:2] for u in conf[2:]]))
    score_open_set(run, logits, pred, y, 1.0, None)  # nothing rejected
    assert run.open_accuracy == run.no_reject_accuracy == 25.0 and run.unknown_reject == 0.0 and run.threshold is None


def test_threshold_is_chosen_without_query_data():
    """Permuting the queries, or removing the unknown ones, changes neither the threshold
    nor the predictions of the known queries."""
    feats, labels, folds = dataset(n_classes=6, n_per_class=8, folds=4)
    y, classes = encode_labels(labels)
    unknown = np.array([2, 5])
    known = np.setdiff1d(np.arange(6), unknown)
    local = np.where(np.isin(y, known), np.searchsorted(known, y), -1)
    (_, sup, qry), *_ = open_set_splits(y, 4, 0, unknown, folds, test_folds=["1"], classes=classes)

    def score(q):
        return fit_and_score(SPECS, feats[sup], local[sup], feats[q], local[q], 4, 4, 0)

    base = score(qry)
    perm = qry[np.random.default_rng(3).permutation(len(qry))]
    only_known = qry[local[qry] >= 0]
    shuffled, closed = score(perm), score(only_known)
    for a, b, c in zip(base, shuffled, closed):
        assert a.threshold is not None and a.threshold == b.threshold
        assert a.temperature == b.temperature == c.temperature
        assert a.auroc is not None and c.auroc is None and c.open_accuracy is None  # no unknown query: closed set
        order = {int(r): i for i, r in enumerate(perm)}
        assert np.array_equal(b.predictions[[order[int(r)] for r in qry]], a.predictions)
        assert np.array_equal(a.predictions[local[qry] >= 0], c.predictions)
        assert a.accuracy == c.accuracy  # closed-set accuracy: the known queries only


def test_full_way_open_set_rows_report_and_markdown():
    feats, labels, folds = dataset(n_classes=6, n_per_class=8, folds=4)
    runs, classes = full_way(feats, labels, SPECS, shots=(1, 3), seeds=2, folds=folds, test_folds=["1"], open_set=2)
    assert len(runs) == 2 * 2 * 2
    for r in runs:
        assert len(r.unknown_classes) == 2 and r.n_unknown == 4
        assert not np.isin(r.predictions, r.unknown_classes).any()  # predictions are known classes
        assert (r.threshold is None) == (r.shots == 1)  # one shot: no held-out clip, nothing rejected
    # the same classes are held out for every K of a seed
    by_seed = {}
    for r in runs:
        by_seed.setdefault(r.seed, set()).add(tuple(r.unknown_classes))
    assert all(len(v) == 1 for v in by_seed.values())
    rows = summarise(runs)
    row = next(r for r in rows if r["method"] == "prototype" and r["shots"] == 3)
    for key in ("auroc_mean", "auroc_std", "open_accuracy_mean", "open_accuracy_std", "threshold_mean"):
        assert row[key] is not None
    assert row["rejecting_runs"] == 2 and row["n_unknown"] == 4
    one = next(r for r in rows if r["method"] == "prototype" and r["shots"] == 1)
    assert one["threshold_mean"] is None and one["unknown_reject_mean"] == 0.0
    assert "3-shot AUROC" in format_open_set_table(rows)
    table = open_set_table(rows)
    assert "| 3-shot closed | 3-shot AUROC | 3-shot acc@τ | 3-shot acc, no τ |" in table.splitlines()[0]
    protocol = Protocol("full-way", (1, 3), 2, ("1",), open_set=2)
    doc = {"dataset": "toy", "n_classes": 6, "protocol": protocol.describe("folds", folds, classes), "results": rows}
    assert doc["protocol"]["open_set"]["held_out_per_seed"]["0"] == [classes[c] for c in unknown_classes(6, 2, 0)]
    md = dataset_markdown(doc)
    assert "open set: 2 classes held out of the support per seed" in md and "held out: seed 0:" in md
    # closed-set rows carry no open-set columns and no table
    closed, _ = full_way(feats, labels, SPECS[:1], shots=(2,), seeds=1, folds=folds, test_folds=["1"])
    assert "auroc_mean" not in summarise(closed)[0] and open_set_table(summarise(closed)) == ""


def test_protocol_checks_open_set():
    _, labels, folds = dataset(n_classes=6)
    Protocol("full-way", (2,), 2, ("1",), open_set=2).check(labels, folds)
    with pytest.raises(MgclError, match=r"^--open-set must be an integer from 1 to 4"):
        Protocol("full-way", (2,), 1, open_set=5).check(labels, folds)
    rows = Protocol("full-way", (2,), 2, ("1",), open_set=2).support_rows(labels, folds)
    y, _ = encode_labels(labels)
    assert not np.isin(y[rows], np.intersect1d(unknown_classes(6, 2, 0), unknown_classes(6, 2, 1))).any()


def test_open_set_episodes_add_unknown_classes_and_keep_closed_set_draws():
    feats, labels, folds = dataset(n_classes=6, n_per_class=8, folds=4)
    y, classes = encode_labels(labels)
    closed = list(protocols.episode_tasks(y, 3, 2, 2, 6, seed=1, folds=folds))
    opened = list(protocols.episode_tasks(y, 3, 2, 2, 6, seed=1, folds=folds, open_set=2))
    for ep in opened:
        assert len(ep.ways) == 3 and len(ep.unknown) == 2 and not np.isin(ep.unknown, ep.ways).any()
        assert not np.isin(y[ep.support], ep.unknown).any() and np.isin(y[ep.query], ep.unknown).sum() == 4
    assert any(not np.array_equal(a.ways, b.ways) for a, b in zip(closed, opened))
    again = list(protocols.episode_tasks(y, 3, 2, 2, 6, seed=1, folds=folds))  # U = 0: the closed-set draws
    assert all(np.array_equal(a.support, b.support) and b.unknown is None for a, b in zip(closed, again))
    p = Protocol("episodes", (2,), ways=3, queries=2, episodes=4, open_set=2)
    p.check(labels, folds)
    runs, _ = p.run(feats, labels, SPECS[:1], folds)
    assert len(runs) == 4 and all(r.n_unknown == 4 and r.auroc is not None for r in runs)
    doc = {"dataset": "toy", "protocol": p.describe("folds", folds, classes), "results": summarise(runs)}
    assert "held out of the support per episode" in dataset_markdown(doc)
    with pytest.raises(MgclError, match=r"^--open-set must be an integer from 1 to 3 with --ways 3"):
        Protocol("episodes", (2,), ways=3, queries=2, episodes=4, open_set=4).check(labels, folds)
