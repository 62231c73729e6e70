"""`mgcl benchmark`: datasets by name / manifest, protocols, report files, exit codes, errors."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import pytest

from mgcl.cli import main
from mgcl.cli.benchmark import register, resolve_sources
from mgcl.cli.evaluate import dataset_of
from mgcl.data.manifest import read_manifest
from mgcl.errors import MgclError


def run(argv, capsys):
    code = main(["benchmark"] + [str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    """3 classes x 4 clips of 2 s in folds 1/2 (no backbone needed to write them)."""
    from mgcl.data.synthetic import CLASSES, make_dataset

    root = tmp_path_factory.mktemp("bench")
    manifest = make_dataset(root / "set", n_per_class=4, seed=1, n_folds=2, classes=CLASSES[:3], duration=2.0)
    return {"manifest": manifest, "root": root, "store": root / "store"}


@pytest.fixture
def aisfx():
    import importlib.util

    if importlib.util.find_spec("aisfx") is None:
        pytest.skip("aisfx weights not installed (pip install --no-deps aisfx==0.1.2)")


@pytest.fixture
def fake_loaders(monkeypatch, synth):
    """A catalog of esc50, toyset and urbansound8k whose 'toyset' reads the synthetic set
    (class names in capitals); returns the (name, root, names) of each `load_dataset` call."""
    from mgcl.data import catalog
    from mgcl.data.sources import Dataset

    def load_toyset(root):
        rows = read_manifest(synth["manifest"])
        return Dataset("toyset", rows, display_names={r.label: r.label.upper() for r in rows}, root=Path(root))

    toyset = catalog.Entry(name="toyset", title="toyset", description="the synthetic set", loader=load_toyset)
    monkeypatch.setattr(
        catalog,
        "CATALOG",
        {"esc50": catalog.CATALOG["esc50"], "toyset": toyset, "urbansound8k": catalog.CATALOG["urbansound8k"]},
    )
    calls = []
    real_load_dataset = catalog.load_dataset

    def load_dataset(name, root, names=None, **options):
        calls.append((name, Path(root), names))
        return real_load_dataset(name, root, names, **options)

    monkeypatch.setattr(catalog, "load_dataset", load_dataset)
    return calls


def parse_table(text: str) -> dict:
    out, shots = {}, None
    for line in text.splitlines():
        if not line.startswith("| "):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] in ("method", "variant"):
            shots = [int(c.split("-")[0]) if c.endswith("-shot") else None for c in cells]
            continue
        for c, k in zip(cells, shots):
            if k is not None:
                mean, spread = c.strip("*").split(" ± ")
                out[(cells[0], k)] = (float(mean), float(spread.split(" ")[0]))
    return out


# ----------------------------------------------------------------------------- runs
def test_register_adds_benchmark_to_a_fresh_parser():
    parser = argparse.ArgumentParser(prog="mgcl")
    sub = parser.add_subparsers(dest="command")
    p = register(sub)
    args = parser.parse_args(["benchmark", "--manifest", "x=y.csv", "--out", "o"])
    assert p.prog.endswith("benchmark") and args.func.__name__ == "run"
    assert args.protocol == "full-way" and args.seeds == 3 and args.ways == 5 and args.queries == 15


def test_help_teaches_the_esc50_and_urbansound8k_commands(capsys):
    with pytest.raises(SystemExit) as e:
        main(["benchmark", "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for words in (
        "--datasets esc50 --root",
        "--datasets urbansound8k --root",
        "--backbone clap",
        "--checkpoint laion/clap-htsat-unfused",
        "--root urbansound8k=",
        "--protocol episodes",
        "1.96 std / sqrt(episodes)",
        'every class is "novel"',
    ):
        assert words in text, words


def test_full_way_writes_reports_and_matches_json(tmp_path, synth, aisfx, capsys):
    out = tmp_path / "out"
    code, stdout, err = run(
        [
            "--manifest",
            f"toy={synth['manifest']}",
            "--methods",
            "prototype,tip_adapter",
            "--shots",
            "1,2",
            "--seeds",
            "2",
            "--store",
            synth["store"],
            "--out",
            out,
        ],
        capsys,
    )
    assert code == 0, err
    folder = out / "toy"
    for name in ("results.json", "results.md", "accuracy_vs_shots.png", "confusion_matrix.png"):
        assert (folder / name).is_file() and (folder / name).stat().st_size > 0, name
    assert not (folder / "ablation.png").exists()
    assert (out / "results.md").is_file() and (out / "benchmark.json").is_file()
    doc = json.loads((folder / "results.json").read_text())
    assert doc["backbone"] == "aisfx" and doc["dataset"] == "toy" and doc["n_classes"] == 3
    assert doc["protocol"]["name"] == "full-way" and doc["protocol"]["test_folds"] == ["1", "2"]
    assert set(doc["timing"]) >= {"embed_seconds", "evaluate_seconds", "methods"}
    rows = {(r["method"], r["shots"]): r for r in doc["results"]}
    assert set(rows) == {(m, k) for m in ("prototype", "tip_adapter") for k in (1, 2)}
    for r in rows.values():
        assert r["n_folds"] == 2 and r["n_seeds"] == 2 and r["n_runs"] == 4 and r["n_query"] == 6
        assert 0.0 <= r["accuracy_mean"] <= 100.0
    want = {k: (r["accuracy_mean"], r["accuracy_std"]) for k, r in rows.items()}
    assert parse_table((folder / "results.md").read_text()) == want
    assert parse_table((out / "results.md").read_text()) == want
    assert parse_table(stdout) == want  # the printed table is the same
    import matplotlib.image as mpimg

    assert mpimg.imread(folder / "confusion_matrix.png").shape[0] > 100

    # a second run embeds nothing
    code, _, _ = run(
        [
            "--manifest",
            f"toy={synth['manifest']}",
            "--methods",
            "prototype",
            "--shots",
            "1",
            "--seeds",
            "1",
            "--store",
            synth["store"],
            "--out",
            tmp_path / "again",
        ],
        capsys,
    )
    timing = json.loads((tmp_path / "again" / "toy" / "results.json").read_text())["timing"]
    assert code == 0 and timing["computed"] == 0 and timing["cache_hits"] == 12


def test_episodes_and_ablation(tmp_path, synth, aisfx, capsys):
    code, stdout, err = run(
        [
            "--manifest",
            str(synth["manifest"]),
            "--protocol",
            "episodes",
            "--ways",
            "2",
            "--shots",
            "1",
            "--queries",
            "2",
            "--episodes",
            "6",
            "--methods",
            "prototype,mgcl",
            "--ablate",
            "fc",
            "--store",
            synth["store"],
            "--out",
            tmp_path,
        ],
        capsys,
    )
    assert code == 0, err
    folder = tmp_path / "set"  # a bare CSV is named after its folder
    doc = json.loads((folder / "results.json").read_text())
    assert doc["protocol"]["name"] == "episodes" and doc["protocol"]["ways"] == 2
    by = {r["method"]: r for r in doc["results"]}
    assert set(by) == {"prototype", "mgcl", "mgcl-fc"}
    for r in by.values():
        assert r["n_episodes"] == 6 and r["n_query"] == 4 and "accuracy_ci95" in r
    table = parse_table((folder / "results.md").read_text())
    assert table[("prototype", 1)] == (by["prototype"]["accuracy_mean"], by["prototype"]["accuracy_ci95"])
    assert (folder / "ablation.png").stat().st_size > 0
    assert "95 % CI" in stdout


def test_dataset_by_name_with_root(tmp_path, synth, aisfx, fake_loaders, capsys):
    code, _, err = run(
        [
            "--datasets",
            "toyset",
            "--root",
            synth["root"] / "set",
            "--methods",
            "prototype",
            "--shots",
            "1",
            "--seeds",
            "1",
            "--store",
            synth["store"],
            "--out",
            tmp_path,
        ],
        capsys,
    )
    assert code == 0, err
    assert fake_loaders == [("toyset", synth["root"] / "set", None)]
    doc = json.loads((tmp_path / "toyset" / "results.json").read_text())
    assert doc["dataset"] == "toyset" and doc["class_names"] == [c.upper() for c in doc["classes"]]
    assert doc["protocol"]["test_folds"] == ["1", "2"]


def test_fixed_split_manifest(tmp_path, synth, aisfx, capsys):
    rows = read_manifest(synth["manifest"])
    m = synth["manifest"].parent / "split.csv"
    with open(m, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "split"])
        for i, r in enumerate(rows):
            w.writerow([r.path.relative_to(m.parent).as_posix(), r.label, "train" if i % 4 else "test"])
    code, _, err = run(
        [
            "--manifest",
            f"split={m}",
            "--methods",
            "prototype",
            "--shots",
            "1,2",
            "--seeds",
            "2",
            "--store",
            synth["store"],
            "--out",
            tmp_path,
        ],
        capsys,
    )
    assert code == 0, err
    doc = json.loads((tmp_path / "split" / "results.json").read_text())
    assert "train split" in doc["protocol"]["support"] and "test split" in doc["protocol"]["query"]
    assert all(r["n_query"] == 3 and "n_folds" in r for r in doc["results"])  # 1 test clip per class


def test_bad_file_is_left_out_exit_1(tmp_path, synth, aisfx, capsys):
    rows = read_manifest(synth["manifest"])
    (tmp_path / "bad.wav").write_text("not audio" * 40)
    m = tmp_path / "m.csv"
    with open(m, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "fold"])
        w.writerows([[str(r.path), r.label, r.fold] for r in rows] + [["bad.wav", rows[0].label, "1"]])
    code, _, err = run(
        [
            "--manifest",
            f"m={m}",
            "--methods",
            "prototype",
            "--shots",
            "1",
            "--seeds",
            "1",
            "--store",
            synth["store"],
            "--out",
            tmp_path / "out",
        ],
        capsys,
    )
    assert code == 1
    assert "1 of 13 file(s) could not be embedded" in err and "bad.wav" in err
    doc = json.loads((tmp_path / "out" / "m" / "results.json").read_text())
    assert doc["n_clips"] == 12 and len(doc["failed_files"]) == 1


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "argv,message",
    [
        (["--datasets", "nosuch", "--root", "{root}"], "unknown dataset 'nosuch' (choose from: esc50, toyset"),
        (["--datasets", "toyset"], "dataset 'toyset' needs --root DIR"),
        (["--datasets", "toyset", "--root", "{root}/missing"], "folder not found"),
        (["--datasets", "toyset,esc50", "--root", "{root}"], "is not of the form NAME=DIR"),
        (["--datasets", "toyset", "--root", "=somewhere"], "is not of the form NAME=DIR (NAME is empty)"),
        (["--datasets", "toyset", "--root", "toyset="], "is not of the form NAME=DIR (DIR is empty)"),
        (["--datasets", "toyset", "--root", "esc50={root}"], "--root names dataset 'esc50', but it is not in"),
        (["--datasets", "toyset", "--root", "toyset={root}", "--root", "toyset={root}"], "given twice"),
        (["--manifest", "x={manifest}", "--root", "x={root}"], "--root names dataset 'x', but it has a --manifest"),
        (["--manifest", "x={root}/nope.csv"], "manifest not found"),
        (["--root", "{root}"], "name the datasets with --datasets"),
        (["--manifest", "x={manifest}", "--methods", "nosuch"], "unknown method 'nosuch'"),
        (["--manifest", "x={manifest}", "--shots", "9"], "x: class"),
        (
            ["--manifest", "x={manifest}", "--protocol", "episodes", "--ways", "3", "--queries", "3"],
            "x: 3-way 1-shot episodes need 3 classes",
        ),
        (["--manifest", "x={manifest}", "--protocol", "episodes", "--episodes", "0"], "--episodes must be"),
        (["--manifest", "x={manifest}", "--seeds", "0"], "--seeds must be at least 1"),
        (["--manifest", "x={manifest}", "--test-folds", "7"], "no test fold '7'"),
        (["--manifest", "x={manifest}", "--shots", "1", "--backbone", "nosuch"], "unknown backbone 'nosuch'"),
        (["--manifest", "x={manifest}", "--shots", "1", "--methods", "zero_shot"], "needs a text encoder"),
    ],
)
def test_one_line_errors(tmp_path, synth, fake_loaders, capsys, argv, message):
    argv = [a.format(root=synth["root"] / "set", manifest=synth["manifest"]) for a in argv]
    code, _, err = run(argv + ["--store", tmp_path / "store", "--out", tmp_path / "out"], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mgcl benchmark: error: "), err
    assert message in lines[0]
    assert not (tmp_path / "out").exists()  # nothing written on a usage error


def test_out_must_be_a_folder(tmp_path, synth, capsys):
    (tmp_path / "file").write_text("x")
    code, _, err = run(["--manifest", f"x={synth['manifest']}", "--out", tmp_path / "file"], capsys)
    assert code == 2 and "exists and is not a folder" in err


def test_names_override_manifest_class_names(tmp_path, synth):
    names = tmp_path / "names.json"
    names.write_text(json.dumps({"siren": "police siren"}))
    src = resolve_sources([], None, [f"set={synth['manifest']}"], [str(names)])[0]
    assert src.names(["other", "siren"]) == ["other", "police siren"]
    names.write_text(json.dumps({"nosuch": "x"}))
    with pytest.raises(MgclError, match="labels not in the data: nosuch"):
        resolve_sources([], None, [f"set={synth['manifest']}"], [str(names)])
    with pytest.raises(MgclError, match="which is not benchmarked"):
        resolve_sources([], None, [f"set={synth['manifest']}"], [f"other={names}"])


# ----------------------------------------------------------------------------- dataset_of
def test_dataset_of_manifest_or_dataset(synth, fake_loaders):
    ns = lambda **kw: argparse.Namespace(names=None, **kw)
    src = dataset_of(ns(manifest=synth["manifest"], dataset=None, root=None))
    assert src.name == "set" and len(src.rows) == 12 and src.protocol == "folds" and src.folds is not None
    src = dataset_of(ns(manifest=None, dataset="toyset", root=synth["root"] / "set"))
    assert src.name == "toyset" and len(src.rows) == 12
    assert (
        src.names(["siren", "other"]) == ["SIREN", "other"] and src.manifest == synth["root"] / "set" / "manifest.csv"
    )
    for kwargs, message in [
        ({"manifest": synth["manifest"], "dataset": "toyset", "root": None}, "not both"),
        ({"manifest": None, "dataset": None, "root": None}, "give --manifest CSV or --dataset NAME --root DIR"),
        ({"manifest": synth["manifest"], "dataset": None, "root": synth["root"]}, "--root goes with --dataset"),
        ({"manifest": None, "dataset": "toyset", "root": None}, "needs --root DIR"),
    ]:
        with pytest.raises(MgclError, match=message.replace("(", r"\(")):
            dataset_of(ns(**kwargs))


def esc50_replica(root: Path, manifest: Path) -> Path:
    """The official ESC-50 layout (audio/*.wav, meta/esc50.csv) holding the synthetic clips."""
    import shutil

    (root / "audio").mkdir(parents=True)
    (root / "meta").mkdir()
    categories = {"siren": "siren", "alarm beep": "clock_alarm", "engine hum": "engine"}
    with open(root / "meta" / "esc50.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["filename", "fold", "target", "category", "esc10", "src_file", "take"])
        for i, r in enumerate(read_manifest(manifest)):
            name = f"{r.fold}-{100 + i}-A-0.wav"
            shutil.copy(r.path, root / "audio" / name)
            cat = categories[r.label]
            w.writerow([name, r.fold, list(categories.values()).index(cat), cat, "False", 100 + i, "A"])
    return root


def test_real_esc50_loader_on_a_replica(tmp_path, synth, aisfx, capsys):
    """The project's ESC-50 loader, readable names, folds -> 5-fold-style cross-validation."""
    root = esc50_replica(tmp_path / "ESC-50-master", synth["manifest"])
    code, _, err = run(
        [
            "--datasets",
            "esc50",
            "--root",
            root,
            "--methods",
            "prototype",
            "--shots",
            "1",
            "--seeds",
            "2",
            "--store",
            synth["store"],
            "--out",
            tmp_path / "out",
        ],
        capsys,
    )
    assert code == 0, err
    doc = json.loads((tmp_path / "out" / "esc50" / "results.json").read_text())
    assert doc["classes"] == ["clock_alarm", "engine", "siren"]
    assert doc["class_names"] == ["clock alarm", "engine", "siren"]  # readable names for prompts
    assert doc["protocol"]["test_folds"] == ["1", "2"] and doc["n_clips"] == 12
    assert {r["n_folds"] for r in doc["results"]} == {2} and {r["n_runs"] for r in doc["results"]} == {4}
    names = tmp_path / "names.json"
    names.write_text(json.dumps({"clock_alarm": "alarm clock ringing"}))
    code, _, err = run(
        [
            "--datasets",
            "esc50",
            "--root",
            root,
            "--names",
            names,
            "--methods",
            "prototype",
            "--shots",
            "1",
            "--seeds",
            "1",
            "--store",
            synth["store"],
            "--out",
            tmp_path / "o2",
        ],
        capsys,
    )
    assert code == 0, err
    doc = json.loads((tmp_path / "o2" / "esc50" / "results.json").read_text())
    assert doc["class_names"] == ["alarm clock ringing", "engine", "siren"]


def test_evaluate_dataset_root_on_a_replica(tmp_path, synth, aisfx, capsys):
    """`mgcl evaluate --dataset esc50 --root DIR --test-fold 2`: the same loader as benchmark."""
    from mgcl.cli import main as mgcl_main

    root = esc50_replica(tmp_path / "ESC-50-master", synth["manifest"])
    out = tmp_path / "r.json"
    code = mgcl_main(
        [
            "evaluate",
            "--dataset",
            "esc50",
            "--root",
            str(root),
            "--methods",
            "prototype",
            "--shots",
            "1",
            "--seeds",
            "2",
            "--test-fold",
            "2",
            "--store",
            str(synth["store"]),
            "--out",
            str(out),
        ]
    )
    err = capsys.readouterr().err
    assert code == 0, err
    doc = json.loads(out.read_text())
    assert doc["dataset"] == "esc50" and doc["n_clips"] == 12 and doc["source"] == str(root)
    assert doc["results"][0]["n_query"] == 6  # fold 2 = half of the clips
    code = mgcl_main(["evaluate", "--dataset", "esc50", "--root", str(tmp_path / "nope"), "--out", str(out)])
    assert code == 2 and "folder not found" in capsys.readouterr().err


def test_test_folds_option_with_multi_digit_fold(tmp_path, synth, aisfx, capsys):
    rows = read_manifest(synth["manifest"])
    m = synth["manifest"].parent / "folds10.csv"
    with open(m, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "fold"])
        w.writerows([[r.path.relative_to(m.parent).as_posix(), r.label, "10" if r.fold == "2" else "1"] for r in rows])
    code, _, err = run(
        [
            "--manifest",
            f"f={m}",
            "--methods",
            "prototype",
            "--shots",
            "1",
            "--seeds",
            "2",
            "--test-folds",
            "10",
            "--store",
            synth["store"],
            "--out",
            tmp_path,
        ],
        capsys,
    )
    assert code == 0, err
    doc = json.loads((tmp_path / "f" / "results.json").read_text())
    assert doc["protocol"]["test_folds"] == ["10"]
    assert [(r["n_folds"], r["n_runs"], r["n_query"]) for r in doc["results"]] == [(1, 2, 6)]


def test_text_backbone_path_and_early_text_file_error(tmp_path, synth, capsys):
    """clap-tiny-random (random weights: only the plumbing is checked, not accuracy)."""
    pytest.importorskip("transformers")
    store = tmp_path / "store"
    code, _, err = run(
        [
            "--manifest",
            f"t={synth['manifest']}",
            "--backbone",
            "clap-tiny-random",
            "--methods",
            "zero_shot,prototype",
            "--shots",
            "1",
            "--descriptions",
            tmp_path / "no.json",
            "--store",
            store,
            "--out",
            tmp_path / "out",
        ],
        capsys,
    )
    assert code == 2 and "--descriptions" in err and "file not found" in err
    assert not list(store.rglob("*.safetensors"))  # failed before embedding anything
    code, _, err = run(
        [
            "--manifest",
            f"t={synth['manifest']}",
            "--backbone",
            "clap-tiny-random",
            "--methods",
            "zero_shot,prototype",
            "--protocol",
            "episodes",
            "--ways",
            "2",
            "--shots",
            "1",
            "--queries",
            "2",
            "--episodes",
            "4",
            "--descriptions",
            "none",
            "--store",
            store,
            "--out",
            tmp_path / "out",
        ],
        capsys,
    )
    assert code == 0, err
    doc = json.loads((tmp_path / "out" / "t" / "results.json").read_text())
    assert doc["backbone"] == "clap-tiny-random"
    assert {r["method"] for r in doc["results"]} == {"zero_shot", "prototype"}
    assert all(r["n_query"] == 4 and r["n_episodes"] == 4 for r in doc["results"])
