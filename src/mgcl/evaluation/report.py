"""Benchmark reports: ``results.json``, ``results.md`` and PNG plots.

:func:`write_report` writes, into one folder per dataset:

- ``results.json``  the DESIGN §3 document (backbone, dataset, protocol, results, timing);
- ``results.md``    methods x shots, 'mean ± std' (± the 95 % CI for episodes), best per
                    column in **bold**; the mgcl ablation rows in a table of their own;
                    the expected calibration error, raw → calibrated, in a small table
                    (when the rows carry it); with the open-set protocol, AUROC and
                    accuracy at the threshold in a table of their own;
- ``accuracy_vs_shots.png``  accuracy against K per method, with error bars;
- ``confusion_matrix.png``   the best method at the largest K, summed over every run;
- ``ablation.png``           the mgcl variants with one branch / loss switched off (only
                             when such rows exist).

The markdown comes from pure functions of the results rows (:func:`markdown_table`,
:func:`dataset_markdown`), so it always shows the JSON's numbers, with the JSON's two
decimals. Plots use matplotlib's Agg canvas (no display, no global pyplot state). Every
file is written atomically.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from mgcl.evaluation.specs import ABLATE_BRANCHES, ABLATE_INPUTS, ABLATE_LOSSES
from mgcl.evaluation.summary import open_set_cells
from mgcl.util.atomic import atomic_write_bytes

#: What each ablation suffix switches off.
ABLATION_NAMES = {
    "zs": "zero-shot text branch",
    "cc": "coarse cache branch",
    "fc": "fine (OT) cache branch",
    "ft": "fine text (OT) branch",
    "gc": "caption cache branch",
    "ce": "cross-entropy loss",
    "coarse": "coarse contrastive loss",
    "fine": "fine contrastive loss",
    "views": "audio views of the support",
    "instance": "instance (caption) contrastive loss",
}
_ABLATION = re.compile(r"^(mgcl\w*)-(" + "|".join(ABLATE_BRANCHES + ABLATE_LOSSES + ABLATE_INPUTS) + r")$")

FILES = {
    "json": "results.json",
    "markdown": "results.md",
    "accuracy": "accuracy_vs_shots.png",
    "confusion": "confusion_matrix.png",
    "ablation": "ablation.png",
}


# ----------------------------------------------------------------------------- rows
def ablation_of(label: str) -> tuple[str, str] | None:
    """``'mgcl_f-fc'`` -> ``('mgcl_f', 'fc')``; None for a method that is not an ablation row."""
    m = _ABLATION.match(label)
    return (m.group(1), m.group(2)) if m else None


def split_results(results: Sequence[dict]) -> tuple[list[dict], list[dict]]:
    """(method rows, ablation rows)."""
    main = [r for r in results if ablation_of(r["method"]) is None]
    abl = [r for r in results if ablation_of(r["method"]) is not None]
    return main, abl


def spread_key(results: Sequence[dict]) -> str:
    """'accuracy_ci95' when the rows carry a confidence interval (episodes), else 'accuracy_std'."""
    return "accuracy_ci95" if results and all("accuracy_ci95" in r for r in results) else "accuracy_std"


def best_cells(results: Sequence[dict]) -> set[tuple[str, int]]:
    """(method, shots) of the highest mean per shot count (every tie)."""
    best = set()
    for k in {r["shots"] for r in results}:
        col = [r for r in results if r["shots"] == k]
        top = max(r["accuracy_mean"] for r in col)
        best |= {(r["method"], k) for r in col if r["accuracy_mean"] == top}
    return best


def best_method(results: Sequence[dict]) -> tuple[str, int] | None:
    """(method, K) of the best non-ablation method at the largest K (first on ties)."""
    main, _ = split_results(results)
    if not main:
        return None
    k = max(r["shots"] for r in main)
    col = [r for r in main if r["shots"] == k]
    return max(col, key=lambda r: r["accuracy_mean"])["method"], k


def _cell(r: dict, key: str) -> str:
    return f"{r['accuracy_mean']:.2f} ± {r[key]:.2f}"


def markdown_table(results: Sequence[dict], bold: bool = True) -> str:
    """Methods as rows, ``K-shot`` columns, cells ``mean ± spread`` (2 decimals, as in the
    JSON), the best mean of each column in bold. Missing cells are '–'."""
    if not results:
        return ""
    key = spread_key(results)
    methods = list(dict.fromkeys(r["method"] for r in results))
    shots = sorted({r["shots"] for r in results})
    cells = {(r["method"], r["shots"]): r for r in results}
    best = best_cells(results) if bold else set()
    lines = ["| method | " + " | ".join(f"{k}-shot" for k in shots) + " |", "|---|" + "---:|" * len(shots)]
    for m in methods:
        row = []
        for k in shots:
            r = cells.get((m, k))
            text = "–" if r is None else _cell(r, key)
            row.append(f"**{text}**" if (m, k) in best else text)
        lines.append(f"| {m} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def ablation_table(results: Sequence[dict]) -> str:
    """The mgcl variants: full method first, then each ablation, cells ``mean ± spread
    (Δ vs full)``; '' when there is no ablation row."""
    _main, abl = split_results(results)
    if not abl:
        return ""
    key = spread_key(results)
    shots = sorted({r["shots"] for r in results})
    cells = {(r["method"], r["shots"]): r for r in results}
    lines = [
        "| variant | switched off | " + " | ".join(f"{k}-shot" for k in shots) + " |",
        "|---|---|" + "---:|" * len(shots),
    ]
    bases = list(dict.fromkeys(ablation_of(r["method"])[0] for r in abl))
    for base in bases:
        variants = [base] + list(dict.fromkeys(r["method"] for r in abl if ablation_of(r["method"])[0] == base))
        for v in variants:
            part = ablation_of(v)
            row = []
            for k in shots:
                r, full = cells.get((v, k)), cells.get((base, k))
                if r is None:
                    row.append("–")
                elif part is None or full is None:
                    row.append(_cell(r, key))
                else:
                    row.append(f"{_cell(r, key)} ({r['accuracy_mean'] - full['accuracy_mean']:+.2f})")
            off = "nothing (full method)" if part is None else ABLATION_NAMES[part[1]]
            lines.append(f"| {v} | {off} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def has_ece(results: Sequence[dict]) -> bool:
    """Whether any row carries a calibrated ECE (``ece_mean``)."""
    return any(r.get("ece_mean") is not None for r in results)


def ece_table(results: Sequence[dict]) -> str:
    """Methods as rows, ``K-shot ECE`` columns, cells ``raw → calibrated`` mean expected
    calibration error (percent, 2 decimals, as in the JSON); '' when no row carries it.
    (Its headers do not end in ``-shot``, so readers of the accuracy tables skip it.)"""
    if not has_ece(results):
        return ""
    methods = list(dict.fromkeys(r["method"] for r in results))
    shots = sorted({r["shots"] for r in results})
    cells = {(r["method"], r["shots"]): r for r in results}
    fmt = lambda v: "–" if v is None else f"{v:.2f}"
    lines = ["| method | " + " | ".join(f"{k}-shot ECE" for k in shots) + " |", "|---|" + "---:|" * len(shots)]
    for m in methods:
        row = []
        for k in shots:
            r = cells.get((m, k))
            row.append("–" if r is None else f"{fmt(r.get('ece_raw_mean'))} → {fmt(r.get('ece_mean'))}")
        lines.append(f"| {m} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def has_open_set(results: Sequence[dict]) -> bool:
    """Whether any row carries open-set columns (``open_accuracy_mean``)."""
    return open_set_cells(results) is not None


def open_set_table(results: Sequence[dict]) -> str:
    """Methods as rows; per K four columns: closed-set accuracy, AUROC known vs unknown,
    accuracy on all queries at the threshold and without rejection, cells ``mean ± std`` (2
    decimals, as in the JSON); the best mean of each column in bold; '' when no row carries
    them. (Headers do not end in ``-shot``.)"""
    found = open_set_cells(results)
    if found is None:
        return ""
    methods, shots, cells = found
    keys = (("accuracy", "closed"), ("auroc", "AUROC"), ("open_accuracy", "acc@τ"), ("no_reject_accuracy", "acc, no τ"))
    best = {}
    for k in shots:
        for key, _ in keys:
            col = [cells[(m, k)].get(f"{key}_mean") for m in methods if (m, k) in cells]
            col = [v for v in col if v is not None]
            best[(k, key)] = max(col) if col else None
    head = "| method | " + " | ".join(f"{k}-shot {name}" for k in shots for _, name in keys) + " |"
    lines = [head, "|---|" + "---:|" * (len(shots) * len(keys))]
    for m in methods:
        row = []
        for k in shots:
            r = cells.get((m, k))
            for key, _ in keys:
                v = None if r is None else r.get(f"{key}_mean")
                if v is None:
                    row.append("–")
                    continue
                text = f"{v:.2f} ± {r[f'{key}_std']:.2f}"
                row.append(f"**{text}**" if v == best[(k, key)] else text)
        lines.append(f"| {m} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def protocol_line(doc: Mapping) -> str:
    """'full-way, 5 folds x 3 seeds' / '5-way episodes (600, 15 queries per class)'."""
    p = doc.get("protocol", {}) or {}
    name = p.get("name", "full-way")
    if p.get("open_set"):
        u = p["open_set"].get("unknown_classes")
        per = "episode" if name == "episodes" else "seed"
        return (
            protocol_line({**doc, "protocol": {**p, "open_set": None}})
            + f", open set: {u} class{'es' if u != 1 else ''} held out of the support per {per}"
        )
    if name == "episodes":
        folds = p.get("test_folds")
        where = f", test folds {', '.join(folds)}" if folds else ""
        return (
            f"{p.get('ways')}-way episodes ({p.get('episodes')} per shot count, "
            f"{p.get('queries_per_class')} queries per class{where})"
        )
    seeds = p.get("seeds")
    folds = p.get("test_folds")
    if folds:
        return f"full-way, {len(folds)} fold{'s' if len(folds) != 1 else ''} x {seeds} seeds"
    if p.get("test_fold") is not None:
        return f"full-way, test fold {p['test_fold']}, {seeds} seeds"
    return f"full-way, {seeds} seeds" + (", train/test split" if "split" in str(p.get("support", "")) else "")


def dataset_markdown(doc: Mapping, level: int = 2, images: Mapping[str, str] | None = None) -> str:
    """One dataset's section: heading, what was run, the table, the ablation table, plots."""
    results = doc.get("results", [])
    key = spread_key(results)
    episodes = key == "accuracy_ci95"
    n_classes = doc.get("n_classes")
    way = (doc.get("protocol") or {}).get("ways") if episodes else n_classes
    chance = f", chance {100.0 / way:.1f} %" if way else ""
    spread = (
        "95 % confidence interval over episodes"
        if episodes
        else ("std over folds x seeds" if (doc.get("protocol") or {}).get("test_folds") else "std over seeds")
    )
    parts = [
        f"{'#' * level} {doc.get('dataset', 'dataset')}",
        "",
        (
            f"Backbone `{doc.get('backbone')}` · {protocol_line(doc)} · {doc.get('n_clips', '?')} clips, "
            f"{n_classes} classes{chance}."
        ),
        ("Closed-set accuracy (%) on the queries of the known classes" if has_open_set(results) else "Accuracy (%)")
        + f", mean ± {spread}; best per column in **bold**.",
        "",
        markdown_table(split_results(results)[0]),
    ]
    abl = ablation_table(results)
    if abl:
        parts += ["", "Ablation of the mgcl branches (Δ: difference of the mean with the full method).", "", abl]
    ece = ece_table(split_results(results)[0])
    if ece:
        parts += [
            "",
            "Expected calibration error of the query probabilities (%, 15 bins, lower is better): "
            "the method's softmax → with a temperature fitted on each support (leave-one-shot-out; "
            "none with one shot). Predictions, hence accuracy, are the same.",
            "",
            ece,
        ]
    opened = open_set_table(split_results(results)[0])
    if opened:
        held = ((doc.get("protocol") or {}).get("open_set") or {}).get("held_out_per_seed") or {}
        names = "; ".join(f"seed {sd}: {', '.join(c)}" for sd, c in held.items())
        parts += [
            "",
            "Open set (%): closed-set accuracy on the known queries; AUROC of known vs unknown queries "
            "on the calibrated top probability; accuracy on all queries at the threshold chosen on the "
            "support (a rejected unknown query is correct; with one shot nothing is rejected) and "
            "without any rejection (every unknown query wrong). "
            "Mean ± std" + (f"; held out: {names}." if names else "."),
            "",
            opened,
        ]
    for title, ref in (images or {}).items():
        parts += ["", f"![{title}]({ref})"]
    return "\n".join(parts) + "\n"


def combined_markdown(docs: Sequence[Mapping], folders: Sequence[str] | None = None) -> str:
    """All datasets of a benchmark, one section (and table) per dataset."""
    head = "# mgcl benchmark\n"
    if docs:
        head += f"\nBackbone `{docs[0].get('backbone')}`, mgcl {docs[0].get('mgcl_version', '')}.\n"
    sections = []
    for i, doc in enumerate(docs):
        images = None
        if folders is not None:
            images = {"accuracy vs shots": f"{folders[i]}/{FILES['accuracy']}"}
        sections.append(dataset_markdown(doc, level=2, images=images))
    return head + "\n" + "\n".join(sections)


# ----------------------------------------------------------------------------- confusion
def confusion_matrix(runs: Sequence, n_classes: int, method: str, shots: int) -> np.ndarray:
    """(C, C) counts, rows = true class, columns = predicted, summed over every run of
    ``method`` at ``shots`` (seeds, folds, episodes). Runs need ``targets``."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    for r in runs:
        if r.method != method or r.shots != shots:
            continue
        t = getattr(r, "targets", None)
        if t is None:
            raise ValueError("runs lack query labels ('targets'): use mgcl.evaluation.tasks records")
        cm += np.bincount(
            np.asarray(t) * n_classes + np.asarray(r.predictions), minlength=n_classes * n_classes
        ).reshape(n_classes, n_classes)
    return cm


# ----------------------------------------------------------------------------- plots
def _figure(w: float, h: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


def plot_accuracy(results: Sequence[dict], title: str = "") -> bytes:
    """PNG: accuracy vs K per (non-ablation) method, error bars = std (or 95 % CI)."""
    main, _ = split_results(results)
    key = spread_key(main)
    fig = _figure(6.4, 4.2)
    ax = fig.add_subplot(1, 1, 1)
    shots = sorted({r["shots"] for r in main})
    names = list(dict.fromkeys(r["method"] for r in main))
    for i, m in enumerate(names):
        rows = sorted((r for r in main if r["method"] == m), key=lambda r: r["shots"])
        dodge = 2.0 ** (0.04 * (i - (len(names) - 1) / 2))  # keep overlapping error bars apart
        ax.errorbar(
            [r["shots"] * dodge for r in rows],
            [r["accuracy_mean"] for r in rows],
            yerr=[r[key] for r in rows],
            marker="o",
            capsize=3,
            label=m,
        )
    if len(shots) > 1 and shots[-1] / shots[0] >= 4:
        ax.set_xscale("log", base=2)
    ax.set_xticks(shots)
    ax.set_xticklabels([str(k) for k in shots])
    ax.set_xlabel("shots per class (K)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title + (" (± 95 % CI)" if key == "accuracy_ci95" else " (± std)"))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return _png(fig)


def plot_confusion(cm: np.ndarray, classes: Sequence[str], title: str = "") -> bytes:
    """PNG: confusion matrix, colour = fraction of the true class's queries, counts written
    in the cells when there are at most 20 classes."""
    c = len(classes)
    size = min(max(4.5, 0.3 * c + 2.5), 26)
    fig = _figure(size + 1.0, size)
    ax = fig.add_subplot(1, 1, 1)
    totals = cm.sum(1, keepdims=True)
    frac = np.divide(cm, totals, out=np.zeros(cm.shape, dtype=float), where=totals > 0)
    im = ax.imshow(frac, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    font = 8 if c <= 20 else (7 if c <= 80 else 5)
    ax.set_xticks(range(c))
    ax.set_yticks(range(c))
    ax.set_xticklabels(classes, rotation=90, fontsize=font)
    ax.set_yticklabels(classes, fontsize=font)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if c <= 20:
        for i in range(c):
            for j in range(c):
                if cm[i, j]:
                    ax.text(
                        j,
                        i,
                        str(int(cm[i, j])),
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if frac[i, j] > 0.5 else "black",
                    )
    ax.set_title(title)
    return _png(fig)


def plot_ablation(results: Sequence[dict], title: str = "") -> bytes:
    """PNG: grouped bars per K, one bar per mgcl variant (full method first), error bars."""
    _, abl = split_results(results)
    key = spread_key(results)
    cells = {(r["method"], r["shots"]): r for r in results}
    bases = list(dict.fromkeys(ablation_of(r["method"])[0] for r in abl))
    variants = []
    for base in bases:
        variants += [base] + list(dict.fromkeys(r["method"] for r in abl if ablation_of(r["method"])[0] == base))
    shots = sorted({r["shots"] for r in abl})
    fig = _figure(max(6.4, 1.2 * len(shots) * max(1, len(variants)) * 0.35 + 2), 4.2)
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / max(1, len(variants))
    x = np.arange(len(shots))
    for i, v in enumerate(variants):
        means = [cells[(v, k)]["accuracy_mean"] if (v, k) in cells else np.nan for k in shots]
        errs = [cells[(v, k)][key] if (v, k) in cells else 0.0 for k in shots]
        part = ablation_of(v)
        label = v if part is None else f"{v} (no {ABLATION_NAMES[part[1]]})"
        ax.bar(
            x + (i - (len(variants) - 1) / 2) * width,
            means,
            width,
            yerr=errs,
            capsize=2,
            label=label,
            hatch=None if part is None else "//",
            alpha=1.0 if part is None else 0.8,
        )
    ax.set_xticks(x)
    ax.set_xticklabels([f"{k}-shot" for k in shots])
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2)
    return _png(fig)


# ----------------------------------------------------------------------------- write
def write_report(doc: dict, runs: Sequence, out_dir: str | Path, classes: Sequence[str]) -> dict[str, Path]:
    """Write results.json, results.md and the PNGs of one dataset into ``out_dir``.

    ``doc`` is the results document (DESIGN §3; its ``results`` are the summary rows, e.g.
    :func:`mgcl.evaluation.tasks.summarise_runs`); ``runs`` the per-run records with ``targets``
    (for the confusion matrix); ``classes`` the class names to show, aligned with the
    class codes of the runs. Returns ``{kind: path}`` of the files written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = doc.get("results", [])
    name = str(doc.get("dataset", ""))
    written: dict[str, Path] = {}

    def put(kind: str, data: bytes) -> None:
        atomic_write_bytes(out / FILES[kind], data)
        written[kind] = out / FILES[kind]

    images = {}
    if split_results(results)[0]:
        put("accuracy", plot_accuracy(results, f"{name} — {doc.get('backbone', '')}"))
        images["accuracy vs shots"] = FILES["accuracy"]
    best = best_method(results)
    if best is not None and runs and all(getattr(r, "targets", None) is not None for r in runs):
        method, k = best
        cm = confusion_matrix(runs, len(classes), method, k)
        put("confusion", plot_confusion(cm, list(classes), f"{name}: {method}, {k}-shot (summed over runs)"))
        images[f"confusion matrix ({method}, {k}-shot)"] = FILES["confusion"]
        doc.setdefault("confusion", {"method": method, "shots": k, "file": FILES["confusion"]})
    if split_results(results)[1]:
        put("ablation", plot_ablation(results, f"{name}: mgcl ablation"))
        images["ablation"] = FILES["ablation"]
    put("json", (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    put("markdown", dataset_markdown(doc, level=1, images=images).encode("utf-8"))
    return written
