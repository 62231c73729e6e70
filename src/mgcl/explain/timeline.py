"""Draw detection in a long recording: its spectrogram, the class score curves below it on the
same time axis with each class's threshold, and the detected events as bars.

Pure drawing from arrays (the detection itself is :mod:`mgcl.detection`): one PNG, written
atomically.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mgcl.explain.render import _freq_ticks
from mgcl.util.atomic import atomic_write_bytes


def render_timeline(
    spectrogram: np.ndarray,
    freqs: np.ndarray,
    duration: float,
    times: np.ndarray,
    scores: np.ndarray,
    classes: Sequence[str],
    events: Sequence[tuple[float, float, str, float]],
    thresholds: Sequence[float],
    out_png: str | os.PathLike,
    title: str = "",
    ignored: Sequence[str] = (),
    dpi: int = 110,
) -> Path:
    """One PNG: spectrogram (n_mels, cols) dB on top; below it, the score curve (N,) of each
    class at ``times`` (ignored classes dashed grey) with its threshold dotted; at the bottom,
    one lane per reported class with its events ``(onset, offset, label, score)`` as bars."""
    from matplotlib import rc_context
    from matplotlib.figure import Figure

    shown = [c for c in classes if c not in set(ignored)]
    lanes = max(1, len(shown))
    with rc_context({"font.size": 10}):
        fig = Figure(figsize=(14.0, 5.2 + 0.3 * lanes), dpi=dpi, layout="constrained")
        gs = fig.add_gridspec(3, 1, height_ratios=[2.2, 2.0, 0.4 + 0.3 * lanes])
        ax_s = fig.add_subplot(gs[0])
        ax_c = fig.add_subplot(gs[1], sharex=ax_s)
        ax_e = fig.add_subplot(gs[2], sharex=ax_s)
        ax_s.imshow(
            spectrogram,
            origin="lower",
            aspect="auto",
            cmap="magma",
            extent=(0.0, duration, 0.0, spectrogram.shape[0]),
            interpolation="nearest",
            vmin=float(np.percentile(spectrogram, 5)),
            vmax=float(spectrogram.max()),
        )
        pos, lab = _freq_ticks(np.asarray(freqs))
        ax_s.set_yticks(pos, lab)
        ax_s.set_ylabel("Hz (mel)")
        ax_s.tick_params(axis="x", labelbottom=False)
        ax_s.set_title(title, loc="left")
        colours = {c: f"C{i % 10}" for i, c in enumerate(shown)}
        for j, c in enumerate(classes):
            if c in colours:
                ax_c.plot(times, scores[:, j], color=colours[c], lw=1.0, label=c)
                ax_c.axhline(thresholds[j], color=colours[c], ls=":", lw=0.9)
            else:
                ax_c.plot(times, scores[:, j], color="0.6", lw=0.8, ls="--", label=f"{c} (never an event)")
        ax_c.set_ylim(0.0, 1.0)
        ax_c.set_ylabel("probability")
        ax_c.legend(fontsize=8, loc="upper right", ncol=min(4, len(classes)))
        ax_c.grid(True, alpha=0.25)
        ax_c.tick_params(axis="x", labelbottom=False)
        for on, off, label, _ in events:
            if label in colours:
                ax_e.barh(shown.index(label), off - on, left=on, height=0.7, color=colours[label])
        ax_e.set_yticks(range(len(shown)), shown)
        ax_e.set_ylim(-0.6, lanes - 0.4)
        ax_e.set_xlim(0.0, duration)
        ax_e.set_xlabel("time (s)")
        ax_e.set_title(f"{len(events)} event(s)", loc="left", fontsize=9, color="0.35")
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi)
    out = Path(out_png)
    atomic_write_bytes(out, buf.getvalue())
    return out


__all__ = ["render_timeline"]
