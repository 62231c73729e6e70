"""Batched OT similarity (mgcl.ot.ot_sim) against POT's ot.sinkhorn looped per pair.

    python benchmarks/ot_speed.py --out ot_speed.json
    python benchmarks/ot_speed.py --queries 2000 --classes 50 --frames 32 --descriptions 8 \
        --eps 0.1 --pot-pairs 2000 --out ot_speed.json

Random L2-normalised frames U (Q, T, D) and descriptions V (C, M, D), uniform marginals.
`ot_sim` scores all Q x C pairs in one call (float32); POT solves the same problems one
pair at a time (float64 numpy, the same eps / tol / max-iter, S = U_q V_cᵀ and Σ P ⊙ S
in the loop too). Looping POT over every pair would take too long, so it is timed on a
random subset of pairs (`pot_pairs_timed`) and extrapolated per pair. Writes JSON with
  n_pairs, batched_seconds, pot_seconds_per_pair, pot_seconds_extrapolated,
  speedup (= pot_seconds_extrapolated / batched_seconds, target >= 100),
  max_abs_diff (similarities on the timed subset, target <= 1e-4), eps, tol, torch_threads
and a breakdown (similarity_seconds: S = U Vᵀ alone; sinkhorn iterations per side).
`batched_seconds` includes computing S (similarity_seconds shows that part alone).
Both sides are warmed up once; `--repeats` rounds alternate the sides, fastest counts.
`--threads N` sets torch's intra-op threads, 1 by default so that both sides use one core
(POT's loop is single-threaded); on a machine shared with other jobs, several threads can
be much slower than one.
Note: POT stops on the L2 norm of the column-marginal error, checked every 10 iterations;
mgcl on the L1 norm (>= L2, so the stricter test), checked every `--check-every` iterations.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from mgcl.ot import ot_sim, similarity, sinkhorn_log


def unit_rows(shape: tuple[int, ...], gen: torch.Generator) -> torch.Tensor:
    x = torch.randn(*shape, generator=gen)
    return x / x.norm(dim=-1, keepdim=True)


def pot_loop(U: np.ndarray, V: np.ndarray, pairs: np.ndarray, args) -> np.ndarray:
    """Per-pair POT: S = U_q V_cᵀ, P = ot.sinkhorn(a, b, 1 - S, eps), Σ P ⊙ S."""
    import ot

    a = np.full(U.shape[1], 1.0 / U.shape[1])
    b = np.full(V.shape[1], 1.0 / V.shape[1])
    out = np.empty(len(pairs))
    for k, (q, c) in enumerate(pairs):
        S = U[q] @ V[c].T
        P = ot.sinkhorn(a, b, 1.0 - S, args.eps, method=args.pot_method, numItermax=args.max_iter, stopThr=args.tol)
        out[k] = float((P * S).sum())
    return out


def pot_iterations(U: np.ndarray, V: np.ndarray, pairs: np.ndarray, args) -> list[int]:
    """Iterations POT used per pair (untimed, log=True)."""
    import ot

    a = np.full(U.shape[1], 1.0 / U.shape[1])
    b = np.full(V.shape[1], 1.0 / V.shape[1])
    iters = []
    for q, c in pairs:
        S = U[q] @ V[c].T
        _, log = ot.sinkhorn(
            a, b, 1.0 - S, args.eps, method=args.pot_method, numItermax=args.max_iter, stopThr=args.tol, log=True
        )
        iters.append(int(log["niter"]) + 1)
    return iters


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--classes", type=int, default=50)
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--descriptions", type=int, default=8)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--eps", type=float, default=0.1)
    ap.add_argument("--tol", type=float, default=1e-6)
    ap.add_argument("--max-iter", type=int, default=1000)
    ap.add_argument("--check-every", type=int, default=2)
    ap.add_argument("--chunk-size", type=int, default=0, help="pairs per block (0: default)")
    ap.add_argument("--pot-pairs", type=int, default=2000, help="pairs POT is timed on")
    ap.add_argument("--pot-method", default="sinkhorn", choices=["sinkhorn", "sinkhorn_log"])
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    args = ap.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    gen = torch.Generator().manual_seed(args.seed)
    Q, C, T, M = args.queries, args.classes, args.frames, args.descriptions
    U = unit_rows((Q, T, args.dim), gen)
    V = unit_rows((C, M, args.dim), gen)
    n_pairs = Q * C
    rng = np.random.default_rng(args.seed)
    flat = rng.choice(n_pairs, size=min(args.pot_pairs, n_pairs), replace=False)
    pairs = np.stack([flat // C, flat % C], axis=1)
    U64, V64 = U.double().numpy(), V.double().numpy()

    kw = dict(
        eps=args.eps,
        tol=args.tol,
        n_iters=args.max_iter,
        check_every=args.check_every,
        chunk_size=args.chunk_size or None,
    )

    def batched():
        with torch.no_grad():
            return ot_sim(U[:, None], V[None], **kw)

    warnings.filterwarnings("ignore", module="ot")
    ot_sim(U[:4, None], V[None], **kw)  # warm-up
    pot_loop(U64, V64, pairs[:20], args)  # warm-up
    t_batched, t_pot, t_sim = [], [], []
    for _ in range(max(1, args.repeats)):
        t0 = time.perf_counter()
        sims = batched()
        t_batched.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        pot_sims = pot_loop(U64, V64, pairs, args)
        t_pot.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        with torch.no_grad():
            similarity(U[:, None], V[None])
        t_sim.append(time.perf_counter() - t0)

    batched_seconds = min(t_batched)
    pot_per_pair = min(t_pot) / len(pairs)
    pot_total = pot_per_pair * n_pairs
    ours = sims[torch.as_tensor(pairs[:, 0]), torch.as_tensor(pairs[:, 1])].double().numpy()
    max_abs_diff = float(np.abs(ours - pot_sims).max())

    # Untimed: iterations used by each side (ours: one chunk's worth of pairs).
    sub = pairs[: min(len(pairs), args.chunk_size or 4096)]
    S_sub = similarity(U[torch.as_tensor(sub[:, 0])], V[torch.as_tensor(sub[:, 1])])
    _, info = sinkhorn_log(
        1 - S_sub,
        torch.full((T,), 1 / T),
        torch.full((M,), 1 / M),
        args.eps,
        n_iters=args.max_iter,
        tol=args.tol,
        check_every=args.check_every,
        return_info=True,
    )
    pot_it = pot_iterations(U64, V64, pairs[:200], args)

    result = {
        "n_pairs": n_pairs,
        "batched_seconds": batched_seconds,
        "pot_seconds_per_pair": pot_per_pair,
        "pot_seconds_extrapolated": pot_total,
        "speedup": pot_total / batched_seconds,
        "max_abs_diff": max_abs_diff,
        "eps": args.eps,
        "tol": args.tol,
        "max_iter": args.max_iter,
        "torch_threads": torch.get_num_threads(),
        "pot_pairs_timed": len(pairs),
        "pot_method": args.pot_method,
        "shape": {"queries": Q, "classes": C, "frames": T, "descriptions": M, "dim": args.dim},
        "chunk_size": args.chunk_size or "auto",
        "check_every": args.check_every,
        "repeats": args.repeats,
        "batched_seconds_all": t_batched,
        "pot_seconds_timed_all": t_pot,
        "similarity_seconds": min(t_sim),
        "batched_minus_similarity_seconds": batched_seconds - min(t_sim),
        "batched_sinkhorn_iters": info["n_iters"],
        "batched_absorptions": info["n_absorb"],
        "pot_iters_mean": float(np.mean(pot_it)),
        "pot_iters_max": int(np.max(pot_it)),
        "similarity_range": [float(S_sub.min()), float(S_sub.max())],
        "dtype_batched": "float32",
        "dtype_pot": "float64",
        "cpu_count": os.cpu_count(),
        "device": "cpu",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "load_avg_1min": os.getloadavg()[0],
    }
    try:
        import ot

        result["pot"] = ot.__version__
    except Exception:  # pragma: no cover
        pass
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"ot_speed: {n_pairs} pairs batched {batched_seconds:.2f}s vs POT "
        f"{pot_per_pair * 1e6:.0f} us/pair x {n_pairs} = {pot_total:.1f}s (timed on {len(pairs)}) "
        f"-> speedup {pot_total / batched_seconds:.1f}x, max|diff| {max_abs_diff:.2e} "
        f"[eps {args.eps}, tol {args.tol}, {torch.get_num_threads()} threads]"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
