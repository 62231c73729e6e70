"""The full-way protocol as `mgcl evaluate` runs it: splits, method rows (ablations), runs,
summary table. (Episodes and the fold-by-fold protocol: test_protocols.)"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from mgcl.errors import MgclError
from mgcl.evaluation.protocols import Protocol, few_shot_split, full_way
from mgcl.evaluation.specs import ABLATE_BRANCHES, MethodSpec, method_specs
from mgcl.evaluation.summary import format_table, method_timing, summarise
from mgcl.methods import method_class
from mgcl.types import AudioFeatures, TextFeatures, l2_normalize


def importable(name: str) -> bool:
    try:
        method_class(name)
        return True
    except Exception:  # noqa: BLE001
        return False


needs_mgcl = pytest.mark.skipif(
    not (importable("mgcl") and importable("mgcl_f")), reason="mgcl / mgcl_f do not import yet"
)


def dataset(n_per_class=6, n_classes=3, dim=8, seed=0, folds=3):
    """Separable clustered features, string labels and a fold per row."""
    g = torch.Generator().manual_seed(seed)
    items, labels, fold = [], [], []
    for c in range(n_classes):
        for i in range(n_per_class):
            f = l2_normalize(torch.randn(4, dim, generator=g) * 0.5 + 2.0 * torch.eye(dim)[c])
            items.append((l2_normalize(f.mean(0)), f))
            labels.append(f"class{c}")
            fold.append(str(i % folds + 1))
    return AudioFeatures.stack(items), labels, fold


# ----------------------------------------------------------------------------- splits
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_test_fold_keeps_support_and_query_disjoint(seed):
    _, labels, folds = dataset()
    y = np.array([int(label[-1]) for label in labels])
    s, q = few_shot_split(y, 2, seed, folds, "2")
    folds = np.array(folds)
    assert set(s).isdisjoint(q)
    assert (folds[s] != "2").all() and (folds[q] == "2").all()
    assert sorted(q) == list(np.flatnonzero(folds == "2"))  # the whole test fold
    assert np.bincount(y[s]).tolist() == [2, 2, 2]


def test_without_fold_query_is_everything_else():
    _, labels, _ = dataset()
    y = np.array([int(label[-1]) for label in labels])
    s, q = few_shot_split(y, 3, 0)
    assert set(s).isdisjoint(q) and len(s) + len(q) == len(y)
    assert few_shot_split(y, 3, 0)[0].tolist() == s.tolist()  # seeded
    assert few_shot_split(y, 3, 1)[0].tolist() != s.tolist()


@pytest.mark.parametrize(
    "shots,folds,test_fold,message",
    [
        ([6], None, None, "has 6 clips: --shots 6 leaves none for the query"),
        ([5], "folds", "1", "has 4 clips available for support, fewer than --shots 5"),
        ([1], "folds", "9", "no test fold '9' in the data (folds: 1, 2, 3)"),
        ([1], None, "1", "test fold '1' given, but the data has no fold column"),
        ([0], None, None, "shots must be positive integers"),
    ],
)
def test_check_errors(shots, folds, test_fold, message):
    _, labels, fold = dataset()
    with pytest.raises(MgclError, match=re.escape(message)):
        Protocol("full-way", shots, test_folds=(test_fold,) if test_fold else None).check(
            labels, fold if folds else None
        )


def test_check_accepts_feasible():
    _, labels, fold = dataset()
    Protocol("full-way", (1, 2, 5)).check(labels)
    Protocol("full-way", (4,), test_folds=("3",)).check(labels, fold)
    with pytest.raises(MgclError, match="need at least 2 classes"):
        Protocol("full-way", (1,)).check(["a"] * 5)


# ----------------------------------------------------------------------------- method rows
def test_plain_specs_and_parameter_errors():
    specs = method_specs(["prototype", "tip_adapter"], {"tip_adapter": {"betas": "1,4"}})
    assert [(s.label, s.method) for s in specs] == [("prototype", "prototype"), ("tip_adapter", "tip_adapter")]
    assert specs[1].params == {"betas": (1, 4)} and specs[1].build().betas == (1, 4)
    with pytest.raises(MgclError, match="unknown method 'nope'"):
        method_specs(["prototype", "nope"])
    with pytest.raises(MgclError, match="method 'prototype' has no parameter 'beta'"):
        method_specs(["prototype"], {"prototype": {"beta": 1}})
    with pytest.raises(MgclError, match="parameters given for method 'mgcl'"):
        method_specs(["prototype"], {"mgcl": {"topk": 1}})
    with pytest.raises(MgclError, match="listed twice"):
        method_specs(["prototype", "prototype"])


@needs_mgcl
def test_ablation_rows():
    specs = method_specs(["prototype", "mgcl", "mgcl_f"], {"mgcl_f": {"ablate": ["gc"]}}, ablate=["fc", "fine"])
    by = {s.label: s for s in specs}
    assert list(by) == ["prototype", "mgcl", "mgcl_f", "mgcl-fc", "mgcl_f-fc", "mgcl_f-fine"]
    assert by["mgcl-fc"].build().ablate == ("fc",)
    assert by["mgcl_f-fc"].build().ablate == ("gc", "fc")  # on top of the user's own
    losses = by["mgcl_f-fine"].build().losses
    assert "fine" not in losses and set(losses) == set(method_class("mgcl_f")().losses) - {"fine"}
    assert by["mgcl_f"].build().losses == method_class("mgcl_f")().losses  # full row untouched


@needs_mgcl
@pytest.mark.parametrize(
    "methods,ablate,message",
    [
        (["mgcl"], ["xx"], "unknown ablation 'xx'"),
        (["prototype"], ["fc"], "add mgcl or mgcl_f to --methods"),
        (["mgcl"], ["coarse"], "--ablate coarse applies to none of mgcl"),
    ],
)
def test_ablation_errors(methods, ablate, message):
    with pytest.raises(MgclError, match=re.escape(message)):
        method_specs(methods, ablate=ablate)


def test_ablation_names_match_the_method():
    if not importable("mgcl"):
        pytest.skip("mgcl does not import yet")
    from mgcl.methods.mgcl.branches import BRANCHES

    assert tuple(BRANCHES) == ABLATE_BRANCHES


# ----------------------------------------------------------------------------- runs and summary
def test_full_way_on_one_test_fold_with_specs_and_text():
    feats, labels, folds = dataset()
    text = TextFeatures(prompts=l2_normalize(torch.eye(8)[:3]))
    specs = [
        MethodSpec("proto", "prototype"),
        MethodSpec("proto-raw", "prototype", {"center": False}),
        MethodSpec("zs", "zero_shot"),
    ]
    runs, classes = full_way(feats, labels, specs, [1, 2], 2, folds, test_folds=["1"], text=text)
    assert classes == ["class0", "class1", "class2"]
    assert len(runs) == 3 * 2 * 2 and {r.method for r in runs} == {"proto", "proto-raw", "zs"}
    assert all(r.n_query == 6 and r.fold == "1" for r in runs)  # fold 1 holds 2 clips of each of 3 classes
    assert all(r.accuracy == 100.0 for r in runs if r.method.startswith("proto"))
    # zero-shot with class c's prompt on axis c is perfect too, and independent of the draw
    assert all(r.accuracy == 100.0 for r in runs if r.method == "zs")
    again, _ = full_way(feats, labels, specs, [1, 2], 2, folds, test_folds=["1"], text=text)
    assert [r.predictions.tolist() for r in again] == [r.predictions.tolist() for r in runs]


def test_summary_table_and_timing_agree():
    feats, labels, _ = dataset(seed=3)
    g = torch.Generator().manual_seed(0)
    noisy = AudioFeatures(
        l2_normalize(feats.clip + torch.randn(feats.clip.shape, generator=g)), feats.frames, feats.frame_mask
    )
    runs, _ = full_way(noisy, labels, ["prototype", "tip_adapter"], [1, 3], 3)
    results = summarise(runs)
    assert [(r["method"], r["shots"]) for r in results] == [
        ("prototype", 1),
        ("prototype", 3),
        ("tip_adapter", 1),
        ("tip_adapter", 3),
    ]
    for r in results:
        accs = [x.accuracy for x in runs if x.method == r["method"] and x.shots == r["shots"]]
        assert r["accuracy_mean"] == pytest.approx(np.mean(accs), abs=0.005)
        assert r["accuracy_std"] == pytest.approx(np.std(accs), abs=0.005)
        assert r["n_seeds"] == 3 and r["n_query"] == 18 - 3 * r["shots"]
        assert {"fit_seconds_mean", "predict_seconds_mean"} <= set(r)
    table = format_table(results).splitlines()
    assert table[0].split() == ["method", "1-shot", "3-shot"]
    for r in results:
        row = next(line for line in table if line.split()[0] == r["method"])
        assert f"{r['accuracy_mean']:.1f} ± {r['accuracy_std']:.1f}" in row
    timing = method_timing(runs)
    assert set(timing) == {"prototype", "tip_adapter"} and timing["prototype"]["runs"] == 6
    assert timing["tip_adapter"]["fit_seconds"] >= timing["tip_adapter"]["fit_seconds_per_run"]


def test_protocol_description():
    _, _, folds = dataset()
    p = Protocol("full-way", (1, 4), 3, test_folds=("2",)).describe("folds", folds)
    assert p["test_folds"] == ["2"] and p["shots"] == [1, 4] and p["seeds"] == 3
    assert "(2)" in p["query"] and "other than the test fold" in p["support"]
    r = Protocol("full-way", (1,), 1).describe("random")
    assert "test_folds" not in r and r["query"] == "every clip not drawn for the support"
