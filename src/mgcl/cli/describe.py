"""``mgcl describe``: class descriptions from a language model, a file or the shipped sets.

``register(subparsers)`` adds the sub-command to the ``mgcl`` parser (exit codes as for
every ``mgcl`` command).
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
import time
from pathlib import Path

from mgcl.cli.common import add_command
from mgcl.data.manifest import read_manifest
from mgcl.errors import MgclError
from mgcl.store.descriptions import DescriptionCache
from mgcl.text.descriptions import get_descriptions
from mgcl.text.llm import BuiltinGenerator, make_generator
from mgcl.util.atomic import atomic_write_bytes
from mgcl.util.progress import progress_bar

_INTRO = (
    'Write a JSON file {"class": ["description", ...], ...} of sentences saying what each class '
    "SOUNDS like (pitch, timbre, rhythm, duration, loudness envelope, source, setting), each "
    "setting its class apart from the others. Give the classes with --classes, --manifest (its "
    "labels) or --dataset (a shipped set's class list), and the source with --llm:"
)
_OUTRO = (
    "Language-model answers are validated (one JSON object, every class, enough distinct "
    "sentences) and re-asked, telling the model what was wrong, when they are not; they are "
    "cached by (generator, model, class, prompt version), so a second run asks nothing. Use the "
    "file with `mgcl fit/evaluate --descriptions FILE`."
)
DESCRIPTION = "\n".join(
    [
        textwrap.fill(_INTRO, 88),
        "  openai        any OpenAI-compatible chat-completions server (llama.cpp server, vLLM,",
        "                Ollama, hosted APIs): --base-url URL --model NAME; the API key is read",
        "                from the variable named by --api-key-env (none needed by local servers)",
        "  transformers  a local Hugging Face text-generation model: --model ID_OR_FOLDER",
        "  file:PATH     a JSON or YAML file you wrote ({class: [sentences]}), checked and subset",
        "  builtin       the description sets shipped with mgcl (builtin:NAME for one set)",
        textwrap.fill(_OUTRO, 88),
    ]
)

EPILOG = """examples:
  mgcl describe --dataset urbansound8k --llm builtin --out -
  mgcl describe --classes "dog bark,siren,jackhammer" --llm openai \\
      --base-url http://localhost:8080/v1 --model qwen2.5-7b-instruct --out desc.json
  OPENAI_API_KEY=... mgcl describe --manifest support.csv --llm openai \\
      --base-url https://api.openai.com/v1 --model gpt-4o-mini --per-class 12 --out desc.json
  mgcl describe --manifest support.csv --llm transformers --model Qwen/Qwen2.5-1.5B-Instruct --out desc.json
  mgcl describe --manifest support.csv --llm file:my_descriptions.yaml --out desc.json
"""


def _split(text: str) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def class_list(args) -> list[str]:
    """The classes named by --classes, --manifest or --dataset."""
    if args.classes is not None:
        names = list(dict.fromkeys(_split(args.classes)))
        if not names:
            raise MgclError('--classes is empty; give comma-separated class names, e.g. "dog bark,siren"')
        return names
    if args.manifest is not None:
        return sorted({r.label for r in read_manifest(args.manifest)})
    return BuiltinGenerator(args.dataset).classes()


def cmd_describe(args) -> int:
    t0 = time.perf_counter()
    if args.per_class < 1:
        raise MgclError(f"--per-class must be at least 1, got {args.per_class}")
    if args.out != "-" and Path(args.out).is_dir():
        raise MgclError(f"--out {args.out}: is a folder; give a file name such as descriptions.json, or - for stdout")
    spec = args.llm
    if args.dataset and spec.strip().lower() == "builtin":
        spec = f"builtin:{args.dataset}"
    generator = make_generator(
        spec,
        base_url=args.base_url,
        model=args.model,
        api_key_env=args.api_key_env,
        timeout=args.timeout,
        max_retries=args.max_retries,
        classes_per_request=args.classes_per_request,
        device=args.device,
        max_new_tokens=args.max_new_tokens,
    )
    classes = class_list(args)
    cache = None if args.no_cache or not getattr(generator, "cacheable", False) else DescriptionCache(args.cache)
    with progress_bar(len(classes), "describing", unit="class") as update:
        result = get_descriptions(classes, generator, args.per_class, cache=cache, progress=update)
    text = json.dumps(result, indent=2, ensure_ascii=False) + "\n"
    if args.out == "-":
        sys.stdout.write(text)
    else:
        atomic_write_bytes(args.out, text.encode("utf-8"))
    cached = f", {cache.hits} from cache, {cache.misses} generated" if cache is not None else ""
    print(
        f"described {len(result)} classes x {args.per_class} with {generator.identity}{cached} "
        f"in {time.perf_counter() - t0:.1f} s" + ("" if args.out == "-" else f" -> {args.out}"),
        file=sys.stderr,
    )
    return 0


HELP = "write LLM (or shipped) descriptions of what each class sounds like, as JSON"


def register(subparsers) -> argparse.ArgumentParser:
    """Add ``describe`` to an ``argparse`` sub-parsers object; returns its parser."""
    p = add_command(subparsers, "describe", cmd_describe, HELP, DESCRIPTION, EPILOG)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--classes", metavar='"A,B,..."', help='comma-separated class names, e.g. "dog bark,siren"')
    which.add_argument(
        "--manifest", type=Path, metavar="CSV", help="a manifest CSV (path,label); its labels are the classes"
    )
    which.add_argument(
        "--dataset",
        metavar="NAME",
        help="a shipped set's class list: esc50, urbansound8k, fsdkaggle2018, gtzan, vocalsound, "
        "nsynth, tut2017, env45 (those installed)",
    )
    p.add_argument(
        "--llm", required=True, metavar="SPEC", help="openai | transformers | file:PATH | builtin[:NAME] (see above)"
    )
    p.add_argument(
        "--per-class",
        type=int,
        default=8,
        metavar="M",
        help="descriptions per class (default 8); extra ones are trimmed, too few are re-asked",
    )
    p.add_argument(
        "--base-url",
        metavar="URL",
        help="openai: the API root, e.g. http://localhost:8080/v1 (llama.cpp), "
        "http://localhost:11434/v1 (Ollama), https://api.openai.com/v1",
    )
    p.add_argument(
        "--model", metavar="NAME", help="openai: the served model's name; transformers: a hub id or local folder"
    )
    p.add_argument(
        "--api-key-env",
        default="OPENAI_API_KEY",
        metavar="VAR",
        help="openai: environment variable holding the API key (default OPENAI_API_KEY; "
        "unset is fine for local servers)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=60,
        metavar="S",
        help="openai: seconds per request before it is retried (default 60)",
    )
    p.add_argument(
        "--max-retries",
        type=int,
        default=4,
        metavar="N",
        help="openai: retries on timeouts, connection errors, 429 and 5xx, with exponential back-off (default 4)",
    )
    p.add_argument(
        "--classes-per-request",
        type=int,
        metavar="N",
        help="classes asked for in one request (default 8 for openai, 4 for transformers)",
    )
    p.add_argument("--device", help="transformers: torch device (default cuda if available)")
    p.add_argument(
        "--max-new-tokens", type=int, metavar="N", help="transformers: generation budget per answer (default 1024)"
    )
    cache = p.add_mutually_exclusive_group()
    cache.add_argument(
        "--cache",
        type=Path,
        metavar="DIR",
        help="description cache folder (default $MGCL_CACHE/descriptions or ~/.cache/mgcl/descriptions)",
    )
    cache.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    p.add_argument(
        "--out", required=True, metavar="FILE", help="JSON file to write ({class: [descriptions]}), or - for stdout"
    )
    return p
