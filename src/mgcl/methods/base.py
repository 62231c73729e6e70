"""The few-shot method interface, scikit-learn style.

Hyper-parameters are set only in ``__init__``; ``fit`` learns state whose attribute names
end in ``_`` and returns ``self``; ``logits`` before ``fit`` raises NotFittedError.
Every method works on cached features (:class:`~mgcl.backbones.base.AudioFeatures`);
text-side inputs come in a :class:`TextFeatures`.

Persistence is generic: tensors ending in ``_`` go to safetensors, every other learned
attribute ending in ``_`` (numbers, strings, lists, dicts) and the ``__init__`` parameters
go to JSON. Nothing is pickled.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import ClassVar

import torch

from mgcl.backbones.base import AudioFeatures
from mgcl.errors import MgclError, NotFittedError


@dataclass
class TextFeatures:
    """Text-side embeddings for C classes (all L2-normalised, joint space).

    prompts:      (C, D) coarse prompt embedding per class (template ensemble mean).
    descriptions: list of C tensors (M_c, D), LLM descriptions per class (may be empty).
    captions:     (N, D) caption embedding per support clip, or None.
    """

    prompts: torch.Tensor
    descriptions: list[torch.Tensor] = field(default_factory=list)
    captions: torch.Tensor | None = None


@dataclass
class SupportViews:
    """Augmented views of support clips (:mod:`mgcl.augment_audio`), embedded by the backbone.

    features: AudioFeatures of V views.
    source:   (V,) long, the support clip (row of the support set) each view was made from.
    """

    features: AudioFeatures
    source: torch.Tensor

    def __len__(self) -> int:
        return len(self.features)

    def subset(self, clips: torch.Tensor) -> "SupportViews | None":
        """The views of support rows ``clips`` (1-D long), re-indexed to positions in ``clips``."""
        clips = torch.as_tensor(clips, dtype=torch.long)
        if len(self) == 0 or len(clips) == 0:
            return None
        where = torch.full((int(max(self.source.max().item(), clips.max().item())) + 1,), -1, dtype=torch.long)
        where[clips] = torch.arange(len(clips))
        new = where[self.source]
        keep = (new >= 0).nonzero().flatten()
        if len(keep) == 0:
            return None
        return SupportViews(self.features[keep], new[keep])


class Method:
    """Base class of few-shot methods. Subclasses implement ``_fit`` and ``_logits``."""

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
    ) -> "Method":
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
                raise MgclError("support views: 'source' must give, for each view, a support row in "
                                f"[0, {len(support)})")
            views = SupportViews(views.features, source)
        c = int(n_classes if n_classes is not None else labels.max().item() + 1)
        counts = torch.bincount(labels, minlength=c)
        if (counts == 0).any():
            missing = (counts == 0).nonzero().flatten().tolist()
            raise MgclError(f"classes {missing} have no support clip")
        if self.needs_text and text is None:
            raise MgclError(f"method '{self.name}' needs a text encoder (use a backbone with a text tower)")
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

    def check_fitted(self) -> None:
        if not hasattr(self, "n_classes_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit first")

    # ------------------------------------------------------------------ persistence
    def get_params(self) -> dict:
        """The ``__init__`` hyper-parameters (JSON-serialisable)."""
        sig = inspect.signature(type(self).__init__)
        return {k: getattr(self, k) for k in sig.parameters if k != "self" and hasattr(self, k)}

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

    def load_learned_state(self, tensors: dict[str, torch.Tensor], values: dict) -> "Method":
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

