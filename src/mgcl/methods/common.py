"""Formulas shared by the methods, one small pure function each (DESIGN §1).

Shapes: Q queries, N support clips, C classes, D embedding dim, T frames, M descriptions.
"""

from __future__ import annotations

import torch

from mgcl.backbones.base import l2_normalize


def one_hot(labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """(N,) int -> (N, C) float one-hot Y."""
    return torch.nn.functional.one_hot(labels, n_classes).float()


def centre(x: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """normalise(x - mean) along the last axis (SimpleShot centring)."""
    return l2_normalize(x - mean)


def class_means(x: torch.Tensor, labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Per-class mean: (N, D), (N,) -> (C, D)."""
    y = one_hot(labels, n_classes)
    return (y.T @ x) / y.sum(0).unsqueeze(1)


def cache_affinity(sim: torch.Tensor, beta: float) -> torch.Tensor:
    """Tip-Adapter affinity exp(-β (1 - s)) of similarities s: (Q, N) -> (Q, N)."""
    return torch.exp(-beta * (1.0 - sim))


def cache_logits(sim: torch.Tensor, y: torch.Tensor, beta: float) -> torch.Tensor:
    """Key-value cache z = exp(-β (1 - S)) Y.  S (Q, N), Y (N, C) -> (Q, C)."""
    return cache_affinity(sim, beta) @ y


def zero_shot_logits(a: torch.Tensor, w: torch.Tensor, scale: float) -> torch.Tensor:
    """z = s · a Wᵀ.  a (Q, D), W (C, D) -> (Q, C)."""
    return scale * a @ w.T


def class_text_weights(prompts: torch.Tensor, descriptions: list[torch.Tensor] | None = None) -> torch.Tensor:
    """W_c = normalise(mean(p_c, E_c)) over the prompt and the class's descriptions.

    prompts (C, D), descriptions C x (M_c, D) -> (C, D). Without descriptions W = prompts.
    """
    if not descriptions:
        return l2_normalize(prompts)
    rows = [l2_normalize(torch.cat([p[None], e]).mean(0)) if len(e) else p for p, e in zip(prompts, descriptions)]
    return l2_normalize(torch.stack(rows))


def pad_sets(sets: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """C variable-size sets (M_c, D) -> padded (C, M, D) and mask (C, M)."""
    m = max(max(len(s) for s in sets), 1)
    d = sets[0].shape[-1]
    out = torch.zeros(len(sets), m, d)
    mask = torch.zeros(len(sets), m, dtype=torch.bool)
    for i, s in enumerate(sets):
        out[i, : len(s)] = s
        mask[i, : len(s)] = True
    return out, mask


def entropy_scale(logits: torch.Tensor) -> torch.Tensor:
    """Divide each branch's logits by their standard deviation over classes (mean over
    queries), so that branch weights are comparable across branches.  (Q, C) -> scalar."""
    return logits.std(dim=1).mean().clamp_min(1e-8)
