"""The Treff adapter (Liang et al., "Adapting Language-Audio Models as Few-Shot Audio
Learners", Interspeech 2023) on cached features.

A cross-attention linear model (CALM) lets the query clip attend to the support clips and
reads out their labels; with a text tower the zero-shot term is added:

    z(a) = s · a Wₜᵀ  +  α · softmax_i(γ · (a W) k_iᵀ) Y              a (D,), K (N, D), Y (N, C)

Wₜ are the class text weights (prompt + descriptions, as for Tip-Adapter), ``s = 100``.
W (D × D) starts at the identity, so the adapter works without any training (the paper's
training-free Treff); the fine-tuned Treff trains W with cross-entropy on the support set,
where each support clip attends to the *other* support clips (its own key is masked out,
otherwise W = I already "solves" the task by looking at itself), plus λ ||W − I||²
pulling W back towards the training-free solution.

Model selection never looks at the query set: α and γ are chosen with W = I by
leave-one-shot-out cross-validation inside the support (``shot_folds``); the number of
epochs by training W on the other folds and scoring the held-out clips at the epochs of
``epoch_grid`` (ties go to fewer epochs). With one shot per class there are no folds: α
and γ keep their defaults and W stays the identity (a clip whose own key is masked out
has no other clip of its class to attend to, so self-masked training has nothing to learn).
A one-value grid (``alphas`` and ``gammas`` both, or ``epoch_grid``) is a fixed value, not
cross-validated (also with one shot): that is how ``held_out_params`` pins a fitted
model's choices.

Audio-only backbones keep only the attention term. Keys and queries are then centred on
the support mean (``normalise(a − μ)``, as in the other cache methods), and α acts as an
inverse temperature: it cannot change the arg-max, so cross-validation picks it by the
held-out log-likelihood (``default_alpha_audio`` with one shot).

Written from the paper's idea, not its code. Reproduced: the CALM read-out (attention of
the query over the support clips, their one-hot labels as values), W initialised at the
identity (training-free Treff), fine-tuning W alone with the frozen zero-shot CLAP logits
added, each support clip attending to the other support clips during training. Not
reproduced: the paper's optimiser, learning rate, epoch budget and hyper-parameter values
(ours: full-batch Adam, α, γ and epochs chosen on the support only) and any augmentation
(none here). Our additions: the explicit temperature γ, the ||W − I||² penalty, centring
for audio-only backbones. With a text tower the query and keys stay in the raw joint space.
"""

from __future__ import annotations

import torch

from mgcl.errors import MgclError
from mgcl.methods.base import Method
from mgcl.methods.common import centre, class_text_weights, one_hot, zero_shot_logits
from mgcl.methods.optim import CosineAdamW
from mgcl.methods.selection import fold_score, grid, select, shot_folds
from mgcl.types import AudioFeatures, TextFeatures

LOGIT_SCALE = 100.0


def calm_logits(
    q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, w: torch.Tensor, gamma: float, self_mask: bool = False
) -> torch.Tensor:
    """Cross-attention read-out softmax_i(γ · (q W) k_iᵀ) Y.

    q (Q, D), keys (N, D), values (N, C), W (D, D) -> (Q, C), rows sum to 1.
    ``self_mask``: query j is support clip j (Q = N); its own key is left out.
    """
    scores = gamma * (q @ w) @ keys.T
    if self_mask:
        eye = torch.eye(scores.shape[0], scores.shape[1], dtype=torch.bool)
        scores = scores.masked_fill(eye, float("-inf"))
    return torch.softmax(scores, dim=1) @ values


class Treff(Method):
    """Treff adapter: zero-shot + α · CALM; W fine-tuned on the self-masked support.

    gammas, alphas:       candidate γ (attention inverse temperature) and α (CALM weight)
                          for leave-one-shot-out cross-validation with W = I.
    default_gamma, default_alpha, default_alpha_audio:
                          γ and α with one shot (no folds); α without a text tower
                          is ``default_alpha_audio`` (there it only sets the confidence).
    epoch_grid:           candidate numbers of full-batch epochs for W (0 = training-free).
    lr, reg:              Adam learning rate (cosine schedule) and weight of ||W − I||².
    seed:                 seed of the epoch-selection folds.

    Learned: ``alpha_``, ``gamma_``, ``epochs_``, ``weight_`` (D, D), ``keys_`` (N, D),
    ``values_`` (N, C), ``mean_`` (D,), ``text_weights_`` (C, D) or None.
    """

    name = "treff"

    def __init__(
        self,
        *,
        gammas: tuple[float, ...] = (1.0, 3.0, 10.0, 30.0, 100.0),
        alphas: tuple[float, ...] = (0.3, 1.0, 3.0, 10.0, 30.0, 100.0),
        default_gamma: float = 10.0,
        default_alpha: float = 1.0,
        default_alpha_audio: float = 10.0,
        epoch_grid: tuple[int, ...] = (0, 10, 25, 50, 100),
        lr: float = 3e-2,
        reg: float = 1e-2,
        seed: int = 0,
    ):
        self.gammas = gammas
        self.alphas = alphas
        self.default_gamma = default_gamma
        self.default_alpha = default_alpha
        self.default_alpha_audio = default_alpha_audio
        self.epoch_grid = epoch_grid
        self.lr = lr
        self.reg = reg
        self.seed = seed

    # ---------------------------------------------------------------- pieces
    def _embed(self, clip: torch.Tensor) -> torch.Tensor:
        """Query/key side: raw in the joint space with text, centred without."""
        return clip if self.text_weights_ is not None else centre(clip, self.mean_)

    def _zero_shot(self, clip: torch.Tensor) -> torch.Tensor:
        if self.text_weights_ is None:
            return torch.zeros(clip.shape[0], self.n_classes_)
        return zero_shot_logits(clip, self.text_weights_, LOGIT_SCALE)

    def _z(
        self,
        zs: torch.Tensor,
        q: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        w: torch.Tensor,
        alpha: float,
        gamma: float,
        self_mask: bool = False,
    ) -> torch.Tensor:
        return zs + alpha * calm_logits(q, keys, values, w, gamma, self_mask)

    # ---------------------------------------------------------------- selection
    def _choose(self, zs: torch.Tensor, labels: torch.Tensor) -> None:
        """α, γ with W = I by leave-one-shot-out on the support (defaults with one shot;
        one-value grids: fixed)."""
        alphas, gammas = tuple(self.alphas), tuple(self.gammas)
        if len(alphas) == 1 and len(gammas) == 1:
            self.alpha_, self.gamma_ = float(alphas[0]), float(gammas[0])
            return
        folds = shot_folds(labels)
        if not folds:
            self.gamma_ = float(self.default_gamma)
            self.alpha_ = float(self.default_alpha if self.text_weights_ is not None else self.default_alpha_audio)
            return
        sim = self.keys_ @ self.keys_.T

        def evaluate(p, held):
            att = torch.softmax(p["gamma"] * sim[held][:, ~held], dim=1) @ self.values_[~held]
            return zs[held] + p["alpha"] * att

        best, _ = select(grid(alpha=self.alphas, gamma=self.gammas), evaluate, labels, folds)
        self.alpha_, self.gamma_ = float(best["alpha"]), float(best["gamma"])

    def _train(
        self,
        zs: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        labels: torch.Tensor,
        epochs: int,
        checkpoints: tuple[int, ...] = (),
        eval_fn=None,
    ) -> tuple[torch.Tensor, dict]:
        """W from the identity: full-batch Adam on CE(zs + α·CALM(self-masked)) + λ||W − I||²."""
        eye = torch.eye(keys.shape[1])
        w = eye.clone().requires_grad_(True)
        scores = {}
        if epochs > 0 and torch.bincount(labels).min() >= 2:  # else nothing to learn
            opt = CosineAdamW([w], lr=self.lr, t_max=epochs, weight_decay=0.0)  # = Adam: no decay
            for epoch in range(1, epochs + 1):
                with torch.enable_grad():
                    z = self._z(zs, keys, keys, values, w, self.alpha_, self.gamma_, self_mask=True)
                    loss = torch.nn.functional.cross_entropy(z, labels) + self.reg * (w - eye).pow(2).sum()
                    opt.zero_grad()
                    loss.backward()
                opt.step()
                if eval_fn is not None and epoch in checkpoints:
                    scores[epoch] = eval_fn(w.detach())
        elif eval_fn is not None:  # untrained: every checkpoint scores as the identity
            s = eval_fn(eye)
            scores = dict.fromkeys(checkpoints, s)
        return w.detach(), scores

    def _choose_epochs(self, zs: torch.Tensor, labels: torch.Tensor) -> int:
        """Epochs by cross-validation: train W on the other folds, score the held-out clips
        (a one-value ``epoch_grid``: that value)."""
        given = sorted({int(e) for e in self.epoch_grid})
        if len(given) == 1:
            return given[0]
        folds = shot_folds(labels, max_folds=3, seed=self.seed)
        grid_ = sorted(set(given) | {0})
        if not folds or len(grid_) == 1:
            return 0
        totals = dict.fromkeys(grid_, 0.0)
        for held in folds:
            tr = ~held

            def eval_fn(w, held=held, tr=tr):
                z = self._z(zs[held], self.keys_[held], self.keys_[tr], self.values_[tr], w, self.alpha_, self.gamma_)
                return fold_score(z, labels[held])[0]

            totals[0] += eval_fn(torch.eye(self.dim_))
            _, scores = self._train(
                zs[tr], self.keys_[tr], self.values_[tr], labels[tr], max(grid_), tuple(e for e in grid_ if e), eval_fn
            )
            for e, s in scores.items():
                totals[e] += s
        return int(max(grid_, key=lambda e: (round(totals[e], 6), -e)))

    # ---------------------------------------------------------------- fit / logits
    def _fit(self, support: AudioFeatures, labels: torch.Tensor, text: TextFeatures | None = None) -> None:
        if text is not None and len(text.prompts) != self.n_classes_:
            raise MgclError(f"text features cover {len(text.prompts)} classes, the labels {self.n_classes_}")
        self.mean_ = support.clip.mean(0)
        self.text_weights_ = class_text_weights(text.prompts, text.descriptions) if text is not None else None
        self.keys_ = self._embed(support.clip)
        self.values_ = one_hot(labels, self.n_classes_)
        zs = self._zero_shot(support.clip)
        self._choose(zs, labels)
        self.epochs_ = self._choose_epochs(zs, labels)
        self.weight_, _ = self._train(zs, self.keys_, self.values_, labels, self.epochs_)

    def held_out_params(self) -> dict:
        """The chosen α, γ and epochs as one-value grids."""
        self.check_fitted()
        return {"alphas": (float(self.alpha_),), "gammas": (float(self.gamma_),), "epoch_grid": (int(self.epochs_),)}

    def _logits(self, query: AudioFeatures) -> torch.Tensor:
        return self._z(
            self._zero_shot(query.clip),
            self._embed(query.clip),
            self.keys_,
            self.values_,
            self.weight_,
            self.alpha_,
            self.gamma_,
        )
