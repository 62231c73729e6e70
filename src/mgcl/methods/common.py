"""Formulas shared by the methods, one small pure function each (DESIGN §1).

Shapes: Q queries, N support clips, C classes, D embedding dim, T frames, M descriptions.
"""

from __future__ import annotations

import torch

from mgcl.types import l2_normalize


def one_hot(labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """(N,) int -> (N, C) float one-hot Y."""
    return torch.nn.functional.one_hot(labels, n_classes).float()


def view_weights(labels: torch.Tensor, source: torch.Tensor, weight: float | None = None) -> torch.Tensor:
    """Weight of each audio view of the support when fitting:  w_v = 1 / K_c(v)  (or ``weight``).

    K_c is the number of support clips of the view's class: the views of a class weigh, in
    all, as much as the views of one clip at full weight, whatever K — synthetic evidence
    whose influence fades as real shots accumulate (with one shot per class a view weighs as
    its clip). labels (N,) of the clips, source (V,) the clip of each view -> (V,) float32.
    """
    if weight is not None:
        return torch.full((len(source),), float(weight))
    counts = torch.bincount(labels).float()
    return 1.0 / counts[labels[source]]


def balance_classes(values: torch.Tensor) -> torch.Tensor:
    """Cache values whose class columns all carry the same mass.

        m_c = Σ_k V_kc,   V'_kc = V_kc · mean_{c': m_c' > 0} m_c' / m_c   (columns with m_c = 0 stay 0)

    A cache sums affinities over keys, so a class with more keys (an imbalanced support: 2
    background pieces per event in detection, or a user's 10 clips of one class beside 3 of
    another) would win by number. A balanced support (every class the same mass, as in every
    K-shot protocol) is returned unchanged, bit for bit.  values (N, C) -> (N, C)
    """
    mass = values.sum(0)
    present = mass > 0
    if not bool(present.any()) or bool((mass[present] == mass[present][0]).all()):
        return values
    scale = torch.where(present, mass[present].mean() / mass.clamp_min(torch.finfo(mass.dtype).tiny), 0.0)
    return values * scale


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


#: A branch whose logits vary across classes by less than this fraction of their own size
#: carries no information: its spread is floored there instead of being blown up to 1.
RELATIVE_SPREAD_FLOOR = 1e-3


def branch_spread(logits: torch.Tensor) -> torch.Tensor:
    """σ = max(mean_q std_c z_qc,  1e-3 · rms(z),  1e-6): the scale a branch's logits are
    divided by before branches are weighted.  (Q, C) -> scalar

    The relative floor keeps a near-constant branch (all classes' scores equal up to noise,
    e.g. a captioner that says the same thing of every clip) from being amplified into a
    full-size random signal: divided by σ its logits still vary by at most 1e-3 of a unit.
    """
    std = logits.std(dim=1).mean()
    rms = logits.pow(2).mean().sqrt()
    return torch.maximum(std, RELATIVE_SPREAD_FLOOR * rms).clamp_min(1e-6)


def segment_frames(seconds: tuple[float, float], frame_step: float | None) -> tuple[int, int]:
    """A (window, hop) in seconds -> in frames of ``frame_step`` seconds, each at least 1.

    (2.2, 0.55) s -> (12, 3) frames of aisfx (0.186 s), (7, 2) of CLAP (0.3125 s).
    """
    if frame_step is None or not frame_step > 0:
        raise ValueError(
            "these features carry no frame step (seconds per frame): build them with a "
            "backbone, or give AudioFeatures(..., frame_step=seconds)"
        )
    window, hop = (float(x) for x in seconds)
    if not (window > 0 and hop > 0):
        raise ValueError(f"segment window and hop must be positive seconds, got ({window}, {hop})")
    return max(1, round(window / frame_step)), max(1, round(hop / frame_step))


def segment_starts(n_real: torch.Tensor, window: int, hop: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Start frame of every segment of clips of ``n_real`` real frames, and which are real.

    n_real (B,) -> starts (S,), real (B, S). Windows of ``window`` frames start at 0, hop,
    2·hop, ... while they fit in the clip (a clip shorter than the window is one segment).
    The < hop frames after the last full window are left out: a window shifted back to end
    on the last frame would repeat most of its neighbour, and at a clip's end a backbone's
    frames see the zero padding of its last block (aisfx), which the saliency would pick up.
    """
    count = torch.where(n_real > 0, (n_real - window).clamp_min(0) // hop + 1, 0)
    n_seg = max(int(count.max()) if len(count) else 1, 1)
    j = torch.arange(n_seg)
    return j * hop, j[None] < count[:, None]


def segments(frames: torch.Tensor, mask: torch.Tensor, window: int, hop: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sliding-window max over each clip's real frames, L2-normalised: the fine grain of the caches.

    seg_s = normalise(max_{t in [s·hop, s·hop + window), t real} F_t)   (starts: :func:`segment_starts`)
    frames (B, T, D), mask (B, T) with the real frames as a prefix -> (B, S, D), mask (B, S);
    padded segments are zero. A backbone pooled by max over time (aisfx: 12 steps, one
    network block) gives, over its own window, segment embeddings of the kind it was trained
    to produce, where a single frame is not one.
    """
    if window < 1 or hop < 1:
        raise ValueError(f"segment window and hop must be >= 1, got ({window}, {hop})")
    starts, real = segment_starts(mask.sum(1), window, hop)
    x = frames.masked_fill(~mask.unsqueeze(-1), float("-inf"))
    need = int(starts[-1]) + window
    if x.shape[1] < need:
        x = torch.nn.functional.pad(x, (0, 0, 0, need - x.shape[1]), value=float("-inf"))
    seg = x.unfold(1, window, hop)[:, : len(starts)].amax(-1)  # (B, S, D)
    seg = torch.where(real.unsqueeze(-1), seg, torch.zeros(()))
    return l2_normalize(seg), real
