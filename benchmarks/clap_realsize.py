"""The released CLAP architecture at real size on this machine: speed and peak memory.

`clap-random` is ``ClapConfig()`` (HTSAT-tiny audio tower, RoBERTa-base text tower, 153.5 M
parameters) with random weights and the published feature-extractor settings: the compute
and memory of ``laion/clap-htsat-unfused`` without its download. Records

- windows/s of the audio tower at backbone batch 1, 8 and 16 (10 s windows, in process);
- text encoding: seconds per sentence (shipped env45 descriptions, batched as mgcl batches);
- wall time and peak RSS of each command a user runs, each in its own process, as a user
  runs it: ``mgcl embed``, ``mgcl fit`` for every method (class descriptions ``builtin``),
  ``mgcl predict`` and ``mgcl explain`` with the mgcl_f model.

Target (the real-size CLAP issue): nothing crashes and no command peaks above 3 GB RSS.

    python benchmarks/clap_realsize.py --out results/clap_realsize.json
      [--manifest ../shared/data/env45/manifest.csv] [--classes 4] [--per-class 3]

Without ``--manifest`` (or when it is missing) the clips are synthetic tones named after
env45 classes, so ``--descriptions builtin`` still finds the shipped descriptions.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MANIFEST = ROOT.parent / "shared" / "data" / "env45" / "manifest.csv"
RSS_TARGET_MB = 3072
#: env45 classes (their shipped descriptions are used by --descriptions builtin)
SYNTHETIC_CLASSES = ("bicycle bell", "chainsaw", "blender", "coin drop", "typing", "zipper")


#: Runs ``mgcl.cli.main`` and, at exit, writes the process's own peak RSS (VmHWM, KiB) to the
#: file named by $MGCL_PEAK_RSS_FILE. (The rusage ``wait4`` reports is no use here: on Linux a
#: child's ru_maxrss starts at the RSS of the parent it was forked from.)
_MAIN = """
import atexit, os, sys

def _peak():
    path = os.environ.get("MGCL_PEAK_RSS_FILE")
    if path:
        with open("/proc/self/status") as fh:
            kib = next((line.split()[1] for line in fh if line.startswith("VmHWM:")), "")
        with open(path, "w") as out:
            out.write(kib)

if os.path.exists("/proc/self/status"):
    atexit.register(_peak)
from mgcl.cli import main
sys.exit(main())
"""


def run_measured(args: list[str], env: dict | None = None) -> dict:
    """Run a command (from :func:`mgcl`) in a child process: its exit code, wall seconds, its
    own peak RSS in MB (VmHWM on Linux; elsewhere ``wait4``'s ru_maxrss, which can include
    the parent's), its stdout and the tail of its stderr."""
    with tempfile.TemporaryDirectory() as tmp:
        peak_file = Path(tmp) / "peak"
        env = {**os.environ, **(env or {}), "MGCL_PEAK_RSS_FILE": str(peak_file)}
        t0 = time.perf_counter()
        with open(Path(tmp) / "out", "w+b") as out, open(Path(tmp) / "err", "w+b") as err:
            proc = subprocess.Popen(args, stdout=out, stderr=err, env=env)
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            seconds = time.perf_counter() - t0
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
        text = peak_file.read_text().strip() if peak_file.is_file() else ""
        if text:
            peak_mb = int(text) / 1024
        else:
            peak_mb = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024) / 2**20
    return {
        "rc": proc.returncode,
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(peak_mb, 1),
        "stdout": stdout,
        "stderr": stderr[-2000:],
    }


def mgcl(*args: str) -> list[str]:
    """The ``mgcl`` command line as a child process of this interpreter (it records its peak RSS)."""
    return [sys.executable, "-c", _MAIN, *args]


def synthetic_manifest(folder: Path, classes: int, per_class: int, seconds: float = 4.0) -> Path:
    """Tones and noise bursts at 22.05 kHz, one class per env45 name; returns the manifest."""
    import soundfile as sf

    sr = 22_050
    rng = np.random.default_rng(0)
    rows = []
    for c, label in enumerate(SYNTHETIC_CLASSES[:classes]):
        for k in range(per_class):
            t = np.arange(int(seconds * sr)) / sr
            wave = 0.3 * np.sin(2 * np.pi * (200 + 300 * c) * (1 + 0.02 * k) * t) + 0.05 * rng.standard_normal(t.size)
            rel = f"audio/{label.replace(' ', '_')}_{k}.wav"
            (folder / "audio").mkdir(parents=True, exist_ok=True)
            sf.write(folder / rel, wave.astype(np.float32), sr)
            rows.append((rel, label))
    path = folder / "manifest.csv"
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows([("path", "label"), *rows])
    return path


def subset_manifest(manifest: Path, folder: Path, classes: int, per_class: int) -> tuple[Path, list[str]]:
    """The first ``per_class`` clips of the first ``classes`` labels as the support manifest
    (absolute paths), and one more clip of each class as the queries."""
    with open(manifest, newline="") as fh:
        rows = list(csv.DictReader(fh))
    by_label: dict[str, list[str]] = {}
    for r in rows:
        by_label.setdefault(r["label"], []).append(str((manifest.parent / r["path"]).resolve()))
    labels = sorted(by_label)[:classes]
    support = [(p, lab) for lab in labels for p in by_label[lab][:per_class]]
    queries = [by_label[lab][per_class] for lab in labels if len(by_label[lab]) > per_class]
    path = folder / "support.csv"
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows([("path", "label"), *support])
    return path, queries


def window_speed(bb, batches: list[int], n_windows: int) -> dict:
    """Windows/s of ``encode_audio`` on ``n_windows`` 10 s windows of noise at each backbone batch."""
    rng = np.random.default_rng(1)
    waves = [(0.1 * rng.standard_normal(bb.window_samples)).astype(np.float32) for _ in range(n_windows)]
    bb.encode_audio(waves[:1])  # warm-up
    out = {}
    for b in batches:
        bb.batch_size = b
        t0 = time.perf_counter()
        bb.encode_audio(waves)
        dt = time.perf_counter() - t0
        out[str(b)] = {
            "windows": n_windows,
            "seconds": round(dt, 2),
            "windows_per_s": round(n_windows / dt, 3),
            "seconds_per_window": round(dt / n_windows, 3),
        }
    return out


def text_speed(bb, n: int) -> dict:
    from mgcl.text.descriptions import load_descriptions

    env45 = load_descriptions("builtin", list(SYNTHETIC_CLASSES), warn=lambda m: None)
    sentences = [s for v in env45.values() for s in v][:n]
    bb.encode_text(sentences[:2])  # warm-up
    t0 = time.perf_counter()
    bb.encode_text(sentences)
    dt = time.perf_counter() - t0
    lengths = [len(bb.tokenizer(s)["input_ids"]) for s in sentences]
    return {
        "sentences": len(sentences),
        "seconds": round(dt, 2),
        "seconds_per_sentence": round(dt / len(sentences), 4),
        "tokens_mean": round(float(np.mean(lengths)), 1),
        "tokens_max": int(max(lengths)),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="results JSON")
    ap.add_argument(
        "--manifest",
        type=Path,
        default=DEFAULT_MANIFEST,
        help="labelled clips to draw the support and queries from (default: env45 in ../shared/data; "
        "synthetic clips when missing)",
    )
    ap.add_argument("--classes", type=int, default=4)
    ap.add_argument("--per-class", type=int, default=3)
    ap.add_argument("--windows", type=int, default=16, help="10 s windows timed at each backbone batch")
    ap.add_argument("--batches", default="1,8,16")
    ap.add_argument("--sentences", type=int, default=60)
    ap.add_argument(
        "--methods",
        default="prototype,linear_probe,tip_adapter,tip_adapter_f,treff,zero_shot,zero_shot_desc,plot,mgcl,mgcl_f",
    )
    ap.add_argument("--store", type=Path, help="feature store (default: a fresh temporary folder)")
    args = ap.parse_args(argv)

    import torch

    from mgcl.backbones import get_backbone

    doc: dict = {
        "backbone": "clap-random",
        "machine": {
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
    }
    t0 = time.perf_counter()
    bb = get_backbone("clap-random", device="cpu")
    doc["build_seconds"] = round(time.perf_counter() - t0, 2)
    doc["parameters_m"] = round(sum(p.numel() for p in bb.model.parameters()) / 1e6, 1)
    doc["frame_step_s"] = bb.frame_step
    print(f"clap-random: {doc['parameters_m']} M parameters, built in {doc['build_seconds']} s", flush=True)
    doc["windows"] = window_speed(bb, [int(b) for b in args.batches.split(",")], args.windows)
    print(f"windows/s by backbone batch: { {b: v['windows_per_s'] for b, v in doc['windows'].items()} }", flush=True)
    doc["text"] = text_speed(bb, args.sentences)
    print(f"text: {doc['text']['seconds_per_sentence']} s per sentence", flush=True)
    del bb

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        store = str(args.store or tmp / "store")
        if args.manifest.is_file():
            support, queries = subset_manifest(args.manifest, tmp, args.classes, args.per_class)
            doc["data"] = os.path.relpath(args.manifest, ROOT)
        else:
            full = synthetic_manifest(tmp / "synthetic", args.classes, args.per_class + 1)
            support, queries = subset_manifest(full, tmp, args.classes, args.per_class)
            doc["data"] = "synthetic tones named after env45 classes"
        doc["support_clips"], doc["queries"] = args.classes * args.per_class, len(queries)
        common = ["--backbone", "clap-random", "--store", store, "--backbone-batch-size", "16"]
        commands = {"embed": mgcl("embed", "--manifest", str(support), *common)}
        for m in args.methods.split(","):
            commands[f"fit {m}"] = mgcl(
                "fit",
                "--manifest",
                str(support),
                "--method",
                m,
                "--descriptions",
                "builtin",
                "--out",
                str(tmp / f"model-{m}"),
                *common,
            )
        model = tmp / "model-mgcl_f"
        commands["predict mgcl_f"] = mgcl(
            "predict", str(model), *queries, "--store", store, "--backbone-batch-size", "16"
        )
        commands["explain mgcl_f"] = mgcl(
            "explain", str(model), queries[0], "--out", str(tmp / "why.png"), "--store", store
        )
        doc["commands"] = {}
        for name, cmd in commands.items():
            r = run_measured(cmd)
            doc["commands"][name] = {k: r[k] for k in ("rc", "seconds", "peak_rss_mb")}
            if r["rc"] != 0:
                doc["commands"][name]["stderr"] = r["stderr"]
            print(f"{name:24s} rc {r['rc']}  {r['seconds']:7.1f} s  peak RSS {r['peak_rss_mb']:7.1f} MB", flush=True)
    peak = max(v["peak_rss_mb"] for v in doc["commands"].values())
    ok = all(v["rc"] == 0 for v in doc["commands"].values())
    doc["target"] = {
        "peak_rss_mb_max": peak,
        "limit_mb": RSS_TARGET_MB,
        "all_exit_0": ok,
        "met": ok and peak < RSS_TARGET_MB,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"peak RSS of any command: {peak:.0f} MB (limit {RSS_TARGET_MB}); all exit 0: {ok} -> {args.out}")
    return 0 if doc["target"]["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
