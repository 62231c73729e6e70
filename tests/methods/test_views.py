"""Audio views of the support clips (SupportViews) in the method API, mgcl and mgcl_f."""

import numpy as np
import pytest
import torch

from mgcl.errors import MgclError
from mgcl.methods import make_method
from mgcl.methods.baselines.linear_probe import averaged_logistic, fit_logistic
from mgcl.methods.common import cache_logits, centre
from mgcl.methods.mgcl.finetuned import MGCLF, one_standard_error_choice, one_view_per_clip
from mgcl.types import SupportViews
from tests.methods._synth import few_shot, make_features

FAST = {"cv_rounds": 1, "epoch_grid": (0, 3), "default_epochs": 3}
NAMES = ("noise", "lowpass", "highpass")


def views_of(support, ys, m, per_clip=3, seed=5):
    """Views near each support clip: ``per_clip`` noisy copies (source = clip index)."""
    source = torch.arange(len(ys)).repeat_interleave(per_clip)
    feats = make_features(ys[source], m, noise=0.4, seed=seed)
    return SupportViews(feats, source)


def problem(shots=4, seed=0):
    support, ys, query, yq, m = few_shot(shots, seed=seed)
    return support, ys, query, yq, views_of(support, ys, m)


def test_subset_reindexes_to_positions_in_the_kept_clips():
    support, ys, _, _, views = problem(shots=2)
    sub = views.subset(torch.tensor([7, 2]))
    assert sub.source.tolist() == [1, 1, 1, 0, 0, 0]  # views keep their order; clip 7 is now 0
    assert torch.equal(sub.features.clip[sub.source == 0], views.features.clip[views.source == 7])
    assert views.subset(torch.tensor([], dtype=torch.long)) is None


def test_fit_checks_the_views():
    support, ys, _, _, views = problem(shots=2)
    m = make_method("mgcl_f", **FAST)
    with pytest.raises(MgclError, match="support row in"):
        m.fit(support, ys, views=SupportViews(views.features, views.source + len(ys)))
    wrong = SupportViews(make_features(ys, torch.eye(5, 16)), torch.arange(len(ys)))
    with pytest.raises(MgclError, match="dimension 16"):
        m.fit(support, ys, views=wrong)
    with pytest.raises(MgclError, match="unknown audio view 'echo'"):
        make_method("mgcl_f", augment=("echo",)).fit(support, ys, views=views)


def test_methods_without_views_ignore_them():
    support, ys, query, _, views = problem()
    for name in ("linear_probe", "tip_adapter"):
        a = make_method(name).fit(support, ys).logits(query)
        b = make_method(name).fit(support, ys, views=views).logits(query)
        assert torch.equal(a, b), name
    a = make_method("mgcl", augment=()).fit(support, ys).logits(query)
    b = make_method("mgcl", augment=()).fit(support, ys, views=views).logits(query)
    assert torch.equal(a, b)
    a = make_method("mgcl_f", augment=(), **FAST).fit(support, ys).logits(query)
    b = make_method("mgcl_f", augment=(), **FAST).fit(support, ys, views=views).logits(query)
    assert torch.equal(a, b)


def test_mgcl_cache_keys_are_the_clips_then_their_views():
    support, ys, query, _, views = problem(shots=2)
    m = make_method("mgcl", branches=("cc",)).fit(support, ys, views=views)
    assert m.view_names() == NAMES
    assert torch.equal(m.key_source_, torch.cat([torch.arange(len(ys)), views.source]))
    keys = centre(torch.cat([support.clip, views.features.clip]), m.mean_)
    assert torch.allclose(m.keys_, keys) and torch.allclose(m.mean_, support.clip.mean(0))
    assert torch.equal(m.values_.argmax(1), ys[m.key_source_])
    assert torch.equal(m.values_.sum(1), torch.ones(len(ys) + len(views)))  # a view is a key like its clip
    assert m.frame_keys_.shape[0] == len(ys) + len(views)
    # one shot per class too: the defaults hold, the views still widen the cache
    q = centre(query.clip, m.mean_)
    expect = m.alpha_["cc"] * cache_logits(q @ keys.T, m.values_, m.beta_["cc"]) / m.spread_["cc"]
    assert torch.allclose(m.logits(query), expect, atol=1e-5)


def test_view_weight_scales_the_views_values_in_the_cache():
    support, ys, query, _, views = problem(shots=2)
    weighted = make_method("mgcl", branches=("cc",), view_weight=None).fit(support, ys, views=views)
    # None: a view weighs 1 / K (2 shots here); a number: that weight
    assert torch.equal(weighted.values_.sum(1), torch.cat([torch.ones(len(ys)), torch.full((len(views),), 0.5)]))
    assert torch.equal(weighted.values_.argmax(1), ys[weighted.key_source_])
    zero = make_method("mgcl", branches=("cc",), view_weight=0.0, default_beta={"cc": 4.0}).fit(
        support, ys, views=views
    )
    plain = make_method("mgcl", branches=("cc",), augment=(), default_beta={"cc": 4.0}).fit(support, ys)
    assert zero.beta_ == plain.beta_  # weight-0 views change no logit, nor what CV picks
    assert torch.allclose(zero.logits(query), plain.logits(query), atol=1e-5)
    for bad in (-1.0, float("nan"), "half", True):
        with pytest.raises(MgclError, match="view_weight must be a number >= 0"):
            make_method("mgcl", view_weight=bad).fit(support, ys, views=views)


def test_mgcl_cross_validation_holds_a_clips_views_out_with_it():
    """Views identical to their clip: if a held-out clip's views stayed in the cache, every
    held-out clip would find itself (CV accuracy 100 %). They leave with it, so the CV sees
    exactly what it sees without views (each key repeated 4 times scales every class alike)."""
    support, ys, _, _, _ = problem(shots=4)
    support.clip += 2.0 * torch.randn(support.clip.shape, generator=torch.Generator().manual_seed(3))
    support.clip /= support.clip.norm(dim=1, keepdim=True)  # a hard problem: CV well below 100 %
    copies = SupportViews(
        support[torch.arange(len(ys)).repeat_interleave(3)], torch.arange(len(ys)).repeat_interleave(3)
    )
    plain = make_method("mgcl", branches=("cc",), augment=()).fit(support, ys)
    viewed = make_method("mgcl", branches=("cc",)).fit(support, ys, views=copies)
    assert plain.cv_accuracy_ < 90
    assert viewed.cv_accuracy_ == pytest.approx(plain.cv_accuracy_)
    assert viewed.beta_ == plain.beta_


def test_mgcl_f_head_starts_from_the_clips_and_their_views():
    support, ys, query, yq, views = problem()  # 4 shots: each view weighs 1/4 of a clip
    m = make_method("mgcl_f", epoch_grid=(0,), default_epochs=0).fit(support, ys, views=views)
    assert m.view_names() == NAMES and m.n_views_ == len(views)
    x = centre(torch.cat([support.clip, views.features.clip]), m.mean_).numpy()
    y = torch.cat([ys, ys[views.source]]).numpy()
    weight = np.concatenate([np.ones(len(ys)), np.full(len(views), 0.25)])
    w, b = averaged_logistic(x, y, m.head_c_grid, 5, weight)
    assert np.allclose(m.params_["head_w"].numpy(), w, atol=1e-6)  # same path, same result
    unweighted, _ = averaged_logistic(x, y, m.head_c_grid, 5)
    assert not np.allclose(unweighted, w, atol=1e-3)
    full = make_method("mgcl_f", epoch_grid=(0,), default_epochs=0, view_weight=1.0).fit(support, ys, views=views)
    assert np.allclose(full.params_["head_w"].numpy(), unweighted, atol=1e-6)
    plain = make_method("mgcl_f", epoch_grid=(0,), default_epochs=0).fit(support, ys)
    assert plain.n_views_ == 0 and not torch.allclose(plain.params_["head_w"], m.params_["head_w"])
    assert (m.predict(query) == yq).float().mean() > 0.8


def test_cross_validation_holds_a_clip_out_with_its_views(monkeypatch):
    support, ys, _, _, views = problem(shots=4)
    seen = []
    init = MGCLF._init_params

    def spy(self, v, labels, text, views=None):
        seen.append((len(labels), None if views is None else views.source.clone()))
        return init(self, v, labels, text, views)

    monkeypatch.setattr(MGCLF, "_init_params", spy)
    make_method("mgcl_f", **FAST).fit(support, ys, views=views)
    full, *folds = seen
    assert full[0] == len(ys) and len(full[1]) == 3 * len(ys)
    assert folds and all(n < len(ys) for n, _ in folds)
    for n, source in folds:  # exactly the training clips' views, three each
        assert torch.equal(torch.bincount(source, minlength=n), torch.full((n,), 3))


def test_one_view_per_clip_draws_one_of_each_clips_views():
    source = torch.tensor([0, 0, 0, 2, 2, 5])
    g = torch.Generator().manual_seed(0)
    picks = [one_view_per_clip(source, g) for _ in range(50)]
    for p in picks:
        assert sorted(source[p].tolist()) == [0, 2, 5]
    assert len({tuple(p.tolist()) for p in picks}) > 1  # random
    assert len(one_view_per_clip(torch.zeros(0, dtype=torch.long), g)) == 0


def test_averaged_logistic_averages_the_logits_over_c():
    support, ys, query, _, _ = problem()
    x, xq = support.clip.numpy(), query.clip.numpy()
    w, b = averaged_logistic(x, ys.numpy(), (0.1, 10.0), 5)
    sols = [fit_logistic(x, ys.numpy(), c, 5) for c in (0.1, 10.0)]
    mean_logits = np.mean([xq @ sw.T + sb for sw, sb in sols], axis=0)
    # the path is warm-started: the same optimum up to the solver's tolerance
    assert np.abs(xq @ w.T + b - mean_logits).max() < 1e-2 * np.abs(mean_logits).max()


def test_one_standard_error_rule_takes_the_simplest_candidate_close_to_the_best():
    acc = {"simple": 0.70, "middle": 0.74, "complex": 0.78}
    order = {"simple": 0, "middle": 1, "complex": 2}.get
    # SE of 0.78 over 100 clips = 0.041: 0.74 is within, 0.70 is not
    assert one_standard_error_choice(acc, 100, order) == "middle"
    assert one_standard_error_choice(acc, 10_000, order) == "complex"
    assert one_standard_error_choice(acc, 100, order, one_se=False) == "complex"
    with pytest.raises(MgclError, match="cv_rule"):
        support, ys, _, _, _ = problem(shots=2)
        make_method("mgcl_f", cv_rule="median").fit(support, ys)
