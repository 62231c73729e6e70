"""mgcl.methods.selection: class-balanced folds inside the support and candidate selection."""

from __future__ import annotations

import pytest
import torch

from mgcl.methods.selection import fold_score, grid, select, shot_folds


def labels_with_counts(*counts: int) -> torch.Tensor:
    y = torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])
    return y[torch.randperm(len(y), generator=torch.Generator().manual_seed(0))]  # interleaved


@pytest.mark.parametrize(
    "counts, max_folds, n_folds",
    [((3, 5, 4), 5, 3), ((4, 4), 5, 4), ((6, 7, 9), 5, 5), ((8, 8, 8), 3, 3), ((2, 9), 5, 2)],
)
def test_shot_folds_are_class_balanced_partitions(counts, max_folds, n_folds):
    y = labels_with_counts(*counts)
    folds = shot_folds(y, max_folds=max_folds)
    assert len(folds) == n_folds
    for held in folds:
        assert held.dtype == torch.bool and held.shape == y.shape
        # every class is held out at least once and keeps at least one clip in the keys
        assert (torch.bincount(y[held], minlength=len(counts)) >= 1).all()
        assert (torch.bincount(y[~held], minlength=len(counts)) >= 1).all()
    # every clip is held out exactly once
    assert torch.equal(torch.stack(folds).sum(0), torch.ones(len(y), dtype=torch.long))


def test_shot_folds_deal_each_class_evenly():
    y = labels_with_counts(7, 5)
    folds = shot_folds(y, max_folds=5)
    for c, n in enumerate((7, 5)):
        per_fold = [int((y[held] == c).sum()) for held in folds]
        assert max(per_fold) - min(per_fold) <= 1 and sum(per_fold) == n


def test_shot_folds_empty_with_one_shot():
    assert shot_folds(torch.arange(5)) == []  # one clip per class
    assert shot_folds(labels_with_counts(4, 1, 3)) == []  # one class with a single clip
    assert shot_folds(labels_with_counts(4, 4), max_folds=1) == []


def test_shot_folds_depend_on_the_seed_only():
    y = labels_with_counts(6, 6, 6)
    a, b = shot_folds(y, seed=1), shot_folds(y, seed=1)
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    c = shot_folds(y, seed=2)
    assert not all(torch.equal(u, v) for u, v in zip(a, c))


def test_grid_is_the_cartesian_product():
    assert grid(a=[1, 2], b=[3]) == [{"a": 1, "b": 3}, {"a": 2, "b": 3}]
    assert len(grid(a=range(3), b=(0.1, 0.2), c=["x", "y"])) == 12
    assert grid() == [{}]


def test_fold_score_by_hand():
    logits = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    acc, ll = fold_score(logits, torch.tensor([0, 1]))
    assert acc == pytest.approx(0.5)  # the tie argmaxes to class 0
    expected = -(torch.log1p(torch.exp(torch.tensor(-2.0))) + torch.log(torch.tensor(2.0))) / 2
    assert ll == pytest.approx(expected.item(), rel=1e-6)


def _threshold_problem():
    """1-D points; class 1 iff x > 0.5. A candidate 'thr' classifies x > thr."""
    x = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9])
    y = (x > 0.5).long()

    def evaluate(p, held):
        s = x[held] - p["thr"]
        return torch.stack([-s, s], dim=1) * p.get("scale", 1.0)

    return x, y, evaluate


def test_select_picks_the_best_candidate():
    x, y, evaluate = _threshold_problem()
    folds = shot_folds(y, max_folds=4)
    cands = grid(thr=[0.05, 0.25, 0.5, 0.75, 0.95])
    best, table = select(cands, evaluate, y, folds)
    assert best == {"thr": 0.5}
    assert [row[0] for row in table] == cands
    accs = {row[0]["thr"]: row[1] for row in table}
    assert accs[0.5] == pytest.approx(1.0) and accs[0.05] == pytest.approx(0.5)


def test_select_breaks_accuracy_ties_by_log_likelihood():
    x, y, evaluate = _threshold_problem()
    folds = shot_folds(y, max_folds=4)
    cands = [{"thr": 0.5, "scale": 1.0}, {"thr": 0.5, "scale": 20.0}, {"thr": 0.5, "scale": 5.0}]
    best, table = select(cands, evaluate, y, folds)
    assert all(row[1] == pytest.approx(1.0) for row in table)  # a three-way accuracy tie
    assert best == {"thr": 0.5, "scale": 20.0}  # the most confident correct one


def test_select_ranks_accuracy_before_log_likelihood():
    y = torch.tensor([0, 0, 1, 1])

    def evaluate(p, held):
        n = int(held.sum())
        if p["name"] == "timid":  # always right, barely: ll ≈ -log 2
            return torch.stack([(y[held] == 0).float(), (y[held] == 1).float()], 1) * 0.01
        # confident and right on class 1, nearly undecided and wrong on class 0
        out = torch.zeros(n, 2)
        out[y[held] == 1] = torch.tensor([0.0, 10.0])
        out[y[held] == 0] = torch.tensor([0.0, 0.01])
        return out

    folds = shot_folds(y)
    _, table = select([{"name": "timid"}, {"name": "bold"}], evaluate, y, folds)
    (_, acc_t, ll_t), (_, acc_b, ll_b) = table
    assert ll_b > ll_t and acc_b < acc_t  # the problem is what it claims to be
    best, _ = select([{"name": "bold"}, {"name": "timid"}], evaluate, y, folds)
    assert best == {"name": "timid"}


def test_select_sees_only_the_folds_it_is_given():
    y = labels_with_counts(3, 3)
    folds = shot_folds(y)
    seen = []

    def evaluate(p, held):
        seen.append(held.clone())
        return torch.zeros(int(held.sum()), 2)

    select([{"a": 1}], evaluate, y, folds)
    assert len(seen) == len(folds) and all(torch.equal(s, f) for s, f in zip(seen, folds))


def test_select_needs_folds():
    with pytest.raises(ValueError, match="folds"):
        select([{"a": 1}], lambda p, h: torch.zeros(1, 2), torch.tensor([0, 1]), [])
