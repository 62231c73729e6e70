"""MGCL: multi-grained correspondence learning (Zhao et al., ACM MM 2024), as built here.

Branches (DESIGN §1), each a small pure function and each switchable by name:

    zs  zero-shot        z = s · a Wᵀ,                 W_c = normalise(mean(p_c, E_c))     text
    cc  coarse cache     z = exp(-β (1 - ã K̃ᵀ)) Y,     K̃ = support clips (+ views)        audio
    fc  fine cache       z = exp(-β_f (1 - ot_sim(F̃, F̃_i)))_i Y                            audio
    ft  fine text (OT)   z_c = s · ot_sim(F, E_c ∪ {p_c})                                  text
    gc  caption cache    z = exp(-β_g (1 - a Gᵀ)) Y,    G = support caption embeddings      text

    z = Σ_b α_b z_b / σ_b        (σ_b: the branch's logit spread on the support, fixed at fit,
                                  floored relative to its size: :func:`~mgcl.methods.common.branch_spread`)

Audio-side branches work on embeddings centred on the support mean (ã = normalise(a - μ),
F̃ likewise with the mean support segment): ReLU features share a large common component
that otherwise dominates every similarity. The fine cache's rows F are ``segment``
windows of frames, max-pooled (:func:`~mgcl.methods.common.segments`; aisfx's single
frames are not embeddings, its max over a network block is). ``segment`` is in seconds
(default 2.2 s every 0.55 s), turned into frames with the features' ``frame_step`` at fit
(``segment_frames_``): 12 every 3 frames of aisfx, 7 every 2 of CLAP, so a 4 s clip has
4 segments with either. Each segment is weighed by its
saliency, softmax_t(τ · ||F_t - μ_F||) (segments far from the average background segment
carry the event; τ = 16 lets about one segment per clip carry the match, which is what an
event at a random onset in a long clip needs), and OT is solved only against each
query's ``topk`` nearest support clips by coarse similarity (the rest fall back to the
coarse similarity), which keeps it fast. ``python benchmarks/fine_vs_coarse.py`` measures
the fine cache against the coarse one on synthetic events in background noise.

Audio views (``augment``, :mod:`mgcl.augment_audio`): when ``fit`` gets the support clips'
views re-embedded by the backbone (noise, low-pass, high-pass by default), each view is one
more key of the coarse and fine caches with its clip's label (Tip-Adapter's augmented
cache; a view's caption is its clip's). N clips with V views -> N + V keys; the centres μ,
μ_F stay the clips' own. ``view_weight`` scales a view's value row (default 1: a view is a
key like its clip; None: 1 / K_c, :func:`~mgcl.methods.common.view_weights`).

Training-free ``mgcl``: the α, β of every active branch are chosen by coordinate ascent
on leave-one-shot-out cross-validation inside the support set (a held-out clip leaves the
cache together with its views); with one shot per class there is no such split and the
defaults hold. ``mgcl_f`` (below) fine-tunes on top.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, fields

import torch

from mgcl.augment_audio import DEFAULT_VIEWS, check_views
from mgcl.backbones.base import AudioFeatures, cat_padded, l2_normalize
from mgcl.errors import MgclError
from mgcl.methods.augment import augment_clip_and_mask
from mgcl.methods.base import Method, SupportViews, TextFeatures
from mgcl.methods.common import (
    branch_spread,
    cache_logits,
    centre,
    class_text_weights,
    one_hot,
    pad_sets,
    segment_frames,
    segments,
    view_weights,
    zero_shot_logits,
)
from mgcl.methods.linear_probe import averaged_logistic
from mgcl.methods.selection import fold_score, shot_folds
from mgcl.ot import ot_sim

BRANCHES = ("zs", "cc", "fc", "ft", "gc")
TEXT_BRANCHES = ("zs", "ft", "gc")
CACHE_BRANCHES = ("cc", "fc", "gc")
LOGIT_SCALE = 100.0
#: Branch weights of training-free mgcl when cross-validation is impossible (one shot per
#: class): the fine cache starts low, it is weaker than the coarse one at one shot on the
#: synthetic demo set and on UrbanSound8K folds 1 and 2 (fold 10 never used for it).
DEFAULT_ALPHA = {"fc": 0.25}
#: Initial branch weights of mgcl_f (the fine frame-prototype branch starts low: it is the
#: weakest alone at few shots). Set once on UrbanSound8K folds 1 and 2 against each other;
#: fold 10, the reported test fold, was never used for it.
DEFAULT_BRANCH_WEIGHTS = {"lin": 1.0, "cc": 1.0, "fp": 0.25}
#: The fine cache's grain in seconds: max over windows of ~2.2 s every ~0.55 s. aisfx: 12 of
#: its 0.186 s frames (its network's pooling window) every 3, the values the aisfx results
#: were set with; CLAP: 7 of its 0.3125 s frames every 2. See ``segments``, ``segment_frames``.
SEGMENT = (2.2, 0.55)


# ----------------------------------------------------------------------------- formulas
def frame_saliency(frames: torch.Tensor, mask: torch.Tensor, mean: torch.Tensor, tau: float) -> torch.Tensor:
    """Marginal over frames: softmax_t(τ ||F_t − μ||) on real frames (uniform when τ = 0).

    frames (B, T, D), mask (B, T), mean (D,) -> (B, T), rows sum to 1, zero where masked.
    """
    score = tau * (frames - mean).norm(dim=-1)
    score = score.masked_fill(~mask, float("-inf"))
    return torch.softmax(score, dim=1).nan_to_num(0.0)


def fine_similarity(
    q_frames: torch.Tensor, q_mask: torch.Tensor, q_w: torch.Tensor,
    k_frames: torch.Tensor, k_mask: torch.Tensor, k_w: torch.Tensor,
    coarse: torch.Tensor, topk: int, eps: float,
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
                q_frames[i : i + step, None], k_frames[j], q_mask[i : i + step, None], k_mask[j],
                a=q_w[i : i + step, None], b=k_w[j], eps=eps, tol=1e-3, n_iters=200,
            )
    return coarse.scatter(1, idx, sims.to(coarse.dtype))


def fine_text_logits(frames: torch.Tensor, mask: torch.Tensor, concepts: torch.Tensor,
                     concept_mask: torch.Tensor, eps: float, scale: float) -> torch.Tensor:
    """z_c = s · ot_sim(F, E_c): frames (Q, T, D), concepts (C, M, D) -> (Q, C)."""
    return scale * ot_sim(frames[:, None], concepts[None], mask[:, None], concept_mask[None], eps=eps)


# ----------------------------------------------------------------------------- method
class MGCL(Method):
    """Training-free multi-grained cache + OT; see the module docstring."""

    name = "mgcl"

    def __init__(
        self,
        branches: tuple[str, ...] = BRANCHES,
        ablate: tuple[str, ...] = (),
        eps: float = 0.1,
        saliency: float = 16.0,
        topk: int = 8,
        alphas: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0, 2.0),
        betas: tuple[float, ...] = (2.0, 4.0, 8.0, 16.0, 32.0),
        default_alpha: dict | None = None,
        default_beta: dict | None = None,
        cv_rounds: int = 2,
        segment: tuple[float, float] | None = SEGMENT,
        augment: tuple[str, ...] = DEFAULT_VIEWS,
        view_weight: float | None = 1.0,
    ):
        self.segment = None if segment is None else tuple(segment)
        self.augment = tuple(augment)
        self.view_weight = view_weight
        self.branches = tuple(branches)
        self.ablate = tuple(ablate)
        self.eps = eps
        self.saliency = saliency
        self.topk = topk
        self.alphas = tuple(alphas)
        self.betas = tuple(betas)
        self.default_alpha = default_alpha
        self.default_beta = default_beta
        self.cv_rounds = cv_rounds

    def view_names(self) -> tuple[str, ...]:
        """The audio views of the support clips this model learns from (``augment``)."""
        try:
            return check_views(self.augment)
        except ValueError as exc:
            raise MgclError(str(exc)) from None

    # ---------------------------------------------------------------- set-up
    def _active(self, text: TextFeatures | None) -> list[str]:
        unknown = set(self.branches) | set(self.ablate)
        unknown -= set(BRANCHES)
        if unknown:
            raise MgclError(f"unknown branch(es) {sorted(unknown)} (choose from {', '.join(BRANCHES)})")
        out = []
        for b in self.branches:
            if b in self.ablate or (b in TEXT_BRANCHES and text is None):
                continue
            if b == "gc" and (text is None or text.captions is None):
                continue
            out.append(b)
        if not any(b in out for b in ("zs", "cc")) and "cc" not in self.ablate:
            out.insert(0, "cc")  # something coarse remains unless the coarse cache is ablated
        if not out:
            raise MgclError(f"every branch is switched off (branches {', '.join(self.branches)}, "
                            f"ablated {', '.join(self.ablate) or 'none'}, text tower: {text is not None})")
        return out

    def _setup(self, support: AudioFeatures, labels: torch.Tensor, text: TextFeatures | None,
               views: SupportViews | None = None) -> None:
        w = self.view_weight
        if w is not None and (isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0):
            raise MgclError(f"view_weight must be a number >= 0, or null for 1 / (clips of the view's class); "
                            f"got {self.view_weight!r}")
        self.branches_ = self._active(text)
        self.mean_ = support.clip.mean(0)
        try:  # the fine cache's (window, hop) in this backbone's frames
            self.segment_frames_ = None if self.segment is None else segment_frames(self.segment, support.frame_step)
        except ValueError as exc:
            raise MgclError(f"segment: {exc}") from None
        fine, fine_mask = self._fine(support)
        self.fine_mean_ = fine[fine_mask].mean(0)
        # audio cache keys: the N clips, then their views (labelled as their clip); the centres
        # stay the clips' own. key_source_ (N + V,): the support clip each key comes from.
        clips, self.key_source_ = support.clip, torch.arange(len(support))
        if views is not None and len(views):
            clips = torch.cat([clips, views.features.clip])
            self.key_source_ = torch.cat([self.key_source_, views.source])
            fine, fine_mask = cat_padded([(fine, fine_mask), self._fine(views.features)])
        self.keys_ = centre(clips, self.mean_)
        self.frame_keys_, self.frame_key_mask_, self.frame_key_w_ = self._centred(fine, fine_mask)
        self.values_ = one_hot(labels[self.key_source_], self.n_classes_)
        if views is not None and len(views):  # a view's value: its clip's label, weighted (view_weights)
            self.values_ *= self._row_weights(labels, views)[:, None]
        if text is not None:
            self.text_weights_ = class_text_weights(text.prompts, text.descriptions)
            descriptions = text.descriptions or [torch.zeros(0, self.dim_)] * self.n_classes_
            # each class's concept set for the fine-text OT: its prompt and its descriptions
            self.concepts_, self.concept_mask_ = pad_sets(
                [torch.cat([p[None], e]) for p, e in zip(text.prompts, descriptions)])
            if text.captions is not None:
                self.caption_keys_ = l2_normalize(text.captions)[self.key_source_]  # a view's caption: its clip's
        defaults = DEFAULT_ALPHA if self.default_alpha is None else self.default_alpha
        self.alpha_ = {b: float(defaults.get(b, 1.0)) for b in self.branches_}
        self.beta_ = {b: 8.0 for b in CACHE_BRANCHES if b in self.branches_}
        self.beta_.update({b: v for b, v in (self.default_beta or {}).items() if b in self.beta_})

    def _fine(self, feats: AudioFeatures) -> tuple[torch.Tensor, torch.Tensor]:
        """The fine grain of a batch: its max-pooled windows of ``segment_frames_`` frames, or
        its frames when ``segment`` is None.  -> rows (B, S, D), mask (B, S)"""
        if self.segment_frames_ is None:
            return feats.frames, feats.frame_mask
        return segments(feats.frames, feats.frame_mask, *self.segment_frames_)

    def _row_weights(self, labels: torch.Tensor, views: SupportViews) -> torch.Tensor:
        """Weights of the rows clips-then-views (cache keys, mgcl_f's training rows): 1 per clip,
        then ``view_weights``.  (N + V,)"""
        return torch.cat([torch.ones(len(labels)), view_weights(labels, views.source, self.view_weight)])

    def _centred(self, rows: torch.Tensor, mask: torch.Tensor):
        """Fine-grain rows (B, S, D) -> centred rows, their mask and saliency marginals (B, S)."""
        w = frame_saliency(rows, mask, self.fine_mean_, self.saliency)
        return centre(rows, self.fine_mean_) * mask.unsqueeze(-1), mask, w

    def _frames(self, feats: AudioFeatures):
        """Centred fine-grain rows (:meth:`_fine`) of a batch, their mask and saliency marginals."""
        return self._centred(*self._fine(feats))

    # ---------------------------------------------------------------- branches
    def _similarities(self, query: AudioFeatures, fine: tuple | None = None) -> dict[str, torch.Tensor]:
        """Everything a query needs that does not depend on α, β: (Q, N + V) per cache branch
        (one column per key: clips, then views), (Q, C) per text branch.

        ``fine``: the query's :meth:`_frames`, when already at hand."""
        out = {}
        q = centre(query.clip, self.mean_)
        coarse = q @ self.keys_.T
        if "cc" in self.branches_:
            out["cc"] = coarse
        if "fc" in self.branches_:
            fq, mq, wq = self._frames(query) if fine is None else fine
            out["fc"] = fine_similarity(fq, mq, wq, self.frame_keys_, self.frame_key_mask_, self.frame_key_w_,
                                        coarse, self.topk, self.eps)
        if "zs" in self.branches_:
            out["zs"] = zero_shot_logits(query.clip, self.text_weights_, LOGIT_SCALE)
        if "ft" in self.branches_:
            out["ft"] = fine_text_logits(query.frames, query.frame_mask, self.concepts_, self.concept_mask_,
                                         self.eps, LOGIT_SCALE)
        if "gc" in self.branches_:
            out["gc"] = query.clip @ self.caption_keys_.T
        return out

    @staticmethod
    def _branch(name: str, sim: torch.Tensor, values: torch.Tensor, beta: dict) -> torch.Tensor:
        return cache_logits(sim, values, beta[name]) if name in CACHE_BRANCHES else sim

    def _combine(self, sims: dict, values: torch.Tensor, alpha: dict, beta: dict, spread: dict) -> torch.Tensor:
        z = 0.0
        for b in self.branches_:
            if alpha[b]:
                z = z + alpha[b] * self._branch(b, sims[b], values, beta) / spread[b]
        if isinstance(z, float):
            z = torch.zeros(next(iter(sims.values())).shape[0], values.shape[1])
        return z

    def _spread(self, sims: dict, values: torch.Tensor, beta: dict) -> dict:
        """σ_b of each branch's logits (:func:`~mgcl.methods.common.branch_spread`)."""
        return {b: float(branch_spread(self._branch(b, sims[b], values, beta))) for b in self.branches_}

    # ---------------------------------------------------------------- selection
    def _cross_validate(self, sims: dict, labels: torch.Tensor) -> None:
        """Coordinate ascent over (α_b, β_b) on leave-one-shot-out folds of the support.

        ``sims``: the support's own similarities (``_similarities(support)``)."""
        folds = shot_folds(labels)
        if not folds:
            return

        # every (fold, branch, β) logit table once, with its spread: candidates only re-weight
        tables = []
        for held in folds:
            keep = ~held[self.key_source_]  # a held-out clip's views leave the cache with it
            fold = {}
            for b, sim in sims.items():
                sim = sim[held][:, keep] if b in CACHE_BRANCHES else sim[held]
                for beta_b in (self.betas + (self.beta_[b],) if b in self.beta_ else (None,)):
                    z = self._branch(b, sim, self.values_[keep], {b: beta_b})
                    fold[b, beta_b] = z / branch_spread(z)
            tables.append((fold, labels[held]))

        def score(alpha, beta):
            results = []
            for fold, y_held in tables:
                z = sum(alpha[b] * fold[b, beta.get(b)] for b in self.branches_ if alpha[b])
                results.append(fold_score(z, y_held))
            accs, lls = zip(*results)
            return round(sum(accs) / len(accs), 6), sum(lls) / len(lls)

        alpha, beta = dict(self.alpha_), dict(self.beta_)
        best = score(alpha, beta)
        for _ in range(self.cv_rounds):
            changed = False
            for b in self.branches_:
                for a_val in self.alphas if len(self.branches_) > 1 else (alpha[b],):
                    for b_val in (self.betas if b in beta else (None,)):
                        cand_a = {**alpha, b: a_val}
                        cand_b = {**beta, b: b_val} if b_val is not None else beta
                        if not any(cand_a.values()):
                            continue
                        s = score(cand_a, cand_b)
                        if s > best:
                            best, alpha, beta, changed = s, cand_a, cand_b, True
            if not changed:
                break
        self.alpha_, self.beta_ = alpha, beta
        self.cv_accuracy_ = 100.0 * best[0]

    # ---------------------------------------------------------------- fit / logits
    def _fit(self, support: AudioFeatures, labels: torch.Tensor, text=None, views: SupportViews | None = None) -> None:
        self._setup(support, labels, text, views)
        n = len(support)  # the support's own fine rows are the first N of the fine keys
        sims = self._similarities(support, (self.frame_keys_[:n], self.frame_key_mask_[:n], self.frame_key_w_[:n]))
        self._cross_validate(sims, labels)
        self.spread_ = self._spread(sims, self.values_, self.beta_)

    def branch_logits(self, query: AudioFeatures) -> dict[str, torch.Tensor]:
        """Each active branch's weighted contribution α_b z_b / σ_b to the logits: name -> (Q, C)."""
        self.check_fitted()
        sims = self._similarities(query)
        return {b: self.alpha_[b] * self._branch(b, sims[b], self.values_, self.beta_) / self.spread_[b]
                for b in self.branches_}

    def _logits(self, query: AudioFeatures) -> torch.Tensor:
        return self._combine(self._similarities(query), self.values_, self.alpha_, self.beta_, self.spread_)


# ----------------------------------------------------------------------------- fine-tuned
def kmeans_init(x: torch.Tensor, k: int, gen: torch.Generator, iters: int = 10) -> torch.Tensor:
    """k spherical k-means centroids of unit rows x (n, D) -> (k, D) (repeats rows if n < k)."""
    if len(x) <= k:
        return l2_normalize(x[torch.arange(k) % len(x)].clone())
    c = x[torch.randperm(len(x), generator=gen)[:k]].clone()
    for _ in range(iters):
        assign = (x @ c.T).argmax(1)
        for j in range(k):
            if (assign == j).any():
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


def weighted_cross_entropy(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Σ_i w_i (-log softmax(z_i)[y_i]) / Σ_i w_i  (the plain mean when ``weight`` is None).
    logits (B, C), target (B,), weight (B,) >= 0"""
    loss = torch.nn.functional.cross_entropy(logits, target, reduction="none")
    return loss.mean() if weight is None else (loss * weight).sum() / weight.sum().clamp_min(1e-12)


def info_nce(sim: torch.Tensor, target: torch.Tensor, temperature: float,
             weight: torch.Tensor | None = None) -> torch.Tensor:
    """InfoNCE / contrastive cross-entropy: -log softmax(sim / τ)[target], rows weighted as in
    :func:`weighted_cross_entropy`.  sim (B, C), target (B,)"""
    return weighted_cross_entropy(sim / temperature, target, weight)


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

    def rows(self, idx: torch.Tensor, out: "View | None" = None) -> "View":
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
    :func:`~mgcl.methods.linear_probe.averaged_logistic`), class frame prototypes P_c (m per class, init:
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

    Audio views (``augment``, :mod:`mgcl.augment_audio`): when ``fit`` gets views of the
    support clips re-embedded by the backbone, the head is initialised on the clips and all
    their views, and every epoch trains on the clips plus one view of each, drawn at random;
    in both, a view's row weighs ``view_weight`` (default None: 1 / K_c, the class's number
    of support clips, :func:`~mgcl.methods.common.view_weights` — views stand in for shots
    that are missing, so their say shrinks as real shots accumulate). Cache keys and frame
    prototypes stay the clips' own; a cross-validation fold holds a clip out together with
    its views.
    """

    name = "mgcl_f"

    def __init__(
        self,
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
    ):
        super().__init__(branches, ablate, eps, saliency, topk, alphas, betas, default_alpha, default_beta, cv_rounds,
                         segment, augment, view_weight)
        self.losses = tuple(losses)
        self.contrast_weight = contrast_weight
        self.temperature = temperature
        self.frame_prototypes = frame_prototypes
        self.epoch_grid = tuple(epoch_grid)
        self.default_epochs = default_epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.branch_weights = branch_weights
        self.weight_grid = tuple(weight_grid)
        self.head_c_grid = tuple(head_c_grid)
        self.cv_rule = cv_rule
        self.seed = seed

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

    def _init_params(self, v: View, labels: torch.Tensor, text: TextFeatures | None,
                     views: SupportViews | None = None) -> dict:
        """Initial learnable state from (part of) the support ``v`` (the head: from its views too)."""
        gen = torch.Generator().manual_seed(self.seed)
        protos = torch.stack([
            kmeans_init(v.cframes[labels == c][v.mask[labels == c]], self.frame_prototypes, gen)
            for c in range(self.n_classes_)
        ])
        z = v.z
        x, y, weight = z, labels, None
        if views is not None:
            x = torch.cat([z, centre(views.features.clip, self.mean_)])
            y = torch.cat([labels, labels[views.source]])
            weight = self._row_weights(labels, views).numpy()
        w, b = averaged_logistic(x.numpy(), y.numpy(), self.head_c_grid, self.n_classes_, weight)
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
    def _terms(self, p: dict, v: View, values: torch.Tensor,
               caption_keys: torch.Tensor | None = None) -> tuple[dict, dict]:
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
                sim = ot_sim(v.cframes[:, None], l2_normalize(p["frame_protos"])[None], mask[:, None], None,
                             a=v.weights[:, None], eps=self.eps, tol=1e-3, n_iters=100)
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

    def _forward(self, p: dict, v: View, values: torch.Tensor,
                 caption_keys: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
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
        loss = weighted_cross_entropy(z, labels, weight) if "ce" in self.losses else z.sum() * 0
        lam = self.contrast_weight
        if "coarse" in self.losses:
            loss = loss + lam * info_nce(extras["coarse"], labels, self.temperature, weight)
        if "fine" in self.losses and "fine" in extras:
            loss = loss + lam * info_nce(extras["fine"], labels, self.temperature, weight)
        if "instance" in self.losses and captions is not None:
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

    def _train(self, p: dict, rows: View, labels, values, captions, epochs: int,
               checkpoints=(), eval_fn=None, group=None, source=None, weight=None) -> tuple[dict, dict]:
        """AdamW + cosine schedule, ``epochs`` full-batch steps on ``rows`` (the N clips, then
        the views made from clips ``source``, rows weighted by ``weight``): each step sees the
        clips and one random view of each. ``eval_fn(params)`` is recorded at the epochs in
        ``checkpoints``."""
        gen = torch.Generator().manual_seed(self.seed)
        n = len(labels) - (0 if source is None else len(source))
        p = {k: v.clone().requires_grad_(True) for k, v in p.items()}
        opt = torch.optim.AdamW(p.values(), lr=self.lr, weight_decay=self.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(epochs, 1))
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
            sched.step()
            if eval_fn is not None and epoch in checkpoints:
                scores[epoch] = eval_fn({k: v.detach() for k, v in p.items()})
        return {k: v.detach() for k, v in p.items()}, scores

    # ---------------------------------------------------------------- fit
    def _fit(self, support: AudioFeatures, labels: torch.Tensor, text=None, views: SupportViews | None = None) -> None:
        if not self.head_c_grid or any(c <= 0 for c in self.head_c_grid):
            raise MgclError(f"head_c_grid must be positive numbers, got {list(self.head_c_grid)}")
        if self.cv_rule not in ("one_se", "best"):
            raise MgclError(f"cv_rule must be 'one_se' or 'best', got '{self.cv_rule}'")
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
        self.params_, _ = self._train(p0, rows, y_rows, self.values_, captions, self.epochs_,
                                      group=group, source=source, weight=weight)
        if weights is not None:  # the branch weights cross-validation preferred, after training
            self.params_["log_alpha"] = torch.log(torch.tensor(
                [max(weights[b], 1e-6) for b in self._trained_branches()]))
        self.branch_weights_ = {b: float(a) for b, a in zip(self._trained_branches(), self.params_["log_alpha"].exp())}

    def _weight_candidates(self) -> list[dict]:
        """Branch weights tried by cross-validation: the head fixed at its initial weight, the
        audio cache and the frame-prototype branch each on a small grid (text branches fixed)."""
        base = self._init_weights()
        grids = {"cc": self.weight_grid, "fp": tuple(w / 4 for w in self.weight_grid)}
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

    def _choose_epochs_and_weights(self, support: AudioFeatures, view: View, labels: torch.Tensor,
                                   text: TextFeatures | None, captions: torch.Tensor | None,
                                   views: SupportViews | None = None):
        """Epochs and branch weights by cross-validation: for each leave-one-shot-out fold,
        start from state initialised on the other folds only, train, and score the held-out
        clips at each epoch of ``epoch_grid`` under each weight candidate (the trained branch
        terms are re-weighted, not retrained). ``default_epochs`` and the initial weights with
        one shot per class. A held-out clip's views are held out with it.
        Returns (epochs, weights or None)."""
        folds = shot_folds(labels, max_folds=3, seed=self.seed)
        if not folds or len(self.epoch_grid) < 2:
            return int(self.default_epochs), None
        candidates = self._weight_candidates() if self.weight_grid else [None]
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

            _, scores = self._train(p_tr, rows, y_rows, values, caps, max(self.epoch_grid),
                                    self.epoch_grid, eval_fn, group=group, source=source, weight=weight)
            for e, per_cand in scores.items():
                for j, sc in enumerate(per_cand):
                    correct[e, j] = correct.get((e, j), 0.0) + sc
        n_held = int(sum(int(h.sum()) for h in folds))
        accuracy = {k: v / n_held for k, v in correct.items()}
        extra = [sum(v for b, v in (c or self._init_weights()).items() if b != "lin") for c in candidates]
        e, j = one_standard_error_choice(accuracy, n_held, lambda k: (k[0], extra[k[1]], k[1]),
                                         self.cv_rule == "one_se")
        return int(e), candidates[j]

    def _init_weights(self) -> dict:
        return {b: self._initial_weight(b) for b in self._trained_branches()}

    def branch_logits(self, query: AudioFeatures) -> dict[str, torch.Tensor]:
        """Each trained branch's weighted contribution α_b z_b / σ_b: name -> (Q, C); sums to the logits."""
        self.check_fitted()
        terms, _ = self._terms(self.params_, self._view(query), self.values_)
        alpha = self.params_["log_alpha"].exp()
        return {b: alpha[i] * terms[b] / self.fspread_[b] for i, b in enumerate(self._trained_branches())}

    def _logits(self, query: AudioFeatures) -> torch.Tensor:
        return self._forward(self.params_, self._view(query), self.values_)[0]
