"""Reports: results.json, results.md (matches the JSON), PNG plots."""

from __future__ import annotations

import json
import re

import numpy as np

from mgcl.evaluation.protocols import RunResult
from mgcl.evaluation.report import (
    FILES,
    ablation_of,
    ablation_table,
    best_cells,
    best_method,
    combined_markdown,
    confusion_matrix,
    dataset_markdown,
    ece_table,
    markdown_table,
    write_report,
)

CELL = re.compile(r"^(\*\*)?(-?\d+\.\d+) ± (\d+\.\d+)(\*\*)?( \([+-]\d+\.\d+\))?$")
ECE_CELL = re.compile(r"^(\d+\.\d+|–) → (\d+\.\d+|–)$")


def row(method, shots, mean, std, **extra):
    return {
        "method": method,
        "shots": shots,
        "accuracy_mean": mean,
        "accuracy_std": std,
        "n_seeds": 3,
        "n_query": 40,
        **extra,
    }


RESULTS = [
    row("prototype", 1, 41.25, 3.1),
    row("prototype", 4, 60.5, 1.0),
    row("tip_adapter", 1, 43.0, 2.25),
    row("tip_adapter", 4, 60.5, 0.75),
    row("mgcl", 1, 42.5, 2.0),
    row("mgcl", 4, 66.13, 1.5),
]
ABLATION = [
    row("mgcl-fc", 1, 40.0, 2.5),
    row("mgcl-fc", 4, 63.0, 1.25),
    row("mgcl-ft", 1, 44.75, 1.0),
    row("mgcl-ft", 4, 65.0, 2.0),
]


def parse_tables(md: str) -> list[dict]:
    """Every markdown table: {(row name, K): (mean, spread, bold)}."""
    tables, current, shots = [], None, None
    for line in md.splitlines():
        if not line.startswith("|"):
            current = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if current is None:
            shots = [int(c.split("-")[0]) if c.endswith(("-shot", "-shot ECE")) else None for c in cells]
            current = {}
            tables.append(current)
            continue
        if set(cells[1]) <= set("-:"):
            continue
        for c, k in zip(cells, shots):
            if k is None:
                continue
            if ECE_CELL.match(c):  # the calibration table: (raw, calibrated)
                raw, cal = ECE_CELL.match(c).groups()
                current[(cells[0], k)] = tuple(None if v == "–" else float(v) for v in (raw, cal))
                continue
            m = CELL.match(c)
            assert m, f"cell {c!r} is not 'mean ± spread'"
            current[(cells[0], k)] = (float(m.group(2)), float(m.group(3)), bool(m.group(1)))
    return tables


def test_markdown_table_matches_the_rows_exactly_and_bolds_the_best():
    [table] = parse_tables(markdown_table(RESULTS))
    assert len(table) == len(RESULTS)
    for r in RESULTS:
        mean, std, bold = table[(r["method"], r["shots"])]
        assert (mean, std) == (r["accuracy_mean"], r["accuracy_std"])
        col = [x["accuracy_mean"] for x in RESULTS if x["shots"] == r["shots"]]
        assert bold == (r["accuracy_mean"] == max(col))
    assert table[("tip_adapter", 1)][2] and table[("mgcl", 4)][2]
    assert not table[("prototype", 4)][2] and not table[("tip_adapter", 4)][2]


def test_ties_are_all_bold():
    rows = [row("a", 1, 50.0, 1.0), row("b", 1, 50.0, 2.0), row("c", 1, 49.99, 0.0)]
    assert best_cells(rows) == {("a", 1), ("b", 1)}
    [table] = parse_tables(markdown_table(rows))
    assert [table[(m, 1)][2] for m in "abc"] == [True, True, False]


def test_episode_rows_show_the_confidence_interval():
    rows = [row("prototype", 1, 55.5, 20.0, accuracy_ci95=1.6), row("mgcl", 1, 57.25, 19.0, accuracy_ci95=1.52)]
    [table] = parse_tables(markdown_table(rows))
    assert table[("prototype", 1)][:2] == (55.5, 1.6) and table[("mgcl", 1)] == (57.25, 1.52, True)


def test_ablation_rows_and_table():
    assert ablation_of("mgcl_f-fc") == ("mgcl_f", "fc") and ablation_of("mgcl-coarse") == ("mgcl", "coarse")
    assert ablation_of("tip_adapter") is None and ablation_of("mgcl-xx") is None
    assert ablation_table(RESULTS) == ""
    text = ablation_table(RESULTS + ABLATION)
    lines = [line for line in text.splitlines() if line.startswith("| mgcl")]
    assert [line.split("|")[1].strip() for line in lines] == ["mgcl", "mgcl-fc", "mgcl-ft"]
    assert "40.00 ± 2.50 (-2.50)" in text and "65.00 ± 2.00 (-1.13)" in text and "44.75 ± 1.00 (+2.25)" in text


def test_best_method_ignores_ablation_rows():
    assert best_method(RESULTS + [row("mgcl-ft", 4, 99.0, 0.0)]) == ("mgcl", 4)
    assert best_method([]) is None


def test_confusion_matrix_sums_runs_of_one_method_and_shot():
    runs = [
        RunResult("m", 2, 0, 50.0, 4, 0, 0, np.array([0, 1, 1, 2]), targets=np.array([0, 1, 2, 2])),
        RunResult("m", 2, 1, 75.0, 4, 0, 0, np.array([0, 0, 1, 2]), targets=np.array([0, 0, 1, 1])),
        RunResult("m", 1, 0, 0.0, 2, 0, 0, np.array([2, 2]), targets=np.array([0, 0])),  # other K
        RunResult("x", 2, 0, 0.0, 2, 0, 0, np.array([2, 2]), targets=np.array([0, 0])),  # other method
    ]
    cm = confusion_matrix(runs, 3, "m", 2)
    assert cm.tolist() == [[3, 0, 0], [0, 2, 1], [0, 1, 1]]


def fake_runs(methods, shots, n_classes=3, seeds=2, rng=None):
    rng = rng or np.random.default_rng(0)
    runs = []
    for m in methods:
        for k in shots:
            for s in range(seeds):
                t = np.repeat(np.arange(n_classes), 4)
                p = np.where(rng.random(t.size) < 0.7, t, rng.integers(0, n_classes, t.size))
                runs.append(
                    RunResult(m, k, s, 100.0 * float((p == t).mean()), t.size, 0.01, 0.01, p, fold="1", targets=t)
                )
    return runs


def png_ok(path):
    import matplotlib.image as mpimg

    assert path.is_file() and path.stat().st_size > 1000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    assert img.std() > 0  # not a blank canvas


def document(results):
    return {
        "backbone": "aisfx",
        "dataset": "toy",
        "n_clips": 12,
        "n_classes": 3,
        "protocol": {"name": "full-way", "shots": [1, 4], "seeds": 2, "test_folds": ["1", "2"]},
        "results": results,
        "timing": {"total_seconds": 1.0},
    }


def test_write_report_files_json_and_markdown_agree(tmp_path):
    results = RESULTS + ABLATION
    doc = document(results)
    runs = fake_runs(["prototype", "tip_adapter", "mgcl", "mgcl-fc", "mgcl-ft"], [1, 4])
    written = write_report(doc, runs, tmp_path / "toy", ["dog bark", "rain", "siren"])
    assert set(written) == {"json", "markdown", "accuracy", "confusion", "ablation"}
    for kind in ("accuracy", "confusion", "ablation"):
        png_ok(written[kind])
    saved = json.loads((tmp_path / "toy" / FILES["json"]).read_text())
    for key in ("backbone", "dataset", "protocol", "results", "timing"):
        assert key in saved
    assert saved["results"] == results
    assert saved["confusion"] == {"method": "mgcl", "shots": 4, "file": FILES["confusion"]}
    md = (tmp_path / "toy" / FILES["markdown"]).read_text()
    main_table, abl_table = parse_tables(md)
    json_cells = {(r["method"], r["shots"]): (r["accuracy_mean"], r["accuracy_std"]) for r in saved["results"]}
    assert {k: v[:2] for k, v in main_table.items()} == {k: v for k, v in json_cells.items() if "-" not in k[0]}
    assert {k: v[:2] for k, v in abl_table.items()} == {k: v for k, v in json_cells.items() if k[0].startswith("mgcl")}
    assert "![accuracy vs shots](accuracy_vs_shots.png)" in md and "confusion_matrix.png" in md
    assert "chance 33.3 %" in md and "2 folds x 2 seeds" in md


def test_no_ablation_plot_without_ablation_rows(tmp_path):
    written = write_report(
        document(RESULTS), fake_runs(["prototype", "tip_adapter", "mgcl"], [1, 4]), tmp_path, ["a", "b", "c"]
    )
    assert "ablation" not in written and not (tmp_path / FILES["ablation"]).exists()
    assert "Ablation" not in (tmp_path / FILES["markdown"]).read_text()
    png_ok(written["accuracy"])
    png_ok(written["confusion"])


def test_confusion_plot_for_many_classes(tmp_path):
    names = [f"class number {i}" for i in range(50)]
    rows = [row("prototype", 1, 30.0, 1.0)]
    written = write_report(
        document(rows) | {"n_classes": 50}, fake_runs(["prototype"], [1], n_classes=50), tmp_path, names
    )
    png_ok(written["confusion"])


def test_combined_markdown_one_table_per_dataset():
    a = document(RESULTS) | {"dataset": "esc50"}
    b = document([row("prototype", 1, 70.0, 2.0), row("mgcl", 1, 71.5, 1.0)]) | {"dataset": "urbansound8k"}
    md = combined_markdown([a, b], ["esc50", "urbansound8k"])
    assert "## esc50" in md and "## urbansound8k" in md
    tables = parse_tables(md)
    assert len(tables) == 2
    assert tables[1] == {("prototype", 1): (70.0, 2.0, False), ("mgcl", 1): (71.5, 1.0, True)}
    assert "(urbansound8k/accuracy_vs_shots.png)" in md


def test_dataset_markdown_for_episodes_says_ci():
    doc = {
        "dataset": "esc50",
        "backbone": "clap",
        "n_clips": 2000,
        "n_classes": 50,
        "protocol": {"name": "episodes", "ways": 5, "episodes": 600, "queries_per_class": 15},
        "results": [row("prototype", 1, 60.0, 20.0, accuracy_ci95=1.6)],
    }
    md = dataset_markdown(doc)
    assert "95 % confidence interval" in md and "5-way episodes (600" in md and "chance 20.0 %" in md


def test_every_ablation_name_has_a_label_in_tables_and_plots(tmp_path):
    from mgcl.evaluation.report import ABLATION_NAMES, plot_ablation
    from mgcl.evaluation.specs import ABLATE_BRANCHES, ABLATE_INPUTS, ABLATE_LOSSES

    names = ABLATE_BRANCHES + ABLATE_LOSSES + ABLATE_INPUTS
    assert set(ABLATION_NAMES) == set(names)
    rows = RESULTS + [row(f"mgcl-{a}", 1, 40.0, 1.0) for a in names]
    assert all(ABLATION_NAMES[a] in ablation_table(rows) for a in names)
    png = tmp_path / "ablation.png"
    png.write_bytes(plot_ablation(rows, "mgcl ablation"))
    png_ok(png)


def test_ece_table_is_a_second_table_of_the_json_numbers(tmp_path):
    with_ece = [
        {**r, "ece_raw_mean": 10.0 + i, "ece_mean": 3.25 + i if r["shots"] > 1 else 10.0 + i}
        for i, r in enumerate(RESULTS)
    ]
    assert ece_table(RESULTS) == "" and "calibration" not in dataset_markdown(document(RESULTS))
    md = dataset_markdown(document(with_ece + ABLATION))
    main_table, abl_table, ece = parse_tables(md)
    assert main_table == parse_tables(dataset_markdown(document(RESULTS + ABLATION)))[0]  # accuracy table unchanged
    assert ece == {(r["method"], r["shots"]): (r["ece_raw_mean"], r["ece_mean"]) for r in with_ece}
    assert "Expected calibration error" in md and "mgcl-fc" not in ece_table(with_ece)
    assert "| method | 1-shot ECE | 4-shot ECE |" in md  # a reader of '-shot' columns skips this table
    # a row without the calibrated number shows a dash
    partial = [dict(with_ece[0], ece_mean=None), with_ece[1]]
    assert "10.00 → –" in ece_table(partial)
    written = write_report(document(with_ece), [], tmp_path, ["a", "b", "c"])
    assert json.loads(written["json"].read_text())["results"] == with_ece
    assert len(parse_tables(written["markdown"].read_text())) == 2
