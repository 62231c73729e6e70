"""No test leakage: what a method learns and predicts never depends on the query labels.

The proof runs the real protocol (``mgcl.evaluation.protocols.full_way`` on one test fold, as
``mgcl evaluate --test-fold`` does) twice on synthetic
features with folds: once as is, once with the labels of the test-fold rows (the query)
permuted. Support rows keep their labels. For every method (audio-only and with a text
tower with and without support captions, 1 shot where defaults hold and 3 shots where
cross-validation chooses), the
predictions, the chosen hyper-parameters (the JSON part of the learned state) and the
learned tensors must be identical, and so must the temperature fitted on the support for
the calibrated probabilities. A wrapper around ``fit`` checks that methods only ever
receive support clips and their labels, the calibration's leave-one-shot-out fits too.
Separately, a query's logits must not depend on the other queries of the batch (no
transductive statistics).
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from mgcl.evaluation import protocols
from mgcl.evaluation.protocols import few_shot_split, full_way
from mgcl.evaluation.specs import MethodSpec
from mgcl.methods import Method, available_methods, make_method
from mgcl.methods.base import encode_labels
from mgcl.types import TextFeatures, l2_normalize
from tests.methods._synth import centres, make_features, make_text

AUDIO_METHODS = ["prototype", "linear_probe", "tip_adapter", "tip_adapter_f", "treff", "mgcl", "mgcl_f"]
ALL_METHODS = available_methods()
N_CLASSES, DIM, PER_FOLD, TEST_FOLD = 4, 16, 4, "2"
SHOTS = (1, 3)
SEEDS = 2
#: Shorter epoch grids for the fine-tuned methods (the selection still runs; runtime stays small).
PARAMS = {
    "mgcl_f": {"epoch_grid": (0, 4, 8)},
    "tip_adapter_f": {"epoch_grid": (0, 5, 10)},
    "treff": {"epoch_grid": (0, 5, 10)},
}


@functools.cache
def dataset():
    """Features, string labels and folds: 3 folds x 4 classes x 4 clips, rows shuffled."""
    m = centres(N_CLASSES, DIM, seed=5)
    y = np.tile(np.repeat(np.arange(N_CLASSES), PER_FOLD), 3)
    folds = np.repeat(["0", "1", "2"], N_CLASSES * PER_FOLD)
    order = np.random.default_rng(0).permutation(len(y))
    y, folds = y[order], folds[order]
    feats = make_features(y, m, noise=0.6, common=0.5, t_max=5, seed=6)
    return feats, [f"class{c}" for c in y], list(folds), m


def text_for(m: torch.Tensor, captions: bool = True) -> TextFeatures:
    """The text side: prompts/descriptions of the class set and (optionally) one caption per
    row; the protocol hands each fit the captions of its support rows."""
    t = make_text(m, n_desc=2, seed=1)
    if not captions:
        return t
    feats = dataset()[0]
    g = torch.Generator().manual_seed(7)
    caps = l2_normalize(feats.clip + 0.5 * torch.randn(len(feats), DIM, generator=g))
    return TextFeatures(prompts=t.prompts, descriptions=t.descriptions, captions=caps)


def permuted_query_labels(labels: list[str], folds: list[str]) -> list[str]:
    rng = np.random.default_rng(123)
    q = np.array([f == TEST_FOLD for f in folds])
    out = np.array(labels, dtype=object)
    out[q] = rng.permutation(out[q])
    return list(out)


def run(monkeypatch, labels, methods, text):
    """The protocol on test fold TEST_FOLD, recording every fitted method and every fit/predict call.

    The wrappers sit on the ``Method`` base class, so they see the methods however the
    protocol builds them, and also the fits a method makes internally (e.g. mgcl_f's
    linear-probe initialisation): ``fits`` rows are (name, nesting depth, support, labels,
    text, calibrating). ``calibrating``: the fit is one of the calibration's
    leave-one-shot-out fits (inside ``held_out_fits``); ``fitted`` and ``predicts``
    hold the protocol's own fits and query logits only.
    """
    feats, _, folds, _ = dataset()
    fitted, fits, predicts = [], [], []
    fit, logits = Method.fit, Method.logits
    held_out_fits = protocols.held_out_fits
    depth, calibrating = [0], [False]

    def fit_wrapper(self, support, labels_, text=None, n_classes=None, views=None):
        fits.append((self.name, depth[0], support, torch.as_tensor(labels_).clone(), text, calibrating[0]))
        if depth[0] == 0 and not calibrating[0]:
            fitted.append(self)
        depth[0] += 1
        try:
            return fit(self, support, labels_, text=text, n_classes=n_classes, views=views)
        finally:
            depth[0] -= 1

    def logits_wrapper(self, query, *args, **kwargs):
        assert not args and not kwargs, "logits takes query features only"
        if depth[0] == 0 and not calibrating[0]:
            predicts.append((self.name, query))
        return logits(self, query)

    def temperature_wrapper(*args, **kwargs):
        calibrating[0] = True
        try:
            return held_out_fits(*args, **kwargs)
        finally:
            calibrating[0] = False

    with monkeypatch.context() as mp:
        mp.setattr(Method, "fit", fit_wrapper)
        mp.setattr(Method, "logits", logits_wrapper)
        mp.setattr(protocols, "held_out_fits", temperature_wrapper)
        specs = [MethodSpec(n, n, PARAMS.get(n, {})) for n in methods]
        runs, classes = full_way(feats, labels, specs, SHOTS, SEEDS, folds, test_folds=[TEST_FOLD], text=text)
    return runs, classes, fitted, fits, predicts


def check_only_support_reaches_the_method(labels, name, text_mode, fits, predicts):
    """Every fit (internal and calibration ones too) gets support rows only; the outer fit
    exactly the protocol's support rows and their labels; the query logits exactly the test
    fold; with K >= 2 shots the calibration fits a clone on each leave-one-shot-out fold's
    other clips (K - 1 per class here, 3 folds of 3 shots)."""
    feats, _, folds, _ = dataset()
    fold_arr = np.array(folds)
    y, classes = encode_labels(labels)
    support_rows = {tuple(r) for r in feats.clip[torch.as_tensor(np.flatnonzero(fold_arr != TEST_FOLD))].tolist()}
    for fname, depth, support, _, _, _ in fits:
        assert {tuple(r) for r in support.clip.tolist()} <= support_rows, f"{fname} (depth {depth}) fit on a query clip"
    outer = [f for f in fits if f[1] == 0 and not f[5]]
    calibration = [f for f in fits if f[1] == 0 and f[5]]
    assert len(outer) == len(predicts) == len(SHOTS) * SEEDS
    assert [len(f[2]) for f in calibration] == [N_CLASSES * (k - 1) for k in SHOTS if k > 1 for _ in range(SEEDS * k)]
    i = 0
    for k in SHOTS:
        for seed in range(SEEDS):
            s_idx, q_idx = few_shot_split(y, k, seed, folds, TEST_FOLD, classes)
            assert (fold_arr[s_idx] != TEST_FOLD).all() and (fold_arr[q_idx] == TEST_FOLD).all()
            fname, _, support, sup_labels, text, _ = outer[i]
            pname, query = predicts[i]
            assert fname == pname == name
            assert torch.equal(sup_labels, torch.as_tensor(y[s_idx]))
            assert torch.equal(support.clip, feats.clip[torch.as_tensor(s_idx)])
            assert len(support) == N_CLASSES * k
            assert torch.equal(query.clip, feats.clip[torch.as_tensor(q_idx)])
            if text_mode == "audio-only":
                assert text is None
            elif text_mode == "text+captions":
                assert text.captions.shape[0] == len(s_idx)  # one caption per support clip
            i += 1


TEXT_MODES = {"audio-only": None, "text": dict(captions=False), "text+captions": dict(captions=True)}
LEAKAGE_CASES = [pytest.param(n, "audio-only", id=f"{n}-audio-only") for n in AUDIO_METHODS]
LEAKAGE_CASES += [pytest.param(n, "text+captions", id=f"{n}-text+captions") for n in ALL_METHODS]
LEAKAGE_CASES += [pytest.param("mgcl_f", "text", id="mgcl_f-text")]


@pytest.mark.parametrize("name, text_mode", LEAKAGE_CASES)
def test_permuting_query_labels_changes_nothing(monkeypatch, name, text_mode):
    feats, labels, folds, m = dataset()
    opts = TEXT_MODES[text_mode]
    text = text_for(m, **opts) if opts is not None else None
    perm = permuted_query_labels(labels, folds)
    is_query = np.array([f == TEST_FOLD for f in folds])
    assert sum(a != b for a, b in zip(labels, perm)) >= 0.5 * is_query.sum()  # a real shuffle
    assert all(a == b for a, b, q in zip(labels, perm, is_query) if not q)  # support untouched

    runs_a, classes_a, fitted_a, fits_a, predicts_a = run(monkeypatch, labels, [name], text)
    runs_b, classes_b, fitted_b, fits_b, predicts_b = run(monkeypatch, perm, [name], text)
    check_only_support_reaches_the_method(labels, name, text_mode, fits_a, predicts_a)
    check_only_support_reaches_the_method(perm, name, text_mode, fits_b, predicts_b)
    assert classes_a == classes_b
    assert len(runs_a) == len(runs_b) == len(SHOTS) * SEEDS == len(fitted_a) == len(fitted_b)
    accuracy_changed = False
    for ra, rb, ma, mb in zip(runs_a, runs_b, fitted_a, fitted_b):
        key = (ra.method, ra.shots, ra.seed)
        assert key == (rb.method, rb.shots, rb.seed)
        assert np.array_equal(ra.predictions, rb.predictions), f"{key}: predictions depend on query labels"
        assert ra.temperature == rb.temperature, f"{key}: the temperature depends on query labels"
        assert ra.temperature == 1.0 or ra.shots > 1  # one shot: no held-out clip, T = 1
        ta, va = ma.learned_state()
        tb, vb = mb.learned_state()
        assert va == vb, f"{key}: chosen hyper-parameters depend on query labels"
        assert ta.keys() == tb.keys()
        for k in ta:
            assert torch.equal(ta[k], tb[k]), f"{key}: learned tensor {k} depends on query labels"
        accuracy_changed |= ra.accuracy != rb.accuracy
    # the query labels were used, by the scorer only (a method at chance might not notice)
    assert accuracy_changed or all(r.accuracy < 50 for r in runs_a)


@pytest.mark.parametrize("name", ALL_METHODS)
def test_a_querys_logits_do_not_depend_on_the_other_queries(name):
    """No transductive statistics: a query's logits are the same alone, in a batch, or reordered."""
    feats, labels, folds, m = dataset()
    y, _ = encode_labels(labels)
    s_idx, q_idx = few_shot_split(y, 3, 0, folds, TEST_FOLD)
    support, query = feats[s_idx], feats[q_idx]
    # captions off here: the text+captions cases above cover them
    meth = make_method(name, **PARAMS.get(name, {})).fit(
        support, torch.as_tensor(y[s_idx]), text=text_for(m, captions=False)
    )
    z = meth.logits(query)
    rev = torch.arange(len(query) - 1, -1, -1)
    # (up to the Sinkhorn tolerance: batched problems may stop at different iterations)
    assert torch.allclose(meth.logits(query[rev]), z[rev], atol=1e-3)
    single = torch.cat([meth.logits(query[[i]]) for i in range(0, len(query), 5)])
    assert torch.allclose(single, z[::5], atol=1e-3)
