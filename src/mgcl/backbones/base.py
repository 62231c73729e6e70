"""The backbone protocol: the only place where audio and text meet a pretrained network.

A backbone turns waveforms into clip and frame embeddings and (when it has a text tower)
sentences into text embeddings, all L2-normalised and in the same joint space.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F


@dataclass
class AudioFeatures:
    """Embeddings of a batch of clips.

    clip:       (B, D) float32, each row L2-normalised.
    frames:     (B, T, D) float32, each real frame L2-normalised, padded frames zero.
    frame_mask: (B, T) bool, True where the frame covers real audio (not padding/repeats).
    frame_step: seconds between the starts of consecutive frames (the backbone's frame
                rate: aisfx 0.186 s, CLAP 0.3125 s), or None when unknown. Methods that
                work on stretches of time (the fine cache's segments) convert seconds to
                frames with it.
    """

    clip: torch.Tensor
    frames: torch.Tensor
    frame_mask: torch.Tensor
    frame_step: float | None = None

    def __post_init__(self) -> None:
        b, d = self.clip.shape
        if self.frames.ndim != 3 or self.frames.shape[0] != b or self.frames.shape[2] != d:
            raise ValueError(f"frames {tuple(self.frames.shape)} do not match clip {(b, d)}")
        if tuple(self.frame_mask.shape) != tuple(self.frames.shape[:2]):
            raise ValueError(
                f"frame_mask {tuple(self.frame_mask.shape)} does not match frames "
                f"{tuple(self.frames.shape[:2])}"
            )

    def __len__(self) -> int:
        return self.clip.shape[0]

    def __getitem__(self, index) -> "AudioFeatures":
        """Select clips by integer index array / slice / boolean mask; trims frame padding."""
        if isinstance(index, int):
            index = [index]
        clip, frames, mask = self.clip[index], self.frames[index], self.frame_mask[index]
        t = int(mask.sum(dim=1).max()) if mask.numel() else 0
        return AudioFeatures(clip, frames[:, : max(t, 1)], mask[:, : max(t, 1)], self.frame_step)

    @property
    def dim(self) -> int:
        return self.clip.shape[1]

    def split(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """One ``(clip (D,), frames (T_i, D))`` pair per clip, padding removed."""
        return [
            (self.clip[i], self.frames[i][self.frame_mask[i]]) for i in range(len(self))
        ]

    @staticmethod
    def cat(parts: Sequence["AudioFeatures"]) -> "AudioFeatures":
        """Concatenate batches along the clip axis, padding frames to the longest.  -> (ΣB, T, D)"""
        steps = {p.frame_step for p in parts}
        if len(steps) > 1:
            raise ValueError(f"cannot concatenate features of different frame steps {sorted(map(str, steps))}")
        frames, mask = cat_padded([(p.frames, p.frame_mask) for p in parts])
        return AudioFeatures(torch.cat([p.clip for p in parts]), frames, mask, steps.pop() if steps else None)

    @staticmethod
    def stack(items: Sequence[tuple[torch.Tensor, torch.Tensor]], frame_step: float | None = None) -> "AudioFeatures":
        """Pad per-clip ``(clip (D,), frames (T_i, D))`` pairs into one batch with a mask."""
        if len(items) == 0:
            raise ValueError("cannot stack zero clips")
        d = items[0][0].shape[-1]
        t = max(max(f.shape[0] for _, f in items), 1)
        clip = torch.stack([c.float() for c, _ in items])
        frames = torch.zeros(len(items), t, d, dtype=torch.float32)
        mask = torch.zeros(len(items), t, dtype=torch.bool)
        for i, (_, f) in enumerate(items):
            frames[i, : f.shape[0]] = f.float()
            mask[i, : f.shape[0]] = True
        return AudioFeatures(clip, frames, mask, frame_step)


def cat_padded(parts: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenate ``(rows (B_i, T_i, D), mask (B_i, T_i))`` batches along B, zero-padding T
    to the longest.  -> (ΣB_i, max T_i, D), (ΣB_i, max T_i)"""
    t = max(r.shape[1] for r, _ in parts)
    pad = torch.nn.functional.pad
    return (torch.cat([pad(r, (0, 0, 0, t - r.shape[1])) for r, _ in parts]),
            torch.cat([pad(m, (0, t - m.shape[1])) for _, m in parts]))


def l2_normalize(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """``x / ||x||`` along ``dim`` (zero vectors stay zero)."""
    return F.normalize(x, p=2.0, dim=dim, eps=1e-12)


@runtime_checkable
class Backbone(Protocol):
    """What every backbone offers.

    Attributes
    ----------
    name:        registry name (``"aisfx"``, ``"clap"``, ...).
    identity:    string that changes whenever the embeddings would change (weights,
                 checkpoint, preprocessing version); keys the feature store.
    sample_rate: rate (Hz) that ``encode_audio`` expects.
    dim:         embedding dimension D.
    frame_step:  seconds between consecutive frames of ``encode_audio``'s output.
    has_text:    True when ``encode_text`` works.

    Optional: ``frame_spans(n_samples, n_frames=None) -> (T, 2)`` start/end seconds of each
    real frame of a clip of ``n_samples`` samples (``mgcl explain`` draws frames on a time
    axis with it; without it, frames are spread evenly over the clip).
    """

    name: str
    identity: str
    sample_rate: int
    dim: int
    frame_step: float
    has_text: bool

    def encode_audio(self, waveforms: Sequence[np.ndarray]) -> AudioFeatures:
        """Float32 mono waveforms at ``sample_rate`` (any lengths) -> AudioFeatures."""
        ...

    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:
        """Sentences -> (N, D) L2-normalised; raises BackboneError for audio-only backbones."""
        ...
