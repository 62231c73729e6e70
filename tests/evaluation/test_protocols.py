"""The field's protocols: full-way over folds / a fixed split, N-way K-shot episodes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mgcl.errors import MgclError
from mgcl.evaluation import protocols
from mgcl.evaluation.protocols import (
    Protocol,
    RunResult,
    episode_tasks,
    episodes,
    few_shot_split,
    fit_and_score,
    full_way,
    full_way_splits,
    select_test_folds,
)
from mgcl.evaluation.specs import MethodSpec
from mgcl.evaluation.summary import ci95, method_timing, summarise
from mgcl.methods.base import encode_labels
from mgcl.methods.calibration import expected_calibration_error, fit_temperature, held_out_logits
from mgcl.types import AudioFeatures, TextFeatures, l2_normalize


def dataset(n_per_class=8, n_classes=6, dim=8, seed=0, folds=4, noise=0.5):
    """Clustered features (class c near axis c), labels 'c0'.., fold i % folds + 1 per row."""
    g = torch.Generator().manual_seed(seed)
    items, labels, fold = [], [], []
    for c in range(n_classes):
        for i in range(n_per_class):
            f = l2_normalize(torch.randn(3, dim, generator=g) * noise + 2.0 * torch.eye(dim)[c])
            items.append((l2_normalize(f.mean(0)), f))
            labels.append(f"c{c}")
            fold.append(str(i % folds + 1))
    return AudioFeatures.stack(items), labels, fold


# ----------------------------------------------------------------------------- episodes
@pytest.mark.parametrize("ways,shots,queries", [(5, 1, 3), (3, 2, 4), (2, 5, 1)])
def test_episodes_draw_n_distinct_classes_and_disjoint_sets(ways, shots, queries):
    _, labels, _ = dataset()
    y, _ = encode_labels(labels)
    seen = set()
    for ep in episode_tasks(y, ways, shots, queries, 40, seed=3):
        assert len(ep.ways) == ways and len(set(ep.ways.tolist())) == ways
        assert set(ep.support.tolist()).isdisjoint(ep.query.tolist())
        assert len(set(ep.support.tolist())) == len(ep.support)  # no clip twice
        for c in ep.ways:
            assert (y[ep.support] == c).sum() == shots
            assert (y[ep.query] == c).sum() == queries
        assert set(y[ep.support]) | set(y[ep.query]) == set(ep.ways.tolist())
        seen.add(tuple(ep.ways))
    assert len(seen) > 1  # classes vary between episodes


def test_episodes_with_folds_query_from_test_fold_support_from_others():
    _, labels, folds = dataset(folds=4)
    y, _ = encode_labels(labels)
    f = np.array(folds)
    used = []
    for ep in episode_tasks(y, 3, 1, 2, 12, seed=0, folds=folds):
        assert ep.fold == str(ep.index % 4 + 1)
        assert (f[ep.query] == ep.fold).all()
        assert (f[ep.support] != ep.fold).all()
        used.append(ep.fold)
    assert sorted(set(used)) == ["1", "2", "3", "4"]


def test_episodes_with_split_support_from_train_query_from_test():
    _, labels, _ = dataset(n_per_class=6)
    y, _ = encode_labels(labels)
    splits = ["test" if i % 3 == 0 else ("val" if i % 3 == 1 else "train") for i in range(len(y))]
    s = np.array(splits)
    for ep in episode_tasks(y, 4, 2, 2, 10, seed=1, splits=splits):
        assert (s[ep.support] == "train").all()
        assert (s[ep.query] == "test").all()


def test_episode_is_reproducible_and_paired_across_shots():
    _, labels, _ = dataset()
    y, _ = encode_labels(labels)
    one = list(episode_tasks(y, 4, 1, 3, 10, seed=7))
    again = list(episode_tasks(y, 4, 1, 3, 10, seed=7))
    five = list(episode_tasks(y, 4, 4, 3, 10, seed=7))
    other = list(episode_tasks(y, 4, 1, 3, 10, seed=8))
    for a, b, c in zip(one, again, five):
        assert np.array_equal(a.ways, b.ways) and np.array_equal(a.support, b.support)
        assert np.array_equal(a.ways, c.ways) and np.array_equal(a.query, c.query)  # same task, more shots
    assert any(not np.array_equal(a.query, o.query) for a, o in zip(one, other))


def test_ci95_formula():
    assert ci95([50.0, 100.0]) == pytest.approx(1.96 * 25.0 / math.sqrt(2))
    acc = [60.0, 80.0, 100.0, 40.0]
    assert ci95(acc) == pytest.approx(1.96 * np.std(acc) / 2.0)
    assert ci95([70.0] * 10) == 0.0


def test_episodes_runs_summary_and_global_codes():
    feats, labels, _ = dataset(noise=1.2)
    runs, classes = episodes(feats, labels, ["prototype"], ways=3, shots=(1, 2), n_episodes=30, queries=4, seed=0)
    assert classes == sorted(set(labels))
    assert len(runs) == 2 * 30 and all(isinstance(r, RunResult) for r in runs)
    for r in runs:
        assert set(r.targets.tolist()) == set(r.ways.tolist())  # targets are global class codes
        assert set(r.predictions.tolist()) <= set(r.ways.tolist())
        assert r.accuracy == pytest.approx(100.0 * np.mean(r.predictions == r.targets))
        assert r.n_query == 12
    rows = summarise(runs)
    assert [(r["method"], r["shots"]) for r in rows] == [("prototype", 1), ("prototype", 2)]
    for row in rows:
        accs = [r.accuracy for r in runs if r.shots == row["shots"]]
        assert row["n_episodes"] == 30 and row["ways"] == 3 and row["n_runs"] == 30
        assert row["accuracy_mean"] == round(float(np.mean(accs)), 2)
        assert row["accuracy_ci95"] == round(1.96 * float(np.std(accs)) / math.sqrt(30), 2)
        assert row["accuracy_ci95"] > 0


def test_episodes_give_text_methods_the_episode_classes():
    """zero_shot only works if the prompts are sliced to the episode's classes, in order."""
    feats, labels, _ = dataset(noise=0.3)
    prompts = l2_normalize(torch.eye(8)[:6])  # class c's prompt points at its cluster
    text = TextFeatures(prompts=prompts, descriptions=[torch.zeros(0, 8)] * 6)
    runs, _ = episodes(feats, labels, ["zero_shot"], ways=3, shots=(1,), n_episodes=20, queries=3, text=text)
    assert np.mean([r.accuracy for r in runs]) > 95.0
    assert any(r.ways[0] != 0 for r in runs)  # episodes not made of classes 0..2 only


# ----------------------------------------------------------------------------- full-way
def test_full_way_each_fold_once_as_test_never_mixed():
    feats, labels, folds = dataset(folds=4)
    y, _ = encode_labels(labels)
    f = np.array(folds)
    for seed in range(2):
        splits = full_way_splits(y, 2, seed, folds)
        assert [t for t, _, _ in splits] == ["1", "2", "3", "4"]
        for t, s_idx, q_idx in splits:
            assert np.array_equal(np.sort(q_idx), np.flatnonzero(f == t))  # the whole fold is the query
            assert (f[s_idx] != t).all()
            assert np.bincount(y[s_idx]).tolist() == [2] * 6
    runs, _ = full_way(feats, labels, ["prototype", "tip_adapter"], shots=(1, 2), seeds=2, folds=folds)
    assert len(runs) == 2 * 2 * 4 * 2
    for k in (1, 2):
        for seed in range(2):
            group = [r for r in runs if r.method == "prototype" and r.shots == k and r.seed == seed]
            assert sorted(r.fold for r in group) == ["1", "2", "3", "4"]
    for r in runs:
        assert np.array_equal(r.targets, y[f == r.fold])
        assert r.accuracy == pytest.approx(100.0 * np.mean(r.predictions == r.targets))
    rows = summarise(runs)
    row = next(r for r in rows if r["method"] == "prototype" and r["shots"] == 1)
    assert row["n_folds"] == 4 and row["n_seeds"] == 2 and row["n_runs"] == 8
    accs = [r.accuracy for r in runs if r.method == "prototype" and r.shots == 1]
    assert row["accuracy_std"] == round(float(np.std(accs)), 2)  # over folds x seeds


def test_full_way_test_folds_subset_and_unknown_fold():
    _, labels, folds = dataset(folds=4)
    y, _ = encode_labels(labels)
    assert [t for t, _, _ in full_way_splits(y, 1, 0, folds, test_folds=["3"])] == ["3"]
    with pytest.raises(MgclError, match="no test fold '9'"):
        full_way_splits(y, 1, 0, folds, test_folds=["9"])
    assert select_test_folds(["10", "2", "1"]) == ["1", "2", "10"]  # natural order


def test_fixed_split_support_from_train_query_is_test():
    feats, labels, _ = dataset(n_per_class=6)
    y, _ = encode_labels(labels)
    splits = ["test" if i % 3 == 0 else ("validation" if i % 3 == 1 else "train") for i in range(len(y))]
    s = np.array(splits)
    for seed in range(3):
        [(fold, s_idx, q_idx)] = full_way_splits(y, 2, seed, None, splits)
        assert fold == "test"
        assert (s[s_idx] == "train").all()
        assert np.array_equal(np.sort(q_idx), np.flatnonzero(s == "test"))
    runs, _ = full_way(feats, labels, ["prototype"], shots=(1,), seeds=2, splits=splits)
    assert [r.fold for r in runs] == ["test", "test"]
    assert all(r.n_query == (s == "test").sum() for r in runs)


def test_split_without_test_rows_is_an_error():
    _, labels, _ = dataset(n_per_class=4)
    y, _ = encode_labels(labels)
    with pytest.raises(MgclError, match="no test rows"):
        full_way_splits(y, 1, 0, None, ["train"] * len(y))


def test_full_way_random_is_one_few_shot_split_per_seed():
    """The no-fold full-way protocol: per (K, seed) one `few_shot_split` of all rows, every
    method fitted on its support and scored on the rest (the loop composed by hand)."""
    feats, labels, _ = dataset(noise=1.5)
    runs, _ = full_way(feats, labels, ["prototype", "tip_adapter"], shots=(1, 3), seeds=2)
    y, classes = encode_labels(labels)
    specs = [MethodSpec("prototype", "prototype"), MethodSpec("tip_adapter", "tip_adapter")]
    ref = []
    for k in (1, 3):
        for seed in range(2):
            s_idx, q_idx = few_shot_split(y, k, seed, classes=classes)
            ref += fit_and_score(specs, feats[s_idx], y[s_idx], feats[q_idx], y[q_idx], len(classes), k, seed)
    assert [(r.method, r.shots, r.seed, r.accuracy) for r in runs] == [
        (r.method, r.shots, r.seed, r.accuracy) for r in ref
    ]
    assert all(np.array_equal(a.predictions, b.predictions) for a, b in zip(runs, ref))
    assert all(r.fold is None for r in runs)


# ----------------------------------------------------------------------------- checks
@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"name": "episodes", "shots": (1,), "ways": 9}, "--ways 9 is more than the 6 classes"),
        ({"name": "episodes", "shots": (1,), "ways": 3, "queries": 20}, "need 3 classes with"),
        ({"name": "episodes", "shots": (1,), "ways": 1}, "--ways must be an integer of at least 2"),
        ({"name": "episodes", "shots": (1,), "ways": 3, "queries": 0}, "--queries must be"),
        ({"name": "full-way", "shots": (8,)}, "fewer than --shots 8"),
        ({"name": "full-way", "shots": (0,)}, "shots must be positive"),
        ({"name": "nope", "shots": (1,)}, "unknown protocol 'nope'"),
    ],
)
def test_check_fails_early_with_one_line(kwargs, message):
    _, labels, folds = dataset(folds=4)
    with pytest.raises(MgclError) as e:
        Protocol(**kwargs).check(labels, folds)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_check_suggests_feasible_queries():
    _, labels, folds = dataset(n_per_class=8, folds=4)  # 2 clips per class and fold
    with pytest.raises(MgclError, match="--queries 2 or fewer"):
        Protocol("episodes", (1,), ways=3, queries=5).check(labels, folds)
    Protocol("episodes", (1,), ways=3, queries=2).check(labels, folds)  # feasible: no error


def test_full_way_one_test_fold_queries_that_fold_only():
    """`mgcl evaluate --test-fold F`: full-way restricted to fold F, its every clip a query."""
    feats, labels, folds = dataset(noise=1.5, folds=4)
    runs, _ = full_way(feats, labels, ["prototype"], shots=(1, 2), seeds=2, folds=folds, test_folds=["2"])
    assert len(runs) == 2 * 2 and all(r.fold == "2" for r in runs)
    assert all(r.n_query == sum(f == "2" for f in folds) for r in runs)
    with pytest.raises(MgclError, match="no fold column"):
        full_way(feats, labels, ["prototype"], shots=(1,), seeds=1, test_folds=["2"])


def test_support_rows_is_the_union_of_every_support_set_drawn():
    _, labels, folds = dataset(folds=4)
    y, _ = encode_labels(labels)
    full = Protocol("full-way", (1, 2), 2, test_folds=("1", "2")).support_rows(labels, folds)
    expected = {
        int(i)
        for k in (1, 2)
        for sd in range(2)
        for _, s, _ in full_way_splits(y, k, sd, folds, test_folds=["1", "2"])
        for i in s
    }
    assert set(full.tolist()) == expected and len(full) < len(y)
    eps = Protocol("episodes", (1,), ways=3, queries=2, episodes=5, seed=1).support_rows(labels, folds)
    expected = {int(i) for ep in episode_tasks(y, 3, 1, 2, 5, 1, folds, None, None, 6) for i in ep.support}
    assert set(eps.tolist()) == expected


# ----------------------------------------------------------------------------- calibration
def test_fit_and_score_records_ece_raw_and_calibrated_and_keeps_the_predictions(monkeypatch):
    feats, labels, folds = dataset(noise=1.5, n_per_class=8)
    y, _ = encode_labels(labels)
    s_idx, q_idx = few_shot_split(y, 4, 0, folds, "1")
    specs = [MethodSpec("prototype", "prototype"), MethodSpec("tip_adapter", "tip_adapter")]
    args = (specs, feats[s_idx], y[s_idx], feats[q_idx], y[q_idx], 6, 4, 0)
    runs = fit_and_score(*args)
    off = fit_and_score(*args, calibrate=False)
    for r, o, spec in zip(runs, off, specs):
        assert np.array_equal(r.predictions, o.predictions) and r.accuracy == o.accuracy
        assert o.ece is None and o.temperature is None and o.calibration_seconds == 0.0
        assert r.ece_raw == o.ece_raw and 0.0 <= r.ece_raw <= 100.0 and 0.0 <= r.ece <= 100.0
        assert r.calibration_seconds > 0
        # the numbers, recomputed: the method on the support, T from the held-out logits of
        # clones of that fitted model (its choices on the support pinned)
        torch.manual_seed(0)
        m = spec.build().fit(feats[s_idx], torch.as_tensor(y[s_idx]), n_classes=6)
        z, yq = m.logits(feats[q_idx]), torch.as_tensor(y[q_idx])
        held = held_out_logits(m, feats[s_idx], torch.as_tensor(y[s_idx]), n_classes=6)
        assert r.temperature == pytest.approx(fit_temperature(*held))
        assert r.ece_raw == pytest.approx(100.0 * expected_calibration_error(z.softmax(1), yq))
        assert r.ece == pytest.approx(100.0 * expected_calibration_error((z / r.temperature).softmax(1), yq))
    # the module default switches it off for every caller
    monkeypatch.setattr(protocols, "CALIBRATE", False)
    assert all(r.ece is None for r in fit_and_score(*args))


def test_one_shot_runs_are_not_calibrated_and_summaries_carry_the_ece():
    feats, labels, folds = dataset(noise=1.5)
    runs, _ = full_way(feats, labels, ["prototype"], (1, 2), 2, folds, test_folds=["1", "2"])
    for r in runs:
        assert r.temperature == 1.0 if r.shots == 1 else r.temperature > 0
        if r.shots == 1:
            assert r.ece == r.ece_raw
    rows = summarise(runs)
    for row in rows:
        group = [r for r in runs if r.shots == row["shots"]]
        assert row["ece_raw_mean"] == round(float(np.mean([r.ece_raw for r in group])), 2)
        assert row["ece_mean"] == round(float(np.mean([r.ece for r in group])), 2)
        assert row["calibration_seconds_mean"] == round(float(np.mean([r.calibration_seconds for r in group])), 4)
    timing = method_timing(runs)["prototype"]
    assert timing["calibration_seconds"] == round(sum(r.calibration_seconds for r in runs), 4)
    # runs without calibration: None, not a number
    bare = [RunResult("m", 1, 0, 50.0, 2, 0.0, 0.0, np.array([0, 1]))]
    assert summarise(bare)[0]["ece_mean"] is None and summarise(bare)[0]["ece_raw_mean"] is None
    assert "calibration_seconds_mean" not in summarise(bare)[0]
    assert "calibration_seconds" not in method_timing(bare)["m"]


def test_episodes_record_the_ece_too():
    feats, labels, _ = dataset(noise=1.2)
    runs, _ = episodes(feats, labels, ["prototype"], ways=3, shots=(2,), n_episodes=4, queries=3, seed=0)
    assert all(r.ece is not None and r.ece_raw is not None and r.temperature > 0 for r in runs)
