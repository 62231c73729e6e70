"""The ``mgcl`` command: embed, fit, predict, info, detect, evaluate, benchmark, explain,
describe, caption, data, demo, serve. One module per command (``register(subparsers)`` and
``run(args)``), imported only when its command runs (:data:`COMMANDS`); what they share is in
:mod:`.common`. Nothing outside this package imports it.

Exit status: 0 on success, 1 when some inputs were bad (the good ones are still processed and
each bad one is listed), 2 on a usage error or an unusable input (one line on stderr),
130 when interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from types import ModuleType

from mgcl.util.threads import quiet_openmp

quiet_openmp()  # before a command's module imports torch: idle OpenMP threads sleep instead of spinning

from mgcl.errors import MgclError  # noqa: E402
from mgcl.util.log import setup_logging  # noqa: E402
from mgcl.version import __version__  # noqa: E402

#: Every command: name -> (its module, its one-line help in ``mgcl --help``), in the order of
#: ``mgcl --help``. Only the module of the command being run is imported (:func:`command_module`),
#: so ``import mgcl.cli`` and ``mgcl --help`` stay light: no torch, scikit-learn or scipy, which
#: the command modules pull in through the library (seconds of start-up). The help strings are
#: the modules' own (tests/cli/test_lazy.py checks that they agree).
COMMANDS: dict[str, tuple[str, str]] = {
    "embed": ("mgcl.cli.embed", "compute and cache clip + frame embeddings for the files of a manifest"),
    "fit": ("mgcl.cli.fit", "fit a few-shot classifier on a labelled support set and save it"),
    "predict": (
        "mgcl.cli.predict",
        "classify audio files (or folders, manifests) with a model saved by `mgcl fit`",
    ),
    "info": ("mgcl.cli.info", "show what a saved model knows: classes, method, choices, backbone, checksum"),
    "detect": (
        "mgcl.cli.detect",
        "find when the classes of a saved model sound in long recordings (events with onsets and offsets)",
    ),
    "evaluate": ("mgcl.cli.evaluate", "compare few-shot methods over shots x seeds on a labelled manifest"),
    "benchmark": (
        "mgcl.cli.benchmark",
        "the field's few-shot protocols (full-way folds, N-way episodes) on datasets, "
        "with results.json, results.md and plots",
    ),
    "explain": (
        "mgcl.cli.explain",
        "draw why a saved model chose a class: OT plan over the spectrogram + branch contributions",
    ),
    "describe": (
        "mgcl.cli.describe",
        "write LLM (or shipped) descriptions of what each class sounds like, as JSON",
    ),
    "caption": ("mgcl.cli.caption", "caption the clips of a manifest with an audio-captioning model (cached)"),
    "data": (
        "mgcl.cli.data",
        "download the field's datasets (ESC-50, UrbanSound8K, ...) with resume and checksums",
    ),
    "demo": (
        "mgcl.cli.demo",
        "generate a synthetic sound-event set, embed it with aisfx, compare few-shot methods",
    ),
    "serve": (
        "mgcl.cli.serve",
        'serve models over HTTP, with a web page to fit and try them (pip install "mgcl[serve]")',
    ),
}


def command_module(name: str) -> ModuleType:
    """The module of command ``name`` (``register(subparsers)``, ``run(args)``), imported now.

    The one import of an mgcl module by name at run time in the command line
    (tests/test_architecture.py allows it here only): importing every command up front would
    make each ``mgcl`` invocation pay for the imports of all the others."""
    return importlib.import_module(COMMANDS[name][0])


def command_in(argv: list[str]) -> str | None:
    """The command named in ``argv``: its first word that is not an option (the top-level
    options take no value), if it is a command."""
    for arg in argv:
        if arg == "--":
            return None
        if not arg.startswith("-"):
            return arg if arg in COMMANDS else None
    return None


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``mgcl`` parser. Every command is listed with its help; only ``command`` (a name of
    :data:`COMMANDS`, or None) gets its options, from its module, imported now."""
    parser = argparse.ArgumentParser(
        prog="mgcl",
        description=(
            "Few-shot audio recognition on pretrained audio(-language) models. Typical flow: "
            "`mgcl embed` (features, cached) -> `mgcl evaluate` / `mgcl fit` -> `mgcl predict` -> "
            "`mgcl explain`. Datasets: `mgcl data download`, then `mgcl benchmark` runs the field's "
            "protocols with tables and plots. Try `mgcl demo` first."
        ),
    )
    parser.add_argument("--version", action="version", version=f"mgcl {__version__}")
    loud = parser.add_mutually_exclusive_group()
    loud.add_argument(
        "-q", "--quiet", action="store_true", help="print results and errors only (no notes, no progress)"
    )
    loud.add_argument("-v", "--verbose", action="store_true", help="also print debugging details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help) in COMMANDS.items():
        if name == command:
            command_module(name).register(sub)
        else:  # listed in `mgcl --help`; its options are added when it is the one run
            sub.add_parser(name, help=help, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(command_in(argv))
    args = parser.parse_args(argv)
    setup_logging(-1 if args.quiet else 1 if args.verbose else 0)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except MgclError as exc:
        print(f"mgcl {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"mgcl {args.command}: interrupted{getattr(args, 'interrupt_hint', '')}", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
