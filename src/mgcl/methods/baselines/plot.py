"""PLOT-style optimal-transport zero-shot classification (after Chen et al., "PLOT: Prompt
Learning with Optimal Transport for Vision-Language Models", ICLR 2023).

A query is the set of its frame embeddings F (T, D), raw, in the joint audio–text space; a
class is the set of its text embeddings, the prompt and the LLM descriptions
E_c ∪ {p_c} (1 + M_c, D). The logit is their optimal-transport similarity:

    logit_c = s · ot_sim(F, E_c ∪ {p_c}),   ot_sim(U, V) = Σ P* ⊙ U Vᵀ,
    P* = Sinkhorn(uniform over real frames, uniform over the set, cost 1 − U Vᵀ, ε)

so only the frames that carry the event need to match a description, and each description
is matched by the frames it fits. A query without any real frame is represented by its
clip embedding alone.

What is and is not PLOT: PLOT *learns* N prompt contexts per class with the OT distance
in the inner loop (few-shot prompt learning); here the multiple prompts are the class's
LLM descriptions (plus the prompt) and nothing is learned — it is a training-free,
zero-shot method (the support clips and labels are not used, only the class set). The
transport plan is a constant (computed under no_grad, as in PLOT) and the local features
are audio frames instead of image-patch features. ``use_descriptions=False`` reduces it to
the mean frame–prompt cosine (a one-element class set).
"""

from __future__ import annotations

import torch

from mgcl.errors import MgclError
from mgcl.methods.base import Method
from mgcl.methods.common import pad_sets
from mgcl.ot import ot_sim
from mgcl.types import AudioFeatures, TextFeatures


def ot_text_logits(
    frames: torch.Tensor,
    mask: torch.Tensor,
    concepts: torch.Tensor,
    concept_mask: torch.Tensor,
    eps: float,
    scale: float,
    n_iters: int = 1000,
    tol: float = 1e-6,
) -> torch.Tensor:
    """z_c = s · ot_sim(F, E_c): frames (Q, T, D), mask (Q, T), concepts (C, M, D), concept_mask (C, M) -> (Q, C)."""
    return scale * ot_sim(
        frames[:, None], concepts[None], mask[:, None], concept_mask[None], eps=eps, n_iters=n_iters, tol=tol
    )


def frames_or_clip(query: AudioFeatures) -> tuple[torch.Tensor, torch.Tensor]:
    """The query's frames and mask, with the clip embedding as the only frame of a clip that
    has no real frame.  -> (Q, T, D), (Q, T)"""
    frames, mask = query.frames, query.frame_mask
    empty = ~mask.any(dim=1)
    if bool(empty.any()):
        frames, mask = frames.clone(), mask.clone()
        frames[empty, 0] = query.clip[empty]
        mask[empty, 0] = True
    return frames, mask


class Plot(Method):
    """Training-free OT between query frames and each class's prompt + descriptions."""

    name = "plot"
    needs_text = True

    def __init__(
        self,
        *,
        eps: float = 0.1,
        scale: float = 100.0,
        use_descriptions: bool = True,
        n_iters: int = 1000,
        tol: float = 1e-6,
    ):
        self.eps = eps
        self.scale = scale
        self.use_descriptions = use_descriptions
        self.n_iters = n_iters
        self.tol = tol

    def _fit(self, support: AudioFeatures, labels: torch.Tensor, text: TextFeatures | None = None) -> None:
        prompts = text.prompts
        if len(prompts) != self.n_classes_:
            raise MgclError(f"text features cover {len(prompts)} classes, the labels {self.n_classes_}")
        desc = list(text.descriptions) if (self.use_descriptions and text.descriptions) else []
        desc += [prompts.new_zeros(0, prompts.shape[1])] * (len(prompts) - len(desc))
        sets = [torch.cat([p[None], e.to(p.dtype)]) for p, e in zip(prompts, desc)]
        self.concepts_, self.concept_mask_ = pad_sets(sets)

    def _logits(self, query: AudioFeatures) -> torch.Tensor:
        frames, mask = frames_or_clip(query)
        return ot_text_logits(
            frames, mask, self.concepts_, self.concept_mask_, self.eps, self.scale, self.n_iters, self.tol
        )
