"""Tip-Adapter (Zhang et al., ECCV 2022) and Tip-Adapter-F on cached audio features.

    z = s · a Wᵀ  +  α · exp(-β (1 - a Kᵀ)) Y          (zero-shot term only with a text tower)

K are the support clip embeddings (centred on the support mean for audio-only backbones,
where no joint space must be kept). Tip-Adapter-F learns K (initialised from the support)
with cross-entropy on augmented support features. α, β and the number of epochs are chosen
by cross-validation on the support set, never on the test set (the original code picks
them on the test set). A one-value grid (``alphas`` and ``betas`` both, or ``epoch_grid``)
is a fixed value, not cross-validated (also with one shot): that is how ``held_out_params``
pins a fitted model's choices.
"""

from __future__ import annotations

import torch

from mgcl.methods.augment import augment_clip_and_mask
from mgcl.methods.base import Method
from mgcl.methods.common import cache_logits, centre, class_text_weights, one_hot, zero_shot_logits
from mgcl.methods.optim import CosineAdamW
from mgcl.methods.selection import grid, select, shot_folds
from mgcl.types import AudioFeatures, TextFeatures, l2_normalize

LOGIT_SCALE = 100.0


class TipAdapter(Method):
    name = "tip_adapter"

    def __init__(
        self,
        *,
        betas: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0),
        alphas: tuple[float, ...] = (0.1, 0.3, 1.0, 3.0, 10.0),
        default_beta: float = 4.0,
        default_alpha: float = 1.0,
    ):
        self.betas = betas
        self.alphas = alphas
        self.default_beta = default_beta
        self.default_alpha = default_alpha

    # the audio side of the cache: centred without text, raw in the joint space with text
    def _keys(self, clip: torch.Tensor) -> torch.Tensor:
        return clip if self.text_weights_ is not None else centre(clip, self.mean_)

    def _zero_shot(self, clip: torch.Tensor) -> torch.Tensor:
        if self.text_weights_ is None:
            return torch.zeros(clip.shape[0], self.n_classes_)
        return zero_shot_logits(clip, self.text_weights_, LOGIT_SCALE)

    def _setup(self, support: AudioFeatures, labels: torch.Tensor, text: TextFeatures | None) -> None:
        self.mean_ = support.clip.mean(0)
        self.text_weights_ = class_text_weights(text.prompts, text.descriptions) if text is not None else None
        self.keys_ = self._keys(support.clip)
        self.values_ = one_hot(labels, self.n_classes_)

    def _choose(self, support: AudioFeatures, labels: torch.Tensor) -> None:
        """α, β by leave-one-shot-out on the support (defaults with one shot; one-value grids: fixed)."""
        alphas = tuple(self.alphas) if self.text_weights_ is not None else (1.0,)
        if len(alphas) == 1 and len(tuple(self.betas)) == 1:
            self.alpha_, self.beta_ = float(alphas[0]), float(tuple(self.betas)[0])
            return
        folds = shot_folds(labels)
        if not folds:
            self.alpha_, self.beta_ = float(self.default_alpha), float(self.default_beta)
            return
        sim = self.keys_ @ self.keys_.T
        zs = self._zero_shot(support.clip)

        def evaluate(p, held):
            s = sim[held][:, ~held]
            return zs[held] + p["alpha"] * cache_logits(s, self.values_[~held], p["beta"])

        best, _ = select(grid(alpha=alphas, beta=self.betas), evaluate, labels, folds)
        self.alpha_, self.beta_ = float(best["alpha"]), float(best["beta"])

    def _fit(self, support: AudioFeatures, labels: torch.Tensor, text=None) -> None:
        self._setup(support, labels, text)
        self._choose(support, labels)

    def held_out_params(self) -> dict:
        """The chosen α, β as one-value grids."""
        self.check_fitted()
        return {"alphas": (float(self.alpha_),), "betas": (float(self.beta_),)}

    def _logits(self, query: AudioFeatures) -> torch.Tensor:
        q = self._keys(query.clip)
        return self._zero_shot(query.clip) + self.alpha_ * cache_logits(q @ self.keys_.T, self.values_, self.beta_)


def train_cache_keys(
    keys: torch.Tensor,
    values: torch.Tensor,
    support: AudioFeatures,
    labels: torch.Tensor,
    logits_fn,
    epochs: int,
    lr: float,
    seed: int,
    checkpoints: tuple[int, ...] = (),
    eval_fn=None,
) -> tuple[torch.Tensor, dict[int, float]]:
    """Fine-tune cache keys with cross-entropy on augmented support features.

    ``logits_fn(query_clip, keys)`` -> (B, C). Returns the trained keys and, when
    ``eval_fn(keys) -> accuracy`` is given, the accuracy at each epoch in ``checkpoints``.
    """
    gen = torch.Generator().manual_seed(seed)
    keys = keys.clone().requires_grad_(True)
    opt = CosineAdamW([keys], lr=lr, t_max=max(epochs, 1), weight_decay=0.0)
    scores = {}
    for epoch in range(1, epochs + 1):
        clip, _ = augment_clip_and_mask(support.clip, support.frames, support.frame_mask, gen)
        loss = torch.nn.functional.cross_entropy(logits_fn(clip, keys), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if eval_fn is not None and epoch in checkpoints:
            with torch.no_grad():
                scores[epoch] = eval_fn(keys.detach())
    return keys.detach(), scores


class TipAdapterF(TipAdapter):
    name = "tip_adapter_f"

    def __init__(
        self,
        *,
        betas: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0),
        alphas: tuple[float, ...] = (0.1, 0.3, 1.0, 3.0, 10.0),
        default_beta: float = 4.0,
        default_alpha: float = 1.0,
        epoch_grid: tuple[int, ...] = (0, 10, 25, 50, 100),
        default_epochs: int = 25,
        lr: float = 1e-3,
        seed: int = 0,
    ):
        self.betas = betas
        self.alphas = alphas
        self.default_beta = default_beta
        self.default_alpha = default_alpha
        self.epoch_grid = epoch_grid
        self.default_epochs = default_epochs
        self.lr = lr
        self.seed = seed

    def _train_logits(self, q_clip: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        q = self._keys(q_clip)
        k = keys if self.text_weights_ is not None else l2_normalize(keys)
        return self._zero_shot(q_clip) + self.alpha_ * cache_logits(q @ k.T, values, self.beta_)

    def _fit(self, support: AudioFeatures, labels: torch.Tensor, text=None) -> None:
        self._setup(support, labels, text)
        self._choose(support, labels)
        fixed = sorted({int(e) for e in self.epoch_grid})
        folds = shot_folds(labels, max_folds=3, seed=self.seed) if len(fixed) != 1 else []
        if len(fixed) == 1:  # a one-value grid: those epochs
            self.epochs_ = fixed[0]
        elif folds:  # epochs by cross-validation: train on the other folds, score the held-out one
            totals = dict.fromkeys(self.epoch_grid, 0.0)
            for held in folds:
                tr = (~held).nonzero().flatten()
                sub, v = support[tr], self.values_[tr]
                held_q = support.clip[held]

                def eval_fn(k, v=v, held_q=held_q, held=held):
                    pred = self._train_logits(held_q, k, v).argmax(1)
                    return (pred == labels[held]).float().mean().item()

                totals[0] += eval_fn(self.keys_[tr])
                _, scores = train_cache_keys(
                    self.keys_[tr],
                    v,
                    sub,
                    labels[tr],
                    lambda q, k, v=v: self._train_logits(q, k, v),
                    max(self.epoch_grid),
                    self.lr,
                    self.seed,
                    tuple(e for e in self.epoch_grid if e),
                    eval_fn,
                )
                for e, s in scores.items():
                    totals[e] += s
            self.epochs_ = int(max(sorted(totals), key=lambda e: (round(totals[e], 6), -e)))
        else:
            self.epochs_ = int(self.default_epochs)
        self.keys_, _ = train_cache_keys(
            self.keys_,
            self.values_,
            support,
            labels,
            lambda q, k: self._train_logits(q, k, self.values_),
            self.epochs_,
            self.lr,
            self.seed,
        )

    def held_out_params(self) -> dict:
        """The chosen α, β and epochs as one-value grids."""
        return {**super().held_out_params(), "epoch_grid": (int(self.epochs_),)}

    def _logits(self, query: AudioFeatures) -> torch.Tensor:
        return self._train_logits(query.clip, self.keys_, self.values_)
