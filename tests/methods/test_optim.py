"""CosineAdamW takes the same steps as torch.optim.AdamW + CosineAnnealingLR, to the bit."""

from __future__ import annotations

import pytest
import torch

from mgcl.methods.optim import CosineAdamW


def losses(p: dict) -> torch.Tensor:
    return (p["w"] @ p["x"]).square().mean() + p["b"].sin().sum()  # p["unused"] gets no gradient


@pytest.mark.parametrize(("epochs", "weight_decay"), [(7, 1e-4), (1, 0.0), (50, 0.05)])
def test_same_bits_as_torch_optim(epochs, weight_decay):
    g = torch.Generator().manual_seed(epochs)
    start = {k: torch.randn(*s, generator=g) for k, s in {"w": (3, 5), "x": (5, 4), "b": (4,), "unused": (2,)}.items()}
    ours = {k: v.clone().requires_grad_(True) for k, v in start.items()}
    ref = {k: v.clone().requires_grad_(True) for k, v in start.items()}
    opt = CosineAdamW(ours.values(), lr=5e-3, t_max=epochs, weight_decay=weight_decay)
    ref_opt = torch.optim.AdamW(ref.values(), lr=5e-3, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(ref_opt, T_max=epochs)
    for _ in range(epochs):
        opt.zero_grad()
        losses(ours).backward()
        opt.step()
        ref_opt.zero_grad()
        losses(ref).backward()
        ref_opt.step()
        sched.step()
        assert opt.lr == sched.get_last_lr()[0]
        for k in start:
            assert torch.equal(ours[k], ref[k]), k
    assert not torch.equal(ours["w"], start["w"]) and torch.equal(ours["unused"], start["unused"])
