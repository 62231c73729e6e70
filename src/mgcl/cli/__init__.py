"""The ``mgcl`` command: embed, fit, predict, info, detect, evaluate, benchmark, explain,
describe, caption, data, demo, serve. One module per command (``register(subparsers)`` and
``run(args)``); what they share is in :mod:`.common`. Nothing outside this package imports it.

Exit status: 0 on success, 1 when some inputs were bad (the good ones are still processed and
each bad one is listed), 2 on a usage error or an unusable input (one line on stderr),
130 when interrupted.
"""

from __future__ import annotations

import argparse
import sys

from mgcl.util.threads import quiet_openmp

quiet_openmp()  # before anything below imports torch: idle OpenMP threads sleep instead of spinning

from mgcl.cli import (  # noqa: E402
    benchmark,
    caption,
    data,
    demo,
    describe,
    detect,
    embed,
    evaluate,
    explain,
    fit,
    info,
    predict,
    serve,
)
from mgcl.errors import MgclError  # noqa: E402
from mgcl.util.log import setup_logging  # noqa: E402
from mgcl.version import __version__  # noqa: E402

COMMANDS = (embed, fit, predict, info, detect, evaluate, benchmark, explain, describe, caption, data, demo, serve)


def build_parser() -> argparse.ArgumentParser:
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
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
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
