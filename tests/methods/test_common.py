"""mgcl.methods.common: the shared formulas, against answers computed by hand."""

from __future__ import annotations

import math
from unittest import mock

import pytest
import torch

from mgcl.methods.common import (
    balance_classes,
    branch_spread,
    cache_affinity,
    cache_logits,
    centre,
    class_means,
    class_text_weights,
    one_hot,
    pad_sets,
    segment_frames,
    segment_starts,
    segments,
    view_weights,
    zero_shot_logits,
)
from mgcl.methods.mgcl import training_free
from mgcl.methods.mgcl.training_free import MGCL
from mgcl.types import AudioFeatures


def test_cache_logits_by_hand():
    # one query, two keys of classes 0 and 1: z = exp(-β(1 - S)) Y = [exp(0), exp(-2 * 0.5)]
    s = torch.tensor([[1.0, 0.5]])
    y = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    z = cache_logits(s, y, beta=2.0)
    assert z.shape == (1, 2)
    assert torch.allclose(z, torch.tensor([[1.0, math.exp(-1.0)]]))


def test_cache_logits_sums_keys_of_a_class():
    # two keys of class 0 (sims 1 and 0), one of class 1 (sim 0.5), β = 1
    s = torch.tensor([[1.0, 0.0, 0.5]])
    y = one_hot(torch.tensor([0, 0, 1]), 2)
    z = cache_logits(s, y, beta=1.0)
    assert torch.allclose(z, torch.tensor([[1.0 + math.exp(-1.0), math.exp(-0.5)]]))
    assert torch.allclose(cache_affinity(s, 1.0), torch.tensor([[1.0, math.exp(-1.0), math.exp(-0.5)]]))


def test_one_hot():
    y = one_hot(torch.tensor([2, 0]), 3)
    assert torch.equal(y, torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]))
    assert y.dtype == torch.float32


def test_class_means_by_hand():
    x = torch.tensor([[1.0, 0.0], [3.0, 2.0], [0.0, 5.0]])
    m = class_means(x, torch.tensor([0, 0, 1]), 2)
    assert torch.allclose(m, torch.tensor([[2.0, 1.0], [0.0, 5.0]]))


def test_centre_subtracts_then_normalises():
    x = torch.tensor([[3.0, 4.0], [1.0, 1.0]])
    out = centre(x, torch.tensor([1.0, 1.0]))
    assert torch.allclose(out[0], torch.tensor([2.0, 3.0]) / math.sqrt(13.0))
    assert torch.equal(out[1], torch.zeros(2))  # a zero vector stays zero (no NaN)


def test_class_text_weights_without_descriptions_is_normalised_prompts():
    p = torch.tensor([[2.0, 0.0], [0.0, 0.5]])
    assert torch.allclose(class_text_weights(p), torch.eye(2))
    assert torch.allclose(class_text_weights(p, []), torch.eye(2))


def test_class_text_weights_with_descriptions_by_hand():
    p = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    desc = [torch.tensor([[0.0, 1.0]]), torch.zeros(0, 2)]  # class 1 has no description
    w = class_text_weights(p, desc)
    # class 0: normalise(mean([1,0],[0,1])) = [1,1]/√2; class 1 keeps its prompt
    assert torch.allclose(w[0], torch.tensor([1.0, 1.0]) / math.sqrt(2.0))
    assert torch.allclose(w[1], torch.tensor([0.0, 1.0]))
    assert torch.allclose(w.norm(dim=1), torch.ones(2))


def test_class_text_weights_averages_all_descriptions():
    p = torch.tensor([[1.0, 0.0, 0.0]])
    desc = [torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])]
    w = class_text_weights(p, desc)
    assert torch.allclose(w, torch.ones(1, 3) / math.sqrt(3.0))


def test_zero_shot_logits_by_hand():
    a = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    w = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    z = zero_shot_logits(a, w, scale=10.0)
    assert z.shape == (2, 3)
    assert torch.allclose(z, torch.tensor([[10.0, 0.0, 6.0], [6.0, 8.0, 10.0]]))


def test_pad_sets_masks_padding():
    sets = [torch.ones(2, 3), torch.zeros(0, 3), 2 * torch.ones(1, 3)]
    out, mask = pad_sets(sets)
    assert out.shape == (3, 2, 3)
    assert mask.tolist() == [[True, True], [False, False], [True, False]]
    assert torch.equal(out[2, 0], 2 * torch.ones(3)) and torch.equal(out[2, 1], torch.zeros(3))


def test_branch_spread_is_mean_std_over_classes():
    z = torch.tensor([[0.0, 2.0], [0.0, 4.0]])
    expected = (torch.tensor([0.0, 2.0]).std() + torch.tensor([0.0, 4.0]).std()) / 2
    assert branch_spread(z).item() == pytest.approx(expected.item())
    assert branch_spread(torch.zeros(3, 4)).item() > 0  # never divides by zero


def test_branch_spread_is_floored_relative_to_the_branch_size():
    # a near-constant branch (all classes ~5, differences ~1e-6): the old absolute floor of
    # 1e-6 blew it up to unit spread; the relative floor keeps it at ~1e-6 / 5e-3
    g = torch.Generator().manual_seed(0)
    z = 5.0 + 1e-6 * torch.randn(20, 4, generator=g)
    sigma = branch_spread(z).item()
    assert sigma == pytest.approx(1e-3 * 5.0, rel=1e-4)
    assert (z / sigma).std(dim=1).mean().item() < 1e-3


def test_segment_frames_turn_seconds_into_each_backbones_frames():
    aisfx_step = 8 * 1024 / 44100  # one aisfx time step
    assert segment_frames((2.2, 0.55), aisfx_step) == (12, 3)  # the values aisfx results were set with
    assert segment_frames((2.2, 0.55), 10 / 32) == (7, 2)  # CLAP: 32 frames per 10 s window
    assert segment_frames((0.01, 0.01), 10 / 32) == (1, 1)  # never below one frame
    with pytest.raises(ValueError, match="frame step"):
        segment_frames((2.2, 0.55), None)
    with pytest.raises(ValueError, match="positive"):
        segment_frames((0.0, 0.55), 0.2)


def test_segment_starts_keep_full_windows_only():
    starts, real = segment_starts(torch.tensor([22, 13, 5, 0]), window=12, hop=3)
    assert starts.tolist() == [0, 3, 6, 9]  # 9 + 12 = 21 <= 22; 12 + 12 > 22
    assert real.tolist() == [
        [True, True, True, True],  # frame 21 (< hop after the last window) is left out
        [True, False, False, False],  # 13 frames: one window
        [True, False, False, False],  # shorter than the window: one segment
        [False, False, False, False],
    ]  # no real frame: none


def test_segments_by_hand():
    # one clip, 4 real frames of a 5-frame pad; window 2, hop 2 -> segments max(F0, F1), max(F2, F3)
    f = torch.tensor([[[1.0, 0.0], [0.0, 2.0], [3.0, 1.0], [1.0, 4.0], [0.0, 0.0]]])
    mask = torch.tensor([[True, True, True, True, False]])
    seg, real = segments(f, mask, window=2, hop=2)
    assert real.tolist() == [[True, True]]
    expected = torch.nn.functional.normalize(torch.tensor([[1.0, 2.0], [3.0, 4.0]]), dim=-1)
    assert torch.allclose(seg[0], expected)


def test_segments_ignore_padding_and_negative_frames():
    # a clip shorter than the window: one segment = max over its real frames only, even when
    # they are negative (padding is not a zero that could win the max)
    f = torch.tensor([[[-1.0, -2.0], [-3.0, -0.5], [9.0, 9.0]]])
    mask = torch.tensor([[True, True, False]])
    seg, real = segments(f, mask, window=4, hop=1)
    assert real.tolist() == [[True]]
    assert torch.allclose(seg[0, 0], torch.nn.functional.normalize(torch.tensor([-1.0, -0.5]), dim=0))
    empty, none = segments(torch.zeros(1, 3, 2), torch.zeros(1, 3, dtype=torch.bool), window=2, hop=1)
    assert not none.any() and torch.all(empty == 0)
    with pytest.raises(ValueError, match="window and hop"):
        segments(f, mask, window=0, hop=1)


def test_view_weights_are_one_over_the_clips_of_the_views_class():
    labels = torch.tensor([0, 0, 0, 0, 1, 2, 2])  # 4, 1 and 2 clips
    source = torch.tensor([0, 3, 4, 4, 5, 6])  # views of clips 0, 3 (class 0), 4 (class 1), 5, 6 (class 2)
    assert torch.allclose(view_weights(labels, source), torch.tensor([0.25, 0.25, 1.0, 1.0, 0.5, 0.5]))
    assert torch.equal(view_weights(labels, source, 0.3), torch.full((6,), 0.3))
    assert view_weights(labels, source[:0]).shape == (0,)


def test_balance_classes_gives_every_class_the_mean_mass_and_leaves_balanced_values_alone():
    v = one_hot(torch.tensor([0, 1, 1, 1]), 3)  # masses 1, 3, 0
    b = balance_classes(v)
    assert torch.allclose(b.sum(0), torch.tensor([2.0, 2.0, 0.0]))
    assert torch.allclose(b[:, 0], torch.tensor([2.0, 0, 0, 0])) and torch.allclose(b[1:, 1], torch.full((3,), 2 / 3))
    balanced = one_hot(torch.tensor([0, 1, 0, 1]), 2) * 0.3
    assert balance_classes(balanced) is balanced


def test_mgcl_cache_does_not_favour_the_class_with_more_keys():
    """A query equal to the one key of class 0, three keys of class 1 close to it: summed over
    keys, class 1 would win by number (checked with the balancing switched off)."""
    g = torch.Generator().manual_seed(0)
    centres = torch.nn.functional.normalize(torch.randn(3, 16, generator=g), dim=1)
    q = centres[0]
    near = torch.nn.functional.normalize(q + 0.05 * torch.randn(3, 16, generator=g), dim=1)
    far = torch.nn.functional.normalize(centres[2] + 0.1 * torch.randn(3, 16, generator=g), dim=1)
    clips = torch.cat([q[None], near, far])
    feats = AudioFeatures(clips, clips[:, None], torch.ones(len(clips), 1, dtype=torch.bool), 0.2)
    labels = torch.tensor([0, 1, 1, 1, 2, 2, 2])
    fit = lambda: MGCL(branches=("cc",), segment=None, augment=(), cv_rounds=0).fit(feats, labels)  # noqa: E731
    model = fit()
    assert model.values_.sum(0).tolist() == pytest.approx([7 / 3] * 3)
    assert int(model.logits(feats[:1]).argmax()) == 0
    with mock.patch.object(training_free, "balance_classes", lambda v: v):
        assert int(fit().logits(feats[:1]).argmax()) == 1
