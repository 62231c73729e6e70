"""Model selection inside the support set: the query set is never looked at.

Folds are class-balanced: fold j holds out the j-th support clip of every class, so the
remaining keys still hold K - 1 clips per class (leave-one-shot-out). With one shot per
class there is no such split and callers fall back to fixed defaults.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable

import torch


def shot_folds(labels: torch.Tensor, max_folds: int = 5, seed: int = 0) -> list[torch.Tensor]:
    """Class-balanced held-out masks over the support: list of (N,) bool, one per fold.

    Each class's clips are shuffled and dealt round-robin into ``min(K_min, max_folds)``
    folds, so every fold holds out at least one clip of every class. Empty if K_min < 2.
    """
    counts = torch.bincount(labels)
    n_folds = int(min(counts.min().item(), max_folds))
    if n_folds < 2:
        return []
    g = torch.Generator().manual_seed(seed)
    fold_of = torch.empty_like(labels)
    for c in range(len(counts)):
        idx = (labels == c).nonzero().flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        fold_of[idx] = torch.arange(len(idx)) % n_folds
    return [fold_of == f for f in range(n_folds)]


def fold_score(logits: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """(accuracy, mean log-likelihood) of held-out logits (n, C) — higher is better for both."""
    acc = (logits.argmax(1) == labels).float().mean().item()
    ll = -torch.nn.functional.cross_entropy(logits, labels).item()
    return acc, ll


def grid(**axes: Iterable) -> list[dict]:
    """Cartesian product of named value lists: grid(a=[1, 2], b=[3]) -> [{a:1,b:3}, {a:2,b:3}]."""
    names = list(axes)
    return [dict(zip(names, values)) for values in itertools.product(*(list(axes[n]) for n in names))]


def select(
    candidates: list[dict],
    evaluate: Callable[[dict, torch.Tensor], torch.Tensor],
    labels: torch.Tensor,
    folds: list[torch.Tensor],
) -> tuple[dict, list[tuple[dict, float, float]]]:
    """The candidate with the best mean held-out accuracy (ties: best log-likelihood).

    ``evaluate(params, held_out_mask)`` returns logits (n_held_out, C) for the held-out clips
    computed from the other clips only. Returns (best, [(params, acc, ll), ...]).
    """
    if not folds:
        raise ValueError("no folds: cross-validation needs at least 2 clips per class")
    table = []
    for params in candidates:
        accs, lls = zip(*(fold_score(evaluate(params, held), labels[held]) for held in folds))
        table.append((params, sum(accs) / len(accs), sum(lls) / len(lls)))
    best = max(table, key=lambda row: (round(row[1], 6), row[2]))
    return best[0], table
