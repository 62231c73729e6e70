"""Zero-shot classification with a text tower (no support labels used beyond the class set).

zero_shot:       z = s · a Pᵀ,   P_c = prompt-ensemble embedding of class c
zero_shot_desc:  z = s · a Wᵀ,   W_c = normalise(mean(p_c, E_c)) with the LLM descriptions
"""

from __future__ import annotations

import torch

from mgcl.methods.base import Method
from mgcl.methods.common import class_text_weights, zero_shot_logits
from mgcl.types import AudioFeatures


class ZeroShot(Method):
    name = "zero_shot"
    needs_text = True
    use_descriptions = False

    def __init__(self, *, scale: float = 100.0):
        self.scale = scale

    def _fit(self, support: AudioFeatures, labels: torch.Tensor, text=None) -> None:
        desc = text.descriptions if self.use_descriptions else None
        self.text_weights_ = class_text_weights(text.prompts, desc)

    def _logits(self, query: AudioFeatures) -> torch.Tensor:
        return zero_shot_logits(query.clip, self.text_weights_, self.scale)


class ZeroShotDesc(ZeroShot):
    name = "zero_shot_desc"
    use_descriptions = True
