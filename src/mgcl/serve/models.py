"""The models folder of the service: names, listing, loading (an LRU of loaded models),
atomic creation and deletion.

A model is a sub-folder written by :meth:`FewShotAudioClassifier.save`. A request names it by
a validated name (:data:`~mgcl.serve.config.NAME_PATTERN`, no leading dot) and the resolved
folder must lie directly inside the models folder, so no name reaches another path.
New models are saved into a hidden temporary folder inside the models folder and renamed
into place in one step; hidden folders are never listed, so a half-written model is never
seen. A deleted model is first renamed to a hidden name, then removed.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import threading
import uuid
from collections import OrderedDict
from pathlib import Path

from mgcl.classifier.estimator import FewShotAudioClassifier
from mgcl.classifier.persistence import CONFIG_FILE, WEIGHTS_FILE
from mgcl.errors import MgclError
from mgcl.serve.config import NAME_PATTERN
from mgcl.serve.errors import BadRequest, Conflict, NotFound

log = logging.getLogger(__name__)

_NAME = re.compile(NAME_PATTERN)


def check_name(name: str) -> str:
    """``name`` if it is a valid model name, else :class:`BadRequest` (400)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        shown = name if isinstance(name, str) and len(name) <= 80 else f"{str(name)[:80]}..."
        raise BadRequest(f"invalid model name '{shown}': use 1-64 letters, digits, '.', '_' or '-' (no '/')")
    if name.startswith("."):
        raise BadRequest(f"invalid model name '{name}': it must not start with '.'")
    return name


def summary(name: str, cfg: dict) -> dict:
    """What ``GET /models`` says of a model: name, method, backbone, classes, support counts,
    created (UTC, ISO 8601) and the SHA-256 of its weights."""
    return {
        "name": name,
        "method": (cfg.get("method") or {}).get("name"),
        "params": (cfg.get("method") or {}).get("params") or {},
        "backbone": (cfg.get("backbone") or {}).get("name"),
        "backbone_identity": (cfg.get("backbone") or {}).get("identity"),
        "classes": list(cfg.get("classes") or []),
        "support_counts": dict(cfg.get("support_counts") or {}),
        "created": cfg.get("created"),
        "sha256": (cfg.get("weights") or {}).get("sha256"),
        "mgcl_version": cfg.get("mgcl_version"),
    }


class ModelRegistry:
    """The models under ``root``, the served ``backbone`` and an LRU of ``capacity`` loaded models.

    Thread-safe: the HTTP layer lists and the workers load, create and delete concurrently.
    """

    def __init__(self, root: str | Path, backbone, store_dir=None, capacity: int = 8):
        self.root = Path(root).expanduser()
        self.root.mkdir(parents=True, exist_ok=True)
        self._root_resolved = self.root.resolve()
        self.backbone = backbone
        self.store_dir = store_dir
        self.capacity = max(1, int(capacity))
        self._loaded: OrderedDict[str, tuple[float, FewShotAudioClassifier]] = OrderedDict()
        self._lock = threading.RLock()
        self.loads = 0  # models read from disk (tests: the LRU really caches)

    # ------------------------------------------------------------------ paths
    def path(self, name: str) -> Path:
        """The folder of model ``name``; 400 for a bad name or a folder outside ``root``."""
        check_name(name)
        p = self.root / name
        if p.resolve().parent != self._root_resolved:
            raise BadRequest(f"model '{name}' is not inside the models folder")
        return p

    def _config(self, name: str) -> dict:
        p = self.path(name)
        cfg_file = p / CONFIG_FILE
        if not (cfg_file.is_file() and (p / WEIGHTS_FILE).is_file()):
            raise NotFound(f"no model named '{name}'")
        try:
            cfg = json.loads(cfg_file.read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            raise MgclError(f"model '{name}': unreadable {CONFIG_FILE}") from None
        if not isinstance(cfg, dict):
            raise MgclError(f"model '{name}': not an mgcl model config")
        return cfg

    # ------------------------------------------------------------------ listing
    def names(self) -> list[str]:
        """Valid, complete model folders, sorted (hidden and temporary folders never)."""
        out = []
        for p in sorted(self.root.iterdir()) if self.root.is_dir() else []:
            if p.name.startswith(".") or not _NAME.fullmatch(p.name) or not p.is_dir():
                continue
            if (p / CONFIG_FILE).is_file() and (p / WEIGHTS_FILE).is_file():
                out.append(p.name)
        return out

    def info(self, name: str) -> dict:
        """:func:`summary` of one model, with whether the served backbone can run it."""
        doc = summary(name, self._config(name))
        doc["usable"] = doc["backbone_identity"] in (None, getattr(self.backbone, "identity", None))
        return doc

    def list(self) -> list[dict]:
        out = []
        for name in self.names():
            try:
                out.append(self.info(name))
            except MgclError as exc:  # a broken folder is shown, not fatal
                out.append({"name": name, "error": str(exc)})
        return out

    # ------------------------------------------------------------------ loading
    def get(self, name: str) -> FewShotAudioClassifier:
        """Model ``name``, loaded once and kept (least recently used dropped past ``capacity``);
        re-read when its config changed on disk. 404 unknown, 409 fitted on another backbone."""
        p = self.path(name)
        cfg_file = p / CONFIG_FILE
        try:
            stamp = cfg_file.stat().st_mtime_ns
        except OSError:
            with self._lock:
                self._loaded.pop(name, None)
            raise NotFound(f"no model named '{name}'") from None
        with self._lock:
            hit = self._loaded.get(name)
            if hit is not None and hit[0] == stamp:
                self._loaded.move_to_end(name)
                return hit[1]
        if not (p / WEIGHTS_FILE).is_file():
            raise NotFound(f"no model named '{name}'")
        clf = FewShotAudioClassifier.load(p, store=False if self.store_dir is None else self.store_dir)
        served = getattr(self.backbone, "identity", None)
        if clf.backbone_identity_ is not None and clf.backbone_identity_ != served:
            raise Conflict(
                f"model '{name}' was fitted with backbone '{clf.backbone_name_}' "
                f"({clf.backbone_identity_}); this server runs '{self.backbone.name}' ({served})"
            )
        clf.set_params(backbone=self.backbone)  # the one served backbone, never a second copy
        with self._lock:
            self.loads += 1
            self._loaded[name] = (stamp, clf)
            self._loaded.move_to_end(name)
            while len(self._loaded) > self.capacity:
                dropped, _ = self._loaded.popitem(last=False)
                log.info("model cache: dropped %s", dropped)
        return clf

    def loaded(self) -> list[str]:
        with self._lock:
            return list(self._loaded)

    # ------------------------------------------------------------------ create / delete
    def check_new(self, name: str) -> Path:
        """The folder a new model ``name`` would get; 409 when one exists."""
        p = self.path(name)
        if p.exists():
            raise Conflict(f"a model named '{name}' exists already (delete it first or choose another name)")
        return p

    def create(self, name: str, clf: FewShotAudioClassifier) -> dict:
        """Save ``clf`` as model ``name``: into a hidden temporary folder, then one rename.
        409 (nothing left behind) when the name was taken meanwhile."""
        target = self.check_new(name)
        tmp = self.root / f".tmp-{name}-{uuid.uuid4().hex[:12]}"
        try:
            clf.save(tmp)
            try:
                tmp.rename(target)  # atomic; fails when the target appeared meanwhile
            except OSError:
                raise Conflict(f"a model named '{name}' exists already") from None
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return self.info(name)

    def delete(self, name: str) -> None:
        """Remove model ``name`` (404 when absent): renamed to a hidden name, then deleted."""
        p = self.path(name)
        if not p.is_dir():
            raise NotFound(f"no model named '{name}'")
        trash = self.root / f".deleted-{name}-{uuid.uuid4().hex[:12]}"
        p.rename(trash)
        with self._lock:
            self._loaded.pop(name, None)
        shutil.rmtree(trash, ignore_errors=True)
