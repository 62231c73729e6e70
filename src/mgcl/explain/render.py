"""Draw an :class:`~mgcl.explain.compute.Explanation` as one PNG: the OT plan over time on
top, the log-mel spectrogram below on the same axis, the branch contributions on the side."""

from __future__ import annotations

import io
import math
import os
import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mgcl.explain.compute import Explanation, _frame_edges, _short
from mgcl.util.atomic import atomic_write_bytes


def plan_lift(plan: np.ndarray) -> tuple[np.ndarray, int]:
    """What the heat map shows: log2 of each row's share of its mass per frame relative to
    an even spread over the T frames (0 = even, +1 = twice as much, -1 = half), clipped to
    [-6, 6]; and a symmetric colour limit, at least 1 so a near-even plan stays pale.

    plan (M, T) -> (M, T), int
    """
    t = plan.shape[1]
    share = plan / np.maximum(plan.sum(axis=1, keepdims=True), 1e-30)
    lift = np.clip(np.log2(np.maximum(share * t, 2.0**-6)), -6.0, 6.0)
    limit = int(min(6, max(1, math.ceil(float(np.abs(lift).max()) - 1e-9))))
    return lift, limit


def _freq_ticks(freqs: np.ndarray) -> tuple[list[float], list[str]]:
    """Mel-band positions of round frequencies for the spectrogram's y axis."""
    pos, lab = [], []
    for f in (100, 250, 500, 1000, 2000, 4000, 8000, 16000):
        if freqs[0] <= f <= freqs[-1]:
            pos.append(float(np.interp(f, freqs, np.arange(len(freqs)))) + 0.5)
            lab.append(f"{f // 1000}k" if f >= 1000 else str(f))
    return pos, lab


def render(explanation: Explanation, out_png: str | os.PathLike, dpi: int = 110) -> Path:
    """Draw the explanation into one PNG (written atomically); returns its path.

    Left, top: the OT plan (rows: the winning class's concepts, columns: time, same axis
    as below; colour = each concept's share of its mass per frame). Left, bottom: the
    log-mel spectrogram. Right: the per-branch contributions to the winner's and the
    runner-up's logit. Title: file, predicted class and probability.
    """
    from matplotlib import rc_context
    from matplotlib.figure import Figure

    e = explanation
    dur = max(e.duration, 1e-6)
    has_plan = e.plan is not None and e.plan.size > 0
    m = e.plan.shape[0] if has_plan else 0
    branches = e.branch_table()
    plan_h = (0.9 + 0.3 * min(m, 24)) if has_plan else 0.0
    spec_h = 2.4
    fig_h = max(4.6, 1.3 + plan_h + spec_h)
    label_w = 0.075 * max([len(_short(s)) for s in e.concept_labels] + [10]) if has_plan else 0.6
    fig_w = 9.5 + label_w + 4.2

    with rc_context({"font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10}):
        fig = Figure(figsize=(fig_w, fig_h), dpi=dpi, layout="constrained")
        fig.get_layout_engine().set(w_pad=0.06, h_pad=0.06, wspace=0.0, hspace=0.02)
        gs = fig.add_gridspec(
            2 if has_plan else 1, 2, width_ratios=[3.2, 1.0], height_ratios=[plan_h, spec_h] if has_plan else [spec_h]
        )
        ax_spec = fig.add_subplot(gs[1 if has_plan else 0, 0])
        ax_bar = fig.add_subplot(gs[:, 1])

        # spectrogram
        im = ax_spec.imshow(
            e.spectrogram,
            origin="lower",
            aspect="auto",
            cmap="magma",
            extent=(0.0, dur, 0.0, e.spectrogram.shape[0]),
            interpolation="nearest",
        )
        pos, lab = _freq_ticks(e.spec_freqs)
        ax_spec.set_yticks(pos, lab)
        ax_spec.set_ylabel("frequency (Hz, mel)")
        ax_spec.set_xlabel("time (s)")
        ax_spec.set_xlim(0.0, dur)
        cb = fig.colorbar(im, ax=ax_spec, pad=0.01, fraction=0.03, aspect=12)
        cb.set_label("dB")

        # plan
        if has_plan:
            ax_plan = fig.add_subplot(gs[0, 0], sharex=ax_spec)
            lift, limit = plan_lift(e.plan)
            edges = _frame_edges(e.frame_spans, dur)
            mesh = ax_plan.pcolormesh(
                edges, np.arange(m + 1), lift, cmap="RdBu_r", vmin=-limit, vmax=limit, shading="flat"
            )
            step = max(1, math.ceil(m / 24))
            ticks = list(range(0, m, step))
            ax_plan.set_yticks([i + 0.5 for i in ticks], [_short(e.concept_labels[i]) for i in ticks])
            ax_plan.set_ylim(m, 0)  # first concept (the prompt) on top
            ax_plan.tick_params(axis="x", labelbottom=False)
            ax_plan.set_xlim(0.0, dur)
            what = {
                "descriptions": "prompt + descriptions",
                "frame prototypes": "learned frame prototypes",
                "support frames": "frames of its closest support clip",
                "support segments": "segments of its closest support clip",
            }.get(e.concept_kind, e.concept_kind)
            cols = "segments" if e.concept_kind == "support segments" else "frames"
            ax_plan.set_title(
                f"which moments matched '{e.predicted}': OT plan, {cols} x {what}"
                + (f" (ε = {e.eps:g})" if e.eps is not None else "")
                + (f"  [branch {e.concept_branch} off: α = 0]" if e.branch_off else ""),
                loc="left",
            )
            cb = fig.colorbar(mesh, ax=ax_plan, pad=0.01, fraction=0.03, aspect=12)
            ticks = np.arange(-limit, limit + 1, 1 if limit <= 3 else 2)
            cb.set_ticks(ticks, labels=[f"×{2**k}" if k >= 0 else f"×1/{2**-k}" for k in ticks])
            cb.set_label("mass vs. even spread")
        else:
            note = textwrap.fill(e.concept_note or "no transport plan for this model", 115)
            ax_spec.set_title(note, loc="left", fontsize=9, color="0.35")

        # branch bars
        _draw_bars(ax_bar, e, branches)

        p = e.probabilities[e.winner]
        r = e.runner_up
        sub = f"  ·  runner-up '{e.classes[r]}' p = {e.probabilities[r]:.2f}" if r is not None else ""
        head = f"predicted '{e.predicted}' (p = {p:.2f})"
        if e.rejected:
            head = (
                f"answer '{e.answer}': best class '{e.predicted}' p = {p:.2f} "
                f"< rejection threshold {e.reject_threshold:.2f}"
            )
        fig.suptitle(
            f"{e.source}: {head}{sub}\nmethod {e.method}, backbone {e.backbone}"
            + (
                "\nnearest support clips: "
                + "  ·  ".join(
                    f"{_short(Path(n['name']).name, 32)} ({_short(n['label'], 16)}, {n['similarity']:.2f})"
                    for n in e.nearest
                )
                if e.nearest
                else ""
            ),
            fontsize=12,
            x=0.01,
            ha="left",
        )

        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi)
    out = Path(out_png)
    atomic_write_bytes(out, buf.getvalue())
    return out


def _draw_bars(ax, e: Explanation, branches: Sequence[dict]) -> None:
    """Grouped horizontal bars: each branch's contribution to the winner vs the runner-up."""
    r = e.runner_up
    names = [b["name"] for b in branches]
    win = [b["winner"] for b in branches]
    run = [b["runner_up"] or 0.0 for b in branches]
    y = np.arange(len(names), dtype=float)
    if len(branches) > 1:  # the sum, after a gap
        names.append("logit (sum)")
        win.append(float(e.logits[e.winner]))
        run.append(float(e.logits[r]) if r is not None else 0.0)
        y = np.append(y, len(branches) + 0.4)
    h = 0.38
    ax.barh(y - h / 2, win, height=h, color="#1f77b4", label=f"winner: {_short(e.predicted, 24)}")
    if r is not None:
        ax.barh(y + h / 2, run, height=h, color="#ff7f0e", label=f"runner-up: {_short(e.classes[r], 24)}")
    ax.set_yticks(y, names)
    ax.set_ylim(y[-1] + 1.5, -0.6)  # top to bottom, with room for the legend below the bars
    ax.axvline(0.0, color="0.3", lw=0.8)
    lo = min(min(win), min(run), 0.0)
    hi = max(max(win), max(run), 0.0)
    span = (hi - lo) or 1.0
    ax.set_xlim(lo - 0.05 * span - (0.22 * span if lo < 0 else 0), hi + 0.28 * span)
    for yy, v in zip(y - h / 2, win):
        ax.text(
            v + (0.02 * span if v >= 0 else -0.02 * span),
            yy,
            f"{v:.2f}",
            va="center",
            ha="left" if v >= 0 else "right",
            fontsize=8,
        )
    if r is not None:
        for yy, v in zip(y + h / 2, run):
            ax.text(
                v + (0.02 * span if v >= 0 else -0.02 * span),
                yy,
                f"{v:.2f}",
                va="center",
                ha="left" if v >= 0 else "right",
                fontsize=8,
                color="0.25",
            )
    if r is not None:  # what decides: the winner's lead per branch
        trans = ax.get_yaxis_transform()
        for yy, a, b in zip(y, win, run):
            ax.text(
                1.02,
                yy,
                f"Δ {a - b:+.2f}",
                transform=trans,
                ha="left",
                va="center",
                fontsize=8,
                color="#1f77b4" if a >= b else "#d62728",
            )
    ax.set_xlabel("contribution to the class logit" + ("\n(Δ = winner − runner-up)" if r is not None else ""))
    ax.set_title("why: per-branch contributions", loc="left")
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    ax.grid(axis="x", alpha=0.25)
