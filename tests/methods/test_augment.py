"""mgcl.methods.augment: temporal crops, frame dropout and the clip-embedding shift."""

from __future__ import annotations

import math

import pytest
import torch

from mgcl.methods.augment import augment, frame_dropout_mask, masked_mean, temporal_crop_mask
from mgcl.types import AudioFeatures, l2_normalize


def prefix_mask(lengths, t: int) -> torch.Tensor:
    return torch.arange(t)[None] < torch.as_tensor(lengths)[:, None]


def random_features(lengths, t: int = 10, d: int = 6, seed: int = 0) -> AudioFeatures:
    g = torch.Generator().manual_seed(seed)
    mask = prefix_mask(lengths, t)
    frames = l2_normalize(torch.randn(len(lengths), t, d, generator=g)) * mask.unsqueeze(-1)
    clip = l2_normalize(torch.randn(len(lengths), d, generator=g))
    return AudioFeatures(clip, frames, mask)


def is_prefix(mask: torch.Tensor) -> bool:
    n = mask.sum(1, keepdim=True)
    return torch.equal(mask, torch.arange(mask.shape[1])[None] < n)


@pytest.mark.parametrize("min_frac", [0.3, 0.6, 1.0])
def test_temporal_crop_keeps_a_long_enough_contiguous_run(min_frac):
    lengths = torch.tensor([1, 2, 5, 9, 10, 7, 3, 10])
    mask = prefix_mask(lengths, 10)
    gen = torch.Generator().manual_seed(0)
    seen_starts = set()
    for _ in range(50):
        crop = temporal_crop_mask(mask, min_frac, gen)
        assert crop.shape == mask.shape
        assert not (crop & ~mask).any()  # only real frames
        for row, n in zip(crop, lengths.tolist()):
            idx = row.nonzero().flatten()
            assert len(idx) >= max(1, math.ceil(min_frac * n - 1e-6))
            assert torch.equal(idx, torch.arange(int(idx[0]), int(idx[-1]) + 1))  # contiguous
            seen_starts.add(int(idx[0]))
    if min_frac < 1.0:
        assert len(seen_starts) > 1  # the crop does move
    else:
        assert torch.equal(temporal_crop_mask(mask, 1.0, gen), mask)


def test_frame_dropout_keeps_a_subset_and_at_least_one_frame():
    lengths = torch.tensor([1, 3, 8, 8])
    mask = prefix_mask(lengths, 8)
    gen = torch.Generator().manual_seed(1)
    dropped_any = False
    for _ in range(50):
        keep = frame_dropout_mask(mask, 0.5, gen)
        assert not (keep & ~mask).any()
        assert (keep.sum(1) >= 1).all()
        dropped_any |= bool((keep.sum(1) < lengths).any())
    assert dropped_any
    assert torch.equal(frame_dropout_mask(mask, 0.0, gen), mask)
    assert torch.equal(frame_dropout_mask(mask, 1.0, gen).sum(1), torch.ones(4, dtype=torch.long))


def test_masked_mean_by_hand():
    frames = torch.tensor([[[1.0, 0.0], [3.0, 2.0], [9.0, 9.0]]])
    assert torch.allclose(masked_mean(frames, torch.tensor([[True, True, False]])), torch.tensor([[2.0, 1.0]]))
    assert torch.equal(masked_mean(frames, torch.zeros(1, 3, dtype=torch.bool)), torch.zeros(1, 2))


def test_augment_keeps_prefix_masks_and_real_frames_in_order():
    lengths = [1, 4, 10, 7]
    feats = random_features(lengths)
    gen = torch.Generator().manual_seed(2)
    for _ in range(20):
        out = augment(feats, gen, min_frac=0.5, drop=0.3)
        assert out.frames.shape == feats.frames.shape and out.clip.shape == feats.clip.shape
        assert is_prefix(out.frame_mask)
        assert (out.frame_mask.sum(1) >= 1).all()
        assert (out.frame_mask.sum(1) <= torch.tensor(lengths)).all()
        assert torch.equal(out.frames[~out.frame_mask], torch.zeros_like(out.frames[~out.frame_mask]))
        for i, n in enumerate(lengths):
            kept = out.frames[i][out.frame_mask[i]]
            orig = feats.frames[i, :n]
            # every kept frame is one of the clip's real frames, in the original order
            pos = [int((orig - f).abs().sum(1).argmin()) for f in kept]
            assert all(torch.allclose(orig[p], f) for p, f in zip(pos, kept))
            assert pos == sorted(pos) and len(set(pos)) == len(pos)


def test_augmented_clip_moves_by_the_frame_mean_shift():
    feats = random_features([3, 8, 10, 5], seed=3)
    out = augment(feats, torch.Generator().manual_seed(4), min_frac=0.4, drop=0.2)
    shift = masked_mean(out.frames, out.frame_mask) - masked_mean(feats.frames, feats.frame_mask)
    assert shift.abs().max() > 1e-3  # something was cropped
    assert torch.allclose(out.clip, l2_normalize(feats.clip + shift), atol=1e-6)
    assert torch.allclose(out.clip.norm(dim=1), torch.ones(4))


def test_augment_without_crop_or_dropout_is_the_identity():
    feats = random_features([2, 6, 10])
    out = augment(feats, torch.Generator().manual_seed(0), min_frac=1.0, drop=0.0)
    assert torch.equal(out.frame_mask, feats.frame_mask)
    assert torch.allclose(out.frames, feats.frames)
    assert torch.allclose(out.clip, feats.clip, atol=1e-6)


def test_augment_is_reproducible_from_the_generator():
    feats = random_features([5, 9])
    a = augment(feats, torch.Generator().manual_seed(7))
    b = augment(feats, torch.Generator().manual_seed(7))
    assert torch.equal(a.frame_mask, b.frame_mask) and torch.equal(a.clip, b.clip)
