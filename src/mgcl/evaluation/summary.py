"""Per-run results into the rows of the results JSON, timings, and a plain-text table."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def method_timing(runs: Sequence) -> dict[str, dict]:
    """Per method: total and mean-per-run fit and predict seconds, and (when runs were
    calibrated) the seconds of the calibration fits."""
    out = {}
    for name in dict.fromkeys(r.method for r in runs):
        group = [r for r in runs if r.method == name]
        fit = sum(r.fit_seconds for r in group)
        pred = sum(r.predict_seconds for r in group)
        out[name] = {
            "runs": len(group),
            "fit_seconds": round(fit, 4),
            "predict_seconds": round(pred, 4),
            "fit_seconds_per_run": round(fit / len(group), 4),
            "predict_seconds_per_run": round(pred / len(group), 4),
        }
        cal = sum(getattr(r, "calibration_seconds", 0.0) or 0.0 for r in group)
        if cal:
            out[name]["calibration_seconds"] = round(cal, 4)
            out[name]["calibration_seconds_per_run"] = round(cal / len(group), 4)
    return out


def mean_or_none(values: Sequence[float | None]) -> float | None:
    """The mean of the values that are not None (2 decimals), or None when there is none."""
    known = [float(v) for v in values if v is not None]
    return round(float(np.mean(known)), 2) if known else None


def ci95(accuracies: Sequence[float]) -> float:
    """Half-width of the 95 % confidence interval of a mean: ``1.96 * std / sqrt(n)`` (std with ddof 0)."""
    a = np.asarray(accuracies, dtype=float)
    return float(1.96 * a.std() / np.sqrt(len(a))) if len(a) else float("nan")


def _mean_rows(runs: Sequence) -> list[dict]:
    """Mean and std (over seeds) of accuracy per (method, shots), DESIGN §3 fields."""
    out = []
    keys = sorted({(r.method, r.shots) for r in runs}, key=lambda k: (k[1],))
    order = list(dict.fromkeys(r.method for r in runs))
    keys.sort(key=lambda k: (order.index(k[0]), k[1]))
    for method, k in keys:
        accs = np.array([r.accuracy for r in runs if r.method == method and r.shots == k])
        group = [r for r in runs if r.method == method and r.shots == k]
        out.append(
            {
                "method": method,
                "shots": k,
                "accuracy_mean": round(float(accs.mean()), 2),
                "accuracy_std": round(float(accs.std(ddof=0)), 2),
                "n_seeds": len(accs),
                "n_query": int(np.mean([r.n_query for r in group])),
                "fit_seconds_mean": round(float(np.mean([r.fit_seconds for r in group])), 4),
                "predict_seconds_mean": round(float(np.mean([r.predict_seconds for r in group])), 4),
            }
        )
    return out


def summarise(runs: Sequence) -> list[dict]:
    """Mean and std (over runs) of accuracy per (method, shots), DESIGN §3 fields, plus the protocol's counts.

    Every row: ``n_seeds`` (distinct seeds), ``n_runs``; with folds ``n_folds``; for
    episodes ``n_episodes``, ``ways`` and ``accuracy_ci95`` (percent, 2 decimals); the mean
    expected calibration error of the query probabilities (percent), ``ece_raw_mean``
    (the method's softmax) and ``ece_mean`` (with the temperature fitted on each run's
    support), None when the runs carry none; with calibration, ``calibration_seconds_mean``
    (the extra leave-one-shot-out fits per run).
    """
    rows = _mean_rows(runs)
    for row in rows:
        group = [r for r in runs if r.method == row["method"] and r.shots == row["shots"]]
        row["n_seeds"] = len({r.seed for r in group})
        row["n_runs"] = len(group)
        test = {getattr(r, "fold", None) for r in group} - {None}
        if test:
            row["n_folds"] = len(test)
        if any(getattr(r, "episode", None) is not None for r in group):
            row["n_episodes"] = len({r.episode for r in group})
            row["ways"] = len(group[0].ways)
            row["accuracy_ci95"] = round(ci95([r.accuracy for r in group]), 2)
        row["ece_raw_mean"] = mean_or_none([getattr(r, "ece_raw", None) for r in group])
        row["ece_mean"] = mean_or_none([getattr(r, "ece", None) for r in group])
        if any(getattr(r, "temperature", None) is not None for r in group):
            cal = [getattr(r, "calibration_seconds", 0.0) or 0.0 for r in group]
            row["calibration_seconds_mean"] = round(float(np.mean(cal)), 4)
        if any(getattr(r, "open_accuracy", None) is not None for r in group):
            row.update(open_set_fields(group))
    return rows


def _mean_std(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    known = [float(v) for v in values if v is not None]
    if not known:
        return None, None
    return round(float(np.mean(known)), 2), round(float(np.std(known, ddof=0)), 2)


def open_set_fields(group: Sequence) -> dict:
    """The open-set columns of one (method, shots) row, over its runs: ``n_unknown`` (unknown
    queries per run), ``auroc_mean/std`` (known vs unknown, percent), ``open_accuracy_mean/std``
    (all queries at the threshold), ``no_reject_accuracy_mean/std`` (all queries, nothing
    rejected: every unknown query wrong), ``known_accept_mean`` and ``unknown_reject_mean``
    (percent), ``threshold_mean`` (over the runs that reject; None when none does) and
    ``rejecting_runs`` (how many runs had a threshold). ``accuracy_*`` is then closed-set."""
    out = {"n_unknown": int(np.mean([r.n_unknown for r in group]))}
    for key in ("auroc", "open_accuracy", "no_reject_accuracy"):
        out[f"{key}_mean"], out[f"{key}_std"] = _mean_std([getattr(r, key) for r in group])
    out["known_accept_mean"] = mean_or_none([r.known_accept for r in group])
    out["unknown_reject_mean"] = mean_or_none([r.unknown_reject for r in group])
    thresholds = [r.threshold for r in group if r.threshold is not None]
    out["threshold_mean"] = round(float(np.mean(thresholds)), 4) if thresholds else None
    out["rejecting_runs"] = len(thresholds)
    return out


def format_table(results: Sequence[dict]) -> str:
    """Plain-text table: methods as rows, shots as columns, 'mean ± std' cells."""
    methods = list(dict.fromkeys(r["method"] for r in results))
    shots = sorted({r["shots"] for r in results})
    cell = {(r["method"], r["shots"]): f"{r['accuracy_mean']:.1f} ± {r['accuracy_std']:.1f}" for r in results}
    head = ["method"] + [f"{k}-shot" for k in shots]
    rows = [[m] + [cell.get((m, k), "-") for k in shots] for m in methods]
    widths = [max(len(str(r[i])) for r in [head] + rows) for i in range(len(head))]
    line = lambda r: "  ".join(
        str(v).ljust(w) if i == 0 else str(v).rjust(w) for i, (v, w) in enumerate(zip(r, widths))
    )
    return "\n".join([line(head), line(["-" * w for w in widths])] + [line(r) for r in rows])


def open_set_cells(results: Sequence[dict]) -> tuple[list[str], list[int], dict[tuple[str, int], dict]] | None:
    """The rows carrying open-set columns (``open_accuracy_mean``) as (methods in order of first
    appearance, sorted shots, {(method, shots): row}); None when no row carries them."""
    rows_in = [r for r in results if r.get("open_accuracy_mean") is not None]
    if not rows_in:
        return None
    methods = list(dict.fromkeys(r["method"] for r in rows_in))
    shots = sorted({r["shots"] for r in rows_in})
    return methods, shots, {(r["method"], r["shots"]): r for r in rows_in}


def format_open_set_table(results: Sequence[dict]) -> str:
    """Plain-text open-set table: methods as rows, per K the AUROC and the accuracy at the
    threshold ('mean ± std'); '' when no row carries them."""
    found = open_set_cells(results)
    if found is None:
        return ""
    methods, shots, cells = found
    fmt = lambda r, k: "-" if r.get(f"{k}_mean") is None else f"{r[f'{k}_mean']:.1f} ± {r[f'{k}_std']:.1f}"
    head = ["method"] + [f"{k}-shot {w}" for k in shots for w in ("AUROC", "acc@t")]
    keys = ("auroc", "open_accuracy")
    rows = [[m] + [fmt(cells[(m, k)], w) if (m, k) in cells else "-" for k in shots for w in keys] for m in methods]
    widths = [max(len(str(r[i])) for r in [head] + rows) for i in range(len(head))]
    line = lambda r: "  ".join(
        str(v).ljust(w) if i == 0 else str(v).rjust(w) for i, (v, w) in enumerate(zip(r, widths))
    )
    return "\n".join([line(head), line(["-" * w for w in widths])] + [line(r) for r in rows])
