"""Nearest class mean (SimpleShot): cosine to class prototypes after centring.

mu      = mean_i a_i                                   (support mean, D)
z(a)    = normalise(a - mu)                            (centred clip, D)
p_c     = normalise(mean_{i: y_i = c} z(a_i))          (prototype, C x D)
logit_c = s * z(q) . p_c
"""

from __future__ import annotations

import torch

from mgcl.methods.base import Method
from mgcl.methods.common import centre, class_means
from mgcl.types import AudioFeatures, l2_normalize


class Prototype(Method):
    name = "prototype"

    def __init__(self, *, center: bool = True, scale: float = 10.0):
        self.center = center
        self.scale = scale

    def _fit(self, support: AudioFeatures, labels: torch.Tensor, text=None) -> None:
        a = support.clip
        self.mean_ = a.mean(0) if self.center else torch.zeros(a.shape[1])
        self.prototypes_ = l2_normalize(class_means(centre(a, self.mean_), labels, self.n_classes_))

    def _logits(self, query: AudioFeatures) -> torch.Tensor:
        return self.scale * centre(query.clip, self.mean_) @ self.prototypes_.T
