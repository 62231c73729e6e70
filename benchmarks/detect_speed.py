"""``mgcl detect`` speed and memory on long recordings (aisfx, training-free mgcl).

Each measurement runs the ``mgcl detect`` command in its own process, as a user runs it, and
reads that process's peak resident memory from ``os.wait4`` (``ru_maxrss``, the kernel's
VmHWM of the child). Targets (issue 17): a 10-minute file at >= 20x real time on a 2-core
machine, and a 2-hour file in bounded memory (its peak RSS close to the 10-minute file's,
far below the 2-hour file's decoded size). Baselines measured in the same run: the backbone
pass alone (frames of the whole file, streamed, in this process) and, for memory, the
size of the decoded 2-hour recording.

    python benchmarks/detect_speed.py --out results/detect_speed.json [--skip-long]

The recordings are 16-bit 44.1 kHz WAV files of synthetic events in noise, written block
by block into a temporary folder (the 2-hour file is 635 MB); the model is fitted on nine
synthetic clips (three of each of siren, knock and background).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 44100
TARGET_X_REALTIME = 20.0


def mgcl(*args: str) -> list[str]:
    return [sys.executable, "-c", "import sys; from mgcl.cli import main; sys.exit(main())", *args]


def peak_rss_child(cmd: list[str]) -> dict:
    """Run ``cmd``; wall seconds and its peak RSS in MiB (ru_maxrss of this child only)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    # wait4 returns the rusage of exactly this child (RUSAGE_CHILDREN would mix children)
    _, status, usage = os.wait4(p.pid, 0)
    seconds = time.perf_counter() - t0
    out = p.stdout.read().decode(errors="replace") if p.stdout else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd[3:])} failed (exit {os.waitstatus_to_exitcode(status)})")
    return {"seconds": round(seconds, 2), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1), "stdout": out[-400:]}


def write_recording(path: Path, minutes: float, seed: int = 0) -> float:
    """A WAV of ``minutes`` of noise with a siren or knock every ~10 s, written 60 s at a time."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from mgcl.data.synthetic import synth_event

    rng = np.random.default_rng(seed)
    total = int(minutes * 60 * SR)
    with sf.SoundFile(path, "w", SR, 1, subtype="PCM_16") as f:
        done = 0
        while done < total:
            n = min(60 * SR, total - done)
            x = 0.05 * rng.standard_normal(n)
            for start in range(int(2 * SR), n - 2 * SR, 10 * SR):
                ev = synth_event(["siren", "knock"][int(rng.integers(2))], rng, SR, 1.5)
                x[start : start + len(ev)] += 0.3 * ev
            f.write((0.9 * x / max(1.0, np.abs(x).max())).astype(np.float32))
            done += n
    return total / SR


def fit_model(root: Path) -> Path:
    from mgcl.classifier.estimator import FewShotAudioClassifier
    from mgcl.data.synthetic import synth_event

    rng = np.random.default_rng(1)
    paths, labels = [], []
    for i in range(3):
        for lab in ("siren", "knock", "background"):
            x = 0.05 * rng.standard_normal(2 * SR)
            if lab != "background":
                ev = synth_event(lab, rng, SR, 1.5)
                x[SR // 4 : SR // 4 + len(ev)] += 0.3 * ev
            p = root / f"{lab}_{i}.wav"
            sf.write(p, x.astype(np.float32), SR)
            paths.append(str(p))
            labels.append(lab)
    clf = FewShotAudioClassifier(backbone="aisfx", method="mgcl", store=str(root / "store"))
    clf.fit(paths, labels)
    return clf.save(root / "model")


def backbone_pass_seconds(path: Path) -> float:
    """The streamed backbone pass alone (frames of the whole file), in this process."""
    from mgcl.backbones import get_backbone
    from mgcl.detection.frames import stream_frames

    bb = get_backbone("aisfx")
    t0 = time.perf_counter()
    for _ in stream_frames(bb, str(path)):
        pass
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("results/detect_speed.json"))
    ap.add_argument("--minutes", type=float, default=10.0, help="the timed file (default 10)")
    ap.add_argument("--long-minutes", type=float, default=120.0, help="the memory file (default 120)")
    ap.add_argument("--skip-long", action="store_true", help="only the timed file")
    ap.add_argument("--skip-short", action="store_true", help="only the long file (memory)")
    args = ap.parse_args()
    doc: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()}}
    if args.out.is_file():  # keep the other half of an earlier run
        doc = {**json.loads(args.out.read_text()), **doc}
    with tempfile.TemporaryDirectory(prefix="detect-speed-") as tmp:
        root = Path(tmp)
        model = fit_model(root)
        runs = []
        if not args.skip_short:
            runs.append(("short", args.minutes))
        if not args.skip_long:
            runs.append(("long", args.long_minutes))
        for key, minutes in runs:
            rec = root / f"{key}.wav"
            seconds = write_recording(rec, minutes)
            out = root / f"{key}_events.csv"
            m = peak_rss_child(
                mgcl("-q", "detect", str(model), str(rec), "--out", str(out), "--store", str(root / "store"))
            )
            n_events = max(0, len(out.read_text().splitlines()) - 1)
            entry = {
                "audio_seconds": seconds,
                "file_mib": round(rec.stat().st_size / 2**20, 1),
                "decoded_float32_mib_at_44k1": round(seconds * SR * 4 / 2**20, 1),
                "detect_seconds": m["seconds"],
                "x_realtime": round(seconds / m["seconds"], 2),
                "peak_rss_mib": m["peak_rss_mib"],
                "events": n_events,
            }
            if key == "short":
                entry["backbone_pass_seconds"] = round(backbone_pass_seconds(rec), 2)
                entry["overhead_vs_backbone_pass_pct"] = round(
                    100.0 * (m["seconds"] - entry["backbone_pass_seconds"]) / entry["backbone_pass_seconds"], 1
                )
                entry["target_x_realtime"] = TARGET_X_REALTIME
                entry["meets_target"] = entry["x_realtime"] >= TARGET_X_REALTIME
            doc[key] = entry
            print(f"{key}: {json.dumps(entry)}", flush=True)
            rec.unlink()
    if "short" in doc and "long" in doc:
        doc["long_over_short_peak_rss"] = round(doc["long"]["peak_rss_mib"] / doc["short"]["peak_rss_mib"], 3)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
