"""``mgcl data``: download the field's datasets (``download``) and see what is known (``list``).

``register(subparsers)`` adds the sub-command to the ``mgcl`` parser (exit codes as for
every ``mgcl`` command).
"""

from __future__ import annotations

import argparse
import sys
import textwrap
import time
from pathlib import Path

from mgcl.data.catalog import CATALOG
from mgcl.data.download import ManualStepRequired, download_entry, fetch_dataset, parse_checksum
from mgcl.errors import MgclError

DESCRIPTION = """\
Fetch a dataset from its official public location (Zenodo, GitHub, the authors' site),
with a progress bar, resume of an interrupted download (run the same command again), and
verification of the checksum recorded for each archive. Archives are unpacked under
--root and then deleted (--keep-archive keeps them); the command prints the dataset
folder to give to the loaders, e.g. `mgcl benchmark --datasets esc50 --root DIR/ESC-50-master`.
A second run finds the finished parts and does nothing. `mgcl data list` shows every
dataset with its size, licence and whether a manual step is needed."""

DOWNLOAD_EPILOG = """\
exit status: 0 ready; 1 a manual step is needed (instructions printed, nothing fetched);
2 error (one line on stderr: HTTP error, checksum mismatch, unsafe archive, ...).

On a checksum mismatch nothing is unpacked and the bytes stay in ARCHIVE.part: delete it
to download again. Interrupted downloads also stay in ARCHIVE.part and are resumed.

examples:
  mgcl data download esc50 --root ~/datasets
  mgcl data download urbansound8k --root ~/datasets --keep-archive
  mgcl data download ravdess --root ~/datasets --with-optional        # + the song part
  mgcl data download esc50 --root ~/datasets --url https://mirror.example.org/ESC-50-master.zip
  mgcl data download tut2017 --root ~/datasets --url https://mirror.example.org/tut2017/
"""

LIST_EPILOG = """\
columns: size (download, approximate), parts (required + optional archives), checksum
(all / some / none of the archives have a recorded md5 or sha256; manual: fetched by you),
licence. Respect each dataset's licence and cite it (`mgcl data list NAME` shows how).
"""


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _parts_text(entry) -> str:
    req = len(entry.parts())
    opt = len(entry.archives) - req
    return f"{req}" + (f"+{opt}" if opt else "")


def _downloadable():
    return [e for e in CATALOG.values() if e.downloadable]


def cmd_list(args) -> int:
    if args.name:
        entry = download_entry(args.name)
        print(f"{entry.name}: {entry.description}")
        if entry.aliases:
            print(f"  aliases:  {', '.join(entry.aliases)}")
        print(f"  homepage: {entry.url}")
        print(f"  licence:  {entry.licence}")
        print(f"  size:     {entry.size}")
        print(
            f"  folder:   ROOT/{entry.folder}"
            + (f"  (must contain: {', '.join(entry.expect)})" if entry.expect else "")
        )
        print(textwrap.fill(entry.citation, 88, initial_indent="  cite:     ", subsequent_indent=" " * 12))
        if entry.notes:
            print(f"  note:     {entry.notes}")
        for a in entry.archives:
            extras = [
                f"{a.size:,} bytes" if a.size else None,
                "optional" if a.optional else None,
                f"into ROOT/{a.into}" if a.into else None,
                a.note or None,
            ]
            print(f"  archive:  {a.name}" + (f" ({', '.join(e for e in extras if e)})" if any(extras) else ""))
            print(f"            {a.url}")
            for m in a.mirrors:
                print(f"            mirror: {m}")
            print(f"            checksum: {a.checksum or 'not recorded (size checked only)'}")
        if entry.manual:
            print("  manual step:")
            print(textwrap.indent(entry.manual.format(dir=f"ROOT/{entry.folder}", root="ROOT"), "    "))
        return 0
    rows = [("name", "size", "parts", "checksum", "licence")]
    for entry in _downloadable():
        rows.append(
            (
                entry.name,
                entry.size.split(" (")[0],
                "manual" if entry.manual else _parts_text(entry),
                "manual" if entry.manual else entry.verified,
                entry.licence.split(";")[0].split(" (")[0],
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r[:4], widths)) + "  " + r[4])
    print("\n`mgcl data list NAME` for URLs, checksums, citation; `mgcl data download NAME --root DIR` to fetch.")
    return 0


def cmd_download(args) -> int:
    entry = download_entry(args.name)
    if args.retries < 0:
        raise MgclError(f"--retries must be 0 or more, got {args.retries}")
    if args.timeout <= 0:
        raise MgclError(f"--timeout must be positive, got {args.timeout}")
    checksum = True
    if args.checksum is not None:
        parse_checksum(args.checksum)  # a malformed value fails before any download
        checksum = args.checksum
    root = Path(args.root).expanduser()
    if root.exists() and not root.is_dir():
        raise MgclError(f"--root {root}: exists and is not a folder")
    t0 = time.perf_counter()
    _log(f"{entry.name}: {entry.description}")
    _log(f"  licence: {entry.licence}; size {entry.size}; into {root / entry.folder}")
    try:
        path = fetch_dataset(
            entry.name,
            root,
            progress=not args.quiet,
            keep_archive=args.keep_archive,
            url=args.url,
            checksum=checksum,
            include_optional=args.with_optional,
            timeout=args.timeout,
            retries=args.retries,
            log=(lambda m: None) if args.quiet else _log,
        )
    except ManualStepRequired as exc:
        print(f"{entry.name} cannot be downloaded automatically. To get it:\n")
        print(textwrap.indent(exc.instructions, "  "))
        print(f"\nlicence: {entry.licence}\ncite: {entry.citation}")
        return 1
    print(f"ready: {path}  ({time.perf_counter() - t0:.1f} s)")
    print(f"use it with: --root {path}")
    print(f"licence: {entry.licence}")
    print(f"please cite: {entry.citation}")
    return 0


def _data_help(parser):
    def show(args) -> int:
        parser.print_help(sys.stderr)
        return 2

    return show


def register(subparsers) -> argparse.ArgumentParser:
    """Add ``data`` (with ``download`` and ``list``) to an ``argparse`` sub-parsers object."""
    names = ", ".join(e.name for e in _downloadable())
    p = subparsers.add_parser(
        "data",
        help="download the field's datasets (ESC-50, UrbanSound8K, ...) with resume and checksums",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(func=_data_help(p))
    sub = p.add_subparsers(dest="data_command", metavar="ACTION")

    d = sub.add_parser(
        "download",
        help="fetch, verify and unpack a dataset under --root",
        description=DESCRIPTION,
        epilog=DOWNLOAD_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    d.add_argument("name", metavar="NAME", help=f"dataset: {names}")
    d.add_argument(
        "--root",
        required=True,
        type=Path,
        metavar="DIR",
        help="folder to download into; the dataset lands in a sub-folder of it "
        "(e.g. DIR/ESC-50-master), printed at the end",
    )
    d.add_argument(
        "--keep-archive",
        action="store_true",
        help="keep the downloaded archives in DIR after unpacking (default: delete them)",
    )
    d.add_argument(
        "--url",
        metavar="URL",
        help="download from here instead of the official location (a mirror or a local "
        "copy served over HTTP): the archive's URL for a one-archive dataset, a base URL "
        "ending in / for several archives (each archive's file name is appended). The "
        "recorded checksum still applies",
    )
    d.add_argument(
        "--with-optional",
        action="store_true",
        help="also fetch the optional parts (NSynth train ~22 GB, TUT 2017 evaluation set, "
        "RAVDESS song); `mgcl data list NAME` shows them",
    )
    d.add_argument(
        "--checksum",
        metavar="SPEC",
        help="one-archive datasets: expect md5:HEX or sha256:HEX instead of the recorded "
        "checksum, or 'none' to skip verification (only for a source you checked yourself)",
    )
    d.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        metavar="S",
        help="seconds without data before a connection is retried (default 60)",
    )
    d.add_argument(
        "--retries",
        type=int,
        default=5,
        metavar="N",
        help="retries in a row on connection errors, timeouts and HTTP 5xx/429, with "
        "exponential back-off; progress resets the count (default 5)",
    )
    d.add_argument("-q", "--quiet", action="store_true", help="no progress bar or progress messages")
    d.set_defaults(func=cmd_download, interrupt_hint=" (run the same command again to resume)")

    lst = sub.add_parser(
        "list",
        help="datasets mgcl can fetch: size, parts, checksums, licence, manual steps",
        description="List the datasets `mgcl data download` knows, or everything about one of them "
        "(URLs, mirrors, checksums, sizes, licence, citation, manual steps).",
        epilog=LIST_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    lst.add_argument("name", nargs="?", metavar="NAME", help="show the details of this dataset")
    lst.set_defaults(func=cmd_list)
    return p
