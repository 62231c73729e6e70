"""Open-set rejection ("none of these"): a threshold on the calibrated probability, chosen
on the support set only.

A fitted method with temperature ``T`` (:mod:`mgcl.methods.calibration`) gives a clip the
class probabilities ``p = softmax(z / T)`` and the score ``s = max_c p_c``, the calibrated
confidence of its best class. The clip is *accepted* (it gets its best class) when
``s >= τ`` and *rejected* (it gets the unknown label) when ``s < τ``.

``τ`` ("auto") is chosen without any query, from the leave-one-shot-out fits that also fit
``T`` (:func:`mgcl.methods.calibration.held_out_fits`): every support clip is scored by a
model that never saw it (a clone of the fitted model with its choices pinned, so of the
same scale), so its score is what a new clip of a known class would get.

- **acceptance rule** (support only): ``τ`` accepts a fraction ``a`` (default 0.95) of the
  M held-out support scores. With the scores sorted ascending ``s_(1) <= ... <= s_(M)``,
  ``τ = s_(j)``, ``j = M - ceil(a M) + 1``, so at least ``ceil(a M)`` of them are accepted
  (with fewer than 20 held-out clips: all of them, i.e. ``τ`` is the lowest held-out score).
- **separating rule** (support + background clips of "nothing of interest"): every fold's
  model also scores the B background clips (F·B scores in all). ``τ`` maximises Youden's
  ``J(τ) = TPR(τ) - FPR(τ)`` (equivalently the balanced accuracy ``(1 + J) / 2``) with
  ``TPR = #{known >= τ} / M`` and ``FPR = #{background >= τ} / (F·B)``, over the candidates 0
  (accept everything) and the midpoints between consecutive distinct scores; ties go to the
  lowest ``τ`` (the fewest known clips rejected).
- **one clip per class**: there is no held-out support clip. Without background, "auto"
  rejects nothing (``τ`` = None, said in words); with background clips, ``τ`` rejects a
  fraction ``a`` of the background scored by the fitted model (the smallest ``τ`` above
  ``ceil(a B)`` of them: the midpoint to the next score, or just above the largest).

The final model is fitted on every support clip, so it is a little more confident than the
fold models: on new clips of known classes it accepts about ``a`` or a little more.

Known-vs-unknown separation is measured threshold-free with the area under the ROC curve of
``s`` (:func:`known_unknown_auroc`, ``sklearn.metrics.roc_auc_score``). Pure functions of
tensors and arrays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from mgcl.errors import MgclError
from mgcl.methods.calibration import HeldOut, calibrated_probabilities

#: The fraction of held-out support clips that the "auto" threshold accepts (and, with one
#: clip per class and background clips, the fraction of background it rejects).
ACCEPT = 0.95
#: The label of a rejected clip unless the user chooses another.
UNKNOWN_LABEL = "unknown"


def check_reject(reject) -> str | float | None:
    """``reject`` as given to a classifier: "auto", None (also "none"/"off") or a probability
    threshold in [0, 1]; one-line MgclError otherwise."""
    if reject is None:
        return None
    if isinstance(reject, str):
        word = reject.strip().lower()
        if word == "auto":
            return "auto"
        if word in ("none", "off", ""):
            return None
        try:
            reject = float(word)
        except ValueError:
            raise MgclError(f"reject must be 'auto', None or a probability in [0, 1], got {reject!r}") from None
    if isinstance(reject, bool) or not isinstance(reject, (int, float)) or not (0.0 <= float(reject) <= 1.0):
        raise MgclError(f"reject must be 'auto', None or a probability in [0, 1], got {reject!r}")
    return float(reject)


def max_probability(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """The score ``s_i = max_c softmax(z_i / T)_c``: logits (Q, C) -> (Q,) in [1/C, 1]."""
    return calibrated_probabilities(torch.as_tensor(logits).float(), temperature).max(dim=-1).values


def acceptance_threshold(known: torch.Tensor, accept: float = ACCEPT) -> float:
    """``τ = s_(j)``, ``j = M - ceil(a M) + 1`` of the ascending scores ``known`` (M,): at
    least ``ceil(a M)`` of them are ``>= τ``."""
    s = torch.sort(torch.as_tensor(known).double().flatten()).values
    if len(s) == 0:
        raise MgclError("no held-out score to set a threshold on")
    j = len(s) - math.ceil(accept * len(s) - 1e-9)  # 0-based index of s_(j)
    return float(s[max(j, 0)])


def separating_threshold(known: torch.Tensor, background: torch.Tensor) -> tuple[float, float]:
    """(τ, J): the threshold maximising Youden's ``J = TPR - FPR`` between the scores of
    known clips (M,) (accepted when ``>= τ``) and background clips (B,) (rejected when
    ``< τ``); candidates 0 and the midpoints between consecutive distinct scores, ties to the
    lowest τ."""
    k = torch.as_tensor(known).double().flatten().numpy()
    b = torch.as_tensor(background).double().flatten().numpy()
    if len(k) == 0 or len(b) == 0:
        raise MgclError("a separating threshold needs known and background scores")
    values = np.unique(np.concatenate([k, b]))
    candidates = np.concatenate([[0.0], (values[:-1] + values[1:]) / 2])
    tpr = (k[None, :] >= candidates[:, None]).mean(axis=1)
    fpr = (b[None, :] >= candidates[:, None]).mean(axis=1)
    j = tpr - fpr
    best = int(np.argmax(j))  # the first maximum: the lowest τ
    return float(candidates[best]), float(j[best])


def background_threshold(background: torch.Tensor, reject: float = ACCEPT) -> float:
    """The smallest τ with at least ``ceil(reject · B)`` of the background scores (B,) below
    it: the midpoint between the ``ceil(rB)``-th and the next ascending score, or just above
    the largest."""
    s = np.sort(torch.as_tensor(background).double().flatten().numpy())
    if len(s) == 0:
        raise MgclError("no background score to set a threshold on")
    k = math.ceil(reject * len(s) - 1e-9)  # how many must be rejected
    if k >= len(s):  # the next float32 above the largest (scores are float32: compared in it)
        return float(np.nextafter(np.float32(s[-1]), np.float32(np.inf)))
    return float((s[k - 1] + s[k]) / 2) if k > 0 else 0.0


@dataclass
class Rejection:
    """The rejection rule of a fitted classifier: ``threshold`` (None: nothing is rejected),
    ``how`` (the rule in words) and ``stats`` (held-out / background counts and rates)."""

    threshold: float | None
    how: str
    stats: dict = field(default_factory=dict)


def _rate(scores: torch.Tensor, threshold: float, accepted: bool) -> float:
    s = torch.as_tensor(scores).double().flatten()
    return float(((s >= threshold) if accepted else (s < threshold)).double().mean()) if len(s) else float("nan")


def choose_threshold(
    reject,
    temperature: float,
    held: HeldOut | None,
    background_logits: torch.Tensor | None = None,
    accept: float = ACCEPT,
) -> Rejection:
    """The threshold of ``reject`` ("auto", None or a float; see the module docstring).

    ``held``: the leave-one-shot-out fits (None with one clip per class), with the background
    clips' logits per fold (F, B, C) when background was given; ``background_logits`` (B, C):
    the background scored by the model fitted on the whole support (used only with one clip
    per class). Scores are ``max softmax(z / temperature)``."""
    reject = check_reject(reject)
    stats: dict = {}
    known = max_probability(held.logits, temperature) if held is not None else None
    bg = None
    if held is not None and held.background is not None:
        bg = max_probability(held.background.reshape(-1, held.background.shape[-1]), temperature)
    elif held is None and background_logits is not None and len(background_logits):
        bg = max_probability(background_logits, temperature)
    if reject is None:
        return Rejection(None, "off (every clip gets one of the classes)")
    if reject == "auto":
        if known is not None and bg is not None:
            t, j = separating_threshold(known, bg)
            how = (
                f"auto: best separation of {len(known)} held-out support clips from "
                f"{len(bg) // max(held.n_folds, 1)} background clips (Youden J = {j:.2f})"
            )
        elif known is not None:
            t = acceptance_threshold(known, accept)
            how = f"auto: accepts {accept:.0%} of {len(known)} held-out support clips (leave-one-shot-out)"
        elif bg is not None:
            t = background_threshold(bg, accept)
            how = f"auto: one clip per class, rejects {accept:.0%} of {len(bg)} background clips"
        else:
            return Rejection(
                None,
                "auto: none (one clip per class: no held-out support clip to set a threshold on; "
                "give 2+ clips per class, background clips, or a number)",
            )
    else:
        t, how = float(reject), f"given: {float(reject):.4g}"
    if known is not None:
        stats["held_out_clips"] = len(known)
        stats["held_out_accepted"] = round(_rate(known, t, True), 4)
    if bg is not None:
        stats["background_scores"] = len(bg)
        stats["background_rejected"] = round(_rate(bg, t, False), 4)
    return Rejection(float(t), how, stats)


def known_unknown_auroc(known: np.ndarray, unknown: np.ndarray) -> float | None:
    """Area under the ROC curve of the scores, known clips positive: the probability that a
    known clip scores above an unknown one (ties count one half); None when either set is
    empty."""
    known, unknown = np.asarray(known, dtype=float), np.asarray(unknown, dtype=float)
    if len(known) == 0 or len(unknown) == 0:
        return None
    y = np.concatenate([np.ones(len(known)), np.zeros(len(unknown))])
    return float(roc_auc_score(y, np.concatenate([known, unknown])))


__all__ = [
    "ACCEPT",
    "UNKNOWN_LABEL",
    "Rejection",
    "acceptance_threshold",
    "background_threshold",
    "check_reject",
    "choose_threshold",
    "known_unknown_auroc",
    "max_probability",
    "separating_threshold",
]
