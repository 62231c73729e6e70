"""Synthetic cached features for method tests: separable classes, no backbone.

Class c has a random unit centre m_c. A clip is normalise(m_c + σ·n) (plus an optional
component shared by every clip, as ReLU features have); its T_i real frames (T_i random)
are normalise(clip + σ_f·n_t), padded with zeros. Text prompts and descriptions sit near
the class centres, so text methods see a joint space.
"""

from __future__ import annotations

import numpy as np
import torch

from mgcl.types import AudioFeatures, TextFeatures, l2_normalize

N_CLASSES = 5
DIM = 32
FRAME_STEP = 0.2  # seconds per frame, as a backbone's (aisfx: 0.186)


def centres(n_classes: int = N_CLASSES, dim: int = DIM, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(10_000 + seed)
    return l2_normalize(torch.randn(n_classes, dim, generator=g))


def make_features(
    labels,
    class_centres: torch.Tensor,
    noise: float = 0.25,
    frame_noise: float = 0.15,
    t_max: int = 6,
    t_min: int = 2,
    common: float = 0.0,
    seed: int = 0,
) -> AudioFeatures:
    """Clips of the given labels (N,) around ``class_centres`` (C, D), frames with random real lengths."""
    labels = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    g = torch.Generator().manual_seed(seed)
    n, d = len(labels), class_centres.shape[1]
    shared = l2_normalize(torch.randn(d, generator=g)) * common
    clip = l2_normalize(class_centres[labels] + shared + noise * torch.randn(n, d, generator=g) / d**0.5 * 2)
    lengths = torch.randint(t_min, t_max + 1, (n,), generator=g)
    frames = l2_normalize(clip[:, None] + frame_noise * torch.randn(n, t_max, d, generator=g) / d**0.5 * 2)
    mask = torch.arange(t_max)[None] < lengths[:, None]
    frames = frames * mask.unsqueeze(-1)
    return AudioFeatures(clip, frames, mask, frame_step=FRAME_STEP)


def make_text(
    class_centres: torch.Tensor, n_desc: int = 3, noise: float = 0.3, seed: int = 0, empty: bool = False
) -> TextFeatures:
    """Prompts near the class centres and ``n_desc`` descriptions per class (empty sets if ``empty``)."""
    g = torch.Generator().manual_seed(20_000 + seed)
    c, d = class_centres.shape
    prompts = l2_normalize(class_centres + noise * torch.randn(c, d, generator=g) / d**0.5 * 2)
    if empty:
        desc = [torch.zeros(0, d) for _ in range(c)]
    else:
        desc = [
            l2_normalize(class_centres[i] + noise * torch.randn(n_desc, d, generator=g) / d**0.5 * 2) for i in range(c)
        ]
    return TextFeatures(prompts=prompts, descriptions=desc)


def few_shot(shots: int, n_query_per_class: int = 8, n_classes: int = N_CLASSES, dim: int = DIM, seed: int = 0, **kw):
    """(support, support labels, query, query labels, class centres) of a fresh problem."""
    m = centres(n_classes, dim, seed)
    ys = torch.arange(n_classes).repeat_interleave(shots)
    yq = torch.arange(n_classes).repeat_interleave(n_query_per_class)
    support = make_features(ys, m, seed=seed + 1, **kw)
    query = make_features(yq, m, seed=seed + 2, **kw)
    return support, ys, query, yq, m
