"""``mgcl explain``: one picture of why a saved model classified a clip the way it did.

``register(subparsers)`` adds the sub-command to the ``mgcl`` parser. Exit codes as for
every ``mgcl`` command: 0 success, 2 usage error or unusable input (one line on stderr).
"""

from __future__ import annotations

import argparse
import json
import textwrap
from pathlib import Path

from mgcl.audio.decode import check_uri
from mgcl.audio.stream import duration as audio_duration
from mgcl.cli.common import add_command, add_model_options, load_model, path_or_uri
from mgcl.detection.detect import DetectOptions
from mgcl.detection.overview import overview_spectrogram
from mgcl.errors import MgclError
from mgcl.explain.compute import explain_clip
from mgcl.explain.render import render
from mgcl.explain.timeline import render_timeline
from mgcl.pipeline import default_store, detect_files
from mgcl.util.uri import is_uri

#: Files longer than this (seconds) are explained as a detection timeline.
LONG_FILE_S = 30.0

DESCRIPTION = textwrap.fill(
    "Explain one decision of a model saved by `mgcl fit`: classify FILE and draw, in one PNG, "
    "(1) the optimal-transport plan between the clip's frames and the winning class's concepts "
    "- which moments matched which description (text backbones: the class prompt and its LLM "
    "descriptions; audio-only backbones: the class's learned frame prototypes for mgcl_f, or the "
    "frames of its best-matching support clip for mgcl) - on the same time axis as (2) the "
    "clip's log-mel spectrogram, and (3) how much each branch of the model (zero-shot text, "
    "coarse cache, fine cache, fine text, caption cache, ...) added to the logit of the winner "
    "and of the runner-up; the bars of a class sum to its logit. Other methods show one "
    "'total' bar. The plan is computed with the model's own epsilon and marginals. "
    "With --json, a summary (prediction, probabilities, branch contributions, the heaviest "
    "(time, concept) matches) is printed on stdout. A long file (over 30 s, or any file with "
    "--timeline) is drawn as a timeline instead: its spectrogram, the score curve of every "
    "class below it with its threshold, and the events `mgcl detect` finds (default options).",
    width=88,
)

EPILOG = """examples:
  mgcl explain my_model clips/dog_017.wav --out dog_017.png
  mgcl explain my_model query.wav --out why.png --top-k 5 --json > why.json
  mgcl explain my_model query.wav --out why.png --concepts audio

reading the picture: in the plan, each row is one concept of the predicted class and its
colour shows where along the clip that concept's transport mass went, against an even
spread (red: more, blue: less, white: no preference); a red cell above a bright
spectrogram region means "this moment is what matched this description". Row labels are
the description sentences when the model stores them (`mgcl fit --descriptions ...`),
else "description 1", "description 2", ... The bars on the right add up to each class's
logit; "Δ" is the winner's lead over the runner-up per branch.

exit status: 0 written; 2 missing or unreadable model, undecodable audio, bad option."""


HELP = "draw why a saved model chose a class: OT plan over the spectrogram + branch contributions"


def register(subparsers) -> argparse.ArgumentParser:
    """Add ``explain`` to the sub-parsers of the ``mgcl`` command; returns its parser."""
    p = add_command(subparsers, "explain", cmd_explain, HELP, DESCRIPTION, EPILOG)
    p.add_argument("model", type=Path, metavar="MODEL_DIR", help="folder written by `mgcl fit`")
    p.add_argument(
        "file", type=path_or_uri, metavar="FILE", help="the audio clip to explain (a path or a URI: s3://, file://)"
    )
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="PNG",
        help="image to write (.png; written atomically, folders created)",
    )
    p.add_argument(
        "--top-k",
        type=int,
        default=3,
        metavar="K",
        help="classes listed with their probabilities in the JSON summary (default 3)",
    )
    p.add_argument(
        "--concepts",
        choices=("auto", "text", "audio"),
        default="auto",
        help="what the clip's frames are matched to: auto (default: the class's "
        "descriptions when the model has some, else its audio concepts), text (prompt + "
        "descriptions, needs a text backbone), audio (frame prototypes / support frames)",
    )
    p.add_argument(
        "--matches",
        type=int,
        default=5,
        metavar="N",
        help="heaviest (time, concept) matches in the JSON summary (default 5)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print a JSON summary on stdout: predicted, probability, top_k, "
        "contributions [{branch, winner, runner_up}], concepts, top_matches "
        "[{time, concept, mass, similarity}]",
    )
    p.add_argument(
        "--store",
        type=Path,
        default=None,
        metavar="DIR",
        help="feature store folder (embeddings cached by audio content; default $MGCL_STORE or ~/.cache/mgcl/features)",
    )
    p.add_argument(
        "--timeline",
        action="store_true",
        help="draw the detection timeline (spectrogram, score curves, events), the default for files over 30 s",
    )
    add_model_options(p)
    return p


def explain_long(args, clf, store) -> int:
    """The timeline of a long file: `mgcl detect`'s curves and events under its spectrogram."""
    run = detect_files(clf, [str(args.file)], DetectOptions(), store)
    if run.errors:
        raise MgclError(run.errors[0])
    det = run.detections[0]
    spec, freqs, dur = overview_spectrogram(str(args.file))
    events = [(e.onset, e.offset, e.event_label, e.score) for e in det.events]
    title = f"{args.file}: {len(events)} event(s) · method {clf.method}, backbone {clf.backbone_name_}"
    try:
        render_timeline(
            spec,
            freqs,
            dur,
            det.curve.times,
            det.curve.scores,
            det.curve.classes,
            events,
            det.high,
            args.out,
            title=title,
            ignored=det.ignored,
        )
    except OSError as exc:
        raise MgclError(f"--out {args.out}: cannot write ({exc.strerror or exc})") from None
    if args.json:
        doc = {
            "file": str(args.file),
            "out": str(args.out),
            "duration": round(dur, 3),
            "thresholds": {"how": run.thresholds, "high": dict(zip(det.curve.classes, map(float, det.high)))},
            "events": [{"onset": a, "offset": b, "event_label": c, "score": d} for a, b, c, d in events],
        }
        print(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        for a, b, c, d in events:
            print(f"{a:.2f}-{b:.2f} s\t{c}\t{d:.3f}")
        print(f"explanation: {args.out} ({len(events)} event(s) in {dur:.1f} s)")
    return 0


def _check_out(out: Path) -> None:
    if out.exists() and out.is_dir():
        raise MgclError(f"--out {out}: is a folder; give a file name such as why.png")
    if out.suffix.lower() != ".png":
        raise MgclError(f"--out {out}: must end in .png")


def cmd_explain(args) -> int:

    if args.top_k < 1:
        raise MgclError(f"--top-k must be at least 1, got {args.top_k}")
    if args.matches < 0:
        raise MgclError(f"--matches must be at least 0, got {args.matches}")
    _check_out(args.out)
    store = args.store if args.store is not None else default_store()
    clf = load_model(args, store=store)
    if is_uri(args.file):  # before the backbone is built: fail fast
        check_uri(args.file)
    elif not args.file.exists():
        raise MgclError(f"{args.file}: file not found")
    if args.timeline or audio_duration(str(args.file)) > LONG_FILE_S:
        return explain_long(args, clf, store)
    expl = explain_clip(clf, str(args.file), top_k=args.top_k, concepts=args.concepts)
    try:
        render(expl, args.out)
    except OSError as exc:
        raise MgclError(f"--out {args.out}: cannot write ({exc.strerror or exc})") from None
    if args.json:
        doc = expl.to_dict(args.matches)
        doc["file"] = str(args.file)
        doc["out"] = str(args.out)
        print(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        print_summary(args.file, expl)
        print(f"explanation: {args.out}")
    return 0


def print_summary(file, expl) -> None:
    """The model's answer (a class, or its unknown label with the best class beside it), its
    probability and the runner-up; then the plan's best match, when there is a plan."""
    p = float(expl.probabilities[expl.winner])
    r = expl.runner_up
    alt = f" (runner-up {expl.classes[r]} {float(expl.probabilities[r]):.3f})" if r is not None else ""
    if expl.rejected:
        alt = f" (best class {expl.predicted} {p:.3f} < rejection threshold {expl.reject_threshold:.3f})" + alt
    print(f"{file}\t{expl.answer}\t{p:.3f}{alt}")
    best = expl.top_matches(1)
    if best:
        m = best[0]
        print(f"best match: {m['start']:.2f}-{m['end']:.2f} s <-> {m['concept']}")
