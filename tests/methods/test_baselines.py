"""Every registered method on synthetic cached features: accuracy, errors, shapes, state.

The features are separable by construction (``_synth``): C = 5 classes, chance is 20 %.
Audio-only methods are run with and without a text tower, text methods with one.
"""

from __future__ import annotations

import functools
import json
import math

import pytest
import torch

from mgcl.errors import MgclError, NotFittedError
from mgcl.methods import available_methods, make_method, method_class
from mgcl.methods.baselines.plot import Plot
from mgcl.methods.baselines.treff import Treff, calm_logits
from mgcl.types import AudioFeatures, TextFeatures, l2_normalize

from ._synth import N_CLASSES, few_shot, make_text

AUDIO_METHODS = ["prototype", "linear_probe", "tip_adapter", "tip_adapter_f", "treff", "mgcl", "mgcl_f"]
TEXT_METHODS = ["zero_shot", "zero_shot_desc", "plot"]
NOISE = dict(noise=0.5, common=0.5, t_max=6)


@functools.cache
def problem(shots: int, seed: int = 0):
    support, ys, query, yq, m = few_shot(shots, n_query_per_class=6, seed=seed, **NOISE)
    return support, ys, query, yq, make_text(m, seed=seed)


def fitted(name: str, shots: int = 2, with_text: bool = True, **params):
    support, ys, _, _, text = problem(shots)
    return make_method(name, **params).fit(support, ys, text=text if with_text else None)


def test_the_lists_cover_every_registered_method():
    assert sorted(AUDIO_METHODS + TEXT_METHODS) == sorted(available_methods())
    for name in available_methods():
        assert method_class(name).needs_text == (name in TEXT_METHODS), name
        assert method_class(name).name == name


# ----------------------------------------------------------------------------- accuracy
CASES = [(n, k, t) for n in AUDIO_METHODS for k in (1, 4) for t in (False, True)]
CASES += [(n, k, True) for n in TEXT_METHODS for k in (1, 4)]


@pytest.mark.parametrize("name, shots, with_text", CASES)
def test_accuracy_well_above_chance(name, shots, with_text):
    support, ys, query, yq, text = problem(shots)
    m = make_method(name).fit(support, ys, text=text if with_text else None)
    acc = (m.predict(query) == yq).float().mean().item()
    assert acc > 0.6, f"{name} {shots}-shot text={with_text}: accuracy {acc:.2f} (chance 0.20)"


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize("name", TEXT_METHODS)
def test_text_methods_need_a_text_tower(name):
    support, ys, _, _, _ = problem(1)
    with pytest.raises(MgclError) as err:
        make_method(name).fit(support, ys, text=None)
    msg = str(err.value)
    assert "\n" not in msg and name in msg and "text" in msg


@pytest.mark.parametrize("name", AUDIO_METHODS + TEXT_METHODS)
def test_logits_shape_and_probabilities(name):
    m = fitted(name)
    _, _, query, _, _ = problem(2)
    z = m.logits(query)
    assert z.shape == (len(query), N_CLASSES)
    assert torch.isfinite(z).all()
    p = m.predict_proba(query)
    assert torch.allclose(p.sum(1), torch.ones(len(query)), atol=1e-5)
    assert torch.equal(m.predict(query), z.argmax(1))


@pytest.mark.parametrize("name", AUDIO_METHODS + TEXT_METHODS)
def test_predict_before_fit_raises(name):
    _, _, query, _, _ = problem(1)
    m = make_method(name)
    with pytest.raises(NotFittedError):
        m.predict(query)
    with pytest.raises(NotFittedError):
        m.logits(query)


@pytest.mark.parametrize("name", AUDIO_METHODS + TEXT_METHODS)
def test_query_of_the_wrong_dimension_raises(name):
    m = fitted(name, shots=1)
    _, _, query, _, _ = problem(1)
    d = query.dim + 3
    bad = AudioFeatures(
        l2_normalize(torch.randn(2, d)), l2_normalize(torch.randn(2, 3, d)), torch.ones(2, 3, dtype=torch.bool)
    )
    with pytest.raises(MgclError, match="dimension"):
        m.predict(bad)


@pytest.mark.parametrize("name", AUDIO_METHODS + TEXT_METHODS)
def test_a_class_without_support_clip_raises(name):
    support, ys, _, _, text = problem(2)
    keep = (ys != 2).nonzero().flatten()
    with pytest.raises(MgclError, match=r"classes \[2\] have no support clip"):
        make_method(name).fit(support[keep], ys[keep], text=text, n_classes=N_CLASSES)
    with pytest.raises(MgclError, match="no support clip"):  # a class only the caller knows of
        make_method(name).fit(support, ys, text=text, n_classes=N_CLASSES + 1)


@pytest.mark.parametrize("name", AUDIO_METHODS + TEXT_METHODS)
def test_fit_returns_self_and_state_round_trips(name):
    support, ys, query, _, text = problem(2)
    m = make_method(name)
    assert m.fit(support, ys, text=text) is m
    tensors, values = m.learned_state()
    json.dumps(values)  # the non-tensor state is plain JSON
    clone = make_method(name, **m.get_params()).load_learned_state(tensors, json.loads(json.dumps(values)))
    assert torch.allclose(clone.logits(query), m.logits(query), atol=1e-5)


@pytest.mark.parametrize("name", [pytest.param(n) for n in AUDIO_METHODS + TEXT_METHODS])
def test_fits_with_support_captions(name):
    support, ys, query, yq, text = problem(4)
    g = torch.Generator().manual_seed(0)
    captions = l2_normalize(support.clip + 0.3 * torch.randn(support.clip.shape, generator=g))
    with_caps = TextFeatures(prompts=text.prompts, descriptions=text.descriptions, captions=captions)
    m = make_method(name).fit(support, ys, text=with_caps)
    assert (m.predict(query) == yq).float().mean().item() > 0.6


# ----------------------------------------------------------------------------- zero-shot
def test_zero_shot_desc_uses_the_descriptions():
    support, ys, query, _, text = problem(1)
    plain = make_method("zero_shot").fit(support, ys, text=text).logits(query)
    desc = make_method("zero_shot_desc").fit(support, ys, text=text).logits(query)
    assert not torch.allclose(plain, desc, atol=1e-3)
    empty = TextFeatures(prompts=text.prompts, descriptions=[torch.zeros(0, query.dim)] * N_CLASSES)
    desc_empty = make_method("zero_shot_desc").fit(support, ys, text=empty).logits(query)
    assert torch.allclose(plain, desc_empty)
    none = TextFeatures(prompts=text.prompts)
    assert torch.allclose(plain, make_method("zero_shot_desc").fit(support, ys, text=none).logits(query))


# ----------------------------------------------------------------------------- treff
def test_calm_by_hand():
    q = torch.tensor([[1.0, 0.0]])
    keys = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    y = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    z = calm_logits(q, keys, y, torch.eye(2), gamma=2.0)
    e = torch.exp(torch.tensor([2.0, 0.0, 1.2]))
    assert torch.allclose(z, torch.tensor([[e[0], e[1] + e[2]]]) / e.sum())
    # W rotates the query before attention: W maps [1, 0] to [0, 1]
    w = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    e = torch.exp(torch.tensor([0.0, 2.0, 1.6]))
    assert torch.allclose(calm_logits(q, keys, y, w, gamma=2.0), torch.tensor([[e[0], e[1] + e[2]]]) / e.sum())
    # self-masking: query i never attends to key i
    zs = calm_logits(keys, keys, y, torch.eye(2), gamma=50.0, self_mask=True)
    assert zs[0, 0] < 1e-6 and zs[1, 1] > 0.99  # clip 0 has no other class-0 key


def test_treff_training_free_matches_the_formula():
    support, ys, query, _, text = problem(1)
    m = Treff().fit(support, ys, text=text)
    assert m.epochs_ == 0 and torch.equal(m.weight_, torch.eye(query.dim))
    assert (m.alpha_, m.gamma_) == (m.default_alpha, m.default_gamma)  # no folds with one shot
    w_text = l2_normalize(
        torch.stack([l2_normalize(torch.cat([p[None], e]).mean(0)) for p, e in zip(text.prompts, text.descriptions)])
    )
    att = torch.softmax(m.gamma_ * query.clip @ support.clip.T, dim=1) @ torch.eye(N_CLASSES)[ys]
    assert torch.allclose(m.logits(query), 100.0 * query.clip @ w_text.T + m.alpha_ * att, atol=1e-4)


def test_treff_audio_only_centres_and_has_no_zero_shot_term():
    support, ys, query, _, _ = problem(1)
    m = Treff().fit(support, ys)
    assert m.alpha_ == m.default_alpha_audio
    mu = support.clip.mean(0)
    q, k = l2_normalize(query.clip - mu), l2_normalize(support.clip - mu)
    att = torch.softmax(m.gamma_ * q @ k.T, dim=1) @ torch.eye(N_CLASSES)[ys]
    assert torch.allclose(m.logits(query), m.alpha_ * att, atol=1e-5)


def test_treff_hyper_parameters_come_from_the_grids():
    support, ys, _, _, text = problem(4)
    m = Treff(epoch_grid=(0, 5)).fit(support, ys, text=text)
    assert m.alpha_ in m.alphas and m.gamma_ in m.gammas and m.epochs_ in (0, 5)
    m = Treff(alphas=(2.0,), gammas=(7.0,), epoch_grid=(0,)).fit(support, ys, text=text)
    assert (m.alpha_, m.gamma_, m.epochs_) == (2.0, 7.0, 0)
    assert torch.equal(m.weight_, torch.eye(support.dim))


def test_treff_fine_tuning_lowers_the_self_masked_support_loss():
    support, ys, _, _, text = problem(4)
    free = Treff(alphas=(1.0,), gammas=(10.0,), epoch_grid=(0,)).fit(support, ys, text=text)
    zs = 100.0 * support.clip @ free.text_weights_.T
    for epochs in (20, 60):
        m = Treff(alphas=(1.0,), gammas=(10.0,), epoch_grid=(epochs,), reg=0.0)
        m._choose_epochs = lambda zs_, labels_, e=epochs: e  # force training (the CV is tested elsewhere)
        m.fit(support, ys, text=text)
        assert m.epochs_ == epochs and not torch.allclose(m.weight_, torch.eye(support.dim))

        def loss(w):
            return torch.nn.functional.cross_entropy(
                zs + calm_logits(support.clip, support.clip, free.values_, w, 10.0, self_mask=True), ys
            ).item()

        assert loss(m.weight_) < loss(free.weight_) - 1e-4


def test_treff_one_shot_never_trains():
    support, ys, _, _, text = problem(1)
    m = Treff(epoch_grid=(50,))
    m._choose_epochs = lambda zs_, labels_: 50
    m.fit(support, ys, text=text)  # no other clip of a class to attend to: W stays I
    assert torch.equal(m.weight_, torch.eye(support.dim))


def test_treff_rejects_text_for_the_wrong_number_of_classes():
    support, ys, _, _, text = problem(1)
    short = TextFeatures(prompts=text.prompts[:-1], descriptions=text.descriptions[:-1])
    with pytest.raises(MgclError, match="classes"):
        Treff().fit(support, ys, text=short)


# ----------------------------------------------------------------------------- plot
def test_plot_with_prompts_only_is_the_mean_frame_cosine():
    support, ys, query, _, text = problem(1)
    m = Plot(use_descriptions=False).fit(support, ys, text=text)
    # one target per class: the plan spreads each frame's mass onto the prompt
    cos = torch.einsum("qtd,cd->qtc", query.frames, text.prompts)
    mask = query.frame_mask.unsqueeze(-1).float()
    expected = 100.0 * (cos * mask).sum(1) / mask.sum(1)
    assert torch.allclose(m.logits(query), expected, atol=1e-3)
    no_desc = TextFeatures(prompts=text.prompts, descriptions=[torch.zeros(0, query.dim)] * N_CLASSES)
    assert torch.allclose(Plot().fit(support, ys, text=no_desc).logits(query), expected, atol=1e-3)


def test_plot_transports_frames_onto_descriptions():
    # one query with two frames; class 0 has descriptions matching each frame, class 1 one
    # description matching the average: OT matches frame to description, so class 0 wins,
    # while a mean-embedding classifier could not tell them apart
    e1, e2, e3 = torch.eye(3)
    frames = torch.stack([e1, e2])[None]
    query = AudioFeatures(l2_normalize(e1 + e2)[None], frames, torch.ones(1, 2, dtype=torch.bool))
    far = l2_normalize(torch.tensor([0.0, 0.0, 1.0]) + 0.3 * (e1 + e2))
    text = TextFeatures(
        prompts=torch.stack([far, far]), descriptions=[torch.stack([e1, e2]), l2_normalize(e1 + e2)[None]]
    )
    support = AudioFeatures(torch.stack([e3, e3]), torch.stack([e3, e3])[:, None], torch.ones(2, 1, dtype=torch.bool))
    z = Plot(eps=0.01).fit(support, torch.tensor([0, 1]), text=text).logits(query)
    # class 0, targets {far, e1, e2} at 1/3 each: e1 -> e1 and e2 -> e2 (1/3 each), the
    # remaining 1/6 of each frame -> far; class 1, targets {far, m} at 1/2 each
    c = (far @ e1).item()  # = far @ e2
    assert z[0, 0].item() == pytest.approx(100.0 * (2.0 / 3.0 + c / 3.0), abs=0.5)
    assert z[0, 1].item() == pytest.approx(100.0 * (0.5 * math.sqrt(0.5) + 0.5 * c), abs=0.5)
    assert z[0, 0] > z[0, 1] + 20.0


def test_plot_clip_without_real_frames_uses_its_clip_embedding():
    support, ys, query, _, text = problem(1)
    m = Plot().fit(support, ys, text=text)
    one = query[[0]]
    empty = AudioFeatures(one.clip, torch.zeros_like(one.frames), torch.zeros_like(one.frame_mask))
    as_frame = AudioFeatures(one.clip, one.clip[:, None], torch.ones(1, 1, dtype=torch.bool))
    z = m.logits(empty)
    assert torch.isfinite(z).all() and z.abs().sum() > 0
    assert torch.allclose(z, m.logits(as_frame), atol=1e-4)


def test_plot_ignores_the_support_clips():
    support, ys, query, _, text = problem(1)
    other, ys2, _, _, _ = problem(4, seed=3)
    a = Plot().fit(support, ys, text=text).logits(query)
    b = Plot().fit(other, ys2, text=text).logits(query)
    assert torch.allclose(a, b)


def test_plot_rejects_text_for_the_wrong_number_of_classes():
    support, ys, _, _, text = problem(1)
    short = TextFeatures(prompts=text.prompts[:-1], descriptions=text.descriptions[:-1])
    with pytest.raises(MgclError, match="classes"):
        Plot().fit(support, ys, text=short)


@pytest.mark.parametrize("ablate, gone", [(("cc",), "cc"), (("fc",), "fp")])
def test_mgcl_f_ablation_removes_the_trained_branch(ablate, gone):
    # weights fixed (no weight grid): cross-validation could otherwise set the branch's weight to 0
    full = fitted("mgcl_f", shots=4, with_text=False, weight_grid=())
    part = fitted("mgcl_f", shots=4, with_text=False, ablate=ablate, weight_grid=())
    assert gone in full.branch_weights_ and gone not in part.branch_weights_
    query = problem(4)[2]
    assert gone not in part.branch_logits(query)
    assert not torch.allclose(full.logits(query), part.logits(query))


def test_mgcl_ablating_the_coarse_cache_keeps_the_fine_cache_alone():
    m = fitted("mgcl", shots=4, with_text=False, ablate=("cc",))
    assert m.branches_ == ["fc"]
    support, ys, query, yq, _ = problem(4)
    assert (m.predict(query) == yq).float().mean() > 0.5  # 5 classes: chance is 0.2
    with pytest.raises(MgclError, match="every branch is switched off"):
        make_method("mgcl", ablate=("cc", "fc")).fit(support, ys)
