"""mgcl.ot: the log-domain Sinkhorn solver and the OT similarity.

Hand-derived 2x2 plans, marginals, POT (`ot.sinkhorn`) as an oracle, small eps, constant
costs, masks and padding, gradients and broadcasting. Tolerances are stated per test.
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch

import mgcl.ot as mot
from mgcl.ot import masked_uniform, normalise_marginal, ot_sim, similarity, sinkhorn_log

try:
    import ot as pot
except ImportError:  # pragma: no cover
    pot = None
needs_pot = pytest.mark.skipif(pot is None, reason="POT (pip install pot) is the test oracle")

F64 = torch.float64
# Batched and per-pair solves stop at different iterations, so comparisons run both to
# tol 1e-10 (L1 marginal error) and allow differences of about that size: |Δsim| < 1e-8.
TIGHT = dict(tol=1e-10, n_iters=50_000)


def unit(*shape, seed=0, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g, dtype=dtype)
    return x / x.norm(dim=-1, keepdim=True)


def rand_simplex(*shape, seed=0, zeros=None):
    g = torch.Generator().manual_seed(seed)
    w = torch.rand(*shape, generator=g, dtype=F64) + 0.05
    if zeros is not None:
        w = w * ~zeros
    return w / w.sum(-1, keepdim=True).clamp_min(1e-300)


def pot_plan(cost, a, b, eps, method="sinkhorn_log", stop=1e-13, max_iter=100_000):
    """POT's plan for one problem in float64 (stop: its L2 column-marginal threshold)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        P = pot.sinkhorn(
            a.numpy(),
            b.numpy(),
            cost.numpy(),
            eps,
            method=method,
            numItermax=max_iter,
            stopThr=stop,
        )
    return torch.from_numpy(P)


# --------------------------------------------------------------------------- 2x2 by hand


@pytest.mark.parametrize("eps", [1.0, 0.5, 0.2])
def test_2x2_symmetric_closed_form(eps):
    # C = [[0, 1], [1, 0]], a = b = (1/2, 1/2). The plan is diag(u) K diag(v), K = exp(-C/ε).
    # By symmetry u1 = u2 = v1 = v2 = c, so P = c² K = [[p, q], [q, p]] with
    # p / q = K11 / K12 = e^{1/ε} and p + q = 1/2:
    #     p = 1 / (2 (1 + e^{-1/ε})),   q = 1 / (2 (1 + e^{1/ε})).
    # (ε = 1: p = 0.365529..., q = 0.134470..., as in POT's docstring.)
    # With S = 1 - C = I: ot_sim = Σ P ⊙ S = 2p = 1 / (1 + e^{-1/ε}).
    C = torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=F64)
    half = torch.full((2,), 0.5, dtype=F64)
    P = sinkhorn_log(C, half, half, eps, tol=1e-12)
    p = 1 / (2 * (1 + math.exp(-1 / eps)))
    q = 1 / (2 * (1 + math.exp(1 / eps)))
    expected = torch.tensor([[p, q], [q, p]], dtype=F64)
    assert torch.allclose(P, expected, atol=1e-10, rtol=0)
    U = torch.eye(2, dtype=F64)  # S = U Uᵀ = I, cost = 1 - I = C
    assert ot_sim(U, U, eps=eps, tol=1e-12).item() == pytest.approx(2 * p, abs=1e-10)


def test_2x2_small_eps_tends_to_diagonal():
    # p = 1 / (2 (1 + e^{-100})) = 1/2 to double precision; q = e^{-100} / 2 ≈ 1.9e-44.
    C = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    half = torch.full((2,), 0.5)
    P = sinkhorn_log(C, half, half, 0.01)
    assert torch.isfinite(P).all()
    assert torch.allclose(P, torch.diag(half), atol=1e-7, rtol=0)


@pytest.mark.parametrize("eps", [1.0, 0.3])
def test_2x2_asymmetric_marginals_closed_form(eps):
    # Any 2x2 plan with marginals a, b is P = [[p, a1 - p], [b1 - p, 1 - a1 - b1 + p]].
    # The entropic optimum is diag(u) K diag(v), so its cross ratio is fixed by the cost:
    #     P11 P22 / (P12 P21) = K11 K22 / (K12 K21) = κ = exp(-(C11 + C22 - C12 - C21) / ε).
    # Hence p (1 - a1 - b1 + p) = κ (a1 - p)(b1 - p), i.e.
    #     (1 - κ) p² + (1 - a1 - b1 + κ (a1 + b1)) p - κ a1 b1 = 0,
    # with the root in (max(0, a1 + b1 - 1), min(a1, b1)).
    C = torch.tensor([[0.2, 0.9], [0.5, 0.1]], dtype=F64)
    a = torch.tensor([0.3, 0.7], dtype=F64)
    b = torch.tensor([0.6, 0.4], dtype=F64)
    a1, b1 = 0.3, 0.6
    kappa = math.exp(-(0.2 + 0.1 - 0.9 - 0.5) / eps)
    A, B, Cq = 1 - kappa, 1 - a1 - b1 + kappa * (a1 + b1), -kappa * a1 * b1
    roots = [(-B + s * math.sqrt(B * B - 4 * A * Cq)) / (2 * A) for s in (1, -1)]
    p = next(r for r in roots if max(0.0, a1 + b1 - 1) < r < min(a1, b1))
    expected = torch.tensor([[p, a1 - p], [b1 - p, 1 - a1 - b1 + p]], dtype=F64)
    P = sinkhorn_log(C, a, b, eps, tol=1e-12)
    assert torch.allclose(P, expected, atol=1e-10, rtol=0)


# --------------------------------------------------------------------------- marginals


def test_plan_marginals_random_batched_with_masks():
    g = torch.Generator().manual_seed(1)
    cost = torch.rand(3, 4, 7, 5, generator=g, dtype=F64) * 2
    a_zero = torch.rand(3, 4, 7, generator=g) < 0.3
    b_zero = torch.rand(3, 4, 5, generator=g) < 0.3
    a_zero[..., 0] = False  # keep every problem non-empty
    b_zero[..., 0] = False
    a = rand_simplex(3, 4, 7, seed=2, zeros=a_zero)
    b = rand_simplex(3, 4, 5, seed=3, zeros=b_zero)
    tol = 1e-8
    P, info = sinkhorn_log(cost, a, b, 0.1, tol=tol, return_info=True)
    assert P.shape == (3, 4, 7, 5) and P.dtype == F64
    assert info["error"] < tol
    assert (P.sum(-1) - a).abs().sum(-1).max() < tol  # rows: L1 error below tol
    assert (P.sum(-2) - b).abs().max() < 1e-12  # columns are exact after the last step
    assert (P[a_zero] == 0).all() and (P.transpose(-1, -2)[b_zero] == 0).all()
    assert (P >= 0).all()


def test_masked_uniform_and_normalise_marginal():
    mask = torch.tensor([[True, False, True, True], [False, False, False, False]])
    w = masked_uniform(mask)
    assert torch.equal(w, torch.tensor([[1 / 3, 0, 1 / 3, 1 / 3], [0.0, 0, 0, 0]]))
    sal = torch.tensor([[2.0, 5.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0]])
    n = normalise_marginal(sal, mask)
    assert torch.allclose(n, torch.tensor([[0.5, 0, 0.25, 0.25], [0.0, 0, 0, 0]]))
    assert torch.isfinite(n).all()
    with pytest.raises(ValueError):
        normalise_marginal(torch.tensor([1.0, -0.5]))


# --------------------------------------------------------------------------- POT oracle


@pytest.mark.parametrize("n,m,eps", [(6, 4, 0.1), (9, 9, 0.05), (70, 3, 0.2), (3, 70, 0.2)])
@pytest.mark.parametrize("method", ["sinkhorn_log", "sinkhorn"])
@needs_pot
def test_plan_and_ot_sim_match_pot(n, m, eps, method):
    # n or m = 70 exercises the multiply-and-sum mat-vec (beyond the addcmul loop).
    # Both sides converge far below the stated tolerance: max |ΔP| < 1e-8, |Δsim| < 1e-8.
    B = 5
    U, V = unit(B, n, 16, seed=n), unit(B, m, 16, seed=m + 100)
    S = similarity(U, V)
    a, b = rand_simplex(B, n, seed=4), rand_simplex(B, m, seed=5)
    P = sinkhorn_log(1 - S, a, b, eps, tol=1e-11, n_iters=20_000)
    sims = ot_sim(U, V, a=a, b=b, eps=eps, tol=1e-11, n_iters=20_000)
    for i in range(B):
        ref = pot_plan(1 - S[i], a[i], b[i], eps, method)
        assert (P[i] - ref).abs().max() < 1e-8
        assert abs(sims[i].item() - (ref * S[i]).sum().item()) < 1e-8


@needs_pot
def test_float32_matches_pot_within_1e5():
    # The default precision: float32 plan vs POT float64, max |ΔP| < 1e-6, |Δsim| < 1e-5.
    U = unit(4, 1, 32, 64, seed=7, dtype=torch.float32)
    V = unit(1, 3, 8, 64, seed=8, dtype=torch.float32)
    sims, plans = ot_sim(U, V, eps=0.1, return_plan=True)
    assert sims.dtype == torch.float32 and plans.shape == (4, 3, 32, 8)
    a, b = torch.full((32,), 1 / 32, dtype=F64), torch.full((8,), 1 / 8, dtype=F64)
    for q in range(4):
        for c in range(3):
            S = U[q, 0].double() @ V[0, c].double().T
            ref = pot_plan(1 - S, a, b, 0.1)
            assert (plans[q, c].double() - ref).abs().max() < 1e-6
            assert abs(sims[q, c].item() - (ref * S).sum().item()) < 1e-5


# --------------------------------------------------------------------------- stability


@pytest.mark.parametrize("dtype", [torch.float32, F64])
@needs_pot
def test_eps_001_is_finite_and_matches_pot(dtype):
    # ε = 0.01 on cosine costs: e^{-C/ε} spans e^{-200}..1, which underflows float32.
    U, V = unit(6, 12, 8, seed=11, dtype=dtype), unit(6, 5, 8, seed=12, dtype=dtype)
    S = similarity(U, V)
    a, b = torch.full((12,), 1 / 12, dtype=dtype), torch.full((5,), 1 / 5, dtype=dtype)
    P, info = sinkhorn_log(1 - S, a, b, 0.01, return_info=True)
    assert torch.isfinite(P).all()
    assert info["error"] < 1e-6
    # the solver stops once its own L1 error is < 1e-6; the sums of the assembled plan add
    # float32 rounding (a few 1e-9 per row)
    slack = 2e-7 if dtype == torch.float32 else 0.0
    assert (P.sum(-1) - a).abs().sum(-1).max() < 1e-6 + slack
    assert (P.sum(-2) - b).abs().sum(-1).max() < 1e-6 + slack
    for i in range(6):  # POT's own error stalls near 2e-8 at this ε: stop it at 1e-8
        ref = pot_plan((1 - S[i]).double(), a.double(), b.double(), 0.01, "sinkhorn", 1e-8, 20_000)
        assert (P[i].double() - ref).abs().max() < 1e-5


@pytest.mark.parametrize("eps", [1.0, 0.1, 0.01, 1e-4])
def test_constant_cost_gives_product_plan(eps):
    a = rand_simplex(2, 6, seed=13).float()
    b = rand_simplex(2, 4, seed=14).float()
    cost = torch.full((2, 6, 4), 0.7)
    P = sinkhorn_log(cost, a, b, eps)
    assert torch.isfinite(P).all()
    assert torch.allclose(P, a[..., :, None] * b[..., None, :], atol=1e-7, rtol=0)


@pytest.mark.parametrize("dtype,eps", [(torch.float32, 0.01), (F64, 1e-3)])
def test_small_eps_absorbs_and_stays_exact(dtype, eps):
    # Small ε forces absorptions (scalings leave [e^-τ, e^τ]); the plan must still be
    # the float64 reference (ours at tol 1e-10, checked against POT above) within 1e-6.
    # (Some random instances need 10^5+ iterations at this ε whatever the precision, POT
    # included; this one converges in a few hundred.)
    U, V = unit(3, 10, 4, seed=15).to(dtype), unit(3, 6, 4, seed=16).to(dtype)
    S = similarity(U, V)
    a, b = torch.full((10,), 0.1, dtype=dtype), torch.full((6,), 1 / 6, dtype=dtype)
    P, info = sinkhorn_log(1 - S, a, b, eps, n_iters=20_000, return_info=True)
    assert info["n_absorb"] > 0 and info["error"] < 1e-6
    a64, b64 = torch.full((10,), 0.1, dtype=F64), torch.full((6,), 1 / 6, dtype=F64)
    ref = sinkhorn_log((1 - S).double(), a64, b64, eps, n_iters=50_000, tol=1e-10)
    assert (P.double() - ref).abs().max() < 1e-6


@needs_pot
def test_overflowing_scalings_fall_back_to_exact_log_domain():
    # At ε = 1e-3 (cost/ε up to 2000) float32 scalings overflow within a few iterations.
    # Checking only every 50 iterations lets that happen: the solver must undo the steps,
    # take exact log-sum-exp half-steps (n_exact) and still converge instead of giving NaN.
    cost = torch.tensor([[[0.0, 1.5, 2.0], [0.1, 0.0, 1.9], [2.0, 2.0, 1.8]]])
    a = torch.tensor([[0.6, 0.3, 0.1]])
    b = torch.tensor([[0.1, 0.1, 0.8]])
    P, info = sinkhorn_log(cost, a, b, 1e-3, n_iters=5000, check_every=50, return_info=True)
    assert info["n_exact"] >= 1
    assert torch.isfinite(P).all() and info["error"] < 1e-6
    ref = pot_plan(cost[0].double(), a[0].double(), b[0].double(), 1e-3, stop=1e-7, max_iter=20_000)
    assert (P[0].double() - ref).abs().max() < 1e-6


def test_converged_problems_leave_the_batch_in_place():
    # Problems of very different difficulty (cost scaled by 0 ... 3): whenever half of the
    # problems still iterating have converged, the solver finalises and drops them, several
    # times here. Each plan must still be its own (distinct marginals would expose a
    # mix-up): a bᵀ for the constant costs, the separately solved plan for the others.
    scale = torch.tensor([0, 3, 0, 1, 0.3, 0, 2, 0.1], dtype=F64)
    cost = (1 - similarity(unit(8, 6, 8, seed=41), unit(8, 5, 8, seed=42))) * scale[:, None, None]
    a, b = rand_simplex(8, 6, seed=43), rand_simplex(8, 5, seed=44)
    P = sinkhorn_log(cost, a, b, 0.02, check_every=1, tol=1e-9)
    for i in range(8):
        if scale[i] == 0:
            assert torch.allclose(P[i], a[i, :, None] * b[i, None, :], atol=1e-12, rtol=0)
        alone = sinkhorn_log(cost[i], a[i], b[i], 0.02, check_every=1, tol=1e-9)
        assert (P[i] - alone).abs().max() < 1e-9


def test_per_pair_marginals_broadcast_beyond_the_sets():
    # Saliency that depends on the (query, class) pair: a (Q, C, n) with U (Q, 1, n, D).
    U, V = unit(3, 1, 5, 8, seed=45), unit(1, 2, 4, 8, seed=46)
    a = rand_simplex(3, 2, 5, seed=47)
    sims = ot_sim(U, V, a=a, chunk_size=2, **TIGHT)
    assert sims.shape == (3, 2)
    assert abs(sims[2, 1].item() - ot_sim(U[2, 0], V[0, 1], a=a[2, 1], **TIGHT).item()) < 1e-8


def test_not_converged_warns():
    cost = torch.rand(4, 5, 6, generator=torch.Generator().manual_seed(17))
    with pytest.warns(RuntimeWarning, match="Sinkhorn stopped"):
        sinkhorn_log(cost, torch.full((5,), 0.2), torch.full((6,), 1 / 6), 0.01, n_iters=2)


def test_invalid_arguments():
    with pytest.raises(ValueError):
        sinkhorn_log(torch.zeros(2, 2), torch.full((2,), 0.5), torch.full((2,), 0.5), 0.0)
    with pytest.raises(ValueError):
        ot_sim(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError):
        ot_sim(torch.zeros(2, 3), torch.zeros(2, 3), a=torch.tensor([1.0, -1.0]))


# --------------------------------------------------------------------------- masks


def test_padding_is_ignored():
    # Real sets of 5 and 3 rows, padded to 8 and 6 with junk; ot_sim and the plan must be
    # those of the trimmed inputs (|Δ| < 1e-6 float32) with exact zeros on the padding.
    U, V = unit(5, 16, seed=18, dtype=torch.float32), unit(3, 16, seed=19, dtype=torch.float32)
    junk_u = unit(3, 16, seed=20, dtype=torch.float32)
    junk_v = unit(3, 16, seed=21, dtype=torch.float32)
    Up, Vp = torch.cat([U[:2], junk_u, U[2:]]), torch.cat([junk_v[:2], V, junk_v[2:]])
    u_mask = torch.tensor([1, 1, 0, 0, 0, 1, 1, 1], dtype=torch.bool)
    v_mask = torch.tensor([0, 0, 1, 1, 1, 0], dtype=torch.bool)
    sim, P = ot_sim(Up, Vp, u_mask, v_mask, eps=0.05, return_plan=True)
    sim_t, P_t = ot_sim(U, V, eps=0.05, return_plan=True)
    assert abs(sim.item() - sim_t.item()) < 1e-6
    assert (P[~u_mask] == 0).all() and (P[:, ~v_mask] == 0).all()
    assert (P[u_mask][:, v_mask] - P_t).abs().max() < 1e-6


@needs_pot
def test_padding_with_custom_weights():
    # Saliency weights on padded rows are dropped and the rest renormalised.
    U, V = unit(4, 8, seed=22), unit(3, 8, seed=23)
    Up = torch.cat([U, unit(2, 8, seed=24)])
    w = torch.tensor([4.0, 1.0, 2.0, 1.0, 9.0, 9.0], dtype=F64)
    mask = torch.tensor([1, 1, 1, 1, 0, 0], dtype=torch.bool)
    sim = ot_sim(Up, V, u_mask=mask, a=w, eps=0.1, tol=1e-10)
    a = w[:4] / w[:4].sum()
    b = torch.full((3,), 1 / 3, dtype=F64)
    ref = pot_plan(1 - U @ V.T, a, b, 0.1)
    assert abs(sim.item() - (ref * (U @ V.T)).sum().item()) < 1e-8


def test_empty_side_scores_zero_without_nan():
    U, V = unit(2, 4, 8, seed=25), unit(2, 3, 8, seed=26)
    u_mask = torch.ones(2, 4, dtype=torch.bool)
    u_mask[1] = False  # the second pair has no real frame
    sim, P = ot_sim(U, V, u_mask=u_mask, return_plan=True)
    assert torch.isfinite(sim).all() and torch.isfinite(P).all()
    assert sim[1].item() == 0.0 and (P[1] == 0).all()
    assert sim[0].item() == pytest.approx(ot_sim(U[0], V[0]).item(), abs=1e-12)


# --------------------------------------------------------------------------- gradients


def test_gradient_flows_through_similarity_only():
    # ∂/∂U Σ_qc Σ_ij P_qc,ij U_q,i · V_c,j = Σ_c P_qc V_c with P held constant (no term
    # from dP/dS); likewise ∂/∂V = Σ_q P_qcᵀ U_q.
    U = unit(3, 1, 5, 6, seed=27).requires_grad_()
    V = unit(1, 4, 2, 6, seed=28).requires_grad_()
    sims, P = ot_sim(U, V, eps=0.1, return_plan=True, chunk_size=5)
    sims.sum().backward()
    P = P.detach()
    gU = torch.einsum("qcnm,cmd->qnd", P, V.detach()[0]).unsqueeze(1)
    gV = torch.einsum("qcnm,qnd->cmd", P, U.detach()[:, 0]).unsqueeze(0)
    assert torch.allclose(U.grad, gU, atol=1e-12) and torch.allclose(V.grad, gV, atol=1e-12)
    assert not P.requires_grad


def test_gradient_matches_finite_difference_of_fixed_plan():
    # Perturbing U changes S; with the plan frozen the directional derivative is <P, δS>.
    U, V = unit(4, 6, seed=29).requires_grad_(), unit(3, 6, seed=30)
    sim, P = ot_sim(U, V, return_plan=True)
    (g,) = torch.autograd.grad(sim, U)
    d = unit(4, 6, seed=31)
    expected = (P * (d @ V.T)).sum().item()
    assert torch.dot(g.flatten(), d.flatten()).item() == pytest.approx(expected, abs=1e-12)


# --------------------------------------------------------------------------- broadcasting


@pytest.mark.parametrize("chunk_size", [1, 7, 10_000])
def test_broadcast_equals_double_loop(chunk_size):
    Q, C = 5, 4
    U, V = unit(Q, 1, 6, 12, seed=32), unit(1, C, 3, 12, seed=33)
    u_mask = torch.rand(Q, 1, 6, generator=torch.Generator().manual_seed(34)) < 0.8
    u_mask[..., 0] = True
    sims = ot_sim(U, V, u_mask=u_mask, eps=0.1, chunk_size=chunk_size, **TIGHT)
    assert sims.shape == (Q, C)
    loop = torch.zeros(Q, C, dtype=F64)
    for q in range(Q):
        for c in range(C):
            loop[q, c] = ot_sim(U[q, 0], V[0, c], u_mask=u_mask[q, 0], eps=0.1, **TIGHT)
    assert (sims - loop).abs().max() < 1e-8


def test_broadcast_three_leading_dims():
    U, V = unit(2, 1, 3, 4, 8, seed=35), unit(1, 5, 1, 2, 8, seed=36)
    sims = ot_sim(U, V, chunk_size=4, **TIGHT)
    assert sims.shape == (2, 5, 3)
    for i, j, k in [(0, 0, 0), (1, 3, 2), (0, 4, 1)]:
        assert abs(sims[i, j, k].item() - ot_sim(U[i, 0, k], V[0, j, 0], **TIGHT).item()) < 1e-8


def test_sinkhorn_log_broadcasts_marginals():
    cost = torch.rand(4, 3, 5, 6, generator=torch.Generator().manual_seed(37))
    a, b = torch.full((5,), 0.2), rand_simplex(3, 6, seed=38).float()
    P = sinkhorn_log(cost, a, b, 0.1)
    assert P.shape == (4, 3, 5, 6)
    assert torch.allclose(P[2, 1], sinkhorn_log(cost[2, 1], a, b[1], 0.1), atol=1e-7)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    U = unit(8, 1, 16, 32, seed=39, dtype=torch.float32)
    V = unit(1, 5, 4, 32, seed=40, dtype=torch.float32)
    cpu = ot_sim(U, V)
    gpu = ot_sim(U.cuda(), V.cuda())
    assert gpu.device.type == "cuda"
    assert (gpu.cpu() - cpu).abs().max() < 1e-5


# --------------------------------------------------------------------------- internals


def test_small_batches_multiply_and_sum_like_the_loop(monkeypatch):
    """Small kernels take the multiply-and-sum mat-vecs, large ones the loop: same values up
    to float rounding."""
    g = torch.Generator().manual_seed(0)
    k, u, v = torch.rand(22, 4, 50, generator=g), torch.rand(22, 50, generator=g), torch.rand(4, 50, generator=g)
    small = mot._vecmat(u, k), mot._matvec(k, v)
    monkeypatch.setattr(mot, "_SMALL", 0)
    loop = mot._vecmat(u, k), mot._matvec(k, v)
    for x, y in zip(small, loop):
        torch.testing.assert_close(x, y, rtol=1e-6, atol=0.0)
    assert not all(torch.equal(x, y) for x, y in zip(small, loop))  # two paths were taken


@pytest.mark.parametrize(
    "shapes", [[(3, 1), (1, 4)], [(2, 1, 5), (5,)], [(), (2, 3)], [(0, 1), (1, 3)], [(1,), (1,)], [(2, 3), (3, 3)]]
)
def test_broadcast_shapes_as_torch(shapes):
    try:
        want = tuple(torch.broadcast_shapes(*shapes))
    except RuntimeError:
        with pytest.raises(RuntimeError):
            mot._broadcast_shapes(*shapes)
        return
    assert mot._broadcast_shapes(*shapes) == want
