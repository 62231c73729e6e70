"""The branches of MGCL, one small pure function each (the formulas of :mod:`.training_free`).

Shapes: Q queries, N keys (support clips, then views), C classes, D dim, T frames or segments,
M concepts per class.
"""

from __future__ import annotations

import warnings

import torch

from mgcl.ot import ot_sim

BRANCHES = ("zs", "cc", "fc", "ft", "gc")
TEXT_BRANCHES = ("zs", "ft", "gc")
CACHE_BRANCHES = ("cc", "fc", "gc")
LOGIT_SCALE = 100.0
#: The fine cache's grain in seconds: max over windows of ~2.2 s every ~0.55 s. aisfx: 12 of
#: its 0.186 s frames (its network's pooling window) every 3, the values the aisfx results
#: were set with; CLAP: 7 of its 0.3125 s frames every 2. See ``segments``, ``segment_frames``.
SEGMENT = (2.2, 0.55)


def frame_saliency(frames: torch.Tensor, mask: torch.Tensor, mean: torch.Tensor, tau: float) -> torch.Tensor:
    """Marginal over frames: softmax_t(τ ||F_t − μ||) on real frames (uniform when τ = 0).

    frames (B, T, D), mask (B, T), mean (D,) -> (B, T), rows sum to 1, zero where masked.
    """
    score = tau * (frames - mean).norm(dim=-1)
    score = score.masked_fill(~mask, float("-inf"))
    return torch.softmax(score, dim=1).nan_to_num(0.0)


def fine_similarity(
    q_frames: torch.Tensor,
    q_mask: torch.Tensor,
    q_w: torch.Tensor,
    k_frames: torch.Tensor,
    k_mask: torch.Tensor,
    k_w: torch.Tensor,
    coarse: torch.Tensor,
    topk: int,
    eps: float,
) -> torch.Tensor:
    """OT similarity between each query's frames and its ``topk`` nearest keys' frames.

    q_frames (Q, T, D), k_frames (N, T', D), coarse (Q, N) -> (Q, N); pairs outside the
    top-k keep their coarse similarity.
    """
    k = min(topk, k_frames.shape[0])
    idx = coarse.topk(k, dim=1).indices  # (Q, k)
    sims = torch.empty(idx.shape)
    step = max(1, 2**22 // max(1, k * k_frames.shape[1] * k_frames.shape[2]))  # ~16 MB of gathered keys
    with warnings.catch_warnings():  # a loose tolerance is enough for ranking
        warnings.simplefilter("ignore", RuntimeWarning)
        for i in range(0, len(idx), step):
            j = idx[i : i + step]
            sims[i : i + step] = ot_sim(
                q_frames[i : i + step, None],
                k_frames[j],
                q_mask[i : i + step, None],
                k_mask[j],
                a=q_w[i : i + step, None],
                b=k_w[j],
                eps=eps,
                tol=1e-3,
                n_iters=200,
            )
    return coarse.scatter(1, idx, sims.to(coarse.dtype))


def fine_text_logits(
    frames: torch.Tensor,
    mask: torch.Tensor,
    concepts: torch.Tensor,
    concept_mask: torch.Tensor,
    eps: float,
    scale: float,
) -> torch.Tensor:
    """z_c = s · ot_sim(F, E_c): frames (Q, T, D), concepts (C, M, D) -> (Q, C)."""
    return scale * ot_sim(frames[:, None], concepts[None], mask[:, None], concept_mask[None], eps=eps)
