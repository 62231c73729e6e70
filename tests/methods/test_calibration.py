"""Temperature scaling on the support (mgcl.methods.calibration): the formulas and the folds."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.base import clone

from mgcl.methods import Method, make_method
from mgcl.methods.calibration import (
    T_MAX,
    T_MIN,
    calibrated_probabilities,
    expected_calibration_error,
    fit_temperature,
    held_out_fits,
    held_out_logits,
    pseudo_count_smoothing,
    support_temperature,
    temperature_nll,
)
from mgcl.methods.selection import shot_folds
from mgcl.types import SupportViews, TextFeatures, l2_normalize
from tests.methods._synth import centres, make_features


def calibrated_sample(n: int = 4000, c: int = 5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits z (n, c) of a calibrated model and labels drawn from softmax(z)."""
    g = torch.Generator().manual_seed(seed)
    z = 2.0 * torch.randn(n, c, generator=g)
    y = torch.multinomial(z.softmax(dim=1), 1, generator=g).squeeze(1)
    return z, y


# ----------------------------------------------------------------------------- fit_temperature
@pytest.mark.parametrize("t_true", [0.25, 0.5, 1.0, 2.0, 5.0])
def test_fit_temperature_recovers_a_known_temperature(t_true):
    z, y = calibrated_sample()
    # a model whose logits are z * T_true is calibrated again by dividing by T_true
    t = fit_temperature(z * t_true, y, smoothing=0.0)
    assert t == pytest.approx(t_true, rel=0.08)
    # it is the NLL minimum (up to the search tolerance)
    for other in (t * 0.9, t * 1.1):
        assert temperature_nll(z * t_true, y, t) <= temperature_nll(z * t_true, y, other) + 1e-9
    # the default pseudo-count (ε = 1 / 4001) hardly moves it
    assert fit_temperature(z * t_true, y) == pytest.approx(t, rel=0.01)


def test_fit_temperature_is_deterministic_clamped_and_safe():
    z, y = calibrated_sample(300, 4, seed=1)
    assert fit_temperature(z, y) == fit_temperature(z.clone(), y.clone())
    # perfectly separated held-out logits: without smoothing sharper is always better (T_MIN,
    # probabilities of 0 and 1); the pseudo-count keeps T finite, the confidence near 1 - ε (C-1)/C
    sep = 5.0 * torch.nn.functional.one_hot(y, 4).float()
    assert fit_temperature(sep, y, smoothing=0.0) == T_MIN
    t = fit_temperature(sep, y)
    eps = pseudo_count_smoothing(len(y))
    assert T_MIN < t < 1.0 and eps == 1 / 301
    conf = calibrated_probabilities(sep, t).max(1).values
    assert conf.mean().item() == pytest.approx(1 - eps * 3 / 4, abs=1e-4)
    # logits carrying no information about the labels: flatter is always better, clamped to T_MAX
    wrong = 5.0 * torch.nn.functional.one_hot((y + 1) % 4, 4).float()
    assert fit_temperature(wrong, y) == fit_temperature(wrong, y, smoothing=0.0) == T_MAX
    assert fit_temperature(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long)) == 1.0
    # a row with a non-finite logit is left out
    z2 = torch.cat([z, torch.tensor([[float("nan"), 0.0, 0.0, 0.0]])])
    assert fit_temperature(z2, torch.cat([y, torch.tensor([0])])) == fit_temperature(z, y)


def test_temperature_nll_by_hand():
    z = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([0, 0])
    t = 2.0
    by_hand = 0.5 * (-math.log(math.e**1 / (math.e**1 + 1)) - math.log(1 / (1 + math.e**0.5)))
    assert temperature_nll(z, y, t) == pytest.approx(by_hand, rel=1e-12)
    # smoothed targets q = (1 - ε) onehot + ε / C: the target term becomes Σ_c q_c z_c / T
    eps = 0.2
    lse = [math.log(math.e**1 + 1), math.log(1 + math.e**0.5)]
    target = [(1 - eps) * 1.0 + eps * (1.0 + 0.0) / 2, (1 - eps) * 0.0 + eps * (0.0 + 0.5) / 2]
    by_hand = 0.5 * sum(a - b for a, b in zip(lse, target))
    assert temperature_nll(z, y, t, smoothing=eps) == pytest.approx(by_hand, rel=1e-12)


def test_calibrated_probabilities_keep_the_argmax():
    z, _ = calibrated_sample(200, 6, seed=2)
    for t in (0.1, 0.7, 3.0, 50.0):
        p = calibrated_probabilities(z, t)
        assert torch.allclose(p.sum(1), torch.ones(200), atol=1e-6)
        assert torch.equal(p.argmax(1), z.argmax(1))
    assert torch.allclose(calibrated_probabilities(z, 1.0), z.softmax(1))


# ----------------------------------------------------------------------------- ECE
def test_ece_by_hand():
    # confidences 0.9 (bin 13, right), 0.62 (bin 9, wrong), 0.7 -> 0.71 (bin 10, right), 0.64 (bin 9, right)
    p = torch.tensor([[0.9, 0.1], [0.62, 0.38], [0.29, 0.71], [0.36, 0.64]])
    y = torch.tensor([0, 1, 1, 1])
    # bin 13: |1 - 0.9| * 1; bin 9: |0.5 - 0.63| * 2; bin 10: |1 - 0.71| * 1; over 4 rows
    by_hand = (0.1 + 2 * 0.13 + 0.29) / 4
    assert expected_calibration_error(p, y) == pytest.approx(by_hand, abs=1e-6)  # float32 inputs
    # one bin: |accuracy - mean confidence|
    one_bin = abs(0.75 - (0.9 + 0.62 + 0.71 + 0.64) / 4)
    assert expected_calibration_error(p, y, n_bins=1) == pytest.approx(one_bin, abs=1e-6)
    assert expected_calibration_error(torch.eye(3), torch.arange(3)) == 0.0  # sure and right
    assert expected_calibration_error(torch.eye(3), torch.tensor([1, 2, 0])) == 1.0  # sure and wrong
    assert expected_calibration_error(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long)) == 0.0


def test_temperature_lowers_the_ece_of_an_overconfident_model():
    z, y = calibrated_sample(6000, 5, seed=3)
    over = 3.0 * z
    t = fit_temperature(over[:3000], y[:3000], smoothing=0.0)
    raw = expected_calibration_error(over[3000:].softmax(1), y[3000:])
    cal = expected_calibration_error(calibrated_probabilities(over[3000:], t), y[3000:])
    assert cal < 0.03 < 0.1 < raw


# ----------------------------------------------------------------------------- held-out logits
def support(k: int, n_classes: int = 4, seed: int = 0):
    labels = torch.arange(n_classes).repeat_interleave(k)
    m = centres(n_classes, 16, seed=seed)
    return make_features(labels, m, noise=0.8, seed=seed), labels


@pytest.fixture
def recorded_fits(monkeypatch):
    """Every Method.fit call: (method, support clip rows, labels, text, views)."""
    calls = []
    fit = Method.fit

    def wrapper(self, support, labels, text=None, n_classes=None, views=None):
        calls.append((self, support.clip.clone(), torch.as_tensor(labels).clone(), text, views, n_classes))
        return fit(self, support, labels, text=text, n_classes=n_classes, views=views)

    monkeypatch.setattr(Method, "fit", wrapper)
    return calls


def test_one_shot_gives_no_held_out_logits_and_t_1():
    feats, labels = support(1)
    assert held_out_logits(make_method("prototype"), feats, labels) is None
    assert support_temperature(make_method("prototype"), feats, labels) == (1.0, 0)


@pytest.mark.parametrize("k,max_folds", [(2, 3), (3, 3), (5, 3), (4, 2)])
def test_held_out_rows_never_reach_the_fit(recorded_fits, k, max_folds):
    feats, labels = support(k)
    method = make_method("prototype")
    logits, y = held_out_logits(method, feats, labels, n_classes=4, max_folds=max_folds, seed=1)
    folds = shot_folds(labels, max_folds=max_folds, seed=1)
    assert len(recorded_fits) == len(folds) == min(k, max_folds)
    assert not hasattr(method, "n_classes_")  # the method itself is not fitted: clones are
    rows = {tuple(r) for r in feats.clip.tolist()}
    assert len(rows) == len(feats)
    start = 0
    for (model, clip, fit_labels, _, _, n_classes), held in zip(recorded_fits, folds):
        assert model is not method and n_classes == 4
        assert len(clip) == int((~held).sum())  # the fold's other clips only
        seen = {tuple(r) for r in clip.tolist()}
        assert not seen & {tuple(r) for r in feats.clip[held].tolist()}
        assert torch.equal(clip, feats.clip[~held]) and torch.equal(fit_labels, labels[~held])
        # the fold's held-out logits are those of a model fitted without them
        n = int(held.sum())
        expected = make_method("prototype").fit(feats[~held], labels[~held], n_classes=4).logits(feats[held])
        assert torch.allclose(logits[start : start + n], expected)
        assert torch.equal(y[start : start + n], labels[held])
        start += n
    assert start == len(feats) == len(y)  # every support row held out exactly once


def test_views_and_captions_are_restricted_to_the_training_rows(recorded_fits):
    feats, labels = support(3)
    g = torch.Generator().manual_seed(0)
    captions = l2_normalize(torch.randn(len(feats), 16, generator=g))
    text = TextFeatures(prompts=l2_normalize(torch.randn(4, 16, generator=g)), captions=captions)
    source = torch.arange(len(feats)).repeat(2)  # two views per clip
    views = SupportViews(feats[source], source)
    held_out_logits(make_method("prototype"), feats, labels, text=text, views=views, max_folds=3)
    folds = shot_folds(labels, max_folds=3)
    for (_, clip, _, t, v, _), held in zip(recorded_fits, folds):
        train = (~held).nonzero().flatten()
        assert torch.equal(t.captions, captions[train]) and torch.equal(t.prompts, text.prompts)
        assert len(v) == 2 * len(train) and int(v.source.max()) < len(train)
        # each view is a view of the training clip it points at
        assert torch.equal(v.features.clip, clip[v.source])


def test_held_out_logits_are_deterministic_and_leave_the_rng_alone():
    feats, labels = support(3)
    method = make_method("linear_probe")
    torch.manual_seed(5)
    before = torch.random.get_rng_state()
    a = held_out_logits(method, feats, labels, n_classes=4, seed=2)
    assert torch.equal(torch.random.get_rng_state(), before)
    b = held_out_logits(method, feats, labels, n_classes=4, seed=2)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


#: What each method that chooses hyper-parameters on the support chose (learned attributes),
#: and shorter grids for the fine-tuned ones (their cross-validation still runs).
CHOICES = {
    "linear_probe": ("C_",),
    "tip_adapter": ("alpha_", "beta_"),
    "tip_adapter_f": ("alpha_", "beta_", "epochs_"),
    "treff": ("alpha_", "gamma_", "epochs_"),
    "mgcl": ("alpha_", "beta_"),
    "mgcl_f": ("alpha_", "beta_", "epochs_", "chosen_weights_"),
}
FAST = {"tip_adapter_f": {"epoch_grid": (0, 5)}, "treff": {"epoch_grid": (0, 5)}, "mgcl_f": {"epoch_grid": (0, 3)}}


@pytest.mark.parametrize("name", sorted(CHOICES))
def test_held_out_clones_reuse_the_choices_of_the_fitted_model(name, recorded_fits, forbid_cross_validation):
    """The fold clones of a fitted model are fitted with its choices pinned: none of them
    cross-validates again on its fewer clips, each ends with the full model's choices."""
    feats, labels = support(3)
    m = make_method(name, **FAST.get(name, {})).fit(feats, labels, n_classes=4)
    assert all(getattr(m, a) is not None for a in CHOICES[name])
    forbid_cross_validation()
    with pytest.raises(AssertionError, match="cross-validation"):  # an unfitted clone's folds choose again
        held_out_fits(clone(m), feats, labels, n_classes=4)
    recorded_fits.clear()
    held = held_out_fits(m, feats, labels, n_classes=4, max_folds=3)
    assert held.n_folds == len(recorded_fits) == 3 and len(held.labels) == len(labels)
    for model, clip, *_ in recorded_fits:
        assert model is not m and len(clip) == 8  # 2 of the 3 clips of each class
        assert {a: getattr(model, a) for a in CHOICES[name]} == {a: getattr(m, a) for a in CHOICES[name]}


def test_support_temperature_on_a_method():
    feats, labels = support(4)
    t, n_folds = support_temperature(make_method("prototype"), feats, labels, max_folds=3)
    assert n_folds == 3 and T_MIN <= t <= T_MAX and np.isfinite(t)
    held = held_out_logits(make_method("prototype"), feats, labels, max_folds=3)
    assert t == fit_temperature(*held)
