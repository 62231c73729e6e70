"""The few-shot method interface: scikit-learn estimators on cached features.

A method is a :class:`sklearn.base.BaseEstimator`: its ``__init__`` takes keyword-only
hyper-parameters and stores them unchanged (``self.a = a``), so ``get_params``,
``set_params``, ``sklearn.base.clone`` and ``repr`` work; checking and converting them
(tuples, numbers, one-line :class:`~mgcl.errors.MgclError`) happens in ``fit``.
``fit`` forgets any earlier fit, learns state whose attribute names end in ``_`` and
returns ``self``; ``logits`` before ``fit`` raises NotFittedError.
Every method works on cached features (:class:`~mgcl.types.AudioFeatures`);
text-side inputs come in a :class:`~mgcl.types.TextFeatures`.

Persistence is generic: tensors ending in ``_`` go to safetensors, every other learned
attribute ending in ``_`` (numbers, strings, lists, dicts) and the ``__init__`` parameters
(``get_params()``) go to JSON. Nothing is pickled.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator

from mgcl.errors import MgclError, NotFittedError
from mgcl.types import AudioFeatures, Concepts, SupportViews, TextFeatures


def encode_labels(labels: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """String labels -> (int codes (N,), sorted class names)."""
    classes = sorted(set(labels))
    index = {c: i for i, c in enumerate(classes)}
    return np.array([index[label] for label in labels], dtype=np.int64), classes


def as_tuple(value, name: str) -> tuple:
    """A sequence hyper-parameter as a tuple: it is stored as given (a tuple, or a list as
    JSON gives it back) and converted where ``fit`` uses it. A one-line MgclError for
    anything else (a string, a number)."""
    if not isinstance(value, (str, bytes)):
        try:
            return tuple(value)
        except TypeError:
            pass
    raise MgclError(f"{name} must be a list of values, got {value!r}")


class Method(BaseEstimator):
    """Base class of few-shot methods. Subclasses implement ``_fit`` and ``_logits``, and an
    ``__init__`` of keyword-only hyper-parameters that only stores them (no conversion, no
    checks: those belong in ``_fit``), as scikit-learn's ``get_params`` / ``clone`` need."""

    name: ClassVar[str] = "method"
    needs_text: ClassVar[bool] = False

    def view_names(self) -> tuple[str, ...]:
        """Audio views of the support clips this method learns from (none by default):
        callers that hold the audio embed them and pass them to ``fit(..., views=)``."""
        return ()

    # ------------------------------------------------------------------ public API
    def fit(
        self,
        support: AudioFeatures,
        labels: torch.Tensor,
        text: TextFeatures | None = None,
        n_classes: int | None = None,
        views: SupportViews | None = None,
    ) -> Method:
        """Learn from support features (N clips) and integer labels (N,) in [0, C).

        ``views``: augmented views of the support clips, used by methods whose
        :meth:`view_names` is not empty (ignored by the others)."""
        labels = torch.as_tensor(labels, dtype=torch.long)
        if labels.ndim != 1 or labels.shape[0] != len(support):
            raise MgclError(f"labels shape {tuple(labels.shape)} does not match {len(support)} clips")
        if views is not None:
            source = torch.as_tensor(views.source, dtype=torch.long)
            if views.features.dim != support.dim:
                raise MgclError(f"support views have dimension {views.features.dim}, the support {support.dim}")
            if source.shape != (len(views.features),) or (source < 0).any() or (source >= len(support)).any():
                raise MgclError(
                    f"support views: 'source' must give, for each view, a support row in [0, {len(support)})"
                )
            views = SupportViews(views.features, source)
        c = int(n_classes if n_classes is not None else labels.max().item() + 1)
        counts = torch.bincount(labels, minlength=c)
        if (counts == 0).any():
            missing = (counts == 0).nonzero().flatten().tolist()
            raise MgclError(f"classes {missing} have no support clip")
        if self.needs_text and text is None:
            raise MgclError(f"method '{self.name}' needs a text encoder (use a backbone with a text tower)")
        self._forget_fit()
        self.n_classes_ = c
        self.dim_ = support.dim
        if self.view_names():
            self.n_views_ = len(views) if views is not None else 0
            self._fit(support, labels, text, views)
        else:
            self._fit(support, labels, text)
        return self

    @torch.no_grad()
    def logits(self, query: AudioFeatures) -> torch.Tensor:
        """Class scores (Q, C) for query clips."""
        self.check_fitted()
        if query.dim != self.dim_:
            raise MgclError(f"query features have dimension {query.dim}, the model expects {self.dim_}")
        return self._logits(query)

    def predict(self, query: AudioFeatures) -> torch.Tensor:
        return self.logits(query).argmax(dim=1)

    def predict_proba(self, query: AudioFeatures) -> torch.Tensor:
        return self.logits(query).softmax(dim=1)

    # ------------------------------------------------------------------ explanations
    @torch.no_grad()
    def branch_contributions(self, query: AudioFeatures) -> dict[str, torch.Tensor]:
        """Each branch's additive share of the logits, {name: (Q, C)}, summing to them.
        Methods without branches give one: {"total": logits}."""
        return {"total": self.logits(query)}

    @torch.no_grad()
    def explain_concepts(self, query: AudioFeatures, c: int) -> Concepts | None:
        """The audio-side concepts of class ``c`` that an OT branch matches the (one-clip)
        ``query`` to, for explanations; None when the method has no such branch."""
        return None

    def held_out_params(self) -> dict:
        """``set_params`` keyword arguments that pin the choices this fitted model made on its
        support (hyper-parameters it chose by cross-validation), so that a clone fitted on
        part of the support (:func:`mgcl.methods.calibration.held_out_fits`) uses them instead
        of choosing again on fewer clips. ``{}`` for a method that chooses nothing (default).

        ``clone(m).set_params(**m.held_out_params()).fit(same support)`` fits like ``m``."""
        self.check_fitted()
        return {}

    def check_fitted(self) -> None:
        if not self.__sklearn_is_fitted__():
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit first")

    def __sklearn_is_fitted__(self) -> bool:
        """Whether ``fit`` (or ``load_learned_state``) has run (for ``sklearn.utils.validation.check_is_fitted``)."""
        return hasattr(self, "n_classes_")

    def _forget_fit(self) -> None:
        """Drop the learned state of an earlier ``fit`` (attributes ending in ``_``), so that
        nothing a refit does not overwrite (e.g. caption keys) survives into it."""
        for k in [k for k in vars(self) if k.endswith("_") and not k.startswith("_")]:
            delattr(self, k)

    # ------------------------------------------------------------------ persistence
    def learned_state(self) -> tuple[dict[str, torch.Tensor], dict]:
        """(tensors, json_values) of every learned attribute ending in ``_``."""
        tensors, values = {}, {}
        for k, v in vars(self).items():
            if not k.endswith("_") or k.startswith("_"):
                continue
            if isinstance(v, torch.Tensor):
                tensors[k] = v.detach().contiguous().cpu()
            elif isinstance(v, list) and v and all(isinstance(t, torch.Tensor) for t in v):
                for j, t in enumerate(v):
                    tensors[f"{k}#{j}"] = t.detach().contiguous().cpu()
                values[k] = {"__tensor_list__": len(v)}
            elif isinstance(v, dict) and v and all(isinstance(t, torch.Tensor) for t in v.values()):
                for j, t in v.items():
                    tensors[f"{k}#{j}"] = t.detach().contiguous().cpu()
                values[k] = {"__tensor_dict__": list(v)}
            else:
                values[k] = v
        return tensors, values

    def load_learned_state(self, tensors: dict[str, torch.Tensor], values: dict) -> Method:
        for k, v in values.items():
            if isinstance(v, dict) and "__tensor_list__" in v:
                setattr(self, k, [tensors[f"{k}#{j}"] for j in range(v["__tensor_list__"])])
            elif isinstance(v, dict) and "__tensor_dict__" in v:
                setattr(self, k, {j: tensors[f"{k}#{j}"] for j in v["__tensor_dict__"]})
            else:
                setattr(self, k, v)
        for k, t in tensors.items():
            if "#" not in k:
                setattr(self, k, t)
        return self

    # ------------------------------------------------------------------ to implement
    def _fit(self, support: AudioFeatures, labels: torch.Tensor, text: TextFeatures | None) -> None:
        raise NotImplementedError

    def _logits(self, query: AudioFeatures) -> torch.Tensor:
        raise NotImplementedError
