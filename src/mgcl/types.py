"""The data types every layer shares: features of clips and of text, audio views of the
support, and the names of those views. Tensors only; nothing here touches audio files or models.

    AudioFeatures   clip (B, D), frames (B, T, D), frame_mask (B, T), frame_step (s)
    TextFeatures    prompts (C, D), descriptions C x (M_c, D), captions (N, D) or None
    SupportViews    features of V augmented views of support clips, source (V,)
    Concepts        a class's concepts and the clip's rows one OT branch matches (explanations)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

#: Audio views of a support clip (made by :mod:`mgcl.audio.views`, asked for by methods):
#: name -> what it is.
AUDIO_VIEWS: dict[str, str] = {
    "noise": "background noise at 15 dB SNR",
    "lowpass": "4th-order Butterworth low-pass at 3 kHz",
    "highpass": "4th-order Butterworth high-pass at 500 Hz",
    "slower": "played at 0.9x speed",
    "faster": "played at 1.1x speed",
    "roll": "circular shift by a third of the clip",
}

#: The views mgcl and mgcl_f ask for by default: background noise and the two band limits (on
#: UrbanSound8K folds 1 and 2 they gave most of the gain of all six at one and four shots,
#: at half the backbone calls; fold 10, the reported test fold, was never used for it).
DEFAULT_VIEWS = ("noise", "lowpass", "highpass")


def check_views(names) -> tuple[str, ...]:
    """The names as a tuple; ValueError naming the first unknown one."""
    names = tuple(names)
    for n in names:
        if n not in AUDIO_VIEWS:
            raise ValueError(f"unknown audio view '{n}' (choose from {', '.join(AUDIO_VIEWS)})")
    return names


def l2_normalize(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """``x / ||x||`` along ``dim`` (zero vectors stay zero)."""
    return F.normalize(x, p=2.0, dim=dim, eps=1e-12)


def cat_padded(parts: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenate ``(rows (B_i, T_i, D), mask (B_i, T_i))`` batches along B, zero-padding T
    to the longest.  -> (ΣB_i, max T_i, D), (ΣB_i, max T_i)"""
    t = max(r.shape[1] for r, _ in parts)
    pad = torch.nn.functional.pad
    return (
        torch.cat([pad(r, (0, 0, 0, t - r.shape[1])) for r, _ in parts]),
        torch.cat([pad(m, (0, t - m.shape[1])) for _, m in parts]),
    )


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
                f"frame_mask {tuple(self.frame_mask.shape)} does not match frames {tuple(self.frames.shape[:2])}"
            )

    def __len__(self) -> int:
        return self.clip.shape[0]

    def __getitem__(self, index) -> AudioFeatures:
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
        return [(self.clip[i], self.frames[i][self.frame_mask[i]]) for i in range(len(self))]

    @staticmethod
    def cat(parts: Sequence[AudioFeatures]) -> AudioFeatures:
        """Concatenate batches along the clip axis, padding frames to the longest.  -> (ΣB, T, D)"""
        steps = {p.frame_step for p in parts}
        if len(steps) > 1:
            raise ValueError(f"cannot concatenate features of different frame steps {sorted(map(str, steps))}")
        frames, mask = cat_padded([(p.frames, p.frame_mask) for p in parts])
        return AudioFeatures(torch.cat([p.clip for p in parts]), frames, mask, steps.pop() if steps else None)

    @staticmethod
    def stack(items: Sequence[tuple[torch.Tensor, torch.Tensor]], frame_step: float | None = None) -> AudioFeatures:
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


@dataclass
class TextFeatures:
    """Text-side embeddings for C classes (all L2-normalised, joint space).

    prompts:      (C, D) coarse prompt embedding per class (template ensemble mean).
    descriptions: list of C tensors (M_c, D), LLM descriptions per class (may be empty).
    captions:     (N, D) caption embedding per support clip, or None.
    """

    prompts: torch.Tensor
    descriptions: list[torch.Tensor] = field(default_factory=list)
    captions: torch.Tensor | None = None


@dataclass
class SupportViews:
    """Augmented views of support clips (:mod:`mgcl.augment_audio`), embedded by the backbone.

    features: AudioFeatures of V views.
    source:   (V,) long, the support clip (row of the support set) each view was made from.
    """

    features: AudioFeatures
    source: torch.Tensor

    def __len__(self) -> int:
        return len(self.features)

    def subset(self, clips: torch.Tensor) -> SupportViews | None:
        """The views of support rows ``clips`` (1-D long), re-indexed to positions in ``clips``."""
        clips = torch.as_tensor(clips, dtype=torch.long)
        if len(self) == 0 or len(clips) == 0:
            return None
        where = torch.full((int(max(self.source.max().item(), clips.max().item())) + 1,), -1, dtype=torch.long)
        where[clips] = torch.arange(len(clips))
        new = where[self.source]
        keep = (new >= 0).nonzero().flatten()
        if len(keep) == 0:
            return None
        return SupportViews(self.features[keep], new[keep])


@dataclass
class Concepts:
    """A class's concepts and how one OT branch of a method matches a clip to them: what
    ``mgcl explain`` draws (:meth:`mgcl.methods.base.Method.explain_concepts`).

    kind:            "frame prototypes", "support segments", "support frames" or "descriptions".
    branch:          the branch whose transport plan this is ("fp", "fc", "ft").
    vectors:         (M, D) the concept side.
    frames:          (T, D) the clip as the branch sees it (its real frames or segments).
    frame_weights:   (T,) marginal over the clip's rows, or None for uniform.
    concept_weights: (M,) marginal over the concepts, or None for uniform.
    eps:             the branch's entropic regularisation.
    segment:         (window, hop) in frames when the rows are segments of frames, else None.
    support_row:     the support clip the concepts come from (support segments), else None.
    note:            one line on what the concepts are.
    """

    kind: str
    branch: str
    vectors: torch.Tensor
    frames: torch.Tensor
    frame_weights: torch.Tensor | None = None
    concept_weights: torch.Tensor | None = None
    eps: float = 0.1
    segment: tuple[int, int] | None = None
    support_row: int | None = None
    note: str = ""
