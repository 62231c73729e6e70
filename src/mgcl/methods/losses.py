"""Training losses of the fine-tuned methods, one small pure function each."""

from __future__ import annotations

import torch


def weighted_cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Σ_i w_i (-log softmax(z_i)[y_i]) / Σ_i w_i  (the plain mean when ``weight`` is None).
    logits (B, C), target (B,), weight (B,) >= 0"""
    loss = torch.nn.functional.cross_entropy(logits, target, reduction="none")
    return loss.mean() if weight is None else (loss * weight).sum() / weight.sum().clamp_min(1e-12)


def info_nce(
    sim: torch.Tensor, target: torch.Tensor, temperature: float, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """InfoNCE / contrastive cross-entropy: -log softmax(sim / τ)[target], rows weighted as in
    :func:`weighted_cross_entropy`.  sim (B, C), target (B,)"""
    return weighted_cross_entropy(sim / temperature, target, weight)
