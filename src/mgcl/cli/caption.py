"""``mgcl caption``: captions for the clips of a manifest, cached by audio content.

Exit codes as for every ``mgcl`` command: 0 success, 1 some files failed (the others are
still captioned and written), 2 usage error or unusable input (one line on stderr).
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

from mgcl.cli.common import add_command
from mgcl.data.manifest import read_manifest
from mgcl.errors import MgclError
from mgcl.pipeline import default_store
from mgcl.store.captions import CaptionCache, caption_sources
from mgcl.text.captioners import make_captioner, manifest_key, render_captions
from mgcl.util.atomic import atomic_write_bytes
from mgcl.util.progress import progress_bar

DESCRIPTION = textwrap.fill(
    "Caption every clip of a manifest (CSV with header path,label[,fold,split]; paths relative "
    "to the CSV's folder or absolute) with an audio-to-text model from Hugging Face "
    "transformers, and write {path: caption} in manifest order. The captions feed the "
    "caption branch of mgcl / mgcl_f (`--captions FILE`). Supported captioners, chosen by "
    "the checkpoint's model type: Whisper fine-tuned for audio captioning (e.g. "
    "MU-NLPC/whisper-small-audio-captioning with --prompt 'clotho > caption: ', its style "
    "prefix), Qwen2-Audio (e.g. Qwen/Qwen2-Audio-7B-Instruct; --prompt is the instruction, "
    "default 'Describe the sound.'), or any AutoModelForSpeechSeq2Seq model. Only the first "
    "30 s of a clip are heard. Decoding is greedy (deterministic) unless --num-beams > 1. "
    "Captions are cached in the store by audio content and captioner settings: a second run "
    "on the same audio runs no model. Files that cannot be decoded are listed on stderr "
    "(exit status 1); the others are still captioned and written. Checkpoints come from the "
    "Hugging Face hub or a local folder; HF_HUB_OFFLINE=1 uses only the local cache.",
    width=88,
)

EPILOG = """examples:
  mgcl caption --manifest support.csv --captioner MU-NLPC/whisper-small-audio-captioning \\
      --prompt "clotho > caption: " --out captions.json
  mgcl caption --manifest support.csv --captioner Qwen/Qwen2-Audio-7B-Instruct \\
      --device cuda --batch-size 4 --out captions.csv
  mgcl caption --manifest support.csv --captioner ./my-whisper-captioner --out captions.json

output: JSON {"audio/dog_1.wav": "a dog barks twice", ...} keyed by the paths as written in
the manifest, or a CSV with header path,caption when FILE ends in .csv.
"--captioner tiny-random" is a tiny Whisper with RANDOM weights for tests: its captions
are meaningless."""


HELP = "caption the clips of a manifest with an audio-captioning model (cached)"


def register(subparsers) -> argparse.ArgumentParser:
    """Add ``caption`` to the sub-parsers of the ``mgcl`` command; returns its parser."""
    p = add_command(subparsers, "caption", cmd_caption, HELP, DESCRIPTION, EPILOG)
    p.add_argument("--manifest", type=Path, required=True, help="manifest CSV (path,label[,...])")
    p.add_argument(
        "--captioner",
        required=True,
        metavar="ID_OR_PATH",
        help="hub id or local folder of a transformers audio-to-text model (whisper, qwen2_audio, "
        "or any AutoModelForSpeechSeq2Seq type); 'tiny-random' = random test model",
    )
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="FILE",
        help="captions file to write: JSON, or CSV (path,caption) when FILE ends in .csv",
    )
    p.add_argument(
        "--prompt",
        metavar="TEXT",
        help="Whisper captioners: style prefix forced before the caption (not part of it), "
        "e.g. 'clotho > caption: '; Qwen2-Audio: the instruction (default 'Describe the sound.')",
    )
    p.add_argument("--device", help="torch device, e.g. cpu or cuda (default: cuda if available)")
    p.add_argument("--batch-size", type=int, default=8, help="clips per generate call (default 8)")
    p.add_argument("--max-new-tokens", type=int, default=40, help="longest caption, in tokens (default 40)")
    p.add_argument("--num-beams", type=int, default=1, help="beam search width (default 1 = greedy)")
    p.add_argument(
        "--store",
        type=Path,
        default=default_store(),
        help="feature store folder; captions are cached in its captions/ folder by audio content "
        "(default $MGCL_STORE or ~/.cache/mgcl/features)",
    )
    return p


def cmd_caption(args) -> int:

    for flag, value in (
        ("--batch-size", args.batch_size),
        ("--max-new-tokens", args.max_new_tokens),
        ("--num-beams", args.num_beams),
    ):
        if value < 1:
            raise MgclError(f"{flag} must be at least 1, got {value}")
    if args.out.is_dir():
        raise MgclError(f"--out {args.out}: is a folder; give a file name such as captions.json")
    rows = read_manifest(args.manifest)
    captioner = make_captioner(
        args.captioner, args.device, args.batch_size, args.max_new_tokens, args.num_beams, args.prompt
    )
    cache = CaptionCache(Path(args.store).expanduser(), captioner.identity)
    paths = [r.path for r in rows]
    with progress_bar(len(paths), "captioning") as update:
        res = caption_sources(captioner, paths, cache=cache, batch_size=args.batch_size, progress=update)

    captions = {manifest_key(rows[i].path, args.manifest): res.values[i] for i in res.ok}
    atomic_write_bytes(args.out, render_captions(captions, args.out))

    n = len(rows)
    print(
        f"captioned {len(res.ok)}/{n} files with {args.captioner} in {res.seconds:.1f} s "
        f"({res.computed / max(res.seconds, 1e-9):.1f} clips/s computed)"
    )
    print(f"computed: {res.computed}, cache hits: {res.cache_hits}, failed: {len(res.errors)}")
    empty = [i for i, c in enumerate(res.values) if c == ""]
    if empty:
        print(
            f"note: {len(empty)} caption(s) are empty (the model produced no text): "
            + ", ".join(manifest_key(rows[i].path, args.manifest) for i in empty[:5])
            + (" ..." if len(empty) > 5 else ""),
            file=sys.stderr,
        )
    print(f"captions: {args.out}")
    if res.errors:
        print(f"{len(res.errors)} of {n} file(s) could not be captioned:", file=sys.stderr)
        for i in sorted(res.errors):
            print(f"  FAILED {res.errors[i]}", file=sys.stderr)
        return 1
    return 0
