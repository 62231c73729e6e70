"""mgcl.methods.mgcl.training_free: its formulas against answers computed by hand or by ot_sim directly,
and how views are weighed in mgcl_f's head and loss (the method as a whole: test_views,
test_baselines, test_leakage)."""

from __future__ import annotations

import math

import numpy as np
import torch

from mgcl.methods import make_method
from mgcl.methods.baselines.linear_probe import averaged_logistic, fit_logistic
from mgcl.methods.common import segments
from mgcl.methods.losses import info_nce, weighted_cross_entropy
from mgcl.methods.mgcl.branches import LOGIT_SCALE, fine_similarity, fine_text_logits, frame_saliency
from mgcl.methods.mgcl.finetuned import kmeans_init
from mgcl.ot import ot_sim
from mgcl.types import SupportViews
from tests.methods._synth import few_shot, make_features


def test_frame_saliency_by_hand():
    # two real frames at distances 0 and 1 from the mean, one padded: softmax(τ · [0, 1])
    frames = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [5.0, 5.0]]])
    mask = torch.tensor([[True, True, False]])
    w = frame_saliency(frames, mask, torch.zeros(2), tau=2.0)
    e = math.exp(2.0)
    assert torch.allclose(w, torch.tensor([[1 / (1 + e), e / (1 + e), 0.0]]))
    assert torch.allclose(frame_saliency(frames, mask, torch.zeros(2), tau=0.0), torch.tensor([[0.5, 0.5, 0.0]]))
    empty = frame_saliency(frames, torch.zeros(1, 3, dtype=torch.bool), torch.zeros(2), 2.0)
    assert torch.equal(empty, torch.zeros(1, 3))  # no real frame: no mass, no NaN


def test_fine_similarity_solves_ot_for_the_top_k_keys_only():
    g = torch.Generator().manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(3, 4, 8, generator=g), dim=-1)
    k = torch.nn.functional.normalize(torch.randn(5, 6, 8, generator=g), dim=-1)
    qm, km = torch.ones(3, 4, dtype=torch.bool), torch.ones(5, 6, dtype=torch.bool)
    km[1, 4:] = False
    qw, kw = torch.full((3, 4), 0.25), torch.softmax(torch.randn(5, 6, generator=g), 1).masked_fill(~km, 0)
    kw = kw / kw.sum(1, keepdim=True)
    coarse = torch.rand(3, 5, generator=g)
    out = fine_similarity(q, qm, qw, k, km, kw, coarse, topk=2, eps=0.1)
    top = coarse.topk(2, dim=1).indices
    for i in range(3):
        for j in range(5):
            if j in top[i]:
                ref = ot_sim(
                    q[i][None, None],
                    k[j][None, None],
                    qm[i][None, None],
                    km[j][None, None],
                    a=qw[i][None, None],
                    b=kw[j][None, None],
                    eps=0.1,
                    tol=1e-3,
                    n_iters=200,
                )
                assert abs(out[i, j].item() - ref.item()) < 1e-3  # both stop at tol 1e-3
            else:
                assert out[i, j] == coarse[i, j]  # outside the top-k: the coarse similarity


def test_fine_text_logits_is_the_scaled_ot_similarity_to_each_class():
    g = torch.Generator().manual_seed(1)
    frames = torch.nn.functional.normalize(torch.randn(2, 3, 4, generator=g), dim=-1)
    concepts = torch.nn.functional.normalize(torch.randn(3, 2, 4, generator=g), dim=-1)
    mask, cmask = torch.ones(2, 3, dtype=torch.bool), torch.ones(3, 2, dtype=torch.bool)
    z = fine_text_logits(frames, mask, concepts, cmask, eps=0.1, scale=LOGIT_SCALE)
    assert z.shape == (2, 3)
    ref = ot_sim(frames[1][None, None], concepts[2][None, None], eps=0.1)
    assert torch.allclose(z[1, 2], LOGIT_SCALE * ref.squeeze(), atol=1e-5)


def test_weighted_cross_entropy_counts_a_row_as_often_as_its_weight():
    g = torch.Generator().manual_seed(2)
    z, y = torch.randn(4, 3, generator=g), torch.tensor([0, 2, 1, 1])
    ce = torch.nn.functional.cross_entropy
    assert torch.allclose(weighted_cross_entropy(z, y), ce(z, y))
    twice = weighted_cross_entropy(z, y, torch.tensor([2.0, 1.0, 1.0, 0.0]))
    assert torch.allclose(twice, ce(z[[0, 0, 1, 2]], y[[0, 0, 1, 2]]))  # weight 2 = the row twice, 0 = absent
    assert torch.allclose(info_nce(z, y, 0.5, torch.tensor([1.0, 1.0, 0.0, 0.0])), ce(z[:2] / 0.5, y[:2]))


def test_logistic_sample_weight_two_is_the_row_twice():
    support, ys, query, _, _ = few_shot(3)
    x, y, xq = support.clip.numpy(), ys.numpy(), query.clip.numpy()
    weight = np.ones(len(y))
    weight[:5] = 2.0
    w1, b1 = fit_logistic(x, y, 1.0, 5, sample_weight=weight)
    w2, b2 = fit_logistic(np.concatenate([x, x[:5]]), np.concatenate([y, y[:5]]), 1.0, 5)
    assert np.abs((xq @ w1.T + b1) - (xq @ w2.T + b2)).max() < 1e-3
    wa, _ = averaged_logistic(x, y, (0.1, 1.0), 5, np.zeros(len(y)) + 1.0)
    wb, _ = averaged_logistic(x, y, (0.1, 1.0), 5)
    assert np.allclose(wa, wb, atol=1e-6)


def test_kmeans_init_gives_unit_centroids_one_per_cluster():
    g = torch.Generator().manual_seed(3)
    a, b = torch.eye(4)[0], torch.eye(4)[1]
    x = torch.nn.functional.normalize(
        torch.cat([a + 0.05 * torch.randn(20, 4, generator=g), b + 0.05 * torch.randn(20, 4, generator=g)]), dim=1
    )
    c = kmeans_init(x, 2, torch.Generator().manual_seed(0))
    assert torch.allclose(c.norm(dim=1), torch.ones(2))
    assert sorted(c.argmax(1).tolist()) == [0, 1]
    few = kmeans_init(x[:3], 5, g)  # fewer rows than centroids: rows repeated
    assert few.shape == (5, 4) and torch.allclose(few[3], x[0], atol=1e-6)


def test_mgcl_fine_cache_logits_by_hand():
    support, ys, query, _, _ = few_shot(2, seed=4)
    # the fine cache alone (ablating cc: otherwise a coarse branch is kept next to it)
    m = make_method("mgcl", branches=("cc", "fc"), ablate=("cc",), augment=(), default_beta={"fc": 4.0})
    m.fit(support, ys)
    assert m.branches_ == ["fc"]
    assert m.segment_frames_ == (11, 3)  # (2.2, 0.55) s in frames of 0.2 s
    rows, mask = segments(query.frames, query.frame_mask, *m.segment_frames_)
    w = frame_saliency(rows, mask, m.fine_mean_, m.saliency)
    fq = torch.nn.functional.normalize(rows - m.fine_mean_, dim=-1) * mask.unsqueeze(-1)
    coarse = torch.nn.functional.normalize(query.clip - m.mean_, dim=-1) @ m.keys_.T
    sim = fine_similarity(fq, mask, w, m.frame_keys_, m.frame_key_mask_, m.frame_key_w_, coarse, m.topk, m.eps)
    expect = m.alpha_["fc"] * torch.exp(-m.beta_["fc"] * (1 - sim)) @ m.values_ / m.spread_["fc"]
    assert torch.allclose(m.logits(query), expect, atol=1e-5)


def test_mgcl_f_views_weigh_view_weight_in_the_loss():
    """The training loss over clips + views with view weights w equals the weighted mean of
    the per-row losses: weight 0 = the clips alone, weight 1 = every row alike."""
    support, ys, _, _, m = few_shot(2, seed=5)
    views = SupportViews(make_features(ys, m, noise=0.4, seed=6), torch.arange(len(ys)))  # one view per clip
    model = make_method("mgcl_f", epoch_grid=(0,), default_epochs=0, augment=("noise",), view_weight=0.0)
    model.fit(support, ys, views=views)
    rows, y_rows, group, source, weight = model._rows(support, ys, views)
    assert torch.equal(weight, torch.cat([torch.ones(len(ys)), torch.zeros(len(ys))]))
    p, values = model.params_, model.values_
    clips_only = model._loss(p, rows.rows(torch.arange(len(ys))), ys, values)
    assert torch.allclose(model._loss(p, rows, y_rows, values, group=group, weight=weight), clips_only)
    everything = model._loss(p, rows, y_rows, values, group=group)
    half = torch.cat([torch.ones(len(ys)), torch.full((len(ys),), 0.5)])
    views_only = model._loss(p, rows.rows(torch.arange(len(ys), 2 * len(ys))), ys, values)
    assert torch.allclose(everything, (clips_only + views_only) / 2)
    assert torch.allclose(
        model._loss(p, rows, y_rows, values, group=group, weight=half), (clips_only + 0.5 * views_only) / 1.5
    )
    # mgcl_f's default (None): 1 / K, 0.5 per view at 2 shots
    default = make_method("mgcl_f", epoch_grid=(0,), default_epochs=0, augment=("noise",)).fit(support, ys, views=views)
    assert torch.equal(default._rows(support, ys, views)[4], half)


def test_a_near_constant_branch_cannot_dominate():
    """Captions that say the same thing of every clip (embeddings equal up to 1e-6) make the
    caption cache near-constant across classes. Divided by its own spread it used to become
    a unit-size random signal that the support CV could weight above every real branch (with
    the old absolute floor: 0.96 against 1.97 here); with the relative floor its spread stays
    below 1e-3 of a unit per unit of weight."""
    from tests.methods._synth import make_text

    support, ys, query, yq, m = few_shot(3, seed=7)
    text = make_text(m)
    g = torch.Generator().manual_seed(1)
    same = torch.nn.functional.normalize(torch.ones(len(ys), m.shape[1]), dim=1)
    text.captions = same + 1e-6 * torch.randn(same.shape, generator=g)
    for name in ("mgcl", "mgcl_f"):
        model = make_method(name, augment=(), **({"epoch_grid": (0, 10)} if name == "mgcl_f" else {}))
        model.fit(support, ys, text=text)
        parts = model.branch_logits(query)
        others = max(float(v.std(dim=1).mean()) for b, v in parts.items() if b != "gc")
        assert "gc" in parts and others > 0.1
        assert float(parts["gc"].std(dim=1).mean()) < 1e-2 * others, name  # α ≤ 2: ≤ 2e-3 a unit
