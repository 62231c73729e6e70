"""Nearest class mean (SimpleShot): cosine to class prototypes after centring.

    mu      = mean_i a_i                                   (support mean, D)
    z(a)    = normalise(a - mu)                            (centred clip, D)
    p_c     = normalise(mean_{i: y_i = c} z(a_i))          (prototype, C x D)
    logit_c = s * z(q) . p_c
"""

from __future__ import annotations

import torch

from mgcl.backbones.base import AudioFeatures, l2_normalize
from mgcl.methods.base import Method, one_hot


def centre(x: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """normalise(x - mean) along the last axis."""
    return l2_normalize(x - mean)


def class_means(x: torch.Tensor, labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """(N, D), (N,) -> (C, D) per-class mean."""
    y = one_hot(labels, n_classes)
    return (y.T @ x) / y.sum(0, keepdim=True).T


class Prototype(Method):
    name = "prototype"

    def __init__(self, center: bool = True, scale: float = 10.0):
        self.center = center
        self.scale = scale

    def _fit(self, support: AudioFeatures, labels: torch.Tensor, text=None) -> None:
        a = support.clip
        self.mean_ = a.mean(0) if self.center else torch.zeros(a.shape[1])
        self.prototypes_ = l2_normalize(class_means(centre(a, self.mean_), labels, self.n_classes_))

    def _logits(self, query: AudioFeatures) -> torch.Tensor:
        return self.scale * centre(query.clip, self.mean_) @ self.prototypes_.T
