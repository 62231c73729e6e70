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

Audio views (``augment``, :mod:`mgcl.audio.views`): when ``fit`` gets the support clips'
views re-embedded by the backbone (noise, low-pass, high-pass by default), each view is one
more key of the coarse and fine caches with its clip's label (Tip-Adapter's augmented
cache; a view's caption is its clip's). N clips with V views -> N + V keys; the centres μ,
μ_F stay the clips' own. ``view_weight`` scales a view's value row (default 1: a view is a
key like its clip; None: 1 / K_c, :func:`~mgcl.methods.common.view_weights`).

Training-free ``mgcl``: the α, β of every active branch are chosen by coordinate ascent
on leave-one-shot-out cross-validation inside the support set (a held-out clip leaves the
cache together with its views); with one shot per class there is no such split and the
defaults hold, as they do with ``cv_rounds=0`` (no cross-validation): that is how
``held_out_params`` pins a fitted model's α, β (as the defaults). ``mgcl_f``
(:mod:`mgcl.methods.mgcl.finetuned`) fine-tunes on top.
"""

from __future__ import annotations

import math
import warnings

import torch

from mgcl.errors import MgclError
from mgcl.methods.base import Method, as_tuple
from mgcl.methods.common import (
    balance_classes,
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
from mgcl.methods.mgcl.branches import (
    BRANCHES,
    CACHE_BRANCHES,
    LOGIT_SCALE,
    SEGMENT,
    TEXT_BRANCHES,
    fine_similarity,
    fine_text_logits,
    frame_saliency,
)
from mgcl.methods.selection import fold_score, shot_folds
from mgcl.ot import ot_sim
from mgcl.types import (
    DEFAULT_VIEWS,
    AudioFeatures,
    Concepts,
    SupportViews,
    TextFeatures,
    cat_padded,
    check_views,
    l2_normalize,
)

#: Branch weights of training-free mgcl when cross-validation is impossible (one shot per
#: class): the fine cache starts low, it is weaker than the coarse one at one shot on the
#: synthetic demo set and on UrbanSound8K folds 1 and 2 (fold 10 never used for it).
DEFAULT_ALPHA = {"fc": 0.25}


class MGCL(Method):
    """Training-free multi-grained cache + OT; see the module docstring.

    Parameters (keyword-only, stored as given; checked and converted at ``fit``; a
    sequence may be a tuple or a list):

    branches, ablate:     branch names to use / to switch off (of ``BRANCHES``).
    eps:                  Sinkhorn entropy ε of the OT branches (fc, ft).
    saliency:             τ of the segment saliency softmax_t(τ ||F_t − μ_F||) (0: uniform).
    topk:                 support clips per query the fine cache solves OT against.
    alphas, betas:        the α_b, β_b grids of the cross-validation.
    default_alpha, default_beta:
                          {branch: value} before (or without) cross-validation; None:
                          ``DEFAULT_ALPHA`` (others 1) and β = 8.
    cv_rounds:            rounds of coordinate ascent (0: none, the defaults hold).
    segment:              (window, hop) in seconds of the fine cache's rows; None: single frames.
    augment:              names of the support clips' audio views (:data:`mgcl.types.AUDIO_VIEWS`).
    view_weight:          a view's value row in the caches (None: 1 / K_c).

    Learned: ``branches_``, ``alpha_``, ``beta_``, ``spread_``, ``cv_accuracy_`` (with
    folds), ``segment_frames_``, the caches ``keys_`` (N + V, D), ``values_`` (N + V, C; each class
    the same total value, :func:`~mgcl.methods.common.balance_classes`),
    ``key_source_`` (N + V,), ``frame_keys_`` / ``frame_key_mask_`` / ``frame_key_w_``,
    ``mean_`` (D,), ``fine_mean_`` (D,) and, with text, ``text_weights_`` (C, D),
    ``concepts_`` (C, M, D), ``concept_mask_`` (C, M), ``caption_keys_`` (N + V, D).
    """

    name = "mgcl"

    def __init__(
        self,
        *,
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
        self.segment = segment
        self.augment = augment
        self.view_weight = view_weight

    def view_names(self) -> tuple[str, ...]:
        """The audio views of the support clips this model learns from (``augment``)."""
        try:
            return check_views(as_tuple(self.augment, "augment"))
        except ValueError as exc:
            raise MgclError(str(exc)) from None

    # ---------------------------------------------------------------- set-up
    def _check_params(self) -> None:
        """One-line MgclErrors for hyper-parameters ``fit`` cannot use (first thing ``_fit`` does;
        the branch names are checked by :meth:`_active`, ``segment`` against the features'
        frame step in :meth:`_setup`)."""
        for name in ("branches", "ablate", "alphas", "betas"):
            as_tuple(getattr(self, name), name)
        if self.segment is not None:
            as_tuple(self.segment, "segment")
        w = self.view_weight
        if w is not None and (isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0):
            raise MgclError(
                f"view_weight must be a number >= 0, or null for 1 / (clips of the view's class); "
                f"got {self.view_weight!r}"
            )

    def _active(self, text: TextFeatures | None) -> list[str]:
        branches, ablate = tuple(self.branches), tuple(self.ablate)
        unknown = set(branches) | set(ablate)
        unknown -= set(BRANCHES)
        if unknown:
            raise MgclError(f"unknown branch(es) {sorted(unknown)} (choose from {', '.join(BRANCHES)})")
        out = []
        for b in branches:
            if b in ablate or (b in TEXT_BRANCHES and text is None):
                continue
            if b == "gc" and (text is None or text.captions is None):
                continue
            out.append(b)
        if not any(b in out for b in ("zs", "cc")) and "cc" not in ablate:
            out.insert(0, "cc")  # something coarse remains unless the coarse cache is ablated
        if not out:
            raise MgclError(
                f"every branch is switched off (branches {', '.join(branches)}, "
                f"ablated {', '.join(ablate) or 'none'}, text tower: {text is not None})"
            )
        return out

    def _setup(
        self, support: AudioFeatures, labels: torch.Tensor, text: TextFeatures | None, views: SupportViews | None = None
    ) -> None:
        self.branches_ = self._active(text)
        self.mean_ = support.clip.mean(0)
        try:  # the fine cache's (window, hop) in this backbone's frames
            self.segment_frames_ = (
                None if self.segment is None else segment_frames(tuple(self.segment), support.frame_step)
            )
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
        self.values_ = balance_classes(self.values_)  # a class does not win by its number of keys
        if text is not None:
            self.text_weights_ = class_text_weights(text.prompts, text.descriptions)
            descriptions = text.descriptions or [torch.zeros(0, self.dim_)] * self.n_classes_
            # each class's concept set for the fine-text OT: its prompt and its descriptions
            self.concepts_, self.concept_mask_ = pad_sets(
                [torch.cat([p[None], e]) for p, e in zip(text.prompts, descriptions)]
            )
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
            out["fc"] = fine_similarity(
                fq, mq, wq, self.frame_keys_, self.frame_key_mask_, self.frame_key_w_, coarse, self.topk, self.eps
            )
        if "zs" in self.branches_:
            out["zs"] = zero_shot_logits(query.clip, self.text_weights_, LOGIT_SCALE)
        if "ft" in self.branches_:
            out["ft"] = fine_text_logits(
                query.frames, query.frame_mask, self.concepts_, self.concept_mask_, self.eps, LOGIT_SCALE
            )
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

        ``sims``: the support's own similarities (``_similarities(support)``); nothing is
        chosen (the defaults hold) with ``cv_rounds`` 0 or one shot per class."""
        if int(self.cv_rounds) <= 0:
            return
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
                for beta_b in tuple(self.betas) + (self.beta_[b],) if b in self.beta_ else (None,):
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
        alphas, betas = tuple(self.alphas), tuple(self.betas)
        best = score(alpha, beta)
        for _ in range(self.cv_rounds):
            changed = False
            for b in self.branches_:
                for a_val in alphas if len(self.branches_) > 1 else (alpha[b],):
                    for b_val in betas if b in beta else (None,):
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
        self._check_params()
        self._setup(support, labels, text, views)
        n = len(support)  # the support's own fine rows are the first N of the fine keys
        sims = self._similarities(support, (self.frame_keys_[:n], self.frame_key_mask_[:n], self.frame_key_w_[:n]))
        self._cross_validate(sims, labels)
        self.spread_ = self._spread(sims, self.values_, self.beta_)

    def held_out_params(self) -> dict:
        """The chosen α, β as the defaults, and no cross-validation (``cv_rounds=0``)."""
        self.check_fitted()
        return {
            "default_alpha": {b: float(a) for b, a in self.alpha_.items()},
            "default_beta": {b: float(v) for b, v in self.beta_.items()},
            "cv_rounds": 0,
        }

    def branch_logits(self, query: AudioFeatures) -> dict[str, torch.Tensor]:
        """Each active branch's weighted contribution α_b z_b / σ_b to the logits: name -> (Q, C)."""
        self.check_fitted()
        sims = self._similarities(query)
        return {
            b: self.alpha_[b] * self._branch(b, sims[b], self.values_, self.beta_) / self.spread_[b]
            for b in self.branches_
        }

    @torch.no_grad()
    def branch_contributions(self, query: AudioFeatures) -> dict[str, torch.Tensor]:
        return self.branch_logits(query)

    @torch.no_grad()
    def explain_concepts(self, query: AudioFeatures, c: int) -> Concepts | None:
        """The fine cache of class ``c``: the fine-grain rows (segments, or frames) of the
        class's support clip that match the query best by OT, with the saliency marginals."""
        self.check_fitted()
        fq, mq, wq = self._frames(query[[0]])
        fq, wq = fq[0][mq[0]], wq[0][mq[0]]
        n_clips = int(self.key_source_.max()) + 1  # keys: the N clips, then their views
        idx = (self.values_[:n_clips, c] > 0).nonzero().flatten()
        if len(idx) == 0 or len(fq) == 0:
            return None
        keys, kmask, kw = self.frame_keys_[idx], self.frame_key_mask_[idx], self.frame_key_w_[idx]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            sims = ot_sim(fq[None], keys, None, kmask, a=wq[None], b=kw, eps=self.eps, tol=1e-4, n_iters=500)
        best = int(torch.argmax(sims))
        unit = "segment" if self.segment_frames_ else "frame"
        return Concepts(
            kind=f"support {unit}s",
            branch="fc",
            vectors=keys[best][kmask[best]],
            frames=fq,
            frame_weights=wq,
            concept_weights=kw[best][kmask[best]],
            eps=float(self.eps),
            segment=self.segment_frames_,
            support_row=int(idx[best]),
            note=f"{unit}s of support clip {best + 1} of the class (support row {int(idx[best])}), "
            f"the best OT match of {len(idx)}",
        )

    def _logits(self, query: AudioFeatures) -> torch.Tensor:
        return self._combine(self._similarities(query), self.values_, self.alpha_, self.beta_, self.spread_)
