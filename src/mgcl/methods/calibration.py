"""Calibrated probabilities for every method: temperature scaling fitted inside the support.

A method's logits ``z`` (Q, C) give probabilities ``softmax(z / T)``; the argmax, hence every
prediction, is the same for every ``T > 0``. The temperature ``T`` is the one that
minimises the negative log-likelihood of held-out support clips (Guo et al., 2017, "On
calibration of modern neural networks"):

    T* = argmin_T  NLL(T),   NLL(T) = (1/N) Σ_i [ logsumexp_c(z_ic / T) - Σ_c q_ic z_ic / T ]

with targets ``q_i = (1 - ε) onehot(y_i) + ε / C``. Plain temperature scaling is ``ε = 0``;
it has no minimum when the few held-out clips are all ranked right with a margin (the
NLL falls as ``T -> 0``, and every probability would become 0 or 1). ``ε = 1 / (N + 1)``
(one held-out clip's worth of uniform label, a Laplace-style pseudo-count) keeps the
minimum finite there and moves ``T`` by little elsewhere (N = 40 held-out clips: ε = 0.024).

The held-out logits come from leave-one-shot-out folds of the support
(:func:`mgcl.methods.selection.shot_folds`): a clone of the method is fitted on the other
clips of each fold and scores the held-out ones, so no clip is scored by a model that saw
it. With one shot per class there is no such split and ``T = 1`` (the method's own scale).
The clones are clones of the model fitted on the whole support, with the hyper-parameters
it chose by cross-validation pinned (:meth:`mgcl.methods.Method.held_out_params`): a clone
that chose again on fewer clips would be a model of another scale (another C, other branch
weights) than the one ``T`` and the open-set threshold are applied to.

Calibration is measured with the expected calibration error (ECE): the confidences
(max probability) fall into equal-width bins of [0, 1] and

    ECE = Σ_b (|B_b| / N) · | acc(B_b) - conf(B_b) |

with ``acc`` the fraction of correct predictions and ``conf`` the mean confidence of bin
``b``. Pure functions of tensors; the methods are fitted through their public ``fit``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from scipy.optimize import minimize_scalar
from sklearn.base import clone

from mgcl.methods.selection import shot_folds
from mgcl.types import AudioFeatures, SupportViews, TextFeatures

#: The range a fitted temperature is clamped to.
T_MIN, T_MAX = 0.01, 100.0
#: Leave-one-shot-out folds used to calibrate (at most).
CALIBRATION_FOLDS = 3


def temperature_nll(logits: torch.Tensor, labels: torch.Tensor, temperature: float, smoothing: float = 0.0) -> float:
    """Mean negative log-likelihood of ``softmax(logits / T)`` against smoothed targets.

    logits (N, C), labels (N,) in [0, C), targets ``q_i = (1 - ε) onehot(y_i) + ε / C``:
    ``NLL(T) = (1/N) Σ_i [ logsumexp_c(z_ic / T) - Σ_c q_ic z_ic / T ]`` (float64);
    ``ε = 0`` is the plain NLL ``(1/N) Σ_i [ logsumexp_c(z_ic / T) - z_{i y_i} / T ]``.
    """
    z = logits.double() / float(temperature)
    target = z.gather(1, labels.long().view(-1, 1)).squeeze(1)
    target = (1.0 - smoothing) * target + smoothing * z.mean(dim=1)
    return float((torch.logsumexp(z, dim=1) - target).mean())


def pseudo_count_smoothing(n: int) -> float:
    """``ε = 1 / (n + 1)``: one of ``n + 1`` held-out clips' worth of uniform label mass."""
    return 1.0 / (n + 1)


def fit_temperature(
    logits: torch.Tensor,
    labels: torch.Tensor,
    smoothing: float | None = None,
    t_min: float = T_MIN,
    t_max: float = T_MAX,
) -> float:
    """The temperature ``T`` in [t_min, t_max] minimising :func:`temperature_nll`.

    logits (N, C), labels (N,); ``smoothing`` ε of the targets (None: ``1 / (N + 1)``,
    :func:`pseudo_count_smoothing`; 0: plain temperature scaling). ``NLL`` is convex in
    ``1/T`` (a log-sum-exp of functions linear in ``1/T`` minus a linear term), hence
    unimodal in ``log T``: a bounded Brent search over ``log T`` finds its minimum
    (deterministic). Rows with a non-finite logit are left out; with no usable row ``T = 1``.
    """
    logits = torch.as_tensor(logits).detach().cpu().double()
    labels = torch.as_tensor(labels).detach().cpu().long()
    keep = torch.isfinite(logits).all(dim=1)
    logits, labels = logits[keep], labels[keep]
    if len(labels) == 0:
        return 1.0
    eps = pseudo_count_smoothing(len(labels)) if smoothing is None else float(smoothing)
    nll = lambda t: temperature_nll(logits, labels, t, eps)  # noqa: E731
    res = minimize_scalar(
        lambda log_t: nll(math.exp(log_t)),
        bounds=(math.log(t_min), math.log(t_max)),
        method="bounded",
        options={"xatol": 1e-5},
    )
    t = math.exp(float(res.x))
    # the bounded search stops just inside the bounds: a minimum on the edge is the edge
    for edge in (t_min, t_max):
        if nll(edge) <= nll(t):
            t = edge
    return float(min(max(t, t_min), t_max))


def calibrated_probabilities(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``softmax(logits / T)`` along the class axis: (Q, C) -> (Q, C), rows summing to 1."""
    return (logits / float(temperature)).softmax(dim=-1)


def _text_rows(text: TextFeatures | None, rows: torch.Tensor) -> TextFeatures | None:
    """The text side of a subset of the support: the per-clip captions of ``rows`` (1-D long)."""
    if text is None or text.captions is None:
        return text
    return TextFeatures(text.prompts, text.descriptions, text.captions[rows])


@dataclass
class HeldOut:
    """What the leave-one-shot-out fits of :func:`held_out_fits` scored.

    ``logits`` (M, C) and ``labels`` (M,): every held-out support clip, scored by the fold's
    model that never saw it; ``background`` (F, B, C) or None: the B extra clips (e.g. clips
    of "nothing of interest") scored by each of the F fold models; ``n_folds`` = F.
    """

    logits: torch.Tensor
    labels: torch.Tensor
    background: torch.Tensor | None
    n_folds: int


def held_out_fits(
    method,
    support: AudioFeatures,
    labels: torch.Tensor,
    text: TextFeatures | None = None,
    views: SupportViews | None = None,
    n_classes: int | None = None,
    max_folds: int = CALIBRATION_FOLDS,
    seed: int = 0,
    background: AudioFeatures | None = None,
) -> HeldOut | None:
    """Logits of every support clip from a model that never saw it, or None with one shot.

    support: N clips, labels (N,) in [0, C). For each leave-one-shot-out fold
    (``shot_folds(labels, max_folds, seed)``) a ``sklearn.base.clone`` of ``method`` (its
    hyper-parameters, none of its learned state) is fitted on the other clips (their audio
    views and captions only, the same ``n_classes``); when ``method`` is fitted (on the whole
    support: fit it first), the clone is ``clone(method).set_params(**method.held_out_params())``,
    the choices it made on the support pinned, so no fold chooses them again on fewer clips
    (an unfitted ``method``: each clone chooses for itself). It scores the held-out clips and, when
    given, the ``background`` clips (B of them, never part of any fit). Each fold's fit
    starts from ``torch.manual_seed(seed + fold)`` inside a forked RNG, so the result is
    deterministic and the caller's RNG state is left as it was.

    Returns a :class:`HeldOut` (logits (M, C) and labels (M,) over the held-out rows of every
    fold, every row once when the folds cover the support; background logits (F, B, C)), or
    None when some class has a single clip.
    """
    labels = torch.as_tensor(labels, dtype=torch.long)
    folds = shot_folds(labels, max_folds=max_folds, seed=seed)
    if not folds:
        return None
    pinned = method.held_out_params() if method.__sklearn_is_fitted__() else {}
    out_logits, out_labels, out_background = [], [], []
    with torch.random.fork_rng(devices=[]):
        for f, held in enumerate(folds):
            train = (~held).nonzero().flatten()
            test = held.nonzero().flatten()
            torch.manual_seed(seed + f)
            model = clone(method).set_params(**pinned)
            model.fit(
                support[train],
                labels[train],
                text=_text_rows(text, train),
                n_classes=n_classes,
                views=views.subset(train) if views is not None else None,
            )
            out_logits.append(model.logits(support[test]).detach().cpu().float())
            out_labels.append(labels[test])
            if background is not None and len(background):
                out_background.append(model.logits(background).detach().cpu().float())
    bg = torch.stack(out_background) if out_background else None
    return HeldOut(torch.cat(out_logits), torch.cat(out_labels), bg, len(folds))


def held_out_logits(
    method,
    support: AudioFeatures,
    labels: torch.Tensor,
    text: TextFeatures | None = None,
    views: SupportViews | None = None,
    n_classes: int | None = None,
    max_folds: int = CALIBRATION_FOLDS,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(logits (M, C), labels (M,)) of :func:`held_out_fits`: every support clip scored by a
    model that never saw it; None when some class has a single clip."""
    held = held_out_fits(method, support, labels, text, views, n_classes, max_folds, seed)
    return None if held is None else (held.logits, held.labels)


def support_temperature(
    method,
    support: AudioFeatures,
    labels: torch.Tensor,
    text: TextFeatures | None = None,
    views: SupportViews | None = None,
    n_classes: int | None = None,
    max_folds: int = CALIBRATION_FOLDS,
    seed: int = 0,
) -> tuple[float, int]:
    """(T, folds): :func:`fit_temperature` on :func:`held_out_logits` of the support, and
    the number of folds used; (1.0, 0) with one shot per class (no held-out clip)."""
    held = held_out_logits(method, support, labels, text, views, n_classes, max_folds, seed)
    if held is None:
        return 1.0, 0
    n_folds = len(shot_folds(torch.as_tensor(labels, dtype=torch.long), max_folds=max_folds, seed=seed))
    return fit_temperature(*held), n_folds


def expected_calibration_error(probabilities: torch.Tensor, labels: torch.Tensor, n_bins: int = 15) -> float:
    """The expected calibration error in [0, 1] of probabilities (N, C) against labels (N,).

    Confidence ``p_i = max_c P_ic``, prediction ``argmax_c P_ic``. Bin ``b`` (of ``n_bins``
    equal-width bins) holds the rows with ``b / n_bins < p_i <= (b + 1) / n_bins``;
    ``ECE = Σ_b (|B_b| / N) · | mean_{i in B_b} [pred_i = y_i] - mean_{i in B_b} p_i |``.
    0 for no rows.
    """
    probabilities = torch.as_tensor(probabilities).detach().cpu().double()
    labels = torch.as_tensor(labels).detach().cpu().long()
    n = len(labels)
    if n == 0:
        return 0.0
    conf, pred = probabilities.max(dim=1)
    correct = (pred == labels).double()
    bins = (torch.ceil(conf * n_bins).long() - 1).clamp(0, n_bins - 1)
    acc_sum = torch.bincount(bins, weights=correct, minlength=n_bins)
    conf_sum = torch.bincount(bins, weights=conf, minlength=n_bins)
    return float(((acc_sum - conf_sum).abs() / n).sum().clamp(0.0, 1.0))


__all__ = [
    "CALIBRATION_FOLDS",
    "T_MAX",
    "T_MIN",
    "calibrated_probabilities",
    "expected_calibration_error",
    "fit_temperature",
    "HeldOut",
    "held_out_fits",
    "held_out_logits",
    "pseudo_count_smoothing",
    "support_temperature",
    "temperature_nll",
]
