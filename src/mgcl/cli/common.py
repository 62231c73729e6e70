"""What the sub-commands share: their options, the parsing of option values, and output helpers.

Only the command line prints; the library below it logs (:mod:`mgcl.util.log`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from mgcl.audio.decode import SUPPORTED_EXTENSIONS
from mgcl.backbones import available_backbones
from mgcl.classifier.estimator import FewShotAudioClassifier
from mgcl.data.inputs import expand_inputs
from mgcl.engines import ENGINES, LOCAL, Engine
from mgcl.errors import MgclError
from mgcl.explain.compute import BRANCH_NAMES
from mgcl.methods.registry import available_methods, coerce_params, method_class
from mgcl.pipeline import default_store
from mgcl.util.atomic import atomic_write_bytes
from mgcl.util.uri import is_uri


# ----------------------------------------------------------------------------- option values
def split_list(text: str | None) -> list[str]:
    """'a, b,c' -> ['a', 'b', 'c'] (empty items dropped)."""
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def parse_shots(text: str) -> list[int]:
    try:
        shots = [int(t) for t in split_list(text)]
    except ValueError:
        raise MgclError(f"--shots must be comma-separated positive integers, got '{text}'") from None
    if not shots or any(k < 1 for k in shots):
        raise MgclError(f"--shots must be comma-separated positive integers, got '{text}'")
    return sorted(set(shots))


def parse_value(text: str):
    """A --param value: JSON when it parses (numbers, true/false, lists, objects), else a string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_params(items: list[str] | None, prefixed: bool = False) -> dict:
    """``key=value`` items -> {key: value}; with ``prefixed``: ``method.key=value`` ->
    {method: {key: value}}. Values are JSON when they parse; '1,2,4' gives a tuple for
    tuple-valued parameters."""
    out: dict = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip()
        form = "method.key=value" if prefixed else "key=value"
        if not sep or not key:
            raise MgclError(f"--param '{item}' is not of the form {form}")
        if prefixed:
            method, dot, name = key.partition(".")
            if not dot or not method or not name:
                raise MgclError(f"--param '{item}' is not of the form {form} (e.g. mgcl.topk=16)")
            out.setdefault(method, {})[name] = parse_value(value)
        else:
            out[key] = parse_value(value)
    return out


def machine_options(args) -> dict:
    """Backbone options that describe the machine, not the model (never saved in a model):
    ``--device`` and ``--backbone-batch-size``."""
    options = {}
    if getattr(args, "device", None):
        options["device"] = args.device
    batch = getattr(args, "backbone_batch_size", None)
    if batch is not None:
        if batch < 1:
            raise MgclError(f"--backbone-batch-size must be at least 1, got {batch}")
        options["batch_size"] = batch
    return options


def backbone_options(args) -> dict:
    """``--checkpoint`` and the machine options, as keyword options of the backbone factory."""
    options = {"checkpoint": args.checkpoint} if getattr(args, "checkpoint", None) else {}
    return {**options, **machine_options(args)}


def seconds(x: float) -> str:
    return f"{x:.1f} s"


def path_or_uri(text: str) -> Path | str:
    """An argparse ``type``: a URI (``s3://...``, read through pyarrow.fs) kept as a string
    (a Path would fold its ``//``), anything else a Path."""
    return text if is_uri(text) else Path(text)


def audio_inputs(paths: Sequence[Path | str]) -> list[Path | str]:
    """Files, folders (their audio files, recursively, natural order) and manifests (their
    rows' paths) named on the command line, local or URIs, as the audio files to process."""
    return expand_inputs(paths, SUPPORTED_EXTENSIONS)


# ----------------------------------------------------------------------------- models in words
#: Learned values that are bookkeeping or internal scales, not choices a user made sense of.
_NOT_CHOICES = ("n_classes_", "dim_", "spread_", "fspread_", "text_weights_")


def number(x) -> str:
    """A learned or hyper-parameter number, short: 1, 0.25, 16, 1e-06."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return json.dumps(x, default=str)
    return str(x) if isinstance(x, int) else f"{x:.3g}"


def plain_params(params: Mapping) -> dict:
    """Hyper-parameters as JSON gives them back (tuples -> lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}


def format_params(params: Mapping) -> str:
    """``{"betas": (2, 8), "topk": 16}`` -> ``betas=[2, 8], topk=16``."""
    return ", ".join(f"{k}={json.dumps(v, default=str)}" for k, v in plain_params(params).items())


def non_default_params(method: str, params: Mapping) -> dict:
    """The hyper-parameters of ``params`` that differ from ``method``'s defaults (all of them
    when the method is unknown to this mgcl)."""
    try:
        cls = method_class(method)
        given = coerce_params(cls, dict(params), method)
        defaults = cls().get_params()
    except (MgclError, TypeError):
        return dict(params)
    return {k: params[k] for k, v in given.items() if k not in defaults or defaults[k] != v}


def learned_choices(learned: Mapping) -> dict:
    """The JSON-able learned values of a method that are choices (no tensors, no bookkeeping)."""
    return {
        k: v
        for k, v in learned.items()
        if k not in ("n_classes_", "dim_")
        and v is not None
        and not (isinstance(v, dict) and ("__tensor_list__" in v or "__tensor_dict__" in v))
    }


def _branch(b: str) -> str:
    return BRANCH_NAMES.get(b, b)


def describe_choices(method: str, learned: Mapping) -> list[str]:
    """What a method chose on the support set, in words, one line per kind of choice
    (empty when it chose nothing). Unknown learned values are shown as ``name = value``."""
    learned = dict(learned)
    lines = []
    alpha, beta = learned.pop("alpha_", None), learned.pop("beta_", None)
    branches = learned.pop("branches_", None)
    if isinstance(alpha, dict):  # mgcl, mgcl_f: a weight (and a sharpness) per branch
        for b in branches or list(alpha):
            words = f"{_branch(b)}: weight {number(alpha.get(b))}"
            if isinstance(beta, dict) and b in beta:
                words += f", sharpness beta {number(beta[b])}"
            lines.append(words)
        cv = learned.pop("cv_accuracy_", None)
        lines.append(
            f"chosen by leave-one-shot-out cross-validation, {number(cv)}% of held-out support clips right"
            if cv is not None
            else "no cross-validation (one clip per class, or cv_rounds 0): the defaults hold"
        )
    else:
        learned.pop("cv_accuracy_", None)
        gamma = learned.pop("gamma_", None)
        parts = []
        if alpha is not None:
            parts.append(f"{'attention' if method == 'treff' else 'cache'} weight alpha {number(alpha)}")
        if beta is not None:
            parts.append(f"sharpness beta {number(beta)}")
        if gamma is not None:
            parts.append(f"sharpness gamma {number(gamma)}")
        if parts:
            lines.append(", ".join(parts))
    if (c := learned.pop("C_", None)) is not None:
        lines.append(f"regularisation C {number(c)} (inverse strength)")
    if (epochs := learned.pop("epochs_", None)) is not None:
        lines.append(f"fine-tuning epochs: {epochs}")
    if isinstance(weights := learned.pop("branch_weights_", None), dict):
        lines.append("trained branch weights: " + ", ".join(f"{_branch(b)} {number(w)}" for b, w in weights.items()))
    if isinstance(seg := learned.pop("segment_frames_", None), (list, tuple)) and len(seg) == 2:
        lines.append(f"fine cache segments: {seg[0]} frames every {seg[1]}")
    if n_views := learned.pop("n_views_", None):
        lines.append(f"learned from {n_views} audio views of the support clips")
    for k, v in learned_choices(learned).items():
        if k not in _NOT_CHOICES and not isinstance(v, (dict, list)):
            lines.append(f"{k.rstrip('_')} = {number(v)}")
    return lines


# ----------------------------------------------------------------------------- output
def report_failures(errors: dict[int, str]) -> None:
    """Each failed input on its own stderr line."""
    for i in sorted(errors):
        print(f"  FAILED {errors[i]}", file=sys.stderr)


def write_json(path: Path, doc) -> None:
    """``doc`` as indented UTF-8 JSON, written atomically."""
    atomic_write_bytes(path, (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


# ----------------------------------------------------------------------------- options
def add_machine_options(p: argparse.ArgumentParser) -> None:
    """``--device`` and ``--backbone-batch-size`` on a command that runs a backbone."""
    p.add_argument("--device", help="torch device, e.g. cpu or cuda (default: cuda if available)")
    p.add_argument(
        "--backbone-batch-size",
        type=int,
        metavar="N",
        help="windows per backbone forward: CLAP 10 s windows (default 8), aisfx 2.3 s "
        "blocks (default 64). Larger is faster on many cores and a GPU, and takes more "
        "memory (the released CLAP: about 0.6 s per window at 16, 2-4 s at 1, on 2 cores)",
    )


def add_backbone(p: argparse.ArgumentParser, default: str = "aisfx") -> None:
    backbones = "; ".join(f"{k}: {v}" for k, v in available_backbones().items())
    p.add_argument("--backbone", default=default, help=f"backbone name (default {default}). {backbones}")
    p.add_argument("--checkpoint", help="checkpoint id or local folder (--backbone clap)")
    add_machine_options(p)


def add_store(p: argparse.ArgumentParser, batch: bool = True) -> None:
    p.add_argument(
        "--store",
        type=Path,
        default=default_store(),
        help="feature store folder; embeddings are cached here by audio content "
        "(default $MGCL_STORE or ~/.cache/mgcl/features)",
    )
    if batch:
        p.add_argument(
            "--batch-size",
            type=int,
            default=16,
            help="clips read and handed to the backbone at a time (default 16; "
            "--backbone-batch-size sets windows per forward)",
        )


def add_param(p: argparse.ArgumentParser, prefixed: bool) -> None:
    if prefixed:
        p.add_argument(
            "--param",
            action="append",
            metavar="METHOD.KEY=VALUE",
            help="set a hyper-parameter of one evaluated method, e.g. --param mgcl.topk=16 "
            "--param tip_adapter.betas=1,4,16 (repeatable; values are JSON when they parse, "
            "comma lists become tuples)",
        )
    else:
        p.add_argument(
            "--param",
            action="append",
            metavar="KEY=VALUE",
            help="set a hyper-parameter of the method, e.g. --param topk=16 --param betas=1,4,16 "
            "(repeatable; values are JSON when they parse, comma lists become tuples). "
            "Parameters not given are chosen by cross-validation on the support set or keep "
            "their defaults",
        )


def add_descriptions(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--descriptions",
        default="builtin",
        metavar="FILE|builtin|none",
        help='class descriptions for text backbones: a JSON/YAML file {"class": ["a sharp, '
        'high-pitched bark", ...]} (see `mgcl describe`), "builtin" (default: the shipped sets '
        'for classes whose names match) or "none"',
    )
    p.add_argument(
        "--captions",
        default="none",
        metavar="FILE|auto|none",
        help="one caption per clip for the caption branches of text backbones: a file written "
        'by `mgcl caption` on the same manifest, "auto" (caption now with --captioner, cached '
        'in the store) or "none" (default)',
    )
    p.add_argument(
        "--captioner",
        metavar="ID_OR_PATH",
        help="audio-captioning checkpoint for --captions auto (default MU-NLPC/whisper-small-audio-captioning)",
    )


def add_open_set(p: argparse.ArgumentParser) -> None:
    """``--open-set U`` of evaluate and benchmark."""
    p.add_argument(
        "--open-set",
        type=int,
        default=0,
        metavar="U",
        help="open-set protocol: hold U classes out of the support (full-way: drawn per seed; "
        "episodes: U more classes per episode) and add their query clips as unknown; reports "
        "closed-set accuracy, AUROC known vs unknown and accuracy at the threshold chosen on the "
        "support (default 0: closed set)",
    )


def method_list() -> str:
    return ", ".join(available_methods())


def add_command(sub, name: str, run, help: str, description: str, epilog: str | None = None) -> argparse.ArgumentParser:
    """A sub-command's parser: ``help`` in ``mgcl --help``, ``description`` and ``epilog``
    (examples) in ``mgcl NAME --help``, printed as written; ``run(args)`` does the work."""
    p = sub.add_parser(
        name, help=help, description=description, epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.set_defaults(func=run)
    return p


def add_model_options(p: argparse.ArgumentParser) -> None:
    """The options of a command that runs a saved model: the machine's, and the identity check."""
    add_machine_options(p)
    p.add_argument(
        "--allow-backbone-mismatch",
        action="store_true",
        help="only warn (instead of failing) when the backbone's identity differs from the one "
        "the model was fitted with",
    )


def load_model(args, store=None) -> FewShotAudioClassifier:
    """The model folder ``args.model`` with the machine options of the command line."""
    return FewShotAudioClassifier.load(
        args.model,
        store=store,
        backbone_options=machine_options(args) or None,
        strict_backbone=not args.allow_backbone_mismatch,
    )


def open_set_line(o: Mapping | None) -> str:
    """One line on a model's open-set rejection (the ``open_set`` object of its config or
    fit summary): the threshold, what it applies to and how it was chosen."""
    o = o or {}
    if o.get("threshold") is None:
        how = o.get("method") or "off"
        return "open set: no rejection (every clip gets one of the classes)" + (
            f"; {how}" if str(how).startswith("auto") else ""
        )
    stats = o.get("stats") or {}
    parts = []
    if "held_out_accepted" in stats:
        parts.append(f"accepts {stats['held_out_accepted']:.0%} of {stats['held_out_clips']} held-out support clips")
    if "background_rejected" in stats:
        parts.append(f"rejects {stats['background_rejected']:.0%} of the background scores")
    seen = f"; on the support it {' and '.join(parts)}" if parts else ""
    return (
        f"open set: '{o.get('unknown_label', 'unknown')}' below probability {o['threshold']:.3g} "
        f"({o.get('method', '')}{seen})"
    )


def print_chosen(chosen: list[str]) -> None:
    """The choices a model made on its support set, in words: one line, or an indented list."""
    if len(chosen) == 1:
        print(f"chosen on the support set: {chosen[0]}")
    elif chosen:
        print("chosen on the support set:")
        for line in chosen:
            print(f"  {line}")


# ----------------------------------------------------------------------------- engines
def add_engine(p: argparse.ArgumentParser) -> None:
    """``--engine local|ray`` and the Ray engine's resources, on a command whose embedding
    pass can run on a Ray cluster (embed, predict, evaluate, benchmark)."""
    g = p.add_argument_group("engine (where the backbone runs; docs/distributed.md)")
    g.add_argument(
        "--engine",
        choices=list(ENGINES),
        default="local",
        help="local (default): one backbone in this process; ray: a Ray Data actor pool, one backbone "
        "per worker, on this machine or a cluster (pip install 'mgcl[ray]'); this process writes the store",
    )
    g.add_argument(
        "--address",
        metavar="auto|HOST:PORT|ray://HOST:PORT",
        help="--engine ray: the cluster to join (default: start a Ray instance on this machine for the run)",
    )
    g.add_argument(
        "--workers", type=int, metavar="N", help="--engine ray: backbone workers (default: as many as the CPUs allow)"
    )
    g.add_argument(
        "--cpus-per-worker",
        type=float,
        metavar="C",
        help="--engine ray: CPUs per worker, also its torch threads (default 1)",
    )
    g.add_argument(
        "--gpus-per-worker",
        type=float,
        metavar="G",
        help="--engine ray: GPUs per worker (e.g. 1, or 0.5 to share one); > 0 runs the backbone on CUDA (default 0)",
    )


def engine_of(args) -> Engine:
    """The :class:`~mgcl.engines.Engine` of the command line; Ray's options without
    ``--engine ray`` are a one-line error (they would be silently ignored)."""
    kind = getattr(args, "engine", "local") or "local"
    ray_only = {
        "--address": getattr(args, "address", None),
        "--workers": getattr(args, "workers", None),
        "--cpus-per-worker": getattr(args, "cpus_per_worker", None),
        "--gpus-per-worker": getattr(args, "gpus_per_worker", None),
    }
    if kind == "local":
        given = [k for k, v in ray_only.items() if v is not None]
        if given:
            raise MgclError(f"{given[0]} goes with --engine ray")
        return LOCAL
    return Engine(
        kind,
        address=ray_only["--address"],
        workers=ray_only["--workers"],
        cpus_per_worker=1.0 if ray_only["--cpus-per-worker"] is None else ray_only["--cpus-per-worker"],
        gpus_per_worker=0.0 if ray_only["--gpus-per-worker"] is None else ray_only["--gpus-per-worker"],
    )
