"""Method tests run on tiny tensors: one CPU thread is faster than several (and steadier)."""

from __future__ import annotations

import pytest
import torch

from mgcl.methods.baselines import linear_probe, tip_adapter, treff
from mgcl.methods.mgcl import finetuned, training_free


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def forbid_cross_validation(monkeypatch):
    """A function that, once called, makes every method's own cross-validation on the
    support (its ``shot_folds`` call) raise an AssertionError for the rest of the test."""

    def forbid():
        def refuse(*args, **kwargs):
            raise AssertionError("cross-validation on the support: a pinned model must not choose again")

        for module in (linear_probe, tip_adapter, treff, training_free, finetuned):
            monkeypatch.setattr(module, "shot_folds", refuse)

    return forbid
