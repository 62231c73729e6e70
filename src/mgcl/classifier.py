"""``FewShotAudioClassifier``: a few labelled clips in, a classifier that works alone out.

scikit-learn style: hyper-parameters are set only in ``__init__``; ``fit`` learns state
whose names end in ``_`` (``classes_``, ``method_``, ...) and returns ``self``; use before
``fit`` raises :class:`~mgcl.errors.NotFittedError`.

    clf = FewShotAudioClassifier(backbone="aisfx", method="tip_adapter", store="~/.cache/mgcl/features")
    clf.fit(["dog1.wav", "dog2.wav", "siren1.wav", "siren2.wav"], ["dog", "dog", "siren", "siren"])
    clf.predict(["query.wav"])            # -> ["dog"]
    clf.predict_proba(["query.wav"])      # -> numpy (1, 2), columns in clf.classes_ order
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

**Backbone identity.** Features only make sense for the backbone that produced them. The
backbone is built lazily (on the first prediction from audio); if its ``identity``
differs from the one recorded at fit, :meth:`get_backbone` raises an MgclError, unless
the model was loaded with ``strict_backbone=False``, which downgrades it to a warning
(use it when you know the difference is harmless, e.g. a copied local CLAP folder).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import warnings
from collections import Counter
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from mgcl import __version__
from mgcl.backbones.base import AudioFeatures
from mgcl.errors import MgclError, NotFittedError
from mgcl.features import atomic_write_bytes

FORMAT = "mgcl-model"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"
#: Backbone options that describe the machine, not the model: never saved.
MACHINE_OPTIONS = ("device", "batch_size")


# ----------------------------------------------------------------------------- helpers
def coerce_params(cls: type, params: Mapping[str, Any], method_name: str | None = None) -> dict:
    """Check ``params`` against ``cls.__init__`` and restore types JSON / a command line lose.

    A list (or a comma-separated string) becomes a tuple where the parameter's default is
    a tuple or its annotation says ``tuple``. Unknown names raise a one-line MgclError.
    """
    sig = inspect.signature(cls.__init__)
    accepted = {k: p for k, p in sig.parameters.items() if k != "self"}
    has_var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
    name = method_name or getattr(cls, "name", cls.__name__)
    out = {}
    for key, value in params.items():
        if key not in accepted and not has_var_kw:
            choices = ", ".join(k for k, p in accepted.items() if p.kind is not inspect.Parameter.VAR_KEYWORD)
            raise MgclError(f"method '{name}' has no parameter '{key}' (parameters: {choices})")
        p = accepted.get(key)
        wants_tuple = p is not None and (
            isinstance(p.default, tuple) or "tuple" in str(p.annotation)
        )
        if wants_tuple and isinstance(value, str):
            value = tuple(_parse_scalar(v) for v in value.split(",") if v.strip())
        elif wants_tuple and isinstance(value, list):
            value = tuple(value)
        out[key] = value
    return out


def _parse_scalar(text: str):
    text = text.strip()
    try:
        return json.loads(text)
    except ValueError:
        return text


def build_method(name: str, params: Mapping[str, Any] | None = None):
    """``make_method`` with parameter checking (one-line errors instead of TypeError)."""
    from mgcl.methods import method_class

    cls = method_class(name)
    params = coerce_params(cls, dict(params or {}), name)
    try:
        return cls(**params)
    except (TypeError, ValueError) as exc:
        raise MgclError(f"method '{name}': bad parameters {params} ({exc})".splitlines()[0]) from None


def _jsonable(value, where: str):
    """Plain JSON types (tuples -> lists, numpy/torch scalars -> numbers) or a clear error."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, torch.Tensor) and value.numel() == 1 and value.ndim == 0:
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, where) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v, f"{where}.{k}") for k, v in value.items()}
    raise MgclError(f"cannot save {where}: {type(value).__name__} is not JSON-serialisable")


def _source_problem(i: int, src) -> str | None:
    if isinstance(src, (str, os.PathLike)):
        return None
    if isinstance(src, tuple) and len(src) == 2:
        return None
    return (f"input {i}: expected an audio path or a (waveform, sample_rate) pair, "
            f"got {type(src).__name__}")


def _check_sources(X) -> list:
    if isinstance(X, (str, os.PathLike)):
        raise MgclError("X must be a list of audio paths or (waveform, sample_rate) pairs, "
                        f"not a single path ('{X}'): wrap it in a list")
    if isinstance(X, AudioFeatures):
        raise MgclError("X is an AudioFeatures batch: use the *_features methods "
                        "(fit_features, predict_features, ...)")
    try:
        X = list(X)
    except TypeError:
        raise MgclError(f"X must be a list of audio paths or (waveform, sample_rate) pairs, "
                        f"got {type(X).__name__}") from None
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
class FewShotAudioClassifier:
    """Few-shot audio classifier: a backbone (features) + a few-shot method (decision).

    Parameters
    ----------
    backbone:         registry name (``"aisfx"``, ``"clap"``, ...) or a built backbone object.
    method:           few-shot method name (see :func:`mgcl.methods.available_methods`).
    method_params:    hyper-parameters of the method (``{"alphas": (0.5, 1.0)}``, ...).
    backbone_options: keyword options of the backbone factory (``checkpoint``, ``device``).
    store:            feature-store folder (embeddings cached by audio content), or None.
    batch_size:       clips per backbone forward.
    descriptions:     optional ``{class: [sentence, ...]}`` LLM descriptions (text backbones).

    Learned state: ``classes_`` (sorted labels), ``method_`` (the fitted Method),
    ``backbone_name_``, ``backbone_identity_``, ``dim_`` (feature dimension),
    ``support_counts_`` (clips per class).
    """

    def __init__(
        self,
        backbone="aisfx",
        method: str = "mgcl_f",
        method_params: Mapping[str, Any] | None = None,
        backbone_options: Mapping[str, Any] | None = None,
        store: str | os.PathLike | None = None,
        batch_size: int = 16,
        descriptions: Mapping[str, Sequence[str]] | None = None,
    ):
        self.backbone = backbone
        self.method = method
        self.method_params = method_params
        self.backbone_options = backbone_options
        self.store = store
        self.batch_size = batch_size
        self.descriptions = descriptions

    def get_params(self) -> dict:
        """The ``__init__`` hyper-parameters (scikit-learn convention)."""
        return {k: getattr(self, k) for k in inspect.signature(type(self).__init__).parameters if k != "self"}

    # ------------------------------------------------------------------ backbone / store
    @property
    def _backbone_name(self) -> str:
        return self.backbone if isinstance(self.backbone, str) else getattr(self.backbone, "name", "?")

    def get_backbone(self):
        """The backbone object, built on first use; checks its identity against the fitted one."""
        bb = getattr(self, "_backbone", None)
        if bb is None:
            if isinstance(self.backbone, str):
                from mgcl.backbones import get_backbone

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
        msg = (f"backbone '{bb.name}' has identity '{bb.identity}' but this model was fitted on "
               f"features of '{expected}': its predictions would be meaningless")
        if getattr(self, "_strict_backbone", True):
            raise MgclError(msg + " (load with strict_backbone=False / --allow-backbone-mismatch "
                            "if you know the difference is harmless)")
        warnings.warn(msg, stacklevel=3)

    def _feature_store(self, backbone):
        if self.store is None:
            return None
        from mgcl.features import FeatureStore

        if isinstance(self.store, FeatureStore):
            return self.store
        return FeatureStore(Path(self.store).expanduser(), backbone.identity)

    def embed(self, X, what: str = "inputs") -> AudioFeatures:
        """Features of audio paths / ``(waveform, sr)`` pairs; MgclError listing any bad input."""
        from mgcl.features import embed_sources

        X = _check_sources(X)
        if not X:
            raise MgclError(f"no {what} given")
        bb = self.get_backbone()
        res = embed_sources(bb, X, store=self._feature_store(bb), batch_size=self.batch_size)
        if res.errors:
            raise MgclError(failure_summary(res.errors, len(X), what))
        return res.stacked()

    # ------------------------------------------------------------------ fit
    def fit(self, X, y) -> "FewShotAudioClassifier":
        """Embed the support clips ``X`` (paths / ``(waveform, sr)``) with labels ``y`` and fit.

        Any undecodable input fails the whole fit (one line naming them): a support set
        silently missing clips is worse than an error. Labels are stored as strings.
        """
        X = _check_sources(X)
        labels = self._check_labels(X, y)
        names = self._check_method().view_names()
        feats = self.embed(X, what="support clips")
        views = None
        if names:  # the method trains on audio views of the support clips: embed them too
            from mgcl.features import ViewCache

            bb = self.get_backbone()
            views = ViewCache(bb, X, self._feature_store(bb), self.batch_size).views(range(len(X)), names)
        return self.fit_features(feats, labels, views=views)

    def fit_features(self, features: AudioFeatures, labels: Sequence[str], text=None,
                     views=None) -> "FewShotAudioClassifier":
        """Fit on precomputed support features (N clips) and their N string labels.

        ``text``: a :class:`~mgcl.methods.TextFeatures` for the sorted classes, or None to
        build it from the backbone when the backbone has a text tower (audio-only: none).
        ``views``: a :class:`~mgcl.methods.SupportViews` of the clips, for a method that
        trains on audio views (:meth:`fit` embeds them; without them it trains on the clips).
        """
        from mgcl.evaluate import encode_labels

        labels = self._check_labels(features, labels)
        method = self._check_method()
        codes, classes = encode_labels(labels)
        bb = self._known_backbone()
        if bb is not None and getattr(bb, "dim", features.dim) != features.dim:
            raise MgclError(f"features have dimension {features.dim}, backbone '{bb.name}' gives {bb.dim}")
        if text is None and bb is not None and getattr(bb, "has_text", False):
            from mgcl.concepts import class_text_features

            text = class_text_features(bb, classes, self.descriptions)
        elif self.descriptions and bb is not None and not getattr(bb, "has_text", False):
            warnings.warn(f"descriptions ignored: backbone '{bb.name}' has no text tower", stacklevel=2)
        method.fit(features, torch.as_tensor(codes), text=text, n_classes=len(classes), views=views)
        self.method_ = method
        self.classes_ = list(classes)
        self.dim_ = int(features.dim)
        self.backbone_name_ = self._backbone_name
        self.backbone_identity_ = getattr(bb, "identity", None) if bb is not None else None
        self.support_counts_ = {c: int(n) for c, n in sorted(Counter(labels).items())}
        return self

    def _known_backbone(self):
        """The backbone when it is at hand or can be built (a registered name), else None."""
        if not isinstance(self.backbone, str) or getattr(self, "_backbone", None) is not None:
            return self.get_backbone()
        from mgcl.backbones import available_backbones

        return self.get_backbone() if self.backbone in available_backbones() else None

    def _check_labels(self, X, y) -> list[str]:
        if y is None or isinstance(y, (str, bytes)):
            raise MgclError("y must be a list of labels, one per clip")
        labels = [str(v) for v in y]
        if len(labels) != len(X):
            raise MgclError(f"got {len(X)} clips but {len(labels)} labels: they must match one to one")
        n_classes = len(set(labels))
        if n_classes < 2:
            raise MgclError(f"need at least 2 classes to fit a classifier, got {n_classes}"
                            + (f" ('{labels[0]}')" if labels else ""))
        return labels

    def _check_method(self):
        return build_method(self.method, self.method_params)

    # ------------------------------------------------------------------ predict
    def check_fitted(self) -> None:
        if not hasattr(self, "method_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit (or load) first")

    def predict_proba_features(self, features: AudioFeatures) -> np.ndarray:
        """(Q, C) class probabilities, columns in ``classes_`` order."""
        self.check_fitted()
        if len(features) == 0:
            return np.zeros((0, len(self.classes_)), dtype=np.float32)
        return self.method_.predict_proba(features).detach().cpu().numpy()

    def predict_features(self, features: AudioFeatures) -> list[str]:
        proba = self.predict_proba_features(features)
        return [self.classes_[i] for i in proba.argmax(axis=1)]

    def top_k_features(self, features: AudioFeatures, k: int = 3) -> list[list[tuple[str, float]]]:
        """Per query the ``k`` most probable ``(label, probability)``, best first (k <= C)."""
        if int(k) != k or k < 1:
            raise MgclError(f"k must be a positive integer, got {k}")
        proba = self.predict_proba_features(features)
        k = min(int(k), len(self.classes_))
        order = np.argsort(-proba, axis=1, kind="stable")[:, :k]
        return [[(self.classes_[j], float(p[j])) for j in row] for p, row in zip(proba, order)]

    def score_features(self, features: AudioFeatures, y: Sequence[str]) -> float:
        """Accuracy in [0, 1] against string labels ``y`` (unknown labels count as errors)."""
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
            raise MgclError(f"got {len(X)} clips but {0 if y is None else len(y)} labels: "
                            "they must match one to one")
        f = self._query(X)
        if f is None:
            raise MgclError("cannot score an empty set")
        return self.score_features(f, y)

    # ------------------------------------------------------------------ persistence
    def config(self) -> dict:
        """The ``config.json`` document of the fitted model (without the weights checksum)."""
        self.check_fitted()
        _, values = self.method_.learned_state()
        options = {k: v for k, v in dict(self.backbone_options or {}).items() if k not in MACHINE_OPTIONS}
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "mgcl_version": __version__,
            "backbone": {
                "name": self.backbone_name_,
                "options": _jsonable(options, "backbone_options"),
                "identity": self.backbone_identity_,
            },
            "method": {
                "name": self.method,
                "params": _jsonable(self.method_.get_params(), "method parameters"),
            },
            "classes": list(self.classes_),
            "support_counts": dict(self.support_counts_),
            "feature_dim": self.dim_,
            "learned": _jsonable(values, "learned state"),
            "classifier": {
                "batch_size": self.batch_size,
                "descriptions": _jsonable(self.descriptions, "descriptions"),
            },
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``config.json`` + ``weights.safetensors`` into the folder ``path``; returns it."""
        from safetensors.torch import save as save_bytes

        config = self.config()  # everything is validated before anything is written
        tensors, _ = self.method_.learned_state()
        # clone: safetensors refuses tensors that share memory
        weights = save_bytes({k: v.detach().cpu().clone().contiguous() for k, v in tensors.items()},
                             metadata={"format": FORMAT, "format_version": str(FORMAT_VERSION)})
        config["weights"] = {"file": WEIGHTS_FILE, "sha256": hashlib.sha256(weights).hexdigest()}
        text = json.dumps(config, indent=2, ensure_ascii=False, allow_nan=True) + "\n"
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise MgclError(f"{path}: exists and is not a folder")
        atomic_write_bytes(path / WEIGHTS_FILE, weights)
        atomic_write_bytes(path / CONFIG_FILE, text.encode("utf-8"))
        return path

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        store: str | os.PathLike | None = None,
        backbone_options: Mapping[str, Any] | None = None,
        strict_backbone: bool = True,
    ) -> "FewShotAudioClassifier":
        """Read a folder written by :meth:`save` (JSON + safetensors only, no pickle).

        ``backbone_options`` are merged over the saved ones (e.g. ``{"device": "cuda"}``);
        ``strict_backbone=False`` turns a backbone identity mismatch into a warning.
        """
        from safetensors import SafetensorError
        from safetensors.torch import load as load_bytes

        path = Path(path)
        if not path.is_dir():
            raise MgclError(f"{path}: model folder not found")
        cfg_path, w_path = path / CONFIG_FILE, path / WEIGHTS_FILE
        for p in (cfg_path, w_path):
            if not p.is_file():
                raise MgclError(f"{path}: not an mgcl model folder ({p.name} is missing)")
        try:
            config = json.loads(cfg_path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise MgclError(f"{cfg_path}: not valid JSON ({exc})".splitlines()[0]) from None
        if not isinstance(config, dict) or config.get("format") != FORMAT:
            raise MgclError(f"{cfg_path}: not an mgcl model config")
        version = config.get("format_version")
        if version != FORMAT_VERSION:
            raise MgclError(f"{cfg_path}: model format version {version!r} is not supported by "
                            f"mgcl {__version__} (supports {FORMAT_VERSION})")
        data = w_path.read_bytes()
        expected = (config.get("weights") or {}).get("sha256")
        if expected != hashlib.sha256(data).hexdigest():
            raise MgclError(f"{w_path}: does not match {CONFIG_FILE} (interrupted save or edited "
                            "file?): save the model again")
        try:
            tensors = load_bytes(data)
            bb, meth = config["backbone"], config["method"]
            from mgcl.methods import method_class

            mcls = method_class(meth["name"])
            params = coerce_params(mcls, meth.get("params") or {}, meth["name"])
            options = {**(bb.get("options") or {}), **dict(backbone_options or {})}
            extra = config.get("classifier") or {}
            clf = cls(backbone=bb["name"], method=meth["name"], method_params=params,
                      backbone_options=options or None, store=store,
                      batch_size=int(extra.get("batch_size", 16)), descriptions=extra.get("descriptions"))
            method = mcls(**params).load_learned_state(tensors, config["learned"])
            clf.method_ = method
            clf.classes_ = list(config["classes"])
            clf.dim_ = int(config["feature_dim"])
            clf.backbone_name_ = bb["name"]
            clf.backbone_identity_ = bb.get("identity")
            clf.support_counts_ = dict(config.get("support_counts") or {})
        except (KeyError, TypeError) as exc:
            raise MgclError(f"{cfg_path}: incomplete model config ({type(exc).__name__}: {exc})") from None
        except SafetensorError as exc:
            raise MgclError(f"{w_path}: unreadable weights ({exc})") from None
        clf._strict_backbone = bool(strict_backbone)
        if len(clf.classes_) != getattr(method, "n_classes_", len(clf.classes_)):
            raise MgclError(f"{cfg_path}: {len(clf.classes_)} classes but the method has {method.n_classes_}")
        return clf

    def __repr__(self) -> str:
        state = f", classes={len(self.classes_)}" if hasattr(self, "classes_") else ""
        return (f"{type(self).__name__}(backbone={self._backbone_name!r}, method={self.method!r}"
                f"{state})")


__all__ = ["FewShotAudioClassifier", "build_method", "coerce_params", "failure_summary"]
