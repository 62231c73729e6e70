"""Detection thresholds chosen on the support only.

For class c, the leave-one-shot-out support clips (:func:`mgcl.methods.calibration.held_out_logits`:
each scored by a clone of the method fitted without it) give calibrated probabilities
``p_i = softmax(z_i / T)``; with ``pos_c`` the held-out clips of c and ``neg_c`` the others,

    high_c = ( median_{i in pos_c} p_ic + median_{i in neg_c} p_ic ) / 2,   low_c = LOW_RATIO · high_c

the point half-way between a typical held-out clip of the class and a typical clip of the
other classes (background included). Without a held-out split (one clip of some class) or
without negatives, ``high_c = DEFAULT_THRESHOLD``. No query audio is ever looked at.
"""

from __future__ import annotations

import numpy as np
import torch

from mgcl.methods.calibration import calibrated_probabilities, held_out_logits
from mgcl.types import AudioFeatures

#: The high threshold when the support cannot choose one (calibrated probabilities).
DEFAULT_THRESHOLD = 0.5
#: The low (hysteresis) threshold as a fraction of the high one.
LOW_RATIO = 0.85


def thresholds_from_scores(probs: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """(C,) high thresholds from held-out probabilities (M, C) and labels (M,):
    ``(median(pos_c) + median(neg_c)) / 2``, ``DEFAULT_THRESHOLD`` where a side is empty."""
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels)
    out = np.full(n_classes, DEFAULT_THRESHOLD)
    for c in range(n_classes):
        pos, neg = probs[labels == c, c], probs[labels != c, c]
        if len(pos) and len(neg):
            out[c] = 0.5 * (np.median(pos) + np.median(neg))
    return out


def support_thresholds(
    method,
    support: AudioFeatures,
    labels,
    n_classes: int,
    temperature: float = 1.0,
    text=None,
    views=None,
) -> tuple[np.ndarray, str]:
    """((C,) high thresholds, how they were chosen in words) for a method fitted on ``support``
    with integer ``labels`` (N,): :func:`thresholds_from_scores` of the held-out support
    clips' probabilities at the model's ``temperature``. ``views``: the support clips' audio
    views (:class:`~mgcl.types.SupportViews`) when the method was fitted with them, so the
    held-out clones are fitted as the model was (a held-out clip's views leave with it)."""
    labels = torch.as_tensor(labels, dtype=torch.long)
    held = held_out_logits(method, support, labels, text=text, views=views, n_classes=n_classes)
    if held is None:
        return np.full(
            n_classes, DEFAULT_THRESHOLD
        ), f"{DEFAULT_THRESHOLD} (one support clip of a class: no held-out clip)"
    logits, held_labels = held
    probs = calibrated_probabilities(logits, temperature).numpy()
    return (
        thresholds_from_scores(probs, held_labels.numpy(), n_classes),
        f"half-way between held-out support clips of the class and of the others ({len(held_labels)} clips)",
    )


__all__ = ["DEFAULT_THRESHOLD", "LOW_RATIO", "support_thresholds", "thresholds_from_scores"]
