"""``mgcl info``: what a saved model knows, read from its ``config.json`` (checksum verified)
without building its backbone."""

from __future__ import annotations

import argparse
import json
import textwrap
from pathlib import Path

from mgcl.classifier.persistence import CARD_FILE, CONFIG_FILE, WEIGHTS_FILE, read_config
from mgcl.cli.common import (
    add_command,
    describe_choices,
    format_params,
    learned_choices,
    non_default_params,
    number,
    open_set_line,
    print_chosen,
)
from mgcl.errors import MgclError

HELP = "show what a saved model knows: classes, method, choices, backbone, checksum"

DESCRIPTION = textwrap.fill(
    "Describe a model folder written by `mgcl fit`: its classes and how many support clips "
    "each had, the method with the hyper-parameters that differ from the defaults, what the "
    "method chose on the support set (in words; the raw values with --json), the backbone it "
    "needs (name and identity), when it was made, the SHA-256 of its weights (checked against "
    "config.json) and its model card. Reads config.json only: no backbone is built, nothing "
    "is downloaded, nothing is decoded.",
    88,
)

EPILOG = """examples:
  mgcl info my_model
  mgcl info my_model --json"""


def register(sub) -> argparse.ArgumentParser:
    p = add_command(sub, "info", run, HELP, DESCRIPTION, EPILOG)
    p.add_argument("model", type=Path, metavar="MODEL_DIR", help="folder written by `mgcl fit`")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of the text")
    return p


def describe(folder: Path, cfg: dict, weight_bytes: int) -> dict:
    """The model's description as a JSON-able document (from a checked ``config.json``)."""
    try:
        bb, meth, classes = cfg["backbone"], cfg["method"], list(cfg["classes"])
        params, learned = dict(meth.get("params") or {}), dict(cfg.get("learned") or {})
        counts = dict(cfg.get("support_counts") or {})
        doc = {
            "model": str(folder),
            "created": cfg.get("created"),
            "mgcl_version": cfg.get("mgcl_version"),
            "classes": [{"name": c, "support": counts.get(c)} for c in classes],
            "support_clips": sum(counts.values()) if counts else None,
            "method": {
                "name": meth["name"],
                "non_default_params": non_default_params(meth["name"], params),
                "params": params,
            },
            "chosen": describe_choices(meth["name"], learned),
            "learned": learned_choices(learned),
            "backbone": {
                "name": bb["name"],
                "identity": bb.get("identity"),
                "options": bb.get("options") or {},
            },
            "calibration": cfg.get("calibration"),
            "open_set": cfg.get("open_set"),
            "feature_dim": cfg.get("feature_dim"),
            "weights": {"file": WEIGHTS_FILE, "sha256": cfg["weights"]["sha256"], "bytes": weight_bytes},
            "card": str(folder / CARD_FILE) if (folder / CARD_FILE).is_file() else None,
        }
    except (KeyError, TypeError, AttributeError) as exc:
        raise MgclError(f"{folder / CONFIG_FILE}: incomplete model config ({type(exc).__name__}: {exc})") from None
    return doc


def run(args) -> int:
    cfg, weights = read_config(args.model)
    doc = describe(args.model, cfg, len(weights))
    if args.json:
        print(json.dumps(doc, indent=2, ensure_ascii=False, default=str))
        return 0
    classes, meth, bb = doc["classes"], doc["method"], doc["backbone"]
    made = doc["created"] or "unknown (saved by an mgcl that did not record it)"
    print(f"model: {doc['model']}")
    print(f"created: {made}" + (f" (mgcl {doc['mgcl_version']})" if doc["mgcl_version"] else ""))
    total = doc["support_clips"]
    print(f"classes: {len(classes)}" + (f" ({total} support clips)" if total is not None else ""))
    width = max((len(c["name"]) for c in classes), default=0)
    for c in classes:
        n = c["support"]
        print(f"  {c['name'].ljust(width)}  " + ("? clips" if n is None else f"{n} clip{'s' if n != 1 else ''}"))
    changed = meth["non_default_params"]
    print(f"method: {meth['name']} (" + (format_params(changed) if changed else "default hyper-parameters") + ")")
    print_chosen(doc["chosen"])
    cal = doc["calibration"]
    if isinstance(cal, dict) and isinstance(cal.get("temperature"), (int, float)):
        how = f" ({cal['method']})" if cal.get("method") else ""
        print(f"probabilities calibrated on the support: temperature {number(cal['temperature'])}{how}")
    print(open_set_line(doc["open_set"]))
    options = f"; options {format_params(bb['options'])}" if bb["options"] else ""
    print(f"backbone: {bb['name']} (identity {bb['identity'] or 'unknown'}{options})")
    w = doc["weights"]
    print(f"weights: {w['file']}, {w['bytes']} bytes, sha256 {w['sha256']} (matches {CONFIG_FILE})")
    print(f"model card: {doc['card'] or 'none (' + CARD_FILE + ' is missing)'}")
    return 0
