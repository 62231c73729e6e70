"""AdamW with a cosine-annealed learning rate, for the fine-tuned methods' full-batch training.

The same arithmetic, step for step, as ``torch.optim.AdamW`` (its single-tensor path, the
one it takes on CPU) driven by ``torch.optim.lr_scheduler.CosineAnnealingLR`` with
``eta_min = 0``, so a model trains to the same bits (tests/methods/test_optim.py compares
them). It is written out here because the first use of a torch.optim optimizer imports
torch._dynamo: about 2 s of each ``mgcl`` run that fits mgcl_f, on 2 CPU cores.

For each parameter θ with gradient g, at step t = 1, 2, ... with learning rate η_{t-1}:

    θ ← θ (1 − η λ)                                   decoupled weight decay
    m ← m + (1 − β1) (g − m),   v ← β2 v + (1 − β2) g²
    θ ← θ − η / (1 − β1^t) · m / (√v / √(1 − β2^t) + ε)

and the schedule η_0 = lr, η_t = η_{t−1} (1 + cos(π t / T)) / (1 + cos(π (t − 1) / T))
(the recursive form of η_t = lr (1 + cos(π t / T)) / 2). A parameter without a gradient is
left alone (no decay either), as in torch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch


class CosineAdamW:
    """AdamW over ``params`` (leaf tensors), learning rate annealed to 0 over ``t_max`` steps.

    ``zero_grad()`` drops the gradients; ``step()`` updates the parameters, then the rate.
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        lr: float,
        t_max: int,
        weight_decay: float = 1e-2,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ):
        self.params = list(params)
        self.base_lr = self.lr = float(lr)
        self.t_max = int(t_max)
        self.weight_decay = float(weight_decay)
        self.beta1, self.beta2 = (float(b) for b in betas)
        self.eps = float(eps)
        self.t = 0
        self._m: list[torch.Tensor | None] = [None] * len(self.params)
        self._v: list[torch.Tensor | None] = [None] * len(self.params)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.t += 1
        lr, b1, b2, step = self.lr, self.beta1, self.beta2, float(self.t)
        for i, p in enumerate(self.params):
            g = p.grad
            if g is None:
                continue
            if self._m[i] is None:
                self._m[i] = torch.zeros_like(p, memory_format=torch.preserve_format)
                self._v[i] = torch.zeros_like(p, memory_format=torch.preserve_format)
            m, v = self._m[i], self._v[i]
            p.mul_(1 - lr * self.weight_decay)
            m.lerp_(g, 1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            step_size = lr / (1 - b1**step)
            denom = (v.sqrt() / (1 - b2**step) ** 0.5).add_(self.eps)
            p.addcdiv_(m, denom, value=-step_size)
        self.lr = self._next_lr(self.lr, self.t)

    def _next_lr(self, lr: float, t: int) -> float:
        """η_t from η_{t−1} (CosineAnnealingLR's recursive form, eta_min = 0)."""
        big_t = self.t_max
        if (t - 1 - big_t) % (2 * big_t) == 0:
            return lr + self.base_lr * (1 - math.cos(math.pi / big_t)) / 2
        return (1 + math.cos(math.pi * t / big_t)) / (1 + math.cos(math.pi * (t - 1) / big_t)) * (lr - 0.0) + 0.0
