"""A fitted classifier on disk: a folder with ``config.json``, ``weights.safetensors`` and a
``README.md`` model card. Nothing is pickled, on save or on load.

``config.json``: format version, mgcl version, creation time, backbone name, options and
identity, method name and hyper-parameters, classes and their support counts, the support
clips' names (when known), the JSON-able learned values, the probability calibration
(``{"temperature": T, "method": "leave-one-shot-out, 3 folds"}``; a model saved without it
loads with T = 1), the open-set rejection (``{"reject": "auto", "unknown_label": "unknown",
"threshold": τ or null, "method": "...", "stats": {...}}``; a model saved without it rejects
nothing), feature dimension, SHA-256 of the weights. ``weights.safetensors``: the
learned tensors. Each file is written to a temporary name and renamed into place, weights
first, config next, the card last; a crash between the first two is caught on load by the
checksum, so a half-written model is never used.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_bytes
from safetensors.torch import save as save_bytes

from mgcl.errors import MgclError
from mgcl.methods.openset import UNKNOWN_LABEL, check_reject
from mgcl.methods.registry import coerce_params, method_class
from mgcl.util.atomic import atomic_write_bytes
from mgcl.version import __version__

FORMAT = "mgcl-model"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"
CARD_FILE = "README.md"
#: The classifier's support-clip embeddings in the weights file (beside the method's tensors).
SUPPORT_CLIPS = "classifier.support_clips"
#: Backbone options that describe the machine, not the model: never saved.
MACHINE_OPTIONS = ("device", "batch_size")


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


def config(clf) -> dict:
    """The ``config.json`` document of a fitted classifier (without the weights checksum)."""
    clf.check_fitted()
    _, values = clf.method_.learned_state()
    options = {k: v for k, v in dict(clf.backbone_options or {}).items() if k not in MACHINE_OPTIONS}
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "mgcl_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "backbone": {
            "name": clf.backbone_name_,
            "options": _jsonable(options, "backbone_options"),
            "identity": clf.backbone_identity_,
        },
        "method": {
            "name": clf.method,
            "params": _jsonable(clf.method_.get_params(), "method parameters"),
        },
        "classes": list(clf.classes_),
        "support_counts": dict(clf.support_counts_),
        "support_names": _jsonable(getattr(clf, "support_names_", None), "support names"),
        "support_labels": _jsonable(getattr(clf, "support_labels_", None), "support labels"),
        "feature_dim": clf.dim_,
        "learned": _jsonable(values, "learned state"),
        "calibration": {
            "temperature": float(getattr(clf, "temperature_", 1.0)),
            "method": str(getattr(clf, "calibration_", "none")),
        },
        "open_set": {
            "reject": _jsonable(check_reject(getattr(clf, "reject", None)), "reject"),
            "unknown_label": str(getattr(clf, "unknown_label_", getattr(clf, "unknown_label", UNKNOWN_LABEL))),
            "threshold": getattr(clf, "reject_threshold_", None),
            "method": str(getattr(clf, "reject_how_", "off")),
            "stats": _jsonable(getattr(clf, "reject_stats_", {}) or {}, "rejection stats"),
        },
        "classifier": {
            "batch_size": clf.batch_size,
            "descriptions": _jsonable(clf.descriptions, "descriptions"),
            "calibrate": bool(getattr(clf, "calibrate", True)),
        },
    }


def model_card(cfg: Mapping, folder: Path) -> str:
    """A short README.md for a saved model: what it recognises, from what, and how to use it."""
    counts = cfg.get("support_counts") or {}
    classes = "\n".join(f"| {c} | {counts.get(c, '?')} |" for c in cfg["classes"])
    bb, meth = cfg["backbone"], cfg["method"]
    calibration = (cfg.get("calibration") or {}).get("method", "none")
    return f"""# mgcl model: {meth["name"]} on {bb["name"]}

A few-shot audio classifier made by `mgcl fit` (mgcl {cfg["mgcl_version"]}, {cfg["created"]}).
It recognises {len(cfg["classes"])} classes from {sum(counts.values()) if counts else "?"} labelled support clips:

| class | support clips |
|---|---|
{classes}

- backbone: `{bb["name"]}` (identity `{bb["identity"]}`); features of another backbone are refused
- method: `{meth["name"]}`; hyper-parameters and the choices made on the support set are in `{CONFIG_FILE}`
- probabilities: softmax(logits / T), T = {_temperature(cfg):.4g} ({calibration})
- {_open_set_line(cfg)}
- weights: `{WEIGHTS_FILE}` (safetensors, sha256 `{cfg["weights"]["sha256"]}`); loading runs no pickle

Use it:

```bash
mgcl predict {folder.name} clip.wav --top-k 3
mgcl explain {folder.name} clip.wav --out why.png
```

```python
from mgcl import FewShotAudioClassifier
clf = FewShotAudioClassifier.load("{folder.name}")
clf.predict(["clip.wav"])
```
"""


def _open_set_line(cfg: Mapping) -> str:
    """The model card's line on open-set rejection."""
    o = cfg.get("open_set") or {}
    if o.get("threshold") is None:
        return "open set: off (every clip gets one of the classes)" + (
            f"; {o['method']}" if str(o.get("reject")) == "auto" else ""
        )
    return (
        f"open set: a clip whose top probability is below {o['threshold']:.4g} is "
        f"`{o.get('unknown_label', UNKNOWN_LABEL)}` ({o.get('method', '')})"
    )


def _threshold(cfg: Mapping) -> float | None:
    """The saved open-set threshold; None for a model saved without one."""
    t = (cfg.get("open_set") or {}).get("threshold")
    if t is None:
        return None
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not np.isfinite(t) or not 0 <= t <= 1:
        raise MgclError(f"open-set threshold must be a probability in [0, 1] or null, got {t!r}")
    return float(t)


def _temperature(cfg: Mapping) -> float:
    """The saved calibration temperature; 1.0 for a model saved without one."""
    t = (cfg.get("calibration") or {}).get("temperature", 1.0)
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not np.isfinite(t) or t <= 0:
        raise MgclError(f"calibration temperature must be a positive number, got {t!r}")
    return float(t)


def save(clf, path: str | os.PathLike) -> Path:
    """Write ``config.json`` + ``weights.safetensors`` + ``README.md`` into the folder ``path``."""
    cfg = config(clf)  # everything is validated before anything is written
    tensors, _ = clf.method_.learned_state()
    clips = getattr(clf, "support_clips_", None)
    if clips is not None:  # the classifier's own tensors, beside the method's
        tensors = {**tensors, SUPPORT_CLIPS: clips}
    # clone: safetensors refuses tensors that share memory
    weights = save_bytes(
        {k: v.detach().cpu().clone().contiguous() for k, v in tensors.items()},
        metadata={"format": FORMAT, "format_version": str(FORMAT_VERSION)},
    )
    cfg["weights"] = {"file": WEIGHTS_FILE, "sha256": hashlib.sha256(weights).hexdigest()}
    text = json.dumps(cfg, indent=2, ensure_ascii=False, allow_nan=True) + "\n"
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise MgclError(f"{path}: exists and is not a folder")
    atomic_write_bytes(path / WEIGHTS_FILE, weights)
    atomic_write_bytes(path / CONFIG_FILE, text.encode("utf-8"))
    atomic_write_bytes(path / CARD_FILE, model_card(cfg, path.resolve()).encode("utf-8"))
    return path


def read_config(path: str | os.PathLike) -> tuple[dict, bytes]:
    """The checked ``config.json`` of a model folder and its weights' bytes (one-line MgclError
    for a missing folder or file, bad JSON, another format, a checksum mismatch)."""
    path = Path(path)
    if not path.is_dir():
        raise MgclError(f"{path}: model folder not found")
    cfg_path, w_path = path / CONFIG_FILE, path / WEIGHTS_FILE
    for p in (cfg_path, w_path):
        if not p.is_file():
            raise MgclError(f"{path}: not an mgcl model folder ({p.name} is missing)")
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise MgclError(f"{cfg_path}: not valid JSON ({exc})".splitlines()[0]) from None
    if not isinstance(cfg, dict) or cfg.get("format") != FORMAT:
        raise MgclError(f"{cfg_path}: not an mgcl model config")
    version = cfg.get("format_version")
    if version != FORMAT_VERSION:
        raise MgclError(
            f"{cfg_path}: model format version {version!r} is not supported by "
            f"mgcl {__version__} (supports {FORMAT_VERSION})"
        )
    data = w_path.read_bytes()
    expected = (cfg.get("weights") or {}).get("sha256")
    if expected != hashlib.sha256(data).hexdigest():
        raise MgclError(
            f"{w_path}: does not match {CONFIG_FILE} (interrupted save or edited file?): save the model again"
        )
    return cfg, data


def load(
    cls,
    path: str | os.PathLike,
    store: str | os.PathLike | bool | None = None,
    backbone_options: Mapping[str, Any] | None = None,
    strict_backbone: bool = True,
):
    """An instance of ``cls`` (FewShotAudioClassifier) from a folder written by :func:`save`.

    ``store``: as the classifier's (None: the default store, False: no caching);
    ``backbone_options`` are merged over the saved ones (e.g. ``{"device": "cuda"}``);
    ``strict_backbone=False`` turns a backbone identity mismatch into a warning. A model
    saved before calibration existed loads with ``temperature_`` 1.0 and no
    ``support_names_`` (None)."""
    path = Path(path)
    cfg, data = read_config(path)
    cfg_path, w_path = path / CONFIG_FILE, path / WEIGHTS_FILE
    try:
        tensors = load_bytes(data)
        bb, meth = cfg["backbone"], cfg["method"]
        mcls = method_class(meth["name"])
        params = coerce_params(mcls, meth.get("params") or {}, meth["name"])
        options = {**(bb.get("options") or {}), **dict(backbone_options or {})}
        extra = cfg.get("classifier") or {}
        open_set = cfg.get("open_set") or {}
        clf = cls(
            backbone=bb["name"],
            method=meth["name"],
            method_params=params,
            backbone_options=options or None,
            store=store,
            batch_size=int(extra.get("batch_size", 16)),
            descriptions=extra.get("descriptions"),
            calibrate=bool(extra.get("calibrate", True)),
            reject=open_set.get("reject"),
            unknown_label=str(open_set.get("unknown_label", UNKNOWN_LABEL)),
        )
        clips = tensors.pop(SUPPORT_CLIPS, None)
        method = mcls(**params).load_learned_state(tensors, cfg["learned"])
        clf.method_ = method
        clf.classes_ = list(cfg["classes"])
        clf.dim_ = int(cfg["feature_dim"])
        clf.backbone_name_ = bb["name"]
        clf.backbone_identity_ = bb.get("identity")
        clf.support_counts_ = dict(cfg.get("support_counts") or {})
        names = cfg.get("support_names")
        clf.support_names_ = None if names is None else [str(n) for n in names]
        labels = cfg.get("support_labels")
        clf.support_labels_ = None if labels is None else [str(v) for v in labels]
        clf.support_clips_ = clips if clips is not None and labels is not None else None
        clf.calibration_ = str((cfg.get("calibration") or {}).get("method", "none (saved without calibration)"))
        clf.reject_how_ = str(open_set.get("method", "off (saved without open-set rejection)"))
        clf.reject_stats_ = dict(open_set.get("stats") or {})
        clf.unknown_label_ = str(open_set.get("unknown_label", UNKNOWN_LABEL))
    except (KeyError, TypeError) as exc:
        raise MgclError(f"{cfg_path}: incomplete model config ({type(exc).__name__}: {exc})") from None
    except SafetensorError as exc:
        raise MgclError(f"{w_path}: unreadable weights ({exc})") from None
    try:
        clf.temperature_ = _temperature(cfg)
        clf.reject_threshold_ = _threshold(cfg)
        check_reject(clf.reject)
    except MgclError as exc:
        raise MgclError(f"{cfg_path}: {exc}") from None
    clf._strict_backbone = bool(strict_backbone)
    if len(clf.classes_) != getattr(method, "n_classes_", len(clf.classes_)):
        raise MgclError(f"{cfg_path}: {len(clf.classes_)} classes but the method has {method.n_classes_}")
    return clf
