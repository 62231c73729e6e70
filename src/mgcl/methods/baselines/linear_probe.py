"""Linear probe: multinomial logistic regression on centred clip embeddings.

    z(a) = normalise(a - mu),  logits = z(a) Wᵀ + b,  W, b = argmin CE + ||W||² / (2 C N)

The inverse regularisation strength C is chosen by class-balanced cross-validation on the
support set (``default_C`` with one shot per class, when no such split exists); a one-value
``c_grid`` is a fixed C (no cross-validation), which is how :meth:`LinearProbe.held_out_params`
pins a fitted probe's C.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from mgcl.methods.base import Method
from mgcl.methods.common import centre
from mgcl.methods.selection import select, shot_folds
from mgcl.types import AudioFeatures


def fit_logistic(
    x: np.ndarray,
    y: np.ndarray,
    c: float,
    n_classes: int,
    clf: LogisticRegression | None = None,
    sample_weight: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(N, D), (N,) -> W (C, D), b (C,) of an L2-regularised multinomial logistic regression.

    ``clf``: a LogisticRegression to (re)use, e.g. with ``warm_start=True`` along a C path;
    ``sample_weight`` (N,): each row's weight in the loss (a weight of 2 = the row twice)."""
    clf = clf if clf is not None else LogisticRegression(max_iter=1000, tol=1e-4)
    clf.set_params(C=c)
    with warnings.catch_warnings():  # few shots: "more classes than half the samples" is expected
        warnings.simplefilter("ignore", UserWarning)
        clf.fit(x, y, sample_weight=sample_weight)
    w = np.zeros((n_classes, x.shape[1]), dtype=np.float32)
    b = np.full(n_classes, -1e4, dtype=np.float32)  # a class absent from a CV fold never wins
    classes = clf.classes_
    if len(classes) == 2:  # sklearn's binary case has one row: logit = x w + b for class 1
        w[classes[1]], b[classes[1]] = clf.coef_[0], clf.intercept_[0]
        w[classes[0]], b[classes[0]] = 0.0, 0.0
    else:
        w[classes], b[classes] = clf.coef_, clf.intercept_
    return w, b


def averaged_logistic(
    x: np.ndarray, y: np.ndarray, c_grid, n_classes: int, sample_weight: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Mean of the logistic solutions over a grid of C:  W = mean_C W_C,  b = mean_C b_C.

    The logits of the result are the mean of the grid's logits (a linear model averaged
    over regularisation strengths), which needs no choice of C. The path is solved from
    the smallest C up, each fit warm-started from the previous one.  (N, D), (N,) -> (C, D), (C,);
    ``sample_weight`` (N,) as in :func:`fit_logistic`.
    """
    clf = LogisticRegression(max_iter=1000, tol=1e-4, warm_start=True)
    sols = [fit_logistic(x, y, float(c), n_classes, clf, sample_weight) for c in sorted(c_grid)]
    return np.mean([w for w, _ in sols], axis=0), np.mean([b for _, b in sols], axis=0)


class LinearProbe(Method):
    name = "linear_probe"

    def __init__(
        self, *, c_grid: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0, 100.0), default_C: float = 1.0, center: bool = True
    ):
        self.c_grid = c_grid
        self.default_C = default_C
        self.center = center

    def _fit(self, support: AudioFeatures, labels: torch.Tensor, text=None) -> None:
        self.mean_ = support.clip.mean(0) if self.center else torch.zeros(support.dim)
        x = centre(support.clip, self.mean_).numpy()
        y = labels.numpy()
        folds = shot_folds(labels) if len(self.c_grid) > 1 else []
        if folds:

            def evaluate(p, held):
                w, b = fit_logistic(x[~held.numpy()], y[~held.numpy()], p["C"], self.n_classes_)
                return torch.from_numpy(x[held.numpy()] @ w.T + b)

            best, _ = select([{"C": c} for c in self.c_grid], evaluate, labels, folds)
            self.C_ = float(best["C"])
        elif len(self.c_grid) == 1:
            self.C_ = float(self.c_grid[0])
        else:
            self.C_ = float(self.default_C)
        w, b = fit_logistic(x, y, self.C_, self.n_classes_)
        self.weight_, self.bias_ = torch.from_numpy(w), torch.from_numpy(b)

    def held_out_params(self) -> dict:
        """The chosen C as a one-value grid: ``{"c_grid": (C_,)}``."""
        self.check_fitted()
        return {"c_grid": (float(self.C_),)}

    def _logits(self, query: AudioFeatures) -> torch.Tensor:
        return centre(query.clip, self.mean_) @ self.weight_.T + self.bias_
