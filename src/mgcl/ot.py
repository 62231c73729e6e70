"""Batched entropic optimal transport (log-domain Sinkhorn) and the OT similarity.

For two sets of L2-normalised embeddings ``U (n, D)`` and ``V (m, D)`` (the frames of a
clip and the descriptions of a class, or the frames of two clips):

    S = U Vᵀ,   cost = 1 − S,   P* = argmin_{P1 = a, Pᵀ1 = b} <P, cost> − ε H(P),
    ot_sim(U, V) = Σ_ij P*_ij S_ij

with uniform marginals ``a``, ``b`` by default (PLOT, Chen et al., ICLR 2023). Every
function takes any number of leading batch dimensions, so all (query, class) pairs are
solved in one call, on whatever device the inputs live on.

Solver: the dual potentials α, β live in the log domain and the kernel
K̃ = exp(−C/ε + α ⊕ β) is rebuilt from them, exactly, whenever the Sinkhorn scalings u, v
leave [e^−τ, e^τ] ("absorption", Schmitzer 2019); a step that over- or underflows is
undone and replaced by exact log-sum-exp half-steps. So the solver is as stable as the
plain log-domain iteration (ε down to 0.01 and below, constant costs, zero weights) while
an ordinary iteration costs two batched mat-vecs instead of two log-sum-exps. Internally
problems are stored batch-last, ``(n, m, B)``, so every operation is a long vectorised
sweep over the batch even when n and m are tiny.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator

import torch
from torch import Tensor

__all__ = [
    "masked_uniform",
    "normalise_marginal",
    "similarity",
    "sinkhorn_log",
    "ot_sim",
]

#: Scalings are absorbed into the log-potentials once |log u| or |log v| exceeds τ.
_TAU = {torch.float32: 10.0, torch.float64: 50.0}
#: Mat-vecs loop over the reduced dimension up to this size, else multiply and sum.
_LOOP_MAX = 64
#: ... but a batch of at most this many kernel entries (n m B) is always multiplied and
#: summed: the product fits in cache, and two operations beat a loop of r small ones, each
#: paying the interpreter's and the dispatcher's overhead (mgcl_f's frame prototypes:
#: r = 22 frames, m = 4, B ~ 10^3 pairs, 4x faster). The two differ by float rounding only.
_SMALL = 2**17


# --------------------------------------------------------------------------- marginals


def masked_uniform(mask: Tensor, dtype: torch.dtype | None = None) -> Tensor:
    """Uniform weights on the True entries (all 0 if none is True).

    w_i = mask_i / Σ_k mask_k
    mask (..., n) bool -> w (..., n)
    """
    w = mask.to(dtype or torch.get_default_dtype())
    return w / w.sum(-1, keepdim=True).clamp_min(1.0)


def normalise_marginal(w: Tensor, mask: Tensor | None = None) -> Tensor:
    """Non-negative weights zeroed where masked and renormalised (all 0 if nothing is left).

    w'_i = w_i mask_i / Σ_k w_k mask_k
    w (..., n), mask (..., n) bool or None -> w' (..., n)
    """
    if not w.is_floating_point():
        w = w.to(torch.get_default_dtype())
    if bool((w < 0).any()) or not bool(torch.isfinite(w).all()):
        raise ValueError("marginal weights must be finite and non-negative")
    if mask is not None:
        w = w * mask
    total = w.sum(-1, keepdim=True)
    return w / torch.where(total > 0, total, torch.ones_like(total))


def _marginal(
    weights: Tensor | None, mask: Tensor | None, size: int, dtype: torch.dtype, device: torch.device
) -> Tensor:
    """ot_sim's marginal: custom weights, else uniform over the mask, else 1/size (in ``dtype``).

    weights (..., size) or None, mask (..., size) or None -> (..., size)
    """
    if weights is not None:
        out = normalise_marginal(weights.to(device=device, dtype=dtype), mask)
    elif mask is not None:
        out = masked_uniform(mask.to(device), dtype)
    else:
        out = torch.full((size,), 1.0 / size, dtype=dtype, device=device)
    if out.shape[-1] != size:
        raise ValueError(f"marginal or mask has {out.shape[-1]} entries, expected {size}")
    return out


def _broadcast_shapes(*shapes: tuple[int, ...]) -> tuple[int, ...]:
    """The shape all ``shapes`` broadcast to (NumPy rules), as torch.broadcast_shapes gives it
    without its symbolic-shape machinery (about a millisecond a call, several per ot_sim)."""
    out: list[int] = []
    for shape in shapes:
        shape = tuple(shape)
        out = [1] * (len(shape) - len(out)) + out
        for i, d in enumerate(shape, start=len(out) - len(shape)):
            if d != out[i] and out[i] != 1 and d != 1:
                raise RuntimeError(f"shape mismatch: objects cannot be broadcast to a single shape: {list(shapes)}")
            if out[i] == 1:
                out[i] = d
    return tuple(out)


# --------------------------------------------------------------------------- formulas
# Batch-last layout: kernels (n, m, B), row vectors (n, B), column vectors (m, B).


def similarity(U: Tensor, V: Tensor) -> Tensor:
    """Inner products (cosines for unit-norm rows).

    S = U Vᵀ
    U (..., n, D), V (..., m, D) -> S (..., n, m)
    """
    return torch.einsum("...nd,...md->...nm", U, V)


def _matvec(k: Tensor, v: Tensor) -> Tensor:
    """Kernel times column vector, per problem.

    (K̃ v)_i = Σ_j K̃_ij v_j
    k (n, m, B), v (m, B) -> (n, B)
    """
    if k.shape[1] > _LOOP_MAX or k.numel() <= _SMALL:
        return (k * v.unsqueeze(0)).sum(1)
    out = k[:, 0] * v[0]
    for j in range(1, k.shape[1]):
        out.addcmul_(k[:, j], v[j])
    return out


def _vecmat(u: Tensor, k: Tensor) -> Tensor:
    """Row vector times kernel, per problem.

    (K̃ᵀ u)_j = Σ_i u_i K̃_ij
    u (n, B), k (n, m, B) -> (m, B)
    """
    if k.shape[0] > _LOOP_MAX or k.numel() <= _SMALL:
        return (k * u.unsqueeze(1)).sum(0)
    out = k[0] * u[0]
    for i in range(1, k.shape[0]):
        out.addcmul_(k[i], u[i])
    return out


def _kernel_(log_k: Tensor, alpha: Tensor, beta: Tensor | None, out: Tensor) -> Tensor:
    """Stabilised kernel from the log-potentials, written into ``out`` (β = 0 if None).

    K̃_ij = exp(log K_ij + α_i + β_j)
    log_k (n, m, B), alpha (n, B), beta (m, B) -> out (n, m, B)
    """
    torch.add(log_k, alpha.unsqueeze(1), out=out)
    if beta is not None:
        out.add_(beta.unsqueeze(0))
    return out.exp_()


def _logsumexp_(x: Tensor, dim: int) -> Tensor:
    """Log-sum-exp over one dim, overwriting x; an all −inf line gives −inf.

    LSE_dim(x) = M + log Σ exp(x − M),  M = max_dim x
    x (n, m, B) -> (m, B) for dim 0, (n, B) for dim 1
    """
    mx = x.amax(dim, keepdim=True)
    mx = torch.where(torch.isfinite(mx), mx, torch.zeros_like(mx))
    return x.sub_(mx).exp_().sum(dim).log_().add_(mx.squeeze(dim))


def _row_step(log_k: Tensor, beta: Tensor, log_a: Tensor, scratch: Tensor) -> Tensor:
    """Exact log-domain row half-step (rows of exp(log K + α ⊕ β) then sum to a).

    α_i = log a_i − LSE_j(log K_ij + β_j)
    log_k (n, m, B), beta (m, B), log_a (n, B) -> alpha (n, B)
    """
    torch.add(log_k, beta.unsqueeze(0), out=scratch)
    return log_a - _logsumexp_(scratch, 1)


def _col_step(log_k: Tensor, alpha: Tensor, log_b: Tensor, scratch: Tensor) -> Tensor:
    """Exact log-domain column half-step (columns then sum to b).

    β_j = log b_j − LSE_i(log K_ij + α_i)
    log_k (n, m, B), alpha (n, B), log_b (m, B) -> beta (m, B)
    """
    torch.add(log_k, alpha.unsqueeze(1), out=scratch)
    return log_b - _logsumexp_(scratch, 0)


def _scaling(w: Tensor, kv: Tensor, pad: Tensor | None) -> Tensor:
    """Sinkhorn scaling; ``pad`` is 1 on zero-weight lines (K̃ line 0, w = 1) so u = 1 there.

    u = w / (K̃ v + pad)
    w (n, B), kv (n, B), pad (n, B) or None -> u (n, B)
    """
    return w / kv if pad is None else w / (kv + pad)


# --------------------------------------------------------------------------- solver


def _keep(x: Tensor | None, keep: Tensor) -> Tensor | None:
    """The problems of a batch-last tensor listed in ``keep``.

    x (..., B), keep (B',) -> (..., B')
    """
    return None if x is None else x.index_select(-1, keep)


@torch.no_grad()
def _sinkhorn_bl(
    log_k: Tensor,
    a: Tensor,
    b: Tensor,
    n_iters: int,
    tol: float,
    check_every: int,
    out: Tensor | None = None,
) -> tuple[Tensor, dict]:
    """Batch-last solver behind sinkhorn_log and ot_sim.

    P = diag(u) K̃ diag(v) with P1 = a, Pᵀ1 = b, K̃ = exp(log K + α ⊕ β)
    log_k (n, m, B), a (n, B), b (m, B) -> P (n, m, B), info

    ``log_k`` = −cost/ε is read, never written. The plan is written into ``out`` (a fresh
    tensor if None), which is also the work buffer. Once half of the problems still
    iterating have converged (and the others are still far from it), they are finalised
    and dropped from the batch.
    """
    tau = _TAU.get(log_k.dtype, 10.0)
    lo, hi = math.exp(-tau), math.exp(tau)
    n, m, B = log_k.shape
    plan = torch.empty_like(log_k) if out is None else out
    if B == 0:
        return plan, {"n_iters": 0, "error": 0.0, "n_absorb": 0, "n_exact": 0}

    # A problem with an empty side gets uniform stand-in marginals and a zero plan.
    empty = (a.sum(0) <= 0) | (b.sum(0) <= 0)
    any_empty = bool(empty.any())
    if any_empty:
        a = torch.where(empty, torch.full_like(a, 1.0 / n), a)
        b = torch.where(empty, torch.full_like(b, 1.0 / m), b)
    a_pos, b_pos = a > 0, b > 0
    # Zero-weight lines: K̃ line 0 (potential −inf), scaling fixed at 1 via w = 1, pad = 1.
    pad_a = None if bool(a_pos.all()) else (~a_pos).to(a.dtype)
    pad_b = None if bool(b_pos.all()) else (~b_pos).to(b.dtype)

    # α_i = −max_j log K_ij (over columns with mass): each row of K̃ keeps an entry 1.
    k = plan
    if pad_b is None:
        beta = torch.zeros_like(b)
        alpha = -log_k.amax(1)
    else:
        beta = torch.where(b_pos, 0.0, -math.inf).to(b.dtype)
        alpha = -torch.add(log_k, beta.unsqueeze(0), out=k).amax(1)
    if pad_a is not None:
        alpha.masked_fill_(~a_pos, -math.inf)
    _kernel_(log_k, alpha, None if pad_b is None else beta, k)
    u, v = torch.ones_like(a), torch.ones_like(b)
    good = (u, v)
    a_num = a if pad_a is None else a + pad_a
    b_num = b if pad_b is None else b + pad_b
    neg_a = -a
    active = None  # indices of the problems still iterating, None = all
    not_empty = None if not any_empty else ~empty

    kv = _matvec(k, v)
    n_absorb, n_exact, err, err_done, it = 0, 0, math.inf, 0.0, 0
    for it in range(1, n_iters + 1):
        u = _scaling(a_num, kv, pad_a)
        v = _scaling(b_num, _vecmat(u, k), pad_b)
        kv = _matvec(k, v)
        if it % check_every and it < n_iters:
            continue
        # Columns are exact after the v-step, so the L1 marginal error is the rows'.
        row_err = torch.addcmul(neg_a, u, kv).abs_().sum(0)
        if not_empty is not None:
            row_err.mul_(not_empty)
        done = row_err < tol
        stats = torch.stack([row_err.max(), done.sum(), *torch.aminmax(u), *torch.aminmax(v)]).tolist()
        err, n_done, ext = stats[0], int(stats[1]), stats[2:]
        if n_done == row_err.numel():
            break
        if 2 * n_done >= row_err.numel() and err > 100 * tol:  # drop the converged half
            fin, keep = done.nonzero().squeeze(1), (~done).nonzero().squeeze(1)
            err_done = max(err_done, float(row_err[fin].max()))
            if active is None:
                active = torch.arange(B, device=log_k.device)
            finished = _keep(k, fin).mul_(_keep(u, fin).unsqueeze(1))
            finished.mul_(_keep(v, fin).unsqueeze(0))
            plan.index_copy_(-1, active[fin], finished)
            active, k, log_k, kv = active[keep], _keep(k, keep), _keep(log_k, keep), _keep(kv, keep)
            a, b, a_num, b_num, neg_a = (_keep(x, keep) for x in (a, b, a_num, b_num, neg_a))
            pad_a, pad_b, not_empty = _keep(pad_a, keep), _keep(pad_b, keep), _keep(not_empty, keep)
            alpha, beta = _keep(alpha, keep), _keep(beta, keep)
            u, v = _keep(u, keep), _keep(v, keep)
            good = (_keep(good[0], keep), _keep(good[1], keep))
        if all(lo <= x <= hi and math.isfinite(x) for x in ext):  # NaN fails too
            good = (u, v)
            continue
        finite = all(math.isfinite(x) and x > 0 for x in ext)
        if it == n_iters:
            u, v = (u, v) if finite else good
            break
        n_absorb += 1
        if finite:
            alpha = alpha + u.log()
            beta = beta + v.log()
        else:  # a step over/underflowed: back to the last good state, exact half-steps,
            n_exact += 1  # and from now on check (and absorb) after every iteration
            check_every = 1
            beta = beta + good[1].log()
            alpha = _row_step(log_k, beta, a.log(), k)
            beta = _col_step(log_k, alpha, b.log(), k)
        _kernel_(log_k, alpha, beta, k)
        u, v = torch.ones_like(a), torch.ones_like(b)
        good = (u, v)
        kv = _matvec(k, v)
    err = max(err, err_done)
    if not err < tol:
        warnings.warn(
            f"Sinkhorn stopped after {it} iterations with marginal error {err:.2e} >= tol "
            f"{tol:.0e}; raise n_iters or eps",
            RuntimeWarning,
            stacklevel=3,
        )

    k.mul_(u.unsqueeze(1)).mul_(v.unsqueeze(0))
    if active is not None:
        plan.index_copy_(-1, active, k)
    if any_empty:
        plan.masked_fill_(empty, 0.0)
    return plan, {"n_iters": it, "error": err, "n_absorb": n_absorb, "n_exact": n_exact}


def _check(eps: float, n_iters: int, check_every: int) -> None:
    if not eps > 0:
        raise ValueError(f"eps must be positive, got {eps}")
    if n_iters < 1 or check_every < 1:
        raise ValueError(f"n_iters and check_every must be >= 1, got {n_iters}, {check_every}")


def sinkhorn_log(
    cost: Tensor,
    a: Tensor,
    b: Tensor,
    eps: float,
    n_iters: int = 1000,
    tol: float = 1e-6,
    check_every: int = 2,
    return_info: bool = False,
) -> Tensor | tuple[Tensor, dict]:
    """Entropic optimal transport plans, batched, by stabilised log-domain Sinkhorn.

    P* = argmin_{P ≥ 0, P1 = a, Pᵀ1 = b} <P, C> − ε H(P),  H(P) = −Σ P_ij (log P_ij − 1)
    cost (..., n, m), a (..., n), b (..., m) -> P* (..., n, m)   (leading dims broadcast)

    ``a``, ``b``: non-negative, the same mass per problem (e.g. both sum to 1); a zero
    weight gives an exactly-zero plan row/column, a side without mass an all-zero plan.
    Stops once every problem of the batch has L1 marginal error Σ_i |(P1)_i − a_i| < tol
    (columns are exact), checked every ``check_every`` iterations, or after ``n_iters``
    (with a RuntimeWarning). The plan is a constant: computed under ``torch.no_grad()``.
    ``return_info=True`` also returns ``{"n_iters", "error", "n_absorb", "n_exact"}``
    (iterations, final marginal error, absorptions, exact log-sum-exp restarts).
    Memory: about three tensors of the size of ``cost``.
    """
    _check(eps, n_iters, check_every)
    n, m = cost.shape[-2:]
    batch = _broadcast_shapes(cost.shape[:-2], a.shape[:-1], b.shape[:-1])
    dtype = torch.promote_types(cost.dtype, torch.float32)
    with torch.no_grad():
        log_k = torch.empty((n, m, *batch), dtype=dtype, device=cost.device)
        torch.mul(cost.expand(*batch, n, m).movedim((-2, -1), (0, 1)), -1.0 / eps, out=log_k)
        a_bl = a.to(dtype).expand(*batch, n).movedim(-1, 0).reshape(n, -1)
        b_bl = b.to(dtype).expand(*batch, m).movedim(-1, 0).reshape(m, -1)
        plan, info = _sinkhorn_bl(log_k.reshape(n, m, -1), a_bl, b_bl, n_iters, tol, check_every)
        plan = plan.reshape(n, m, *batch).movedim((0, 1), (-2, -1)).contiguous()
    return (plan, info) if return_info else plan


# --------------------------------------------------------------------------- similarity


def _chunks(shape: tuple[int, ...], size: int) -> Iterator[tuple[slice, ...]]:
    """Blocks of slices over a batch shape, each holding at most ``size`` >= 1 elements."""
    if math.prod(shape) <= size:
        yield tuple(slice(None) for _ in shape)
        return
    inner = math.prod(shape[1:])
    if inner <= size or len(shape) == 1:
        step = max(1, size // inner)
        for i in range(0, shape[0], step):
            yield (slice(i, i + step),) + tuple(slice(None) for _ in shape[1:])
        return
    for i in range(shape[0]):
        for rest in _chunks(shape[1:], size):
            yield (slice(i, i + 1),) + rest


def _take(x: Tensor, idx: tuple[slice, ...], core: int) -> Tensor:
    """x's part of a batch block: left-pad its batch dims with 1s, slice those that are not 1.

    x (*batch, *core) -> (*block, *core)  (``core`` trailing dims untouched)
    """
    x = x.reshape((1,) * (len(idx) + core - x.dim()) + tuple(x.shape))
    return x[tuple(s if x.shape[d] != 1 else slice(None) for d, s in enumerate(idx))]


def ot_sim(
    U: Tensor,
    V: Tensor,
    u_mask: Tensor | None = None,
    v_mask: Tensor | None = None,
    a: Tensor | None = None,
    b: Tensor | None = None,
    eps: float = 0.1,
    n_iters: int = 1000,
    tol: float = 1e-6,
    check_every: int = 2,
    chunk_size: int | None = None,
    return_plan: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """Optimal-transport similarity of two sets of embeddings, for every pair of a batch.

    ot_sim = Σ_ij P*_ij S_ij,  S = U Vᵀ,  P* = sinkhorn_log(1 − S, a, b, ε) held constant
    U (..., n, D), V (..., m, D) -> (...)   (leading dims broadcast)

    Leading dims broadcast: U (Q, 1, n, D) with V (1, C, m, D) scores all (Q, C) pairs.
    ``u_mask`` (..., n) / ``v_mask`` (..., m): True for real rows, False for padding;
    marginals are uniform over the real rows, or ``a`` (..., n) / ``b`` (..., m) (e.g.
    frame saliency) zeroed where masked and renormalised. A pair with no real row on a
    side scores 0. Gradients flow through S only (P* is computed under no_grad, as in
    PLOT). Computation is in float32 at least (float64 inputs stay float64). The
    broadcast batch is solved ``chunk_size`` pairs at a time, with about 3 floats per pair
    and entry of S in flight; the default keeps a block near 2^20 entries per CPU thread
    (in cache) or 2^24 on an accelerator. ``return_plan=True`` also returns P* (..., n, m).
    """
    _check(eps, n_iters, check_every)
    n, m = U.shape[-2], V.shape[-2]
    if U.shape[-1] != V.shape[-1]:
        raise ValueError(f"feature sizes differ: U {tuple(U.shape)}, V {tuple(V.shape)}")
    dtype = torch.promote_types(torch.promote_types(U.dtype, V.dtype), torch.float32)
    device = U.device
    mu, nu = _marginal(a, u_mask, n, dtype, device), _marginal(b, v_mask, m, dtype, device)
    batch = _broadcast_shapes(U.shape[:-2], V.shape[:-2], mu.shape[:-1], nu.shape[:-1])
    if chunk_size is None:
        entries = 2**20 * torch.get_num_threads() if device.type == "cpu" else 2**24
        chunk_size = max(1, entries // (n * m))
    blocks = list(_chunks(tuple(batch), max(1, chunk_size)))
    sims = torch.empty(batch, dtype=dtype, device=device)
    plans = torch.empty((*batch, n, m), dtype=dtype, device=device) if return_plan else None
    # Without autograd the plan of a block is dead once scored: reuse two work buffers.
    grad = torch.is_grad_enabled() and (U.requires_grad or V.requires_grad)
    work = None
    if not grad and len(blocks) > 1:
        most = max(math.prod(len(range(*s.indices(d))) for s, d in zip(i, batch)) for i in blocks)
        work = torch.empty(2, n * m * most, dtype=dtype, device=device)
    for idx in blocks:
        S = similarity(_take(U, idx, 2).to(dtype), _take(V, idx, 2).to(dtype))
        mu_c, nu_c = _take(mu, idx, 1), _take(nu, idx, 1)
        shape = _broadcast_shapes(S.shape[:-2], mu_c.shape[:-1], nu_c.shape[:-1])
        S_bl = S.expand(*shape, n, m).movedim((-2, -1), (0, 1))  # (n, m, *shape) view
        size = n * m * math.prod(shape)
        with torch.no_grad():
            if work is None:
                log_k, out = torch.empty(S_bl.shape, dtype=dtype, device=device), None
            else:
                log_k, out = work[0, :size].view(S_bl.shape), work[1, :size].view(n, m, -1)
            torch.mul(S_bl.detach(), 1.0 / eps, out=log_k).sub_(1.0 / eps)  # −(1 − S)/ε
            P, _ = _sinkhorn_bl(
                log_k.view(n, m, -1),
                mu_c.expand(*shape, n).movedim(-1, 0).reshape(n, -1),
                nu_c.expand(*shape, m).movedim(-1, 0).reshape(m, -1),
                n_iters,
                tol,
                check_every,
                out,
            )
            P = P.view(n, m, *shape)
        sims[idx] = (P * S_bl).sum((0, 1))
        if plans is not None:
            plans[idx] = P.movedim((0, 1), (-2, -1))
    return (sims, plans) if return_plan else sims
