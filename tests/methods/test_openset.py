"""Open-set thresholds (mgcl.methods.openset): the rules on hand-made scores, and the
held-out fits they come from."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mgcl.errors import MgclError
from mgcl.methods import make_method
from mgcl.methods.calibration import HeldOut, held_out_fits, held_out_logits
from mgcl.methods.openset import (
    acceptance_threshold,
    background_threshold,
    check_reject,
    choose_threshold,
    known_unknown_auroc,
    max_probability,
    separating_threshold,
)
from tests.methods._synth import centres, make_features


# ----------------------------------------------------------------------------- the rules
def test_acceptance_threshold_accepts_the_asked_fraction():
    s = torch.arange(1, 21, dtype=torch.float64) / 20  # 0.05 .. 1.00
    t = acceptance_threshold(s, 0.95)
    assert t == pytest.approx(0.10)  # s_(2): 19 of 20 accepted
    assert int((s >= t).sum()) == 19
    assert acceptance_threshold(s, 0.5) == pytest.approx(0.55)  # s_(11): 10 accepted
    # with fewer than 20 held-out clips, 95 % rounds up to all of them: the lowest score
    assert acceptance_threshold(torch.tensor([0.9, 0.4, 0.7]), 0.95) == pytest.approx(0.4)
    # the order of the scores does not matter
    assert acceptance_threshold(s.flip(0), 0.95) == t


def test_separating_threshold_on_paper():
    # apart: the midpoint between the highest background and the lowest known score
    assert separating_threshold(torch.tensor([0.8, 0.9]), torch.tensor([0.3, 0.5])) == (pytest.approx(0.65), 1.0)
    # overlapping: J = 1/3 at 0.35, 0.65 and 0.875 (see the list below); ties go to the lowest
    known, bg = torch.tensor([0.4, 0.8, 0.9]), torch.tensor([0.3, 0.5, 0.85])
    # candidates 0, .35, .45, .65, .825, .875 -> J = 0, 1/3, 0, 1/3, 0, 1/3
    t, j = separating_threshold(known, bg)
    assert t == pytest.approx(0.35) and j == pytest.approx(1 / 3)
    # background above every known clip: nothing separates them, accept everything
    assert separating_threshold(torch.tensor([0.2, 0.3]), torch.tensor([0.8, 0.9])) == (0.0, 0.0)


def test_background_threshold_rejects_the_asked_fraction():
    s = torch.arange(1, 21, dtype=torch.float64) / 20
    t = background_threshold(s, 0.95)
    assert t == pytest.approx(0.975) and int((s < t).sum()) == 19
    small = torch.tensor([0.2, 0.6, 0.4])
    t = background_threshold(small, 0.95)  # all 3 rejected: just above the largest
    assert t > 0.6 and t == pytest.approx(0.6)


@pytest.mark.parametrize(
    "value, expected", [(None, None), ("none", None), ("Auto", "auto"), ("0.4", 0.4), (0.5, 0.5), (1, 1.0)]
)
def test_check_reject_accepts(value, expected):
    assert check_reject(value) == expected


@pytest.mark.parametrize("value", ["sometimes", 1.5, -0.1, True, [0.5]])
def test_check_reject_refuses_in_one_line(value):
    with pytest.raises(MgclError, match=r"^reject must be 'auto', None or a probability in \[0, 1\]"):
        check_reject(value)


def test_auroc_is_the_probability_a_known_clip_scores_higher():
    assert known_unknown_auroc(np.array([0.9, 0.8]), np.array([0.3, 0.5])) == 1.0
    assert known_unknown_auroc(np.array([0.3]), np.array([0.9])) == 0.0
    assert known_unknown_auroc(np.array([0.5, 0.9]), np.array([0.7])) == 0.5
    assert known_unknown_auroc(np.array([0.5]), np.array([])) is None


def test_max_probability_uses_the_temperature():
    z = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    assert max_probability(z, 1.0).tolist() == pytest.approx([1 / (1 + np.exp(-2)), 0.5])
    assert max_probability(z, 2.0)[0].item() == pytest.approx(1 / (1 + np.exp(-1)))


# ----------------------------------------------------------------------------- choose_threshold
def held(known_logits, background=None) -> HeldOut:
    z = torch.as_tensor(known_logits, dtype=torch.float32)
    return HeldOut(z, z.argmax(1), None if background is None else torch.as_tensor(background).float(), 2)


def test_choose_threshold_rules():
    h = held([[3.0, 0.0], [2.0, 0.0], [1.0, 0.0]])
    scores = max_probability(h.logits, 1.0)
    off = choose_threshold(None, 1.0, h)
    assert off.threshold is None and off.how.startswith("off")
    auto = choose_threshold("auto", 1.0, h)
    assert auto.threshold == pytest.approx(float(scores.min())) and auto.stats["held_out_accepted"] == 1.0
    given = choose_threshold(0.9, 1.0, h)
    assert given.threshold == 0.9 and given.stats == {
        "held_out_clips": 3,
        "held_out_accepted": pytest.approx(1 / 3, abs=1e-4),
    }
    # background scored by the 2 fold models (F, B, C) = (2, 2, 2): separated from the known clips
    bg = [[[0.1, 0.0], [0.0, 0.2]], [[0.3, 0.0], [0.0, 0.0]]]
    sep = choose_threshold("auto", 1.0, held(h.logits, bg))
    assert float(max_probability(torch.tensor(bg).reshape(-1, 2), 1.0).max()) < sep.threshold < float(scores.min())
    assert sep.stats["background_rejected"] == 1.0 and sep.stats["background_scores"] == 4
    assert "2 background clips" in sep.how
    # one clip per class: no held-out clip; nothing rejected without background, 95 % of it with
    none = choose_threshold("auto", 1.0, None)
    assert none.threshold is None and "one clip per class" in none.how
    one = choose_threshold("auto", 1.0, None, torch.tensor([[0.1, 0.0], [0.0, 2.0]]))
    assert one.threshold > float(max_probability(torch.tensor([[0.0, 2.0]]), 1.0)[0])


def test_held_out_fits_scores_background_with_every_fold_model():
    c = centres(4)
    labels = np.repeat(np.arange(3), 4)
    sup = make_features(labels, c, seed=1)
    bg = make_features(np.full(5, 3), c, seed=2)
    m = make_method("prototype").fit(sup, torch.as_tensor(labels))
    out = held_out_fits(m, sup, torch.as_tensor(labels), n_classes=3, max_folds=3, background=bg)
    assert out.n_folds == 3 and out.background.shape == (3, 5, 3)
    # the held-out part is exactly held_out_logits' (the calibration is unchanged)
    z, y = held_out_logits(m, sup, torch.as_tensor(labels), n_classes=3, max_folds=3)
    assert torch.equal(out.logits, z) and torch.equal(out.labels, y)
    assert held_out_fits(m, sup[np.arange(3) * 4], torch.arange(3), n_classes=3) is None  # one shot
