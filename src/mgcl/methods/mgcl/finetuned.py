"""``mgcl_f``: MGCL fine-tuned on the support's cached features (see :class:`MGCLF`)."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, fields

import torch

from mgcl.errors import MgclError
from mgcl.methods.augment import augment_clip_and_mask
from mgcl.methods.base import as_tuple
from mgcl.methods.baselines.linear_probe import averaged_logistic
from mgcl.methods.common import branch_spread, cache_logits, centre, zero_shot_logits
from mgcl.methods.losses import info_nce, weighted_cross_entropy
from mgcl.methods.mgcl.branches import BRANCHES, LOGIT_SCALE, SEGMENT, TEXT_BRANCHES, fine_text_logits
from mgcl.methods.mgcl.training_free import MGCL
from mgcl.methods.optim import CosineAdamW
from mgcl.methods.selection import fold_score, shot_folds
from mgcl.ot import ot_sim
from mgcl.types import DEFAULT_VIEWS, AudioFeatures, Concepts, SupportViews, TextFeatures, l2_normalize

#: Initial branch weights of mgcl_f (the fine frame-prototype branch starts low: it is the
#: weakest alone at few shots). Set once on UrbanSound8K folds 1 and 2 against each other;
#: fold 10, the reported test fold, was never used for it.
DEFAULT_BRANCH_WEIGHTS = {"lin": 1.0, "cc": 1.0, "fp": 0.25}


def kmeans_init(x: torch.Tensor, k: int, gen: torch.Generator, iters: int = 10) -> torch.Tensor:
    """k spherical k-means centroids of unit rows x (n, D) -> (k, D) (repeats rows if n < k)."""
    if len(x) <= k:
        return l2_normalize(x[torch.arange(k) % len(x)].clone())
    c = x[torch.randperm(len(x), generator=gen)[:k]].clone()
    for _ in range(iters):
        assign = (x @ c.T).argmax(1)
        counts = torch.bincount(assign, minlength=k).tolist()
        for j in range(k):
            if counts[j]:
                c[j] = x[assign == j].mean(0)
        c = l2_normalize(c)
    return c


def one_standard_error_choice(accuracy: dict, n: int, complexity, one_se: bool = True):
    """The simplest candidate whose held-out accuracy is within one standard error of the best.

    accuracy: {candidate: accuracy in [0, 1] over n held-out clips}; complexity(candidate)
    orders candidates (smaller = simpler). SE = sqrt(p*(1 - p*) / n) of the best accuracy p*
    (Breiman et al. 1984). ``one_se=False``: the best, ties to the simplest.
    """
    best = max(accuracy.values())
    margin = math.sqrt(best * (1.0 - best) / max(n, 1)) if one_se else 0.0
    eligible = [k for k, a in accuracy.items() if a >= best - margin - 1e-9]
    return min(eligible, key=complexity)


def one_view_per_clip(source: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """One view drawn at random for every clip that has views: source (V,) -> indices into it."""
    if len(source) == 0:
        return torch.zeros(0, dtype=torch.long)
    order = torch.argsort(source.double() * 2 + torch.rand(len(source), generator=gen, dtype=torch.float64))
    first = torch.ones(len(order), dtype=torch.bool)
    first[1:] = source[order][1:] != source[order][:-1]
    return order[first]


@dataclass
class View:
    """Everything the fine-tuned branches read of a batch, computed once per batch.

    clip (B, D) raw (joint space), z (B, D) centred clip, frames (B, T, D) raw,
    cframes (B, T, D) centred frames, mask (B, T), score (B, T) saliency logits τ||F − μ||.
    Augmentation changes only clip, z and mask.
    """

    clip: torch.Tensor
    z: torch.Tensor
    frames: torch.Tensor
    cframes: torch.Tensor
    mask: torch.Tensor
    score: torch.Tensor

    @property
    def weights(self) -> torch.Tensor:
        """Saliency marginals softmax_t(score) over the kept frames.  (B, T)"""
        return torch.softmax(self.score.masked_fill(~self.mask, float("-inf")), dim=1).nan_to_num(0.0)

    def rows(self, idx: torch.Tensor, out: View | None = None) -> View:
        """The rows ``idx`` of every field; written into ``out``'s tensors when given (same
        shapes). A trainer reuses one ``out`` every epoch: a fresh gather of the frames would
        allocate (and page-fault) ~100 MB per step at C=50, K=16."""
        if out is None:
            return View(*(getattr(self, f.name)[idx] for f in fields(self)))
        for f in fields(self):
            torch.index_select(getattr(self, f.name), 0, idx, out=getattr(out, f.name))
        return out


class MGCLF(MGCL):
    """Fine-tuned MGCL: the training-free model's branches with learnable state, trained
    on augmented support features with cross-entropy + multi-grained contrast.

    Learnable (backbone frozen): cache keys K (init: support clips), a linear head on the
    centred clip (init: the logistic-regression solution averaged over ``head_c_grid``,
    :func:`~mgcl.methods.baselines.linear_probe.averaged_logistic`), class frame prototypes P_c (m per class, init:
    spherical k-means of the class's support frames) matched to frames by OT (the fine,
    audio-side concept), residual class text embeddings, and one weight per branch.

        z = Σ_b α_b z_b / σ_b,   b in {lin, cc, fp, zs, ft, gc}
        loss = CE(z, y) + λ [ InfoNCE(ã, W) + InfoNCE(ot_sim(F̃, P), ·) + InfoNCE(a, g) ]

    coarse contrast: clip vs class embeddings W (text weights, or the head's prototypes);
    fine contrast: OT similarity of a clip's frames to each class's frame prototypes;
    instance contrast (with captions): clip vs its own caption against the others'.
    The number of epochs and the weights of the cache and frame-prototype branches are
    chosen by cross-validation on the support (leave-one-shot-out folds, state initialised
    on the training folds only); with one shot per class, ``default_epochs`` and the
    initial weights (DEFAULT_BRANCH_WEIGHTS). Among the candidates within one standard
    error of the best cross-validated accuracy the simplest is taken (fewest epochs, then the
    least weight on the cache and frame branches; ``cv_rule="best"`` takes the best): with
    a few held-out clips per class the differences between candidates are mostly noise.
    A one-value ``epoch_grid`` skips the cross-validation (``default_epochs``, the trained
    branch weights kept unless ``final_weights`` are given); :meth:`held_out_params` pins a
    fitted model's choices that way.

    Audio views (``augment``, :mod:`mgcl.audio.views`): when ``fit`` gets views of the
    support clips re-embedded by the backbone, the head is initialised on the clips and all
    their views, and every epoch trains on the clips plus one view of each, drawn at random;
    in both, a view's row weighs ``view_weight`` (default None: 1 / K_c, the class's number
    of support clips, :func:`~mgcl.methods.common.view_weights` — views stand in for shots
    that are missing, so their say shrinks as real shots accumulate). Cache keys and frame
    prototypes stay the clips' own; a cross-validation fold holds a clip out together with
    its views.

    Parameters (keyword-only, stored as given; checked and converted at ``fit``): those of
    :class:`MGCL` (``saliency`` 4 here, ``view_weight`` None), and

    losses:               terms of the loss, of ("ce", "coarse", "fine", "instance").
    contrast_weight:      λ;  temperature: the InfoNCE temperature.
    frame_prototypes:     m, frame prototypes per class.
    epoch_grid, default_epochs:
                          epochs tried by cross-validation / used with one shot.
    lr, weight_decay:     AdamW (cosine schedule, full batch).
    branch_weights:       initial α per trained branch (None: DEFAULT_BRANCH_WEIGHTS).
    weight_grid:          α of the cache branch tried by cross-validation (the frame-prototype
                          branch: a quarter of each); empty: no weight search.
    head_c_grid:          inverse regularisation strengths the head's initial solution averages.
    final_weights:        {branch: α_b} set after training instead of the weights chosen on
                          ``weight_grid`` (and the only candidate when epochs are
                          cross-validated); None: chosen (trained ones with one shot).
    cv_rule:              "one_se" or "best" (above).
    seed:                 seed of the folds, the k-means initialisation and the augmentation.

    Learned: that of :class:`MGCL` (its α, β, σ chosen training-free), ``frame_mean_`` (D,),
    ``fspread_`` (σ_b of the trained branches), ``epochs_``, ``params_`` (the trained state:
    ``head_w``, ``head_b``, ``frame_protos``, ``keys``, ``log_alpha``, ``text_res``),
    ``branch_weights_`` {branch: α_b} and ``chosen_weights_`` (the weights set after training,
    cross-validated or ``final_weights``; None when the trained ones are kept).
    """

    name = "mgcl_f"

    def __init__(
        self,
        *,
        branches: tuple[str, ...] = BRANCHES,
        ablate: tuple[str, ...] = (),
        eps: float = 0.1,
        saliency: float = 4.0,
        topk: int = 8,
        alphas: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0, 2.0),
        betas: tuple[float, ...] = (2.0, 4.0, 8.0, 16.0, 32.0),
        default_alpha: dict | None = None,
        default_beta: dict | None = None,
        cv_rounds: int = 2,
        losses: tuple[str, ...] = ("ce", "coarse", "fine", "instance"),
        contrast_weight: float = 0.5,
        temperature: float = 0.1,
        frame_prototypes: int = 4,
        epoch_grid: tuple[int, ...] = (0, 10, 25, 50),
        default_epochs: int = 25,
        lr: float = 5e-3,
        weight_decay: float = 1e-4,
        branch_weights: dict | None = None,  # initial α per trained branch; default below
        weight_grid: tuple[float, ...] = (0.0, 0.5, 1.0),
        head_c_grid: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0),
        cv_rule: str = "one_se",
        augment: tuple[str, ...] = DEFAULT_VIEWS,
        seed: int = 0,
        segment: tuple[float, float] | None = SEGMENT,
        view_weight: float | None = None,  # views weigh 1 / K_c each in the head and the loss
        final_weights: dict | None = None,
    ):
        self.branches = branches
        self.ablate = ablate
        self.eps = eps
        self.saliency = saliency
        self.topk = topk
        self.alphas = alphas
        self.betas = betas
        self.default_alpha = default_alpha
        self.default_beta = default_beta
        self.cv_rounds = cv_rounds
        self.losses = losses
        self.contrast_weight = contrast_weight
        self.temperature = temperature
        self.frame_prototypes = frame_prototypes
        self.epoch_grid = epoch_grid
        self.default_epochs = default_epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.branch_weights = branch_weights
        self.weight_grid = weight_grid
        self.head_c_grid = head_c_grid
        self.cv_rule = cv_rule
        self.augment = augment
        self.seed = seed
        self.segment = segment
        self.view_weight = view_weight
        self.final_weights = final_weights

    def _check_params(self) -> None:
        """MGCL's checks (:meth:`MGCL._check_params`), after those of the fine-tuning's own
        hyper-parameters (``_fit`` runs them first, through ``MGCL._fit``)."""
        grid = as_tuple(self.head_c_grid, "head_c_grid")
        if not grid or any(c <= 0 for c in grid):
            raise MgclError(f"head_c_grid must be positive numbers, got {list(grid)}")
        if self.cv_rule not in ("one_se", "best"):
            raise MgclError(f"cv_rule must be 'one_se' or 'best', got '{self.cv_rule}'")
        for name in ("losses", "epoch_grid", "weight_grid"):
            as_tuple(getattr(self, name), name)
        fw = self.final_weights
        if fw is not None and not (
            isinstance(fw, dict)
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in fw.values())
        ):
            raise MgclError(f"final_weights must be {{branch: weight >= 0}} or null, got {fw!r}")
        super()._check_params()

    # ---------------------------------------------------------------- parameters
    def _view(self, feats: AudioFeatures) -> View:
        return View(
            clip=feats.clip,
            z=centre(feats.clip, self.mean_),
            frames=feats.frames,
            cframes=centre(feats.frames, self.frame_mean_) * feats.frame_mask.unsqueeze(-1),
            mask=feats.frame_mask,
            score=self.saliency * (feats.frames - self.frame_mean_).norm(dim=-1),
        )

    def _augment(self, v: View, gen: torch.Generator) -> View:
        clip, mask = augment_clip_and_mask(v.clip, v.frames, v.mask, gen)
        return View(clip, centre(clip, self.mean_), v.frames, v.cframes, mask, v.score)

    def _init_params(
        self, v: View, labels: torch.Tensor, text: TextFeatures | None, views: SupportViews | None = None
    ) -> dict:
        """Initial learnable state from (part of) the support ``v`` (the head: from its views too)."""
        gen = torch.Generator().manual_seed(self.seed)
        protos = torch.stack(
            [
                kmeans_init(v.cframes[labels == c][v.mask[labels == c]], self.frame_prototypes, gen)
                for c in range(self.n_classes_)
            ]
        )
        z = v.z
        x, y, weight = z, labels, None
        if views is not None:
            x = torch.cat([z, centre(views.features.clip, self.mean_)])
            y = torch.cat([labels, labels[views.source]])
            weight = self._row_weights(labels, views).numpy()
        w, b = averaged_logistic(x.numpy(), y.numpy(), tuple(self.head_c_grid), self.n_classes_, weight)
        params = {
            "head_w": torch.from_numpy(w),
            "head_b": torch.from_numpy(b),
            "frame_protos": protos,
            "keys": z.clone(),
            "log_alpha": torch.tensor([math.log(max(a, 1e-6)) for a in self._init_weights().values()]),
        }
        if text is not None:
            params["text_res"] = torch.zeros_like(self.text_weights_)
        return params

    def _initial_weight(self, branch: str) -> float:
        """α_b before training: ``branch_weights`` if given, else DEFAULT_BRANCH_WEIGHTS."""
        weights = self.branch_weights if self.branch_weights is not None else DEFAULT_BRANCH_WEIGHTS
        return float(weights.get(branch, 1.0))

    def _trained_branches(self) -> list[str]:
        audio = ["lin"] + [b for b in ("cc",) if b in self.branches_] + (["fp"] if "fc" in self.branches_ else [])
        return audio + [b for b in self.branches_ if b in TEXT_BRANCHES]

    # ---------------------------------------------------------------- forward
    def _terms(
        self, p: dict, v: View, values: torch.Tensor, caption_keys: torch.Tensor | None = None
    ) -> tuple[dict, dict]:
        """Branch logits {b: (B, C)} and the similarities the contrast losses use.

        ``values`` (N', C) and ``caption_keys`` (N', D) are those of the cache in use (the
        whole support, or the training folds during cross-validation).
        """
        clip, frames, mask, z_clip = v.clip, v.frames, v.mask, v.z
        head = l2_normalize(p["head_w"])
        terms = {"lin": z_clip @ p["head_w"].T + p["head_b"]}
        if "cc" in self.branches_:
            terms["cc"] = cache_logits(z_clip @ l2_normalize(p["keys"]).T, values, self.beta_.get("cc", 8.0))
        extras = {"coarse": z_clip @ head.T}
        if "fp" in self._trained_branches():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                sim = ot_sim(
                    v.cframes[:, None],
                    l2_normalize(p["frame_protos"])[None],
                    mask[:, None],
                    None,
                    a=v.weights[:, None],
                    eps=self.eps,
                    tol=1e-3,
                    n_iters=100,
                )
            terms["fp"] = LOGIT_SCALE / 10 * sim
            extras["fine"] = sim
        if "text_res" in p:
            w = l2_normalize(self.text_weights_ + p["text_res"])
            extras["coarse"] = clip @ w.T
            if "zs" in self.branches_:
                terms["zs"] = zero_shot_logits(clip, w, LOGIT_SCALE)
            if "ft" in self.branches_:
                terms["ft"] = fine_text_logits(frames, mask, self.concepts_, self.concept_mask_, self.eps, LOGIT_SCALE)
            if "gc" in self.branches_:
                keys = self.caption_keys_ if caption_keys is None else caption_keys
                terms["gc"] = cache_logits(clip @ keys.T, values, self.beta_.get("gc", 8.0))
        return terms, extras

    def _forward(
        self, p: dict, v: View, values: torch.Tensor, caption_keys: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict]:
        """z = Σ_b α_b z_b / σ_b  (B, C), and the contrast similarities."""
        terms, extras = self._terms(p, v, values, caption_keys)
        alpha = p["log_alpha"].exp()
        z = sum(alpha[i] * terms[b] / self.fspread_[b] for i, b in enumerate(self._trained_branches()))
        return z, extras

    def _loss(self, p, v: View, labels, values, captions=None, group=None, weight=None) -> torch.Tensor:
        """CE on the combined logits + λ (coarse + fine + instance contrast), each a mean over
        rows weighted by ``weight`` (B,) (None: uniform).

        ``captions`` (N', D): caption embeddings of the support clips in the cache, or None;
        ``group`` (B,): the clip each row is (a view of), the instance-contrast target
        (default: row i is clip i)."""
        z, extras = self._forward(p, v, values, captions)
        losses = tuple(self.losses)
        loss = weighted_cross_entropy(z, labels, weight) if "ce" in losses else z.sum() * 0
        lam = self.contrast_weight
        if "coarse" in losses:
            loss = loss + lam * info_nce(extras["coarse"], labels, self.temperature, weight)
        if "fine" in losses and "fine" in extras:
            loss = loss + lam * info_nce(extras["fine"], labels, self.temperature, weight)
        if "instance" in losses and captions is not None:
            sim = v.clip @ captions.T
            target = torch.arange(len(sim)) if group is None else group
            loss = loss + lam * info_nce(sim, target, self.temperature, weight)
        return loss

    def _rows(self, support: AudioFeatures, labels: torch.Tensor, views: SupportViews | None):
        """Training rows: the N clips, then their views.
        -> (View, labels, group, source or None, row weights (:meth:`_row_weights`) or None)"""
        if views is None:
            return self._view(support), labels, torch.arange(len(support)), None, None
        rows = self._view(AudioFeatures.cat([support, views.features]))
        group = torch.cat([torch.arange(len(support)), views.source])
        return rows, labels[group], group, views.source, self._row_weights(labels, views)

    def _train(
        self,
        p: dict,
        rows: View,
        labels,
        values,
        captions,
        epochs: int,
        checkpoints=(),
        eval_fn=None,
        group=None,
        source=None,
        weight=None,
    ) -> tuple[dict, dict]:
        """AdamW + cosine schedule, ``epochs`` full-batch steps on ``rows`` (the N clips, then
        the views made from clips ``source``, rows weighted by ``weight``): each step sees the
        clips and one random view of each. ``eval_fn(params)`` is recorded at the epochs in
        ``checkpoints``."""
        gen = torch.Generator().manual_seed(self.seed)
        n = len(labels) - (0 if source is None else len(source))
        p = {k: v.clone().requires_grad_(True) for k, v in p.items()}
        opt = CosineAdamW(p.values(), lr=self.lr, t_max=max(epochs, 1), weight_decay=self.weight_decay)
        scores, batch = {}, None
        if eval_fn is not None and 0 in checkpoints:
            scores[0] = eval_fn({k: v.detach() for k, v in p.items()})
        for epoch in range(1, epochs + 1):
            idx = torch.arange(n)
            if source is not None:
                idx = torch.cat([idx, n + one_view_per_clip(source, gen)])
            g = None if group is None else group[idx]
            w = None if weight is None else weight[idx]
            batch = rows.rows(idx, out=batch)  # same size every epoch: one buffer
            loss = self._loss(p, self._augment(batch, gen), labels[idx], values, captions, g, w)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if eval_fn is not None and epoch in checkpoints:
                scores[epoch] = eval_fn({k: v.detach() for k, v in p.items()})
        return {k: v.detach() for k, v in p.items()}, scores

    # ---------------------------------------------------------------- fit
    def _fit(self, support: AudioFeatures, labels: torch.Tensor, text=None, views: SupportViews | None = None) -> None:
        super()._fit(support, labels, text)  # training-free state (keys: the clips only), α/β by CV, σ
        self.frame_mean_ = support.frames[support.frame_mask].mean(0)  # centre of the frames (fp branch)
        captions = getattr(self, "caption_keys_", None)
        view = self._view(support)
        p0 = self._init_params(view, labels, text, views)
        with torch.no_grad():
            terms, _ = self._terms(p0, view, self.values_, captions)
        self.fspread_ = {b: float(branch_spread(t)) for b, t in terms.items()}
        self.epochs_, weights = self._choose_epochs_and_weights(support, view, labels, text, captions, views)
        rows, y_rows, group, source, weight = self._rows(support, labels, views)
        self.params_, _ = self._train(
            p0, rows, y_rows, self.values_, captions, self.epochs_, group=group, source=source, weight=weight
        )
        if self.final_weights is not None:
            weights = self._final_weights()
        if weights is not None:  # the branch weights cross-validation preferred (or given), after training
            self.params_["log_alpha"] = torch.log(
                torch.tensor([max(weights[b], 1e-6) for b in self._trained_branches()])
            )
        self.chosen_weights_ = None if weights is None else {b: float(weights[b]) for b in self._trained_branches()}
        self.branch_weights_ = {b: float(a) for b, a in zip(self._trained_branches(), self.params_["log_alpha"].exp())}

    def _final_weights(self) -> dict:
        """``final_weights`` for every trained branch (a branch it does not name: its initial weight)."""
        return {b: float(self.final_weights.get(b, self._initial_weight(b))) for b in self._trained_branches()}

    def held_out_params(self) -> dict:
        """MGCL's pinned α, β, and the chosen epochs (a one-value ``epoch_grid``) and branch
        weights (``final_weights``, when some were set after training)."""
        pinned = {**super().held_out_params(), "epoch_grid": (int(self.epochs_),), "default_epochs": int(self.epochs_)}
        chosen = getattr(self, "chosen_weights_", None)
        if chosen is not None:
            pinned["final_weights"] = {b: float(w) for b, w in chosen.items()}
        return pinned

    def _weight_candidates(self) -> list[dict]:
        """Branch weights tried by cross-validation: the head fixed at its initial weight, the
        audio cache and the frame-prototype branch each on a small grid (text branches fixed)."""
        base = self._init_weights()
        weight_grid = tuple(self.weight_grid)
        grids = {"cc": weight_grid, "fp": tuple(w / 4 for w in weight_grid)}
        out = [base]
        for cc in grids["cc"] if "cc" in base else (None,):
            for fp in grids["fp"] if "fp" in base else (None,):
                cand = dict(base)
                if cc is not None:
                    cand["cc"] = cc
                if fp is not None:
                    cand["fp"] = fp
                if cand not in out:
                    out.append(cand)
        return out

    def _choose_epochs_and_weights(
        self,
        support: AudioFeatures,
        view: View,
        labels: torch.Tensor,
        text: TextFeatures | None,
        captions: torch.Tensor | None,
        views: SupportViews | None = None,
    ):
        """Epochs and branch weights by cross-validation: for each leave-one-shot-out fold,
        start from state initialised on the other folds only, train, and score the held-out
        clips at each epoch of ``epoch_grid`` under each weight candidate (the trained branch
        terms are re-weighted, not retrained). ``default_epochs`` and the initial weights with
        one shot per class. A held-out clip's views are held out with it.
        Returns (epochs, weights or None)."""
        epoch_grid = tuple(self.epoch_grid)
        folds = shot_folds(labels, max_folds=3, seed=self.seed) if len(epoch_grid) >= 2 else []
        if not folds:
            return int(self.default_epochs), None
        if self.final_weights is not None:
            candidates = [self._final_weights()]
        else:
            candidates = self._weight_candidates() if tuple(self.weight_grid) else [None]
        correct: dict[tuple[int, int], float] = {}
        branches = self._trained_branches()
        for held in folds:
            tr, te = (~held).nonzero().flatten(), held.nonzero().flatten()
            values = self.values_[tr]
            caps = captions[tr] if captions is not None else None
            v_tr, v_te = view.rows(tr), view.rows(te)
            # nothing is learned from the held-out clips (nor from their views)
            views_tr = views.subset(tr) if views is not None else None
            p_tr = self._init_params(v_tr, labels[tr], text, views_tr)
            rows, y_rows, group, source, weight = self._rows(support[tr], labels[tr], views_tr)

            def eval_fn(p, v_te=v_te, values=values, caps=caps, y=labels[te]):
                terms, _ = self._terms(p, v_te, values, caps)
                scores = []
                for cand in candidates:
                    alpha = p["log_alpha"].exp() if cand is None else torch.tensor([cand[b] for b in branches])
                    z = sum(alpha[i] * terms[b] / self.fspread_[b] for i, b in enumerate(branches))
                    scores.append(fold_score(z, y)[0] * len(y))
                return scores

            _, scores = self._train(
                p_tr,
                rows,
                y_rows,
                values,
                caps,
                max(epoch_grid),
                epoch_grid,
                eval_fn,
                group=group,
                source=source,
                weight=weight,
            )
            for e, per_cand in scores.items():
                for j, sc in enumerate(per_cand):
                    correct[e, j] = correct.get((e, j), 0.0) + sc
        n_held = int(sum(int(h.sum()) for h in folds))
        accuracy = {k: v / n_held for k, v in correct.items()}
        extra = [sum(v for b, v in (c or self._init_weights()).items() if b != "lin") for c in candidates]
        e, j = one_standard_error_choice(
            accuracy, n_held, lambda k: (k[0], extra[k[1]], k[1]), self.cv_rule == "one_se"
        )
        return int(e), candidates[j]

    def _init_weights(self) -> dict:
        return {b: self._initial_weight(b) for b in self._trained_branches()}

    def branch_logits(self, query: AudioFeatures) -> dict[str, torch.Tensor]:
        """Each trained branch's weighted contribution α_b z_b / σ_b: name -> (Q, C); sums to the logits."""
        self.check_fitted()
        terms, _ = self._terms(self.params_, self._view(query), self.values_)
        alpha = self.params_["log_alpha"].exp()
        return {b: alpha[i] * terms[b] / self.fspread_[b] for i, b in enumerate(self._trained_branches())}

    @torch.no_grad()
    def explain_concepts(self, query: AudioFeatures, c: int) -> Concepts | None:
        """The class's learned frame prototypes matched to the query's centred frames (the
        ``fp`` branch, saliency marginal); without that branch, the fine cache's support rows."""
        self.check_fitted()
        if "fp" not in self._trained_branches() or "frame_protos" not in self.params_:
            return super().explain_concepts(query, c)
        v = self._view(query[[0]])
        mask = v.mask[0]
        return Concepts(
            kind="frame prototypes",
            branch="fp",
            vectors=l2_normalize(self.params_["frame_protos"][c]),
            frames=v.cframes[0][mask],
            frame_weights=v.weights[0][mask],
            eps=float(self.eps),
            note="learned frame prototypes of the class (mgcl_f), matched to centred frames",
        )

    def _logits(self, query: AudioFeatures) -> torch.Tensor:
        return self._forward(self.params_, self._view(query), self.values_)[0]
