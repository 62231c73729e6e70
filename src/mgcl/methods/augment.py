"""Feature-level augmentation on cached features (no backbone call).

A temporal crop keeps a random contiguous run of a clip's real frames; frame dropout drops
frames at random. The clip embedding follows the frames it keeps:

    a' = normalise(a + mean(F[kept]) - mean(F[real]))

so it moves by exactly the change in the frame average the crop causes.
"""

from __future__ import annotations

import torch

from mgcl.types import AudioFeatures, l2_normalize


def temporal_crop_mask(mask: torch.Tensor, min_frac: float, gen: torch.Generator) -> torch.Tensor:
    """Random contiguous crop of each row's real frames, at least ``min_frac`` of them.

    mask (B, T) bool with real frames as a prefix -> (B, T) bool subset.
    """
    n = mask.sum(1)
    frac = min_frac + (1 - min_frac) * torch.rand(len(n), generator=gen)
    length = torch.clamp((n.float() * frac).ceil().long(), min=1)
    start = (torch.rand(len(n), generator=gen) * (n - length + 1).float()).floor().long()
    t = torch.arange(mask.shape[1])[None]
    return mask & (t >= start[:, None]) & (t < (start + length)[:, None])


def frame_dropout_mask(mask: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """Drop each real frame with probability p, keeping at least one per row.  (B, T) -> (B, T)"""
    keep = mask & (torch.rand(mask.shape, generator=gen) >= p)
    empty = keep.sum(1) == 0
    first = torch.zeros_like(mask)
    first[:, 0] = True
    return torch.where(empty[:, None], mask & first, keep)


def masked_mean(frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of the frames where mask is True.  (B, T, D), (B, T) -> (B, D)"""
    m = mask.to(frames.dtype)
    return torch.einsum("bt,btd->bd", m, frames) / m.sum(1, keepdim=True).clamp_min(1.0)


def augment_clip_and_mask(
    clip: torch.Tensor,
    frames: torch.Tensor,
    mask: torch.Tensor,
    gen: torch.Generator,
    min_frac: float = 0.6,
    drop: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A random temporal crop then frame dropout, without moving any frame.

    clip (B, D), frames (B, T, D), mask (B, T) -> (augmented clip (B, D), kept-frame mask (B, T));
    the clip moves by the frame-mean shift (module doc). The cheap path for trainers.
    """
    new = frame_dropout_mask(temporal_crop_mask(mask, min_frac, gen), drop, gen)
    kept, real = new.to(frames.dtype), mask.to(frames.dtype)
    w = kept / kept.sum(1, keepdim=True).clamp_min(1.0) - real / real.sum(1, keepdim=True).clamp_min(1.0)
    shift = torch.einsum("bt,btd->bd", w, frames)  # mean(F[kept]) - mean(F[real]) in one pass
    return l2_normalize(clip + shift), new


def augment(feats: AudioFeatures, gen: torch.Generator, min_frac: float = 0.6, drop: float = 0.1) -> AudioFeatures:
    """:func:`augment_clip_and_mask` as AudioFeatures, kept frames moved to a prefix."""
    clip, new = augment_clip_and_mask(feats.clip, feats.frames, feats.frame_mask, gen, min_frac, drop)
    frames = feats.frames * new.unsqueeze(-1)
    order = torch.argsort((~new).float(), dim=1, stable=True)
    frames = torch.gather(frames, 1, order.unsqueeze(-1).expand_as(frames))
    return AudioFeatures(clip, frames, torch.gather(new, 1, order), feats.frame_step)
