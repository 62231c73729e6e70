"""``FewShotAudioClassifier``: a few labelled clips in, a classifier that works alone out.

scikit-learn style: hyper-parameters are set only in ``__init__``; ``fit`` learns state
whose names end in ``_`` (``classes_``, ``method_``, ...) and returns ``self``; use before
``fit`` raises :class:`~mgcl.errors.NotFittedError`.

    clf = FewShotAudioClassifier(backbone="aisfx", method="tip_adapter")
    clf.fit(["dog1.wav", "dog2.wav", "siren1.wav", "siren2.wav"], ["dog", "dog", "siren", "siren"])
    clf.predict(["query.wav"])            # -> ["dog"]
    clf.predict_proba(["query.wav"])      # -> numpy (1, 2), columns in clf.classes_ order (calibrated)
    clf.save("my_model")                  # config.json + weights.safetensors
    FewShotAudioClassifier.load("my_model").predict([(waveform, 16000)])

Inputs are audio file paths or ``(waveform, sample_rate)`` pairs (mixed allowed); the
``*_features`` variants take already computed :class:`~mgcl.backbones.base.AudioFeatures`.

**Saved model** (a folder): ``config.json`` (format version, mgcl version, backbone name,
options and identity, method name and hyper-parameters, classes, the JSON-able learned
values, feature dimension, SHA-256 of the weights) and ``weights.safetensors`` (the
learned tensors). Nothing is pickled, on save or on load. Each file is written to a
temporary name and renamed into place, weights first and config last; a crash between
the two is caught on load by the checksum, so a half-written model is never used.

**Calibrated probabilities.** After the method is fitted, a temperature ``T`` is fitted on
the support itself (:mod:`mgcl.methods.calibration`): clones of the method fitted on
leave-one-shot-out folds score the held-out clips, and ``T`` minimises their negative
log-likelihood. ``predict_proba`` and ``top_k`` give ``softmax(logits / T)``, so the
probabilities of different methods mean the same thing; predictions (the argmax) do not
change. With one clip per class, or ``calibrate=False``, ``T = 1``.

**Open set ("none of these").** With ``reject`` set, a clip whose calibrated probability
of its best class is below a threshold gets ``unknown_label`` instead of a class
(:mod:`mgcl.methods.openset`): ``reject=0.6`` sets it; ``reject="auto"`` chooses it on the
support alone from the same leave-one-shot-out fits as the temperature (it accepts 95 % of
the held-out support clips; with ``background`` clips of "nothing of interest" given to
``fit``, it best separates the two; with one clip per class and no background it rejects
nothing). ``predict`` answers ``unknown_label`` below it; ``predict_proba`` and ``top_k``
still give the class probabilities (``top_k`` of a rejected clip lists the classes it was
nearest to). The threshold is ``reject_threshold_`` (None: nothing rejected), saved with
the model.

**Feature store.** Embeddings are cached by audio content in the same folder as the
command line's: ``$MGCL_STORE``, else ``~/.cache/mgcl/features`` (``store=None``, the
default); ``store=<folder>`` uses another one and ``store=False`` caches nothing.

**Backbone identity.** Features only make sense for the backbone that produced them. The
backbone is built lazily (on the first prediction from audio); if its ``identity``
differs from the one recorded at fit, :meth:`get_backbone` raises an MgclError, unless
the model was loaded with ``strict_backbone=False``, which downgrades it to a warning
(use it when you know the difference is harmless, e.g. a copied local CLAP folder).
"""

from __future__ import annotations

import logging
import os
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator

from mgcl.backbones import available_backbones, get_backbone
from mgcl.classifier import persistence
from mgcl.errors import MgclError, NotFittedError
from mgcl.methods.base import encode_labels
from mgcl.methods.calibration import CALIBRATION_FOLDS, calibrated_probabilities, fit_temperature, held_out_fits
from mgcl.methods.openset import UNKNOWN_LABEL, check_reject, choose_threshold
from mgcl.methods.registry import build_method
from mgcl.store.features import FeatureStore, ViewCache, default_store_dir, embed_sources
from mgcl.text.prompts import class_text_features
from mgcl.types import AudioFeatures

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- helpers
def _source_problem(i: int, src) -> str | None:
    if isinstance(src, (str, os.PathLike)):
        return None
    if isinstance(src, tuple) and len(src) == 2:
        return None
    return f"input {i}: expected an audio path or a (waveform, sample_rate) pair, got {type(src).__name__}"


def _check_sources(X) -> list:
    if isinstance(X, (str, os.PathLike)):
        raise MgclError(
            "X must be a list of audio paths or (waveform, sample_rate) pairs, "
            f"not a single path ('{X}'): wrap it in a list"
        )
    if isinstance(X, AudioFeatures):
        raise MgclError("X is an AudioFeatures batch: use the *_features methods (fit_features, predict_features, ...)")
    try:
        X = list(X)
    except TypeError:
        raise MgclError(
            f"X must be a list of audio paths or (waveform, sample_rate) pairs, got {type(X).__name__}"
        ) from None
    problems = [p for i, s in enumerate(X) if (p := _source_problem(i, s))]
    if problems:
        raise MgclError(problems[0] + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))
    return X


def failure_summary(errors: Mapping[int, str], total: int, what: str = "inputs", show: int = 3) -> str:
    """One line: 'N of M inputs could not be used: a.wav: reason; b.wav: reason (and K more)'."""
    msgs = [errors[i] for i in sorted(errors)]
    head = "; ".join(msgs[:show])
    more = f" (and {len(msgs) - show} more)" if len(msgs) > show else ""
    return f"{len(msgs)} of {total} {what} could not be used: {head}{more}"


# ----------------------------------------------------------------------------- classifier
class FewShotAudioClassifier(BaseEstimator):
    """Few-shot audio classifier: a backbone (features) + a few-shot method (decision).

    Parameters
    ----------
    backbone:         registry name (``"aisfx"``, ``"clap"``, ...) or a built backbone object.
    method:           few-shot method name (see :func:`mgcl.methods.available_methods`).
    method_params:    hyper-parameters of the method (``{"alphas": (0.5, 1.0)}``, ...).
    backbone_options: keyword options of the backbone factory (``checkpoint``, ``device``).
    store:            feature-store folder (embeddings cached by audio content); None (the
                      default): the command line's store, ``$MGCL_STORE`` else
                      ``~/.cache/mgcl/features``; False: no caching at all.
    batch_size:       clips per backbone forward.
    descriptions:     optional ``{class: [sentence, ...]}`` LLM descriptions (text backbones).
    calibrate:        fit a temperature on the support (leave-one-shot-out) so that
                      ``predict_proba`` is calibrated; False: the method's own softmax.
    reject:           open-set rejection: None (default: every clip gets a class), a
                      probability threshold in [0, 1], or "auto" (chosen on the support).
    unknown_label:    the label of a rejected clip (default "unknown"; not a class name).

    Learned state: ``classes_`` (sorted labels), ``method_`` (the fitted Method),
    ``backbone_name_``, ``backbone_identity_``, ``dim_`` (feature dimension),
    ``support_counts_`` (clips per class), ``temperature_`` (1.0 when not calibrated),
    ``calibration_`` (how it was fitted, in words), ``support_names_`` (the support clips'
    names, or None when not given), ``support_clips_`` (N, D) and ``support_labels_`` (the
    clips' embeddings and labels: an explanation names the nearest ones),
    ``reject_threshold_`` (float, or None when nothing is rejected), ``reject_how_`` (how it
    was chosen, in words) and ``reject_stats_`` (held-out support clips accepted, background
    rejected).
    """

    def __init__(
        self,
        *,
        backbone="aisfx",
        method: str = "mgcl_f",
        method_params: Mapping[str, Any] | None = None,
        backbone_options: Mapping[str, Any] | None = None,
        store: str | os.PathLike | bool | None = None,
        batch_size: int = 16,
        descriptions: Mapping[str, Sequence[str]] | None = None,
        calibrate: bool = True,
        reject: str | float | None = None,
        unknown_label: str = UNKNOWN_LABEL,
    ):
        self.backbone = backbone
        self.method = method
        self.method_params = method_params
        self.backbone_options = backbone_options
        self.store = store
        self.batch_size = batch_size
        self.descriptions = descriptions
        self.calibrate = calibrate
        self.reject = reject
        self.unknown_label = unknown_label

    # ------------------------------------------------------------------ backbone / store
    @property
    def _backbone_name(self) -> str:
        return self.backbone if isinstance(self.backbone, str) else getattr(self.backbone, "name", "?")

    def get_backbone(self):
        """The backbone object, built on first use; checks its identity against the fitted one."""
        bb = getattr(self, "_backbone", None)
        if bb is None:
            if isinstance(self.backbone, str):
                bb = get_backbone(self.backbone, **dict(self.backbone_options or {}))
            else:
                bb = self.backbone
            self._check_identity(bb)
            self._backbone = bb
        return bb

    def _check_identity(self, bb) -> None:
        expected = getattr(self, "backbone_identity_", None)
        if expected is None or getattr(bb, "identity", None) == expected:
            return
        msg = (
            f"backbone '{bb.name}' has identity '{bb.identity}' but this model was fitted on "
            f"features of '{expected}': its predictions would be meaningless"
        )
        if getattr(self, "_strict_backbone", True):
            raise MgclError(
                msg + " (load with strict_backbone=False / --allow-backbone-mismatch "
                "if you know the difference is harmless)"
            )
        warnings.warn(msg, stacklevel=3)

    def store_dir(self) -> Path | None:
        """The feature-store folder in use: ``store``, the default store for None, or None
        (no caching) for False."""
        if self.store is False:
            return None
        if self.store is None or self.store is True:
            return default_store_dir()
        if isinstance(self.store, FeatureStore):
            return self.store.root
        return Path(self.store).expanduser()

    def _feature_store(self, backbone):
        if isinstance(self.store, FeatureStore):
            return self.store
        folder = self.store_dir()
        return None if folder is None else FeatureStore(folder, backbone.identity)

    def embed(self, X, what: str = "inputs") -> AudioFeatures:
        """Features of audio paths / ``(waveform, sr)`` pairs; MgclError listing any bad input."""
        X = _check_sources(X)
        if not X:
            raise MgclError(f"no {what} given")
        bb = self.get_backbone()
        res = embed_sources(bb, X, store=self._feature_store(bb), batch_size=self.batch_size)
        if res.errors:
            raise MgclError(failure_summary(res.errors, len(X), what))
        return res.stacked()

    # ------------------------------------------------------------------ fit
    def fit(self, X, y, background=None) -> FewShotAudioClassifier:
        """Embed the support clips ``X`` (paths / ``(waveform, sr)``) with labels ``y`` and fit.

        Any undecodable input fails the whole fit (one line naming them): a support set
        silently missing clips is worse than an error. Labels are stored as strings; the
        clips' names (``support_names_``) are the paths, ``"<waveform i>"`` for pairs.
        ``background``: clips of "nothing of interest" (paths / pairs) that ``reject="auto"``
        learns to reject (never a class, never part of the method's fit).
        """
        X = _check_sources(X)
        labels = self._check_labels(X, y)
        clip_names = [str(x) if isinstance(x, (str, os.PathLike)) else f"<waveform {i}>" for i, x in enumerate(X)]
        names = self._check_method().view_names()
        feats = self.embed(X, what="support clips")
        views = None
        if names:  # the method trains on audio views of the support clips: embed them too
            bb = self.get_backbone()
            views = ViewCache(bb, X, self._feature_store(bb), self.batch_size).views(range(len(X)), names)
        bg = None
        if background is not None and check_reject(self.reject) != "auto":
            warnings.warn("background clips are used only with reject='auto': ignored", stacklevel=2)
        elif background is not None:
            bg = self.embed(background, what="background clips")
        return self.fit_features(feats, labels, views=views, names=clip_names, background=bg)

    def fit_features(
        self,
        features: AudioFeatures,
        labels: Sequence[str],
        text=None,
        views=None,
        names: Sequence[str] | None = None,
        background: AudioFeatures | None = None,
    ) -> FewShotAudioClassifier:
        """Fit on precomputed support features (N clips) and their N string labels.

        ``text``: a :class:`~mgcl.methods.TextFeatures` for the sorted classes, or None to
        build it from the backbone when the backbone has a text tower (audio-only: none).
        ``views``: a :class:`~mgcl.methods.SupportViews` of the clips, for a method that
        trains on audio views (:meth:`fit` embeds them; without them it trains on the clips).
        ``names``: the N clips' names (file paths), kept as ``support_names_`` (saved with
        the model) so that an explanation can name the nearest support clips.

        With ``calibrate``, the temperature is then fitted on the support's held-out logits
        (:func:`mgcl.methods.calibration.held_out_fits`, up to ``CALIBRATION_FOLDS``
        leave-one-shot-out folds): that many more fits of the method, after the full fit,
        each with the full model's choices pinned (``Method.held_out_params``).
        With ``reject="auto"`` the threshold comes from the same fits
        (:func:`mgcl.methods.openset.choose_threshold`); ``background`` (B clips' features)
        are scored by each of them and moved below the threshold.
        """
        labels = self._check_labels(features, labels)
        reject = check_reject(self.reject)
        if names is not None:
            if isinstance(names, (str, bytes)):
                raise MgclError("names must be a list of clip names, one per clip")
            names = [str(n) for n in names]
            if len(names) != len(labels):
                raise MgclError(f"got {len(labels)} clips but {len(names)} names: they must match one to one")
        method = self._check_method()
        codes, classes = encode_labels(labels)
        unknown = self._check_unknown_label(classes, reject)
        if background is not None:
            if not isinstance(background, AudioFeatures):
                raise MgclError("background must be an AudioFeatures batch here (fit takes audio paths)")
            if background.dim != features.dim:
                raise MgclError(f"background features have dimension {background.dim}, the support {features.dim}")
            if reject != "auto":
                warnings.warn("background clips are used only with reject='auto': ignored", stacklevel=2)
                background = None
            elif len(background) == 0:
                background = None
        bb = self._known_backbone()
        if bb is not None and getattr(bb, "dim", features.dim) != features.dim:
            raise MgclError(f"features have dimension {features.dim}, backbone '{bb.name}' gives {bb.dim}")
        if text is None and bb is not None and getattr(bb, "has_text", False):
            text = class_text_features(bb, classes, self.descriptions)
        elif self.descriptions and bb is not None and not getattr(bb, "has_text", False):
            warnings.warn(f"descriptions ignored: backbone '{bb.name}' has no text tower", stacklevel=2)
        y = torch.as_tensor(codes)
        method.fit(features, y, text=text, n_classes=len(classes), views=views)
        held = None
        if self.calibrate or reject == "auto":  # one set of leave-one-shot-out fits for both
            held = held_out_fits(
                method, features, y, text, views, len(classes), CALIBRATION_FOLDS, background=background
            )
        if self.calibrate:
            t = fit_temperature(held.logits, held.labels) if held is not None else 1.0
            how = "none: one clip per class (T = 1)"
            if held is not None:
                how = f"leave-one-shot-out, {held.n_folds} folds"
        else:
            t, how = 1.0, "off (calibrate=False)"
        final_bg = method.logits(background) if background is not None and held is None else None
        rejection = choose_threshold(reject, float(t), held, final_bg)
        if reject == "auto":
            log.debug("open-set threshold: %s (%s)", rejection.threshold, rejection.how)
        self.method_ = method
        self.temperature_ = float(t)
        self.calibration_ = how
        self.support_names_ = names
        self.support_clips_ = features.clip.detach().float().clone()  # (N, D): nearest support clips
        self.support_labels_ = [str(v) for v in labels]
        self.classes_ = list(classes)
        self.dim_ = int(features.dim)
        self.backbone_name_ = self._backbone_name
        self.backbone_identity_ = getattr(bb, "identity", None) if bb is not None else None
        self.support_counts_ = {c: int(n) for c, n in sorted(Counter(labels).items())}
        self.reject_threshold_ = rejection.threshold
        self.reject_how_ = rejection.how
        self.reject_stats_ = dict(rejection.stats)
        self.unknown_label_ = unknown
        return self

    def nearest_support(self, features: AudioFeatures, k: int = 3) -> list[list[dict]]:
        """Per query clip, the ``k`` support clips most similar to it (cosine of the clip
        embeddings): ``[{"name", "label", "similarity", "row"}, ...]`` best first; empty for a
        model saved without its support embeddings."""
        self.check_fitted()
        keys = getattr(self, "support_clips_", None)
        if keys is None or len(keys) == 0:
            return [[] for _ in range(len(features))]
        sims = features.clip.float() @ keys.T  # both L2-normalised: (Q, N)
        names = self.support_names_ or [f"support clip {i}" for i in range(len(keys))]
        out = []
        for row in sims:
            top = torch.argsort(row, descending=True, stable=True)[: max(1, int(k))]
            out.append(
                [
                    {
                        "name": names[int(j)],
                        "label": self.support_labels_[int(j)],
                        "similarity": round(float(row[j]), 4),
                        "row": int(j),
                    }
                    for j in top
                ]
            )
        return out

    def _known_backbone(self):
        """The backbone when it is at hand or can be built (a registered name), else None."""
        if not isinstance(self.backbone, str) or getattr(self, "_backbone", None) is not None:
            return self.get_backbone()
        return self.get_backbone() if self.backbone in available_backbones() else None

    def _check_labels(self, X, y) -> list[str]:
        if y is None or isinstance(y, (str, bytes)):
            raise MgclError("y must be a list of labels, one per clip")
        labels = [str(v) for v in y]
        if len(labels) != len(X):
            raise MgclError(f"got {len(X)} clips but {len(labels)} labels: they must match one to one")
        n_classes = len(set(labels))
        if n_classes < 2:
            raise MgclError(
                f"need at least 2 classes to fit a classifier, got {n_classes}"
                + (f" ('{labels[0]}')" if labels else "")
            )
        return labels

    def _check_method(self):
        return build_method(self.method, self.method_params)

    def _check_unknown_label(self, classes: Sequence[str], reject) -> str:
        label = self.unknown_label
        if not isinstance(label, str) or not label.strip():
            raise MgclError(f"unknown_label must be a non-empty string, got {label!r}")
        if reject is not None and label in classes:
            raise MgclError(
                f"unknown_label '{label}' is also a class of the support: choose another "
                "(unknown_label= / --unknown-label)"
            )
        return label

    # ------------------------------------------------------------------ predict
    def check_fitted(self) -> None:
        if not hasattr(self, "method_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit (or load) first")

    def predict_proba_features(self, features: AudioFeatures) -> np.ndarray:
        """(Q, C) calibrated class probabilities ``softmax(logits / temperature_)``, columns in
        ``classes_`` order."""
        self.check_fitted()
        if len(features) == 0:
            return np.zeros((0, len(self.classes_)), dtype=np.float32)
        logits = self.method_.logits(features)
        return calibrated_probabilities(logits, getattr(self, "temperature_", 1.0)).detach().cpu().numpy()

    def confidence_features(self, features: AudioFeatures) -> np.ndarray:
        """(Q,) the calibrated probability of each query's best class, ``max_c
        softmax(logits / temperature_)``: the score that ``reject_threshold_`` applies to."""
        return self.predict_proba_features(features).max(axis=1) if len(features) else np.zeros(0, np.float32)

    def accepted_features(self, features: AudioFeatures) -> np.ndarray:
        """(Q,) bool: whether each query is given a class (its confidence is at least
        ``reject_threshold_``); all True when nothing is rejected."""
        self.check_fitted()
        threshold = getattr(self, "reject_threshold_", None)
        if threshold is None:
            return np.ones(len(features), dtype=bool)
        return self.confidence_features(features) >= threshold

    def predict_features(self, features: AudioFeatures) -> list[str]:
        """The most probable class of each query: the argmax of the method's own softmax, as
        before calibration (a temperature changes no argmax; this also keeps exact ties);
        ``unknown_label`` where the confidence is below ``reject_threshold_``."""
        self.check_fitted()
        if len(features) == 0:
            return []
        proba = self.method_.predict_proba(features).detach().cpu().numpy()
        labels = [self.classes_[i] for i in proba.argmax(axis=1)]
        if getattr(self, "reject_threshold_", None) is None:
            return labels
        unknown = getattr(self, "unknown_label_", self.unknown_label)
        return [lab if ok else unknown for lab, ok in zip(labels, self.accepted_features(features))]

    def top_k_features(self, features: AudioFeatures, k: int = 3) -> list[list[tuple[str, float]]]:
        """Per query the ``k`` most probable ``(label, probability)``, best first (k <= C):
        classes only, also for a clip that :meth:`predict_features` rejects (the classes it
        was nearest to)."""
        if int(k) != k or k < 1:
            raise MgclError(f"k must be a positive integer, got {k}")
        proba = self.predict_proba_features(features)
        k = min(int(k), len(self.classes_))
        order = np.argsort(-proba, axis=1, kind="stable")[:, :k]
        return [[(self.classes_[j], float(p[j])) for j in row] for p, row in zip(proba, order)]

    def score_features(self, features: AudioFeatures, y: Sequence[str]) -> float:
        """Accuracy in [0, 1] against string labels ``y``: a label that is not a class counts
        as an error, unless it is ``unknown_label`` and the clip is rejected."""
        y = [str(v) for v in y]
        if len(y) != len(features):
            raise MgclError(f"got {len(features)} clips but {len(y)} labels: they must match one to one")
        if not y:
            raise MgclError("cannot score an empty set")
        pred = self.predict_features(features)
        return float(np.mean([p == t for p, t in zip(pred, y)]))

    def _query(self, X) -> AudioFeatures | None:
        self.check_fitted()
        X = _check_sources(X)
        return self.embed(X, what="queries") if X else None

    def predict_proba(self, X) -> np.ndarray:
        """(n, C) probabilities for audio paths / ``(waveform, sr)`` pairs, ``classes_`` order."""
        f = self._query(X)
        return np.zeros((0, len(self.classes_)), dtype=np.float32) if f is None else self.predict_proba_features(f)

    def predict(self, X) -> list[str]:
        f = self._query(X)
        return [] if f is None else self.predict_features(f)

    def top_k(self, X, k: int = 3) -> list[list[tuple[str, float]]]:
        f = self._query(X)
        return [] if f is None else self.top_k_features(f, k)

    def score(self, X, y) -> float:
        X = _check_sources(X)
        if y is None or len(y) != len(X):
            raise MgclError(f"got {len(X)} clips but {0 if y is None else len(y)} labels: they must match one to one")
        f = self._query(X)
        if f is None:
            raise MgclError("cannot score an empty set")
        return self.score_features(f, y)

    # ------------------------------------------------------------------ persistence
    def config(self) -> dict:
        """The ``config.json`` document of the fitted model (without the weights checksum)."""
        return persistence.config(self)

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``config.json`` + ``weights.safetensors`` (and a ``README.md`` model card)
        into the folder ``path``; returns it. See :mod:`mgcl.classifier.persistence`."""
        return persistence.save(self, path)

    #: ``FewShotAudioClassifier.load(path, store=None, backbone_options=None, strict_backbone=True)``:
    #: a folder written by :meth:`save` (JSON + safetensors only, no pickle); see
    #: :func:`mgcl.classifier.persistence.load`.
    load = classmethod(persistence.load)

    def __repr__(self) -> str:
        state = f", classes={len(self.classes_)}" if hasattr(self, "classes_") else ""
        return f"{type(self).__name__}(backbone={self._backbone_name!r}, method={self.method!r}{state})"


__all__ = ["FewShotAudioClassifier", "failure_summary"]
