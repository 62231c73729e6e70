"""The `mgcl` command: exit codes, one-line errors, outputs."""

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mgcl.cli import main
from tests.conftest import tone


def write_manifest(path: Path, rows, header=("path", "label")):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.fixture
def small_set(tmp_path, write_wav):
    rows = []
    for i in range(4):
        p = write_wav(f"set/audio/c{i}.wav", tone(300 + 200 * i, 1.0 + 0.5 * i, 22050, seed=i), 22050)
        rows.append((p.relative_to(tmp_path / "set").as_posix(), "a" if i % 2 else "b"))
    return write_manifest(tmp_path / "set" / "manifest.csv", rows)


def test_help_for_every_command(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("embed", "demo"):
        assert cmd in out
        with pytest.raises(SystemExit) as e:
            main([cmd, "--help"])
        assert e.value.code == 0
        assert "usage: mgcl " + cmd in capsys.readouterr().out


def test_embed_then_all_cache_hits(tmp_path, small_set, capsys):
    pytest.importorskip("aisfx")
    store = tmp_path / "store"
    assert main(["embed", "--backbone", "aisfx", "--manifest", str(small_set), "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert "computed: 4, cache hits: 0, failed: 0" in out
    assert len(list(store.rglob("*.safetensors"))) == 4
    assert main(["embed", "--backbone", "aisfx", "--manifest", str(small_set), "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert "computed: 0, cache hits: 4, failed: 0" in out
    assert "clips/s" in out


def test_embed_lists_bad_files_and_keeps_good_ones(tmp_path, write_wav, capsys):
    write_wav("d/good.wav", tone(440, 1.0, 8000), 8000)
    (tmp_path / "d" / "bad.wav").write_text("garbage" * 50)
    absolute_good = write_wav("elsewhere/abs.wav", tone(880, 1.0, 8000), 8000)
    m = write_manifest(
        tmp_path / "d" / "m.csv",
        [("good.wav", "x"), ("bad.wav", "x"), ("missing.ogg", "y"), (str(absolute_good), "y")],
    )
    store = tmp_path / "store"
    code = main(["embed", "--backbone", "aisfx", "--manifest", str(m), "--store", str(store)])
    captured = capsys.readouterr()
    assert code == 1
    assert "computed: 2, cache hits: 0, failed: 2" in captured.out
    assert "bad.wav: not audio or undecodable" in captured.err
    assert "missing.ogg: file not found" in captured.err
    assert len(list(store.rglob("*.safetensors"))) == 2


@pytest.mark.parametrize(
    "argv,message",
    [
        (["embed", "--backbone", "nope", "--manifest", "{m}"], "unknown backbone 'nope'"),
        (["embed", "--manifest", "{missing}"], "manifest not found"),
        (["embed", "--manifest", "{bad_header}"], "header must have columns path, label"),
    ],
)
def test_one_line_errors(tmp_path, small_set, capsys, argv, message):
    bad = tmp_path / "bad.csv"
    bad.write_text("file,class\na.wav,x\n")
    argv = [a.format(m=small_set, missing=tmp_path / "none.csv", bad_header=bad) for a in argv]
    code = main(argv + ["--store", str(tmp_path / "s")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err and len(err.splitlines()) == 1


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "mgcl.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("mgcl ")


# ----------------------------------------------------------------------------- fit / predict / evaluate
ALL_COMMANDS = ("embed", "fit", "predict", "evaluate", "demo")


def test_every_command_has_teaching_help(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    top = capsys.readouterr().out
    for cmd in ALL_COMMANDS:
        assert cmd in top
        with pytest.raises(SystemExit) as e:
            main([cmd, "--help"])
        assert e.value.code == 0
        text = capsys.readouterr().out
        assert text.startswith("usage: mgcl " + cmd) and len(text) > 600
    for cmd, words in (
        ("fit", ["--param", "cross-validation", "examples:", "--folders"]),
        ("predict", ["--top-k", "--json", "exit status 1"]),
        ("evaluate", ["--test-fold", "--ablate", "mgcl_f-fc", "accuracy_mean"]),
    ):
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert all(w in text for w in words), (cmd, [w for w in words if w not in text])


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    """3 classes x 4 clips (2 s, folds 1/2) embedded once into a shared aisfx store."""
    pytest.importorskip("aisfx")
    from mgcl.backbones import get_backbone
    from mgcl.data.manifest import read_manifest
    from mgcl.data.synthetic import CLASSES, make_dataset
    from mgcl.store.features import FeatureStore, embed_sources

    root = tmp_path_factory.mktemp("cli")
    manifest = make_dataset(root / "set", n_per_class=4, seed=1, n_folds=2, classes=CLASSES[:3], duration=2.0)
    rows = read_manifest(manifest)
    bb = get_backbone("aisfx")
    res = embed_sources(bb, [r.path for r in rows], FeatureStore(root / "store", bb.identity))
    assert not res.errors
    return {"manifest": manifest, "rows": rows, "store": root / "store", "root": root}


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_fit_then_predict(tmp_path, synth, capsys):
    model = tmp_path / "model"
    code, out, err = run(
        [
            "fit",
            "--manifest",
            synth["manifest"],
            "--method",
            "tip_adapter",
            "--param",
            "betas=2,8",
            "--store",
            synth["store"],
            "--out",
            model,
        ],
        capsys,
    )
    assert code == 0, err
    assert "support: 12 clips, 3 classes" in out and out.count("4 clips") == 3
    assert "method: tip_adapter" in out and "chosen on the support set: cache weight alpha" in out
    assert "sharpness beta" in out and '"beta_"' not in out  # in words; the raw state with -v / --json
    assert sorted(p.name for p in model.iterdir()) == ["README.md", "config.json", "weights.safetensors"]
    cfg = json.loads((model / "config.json").read_text())
    assert cfg["method"]["params"]["betas"] == [2, 8] and cfg["learned"]["beta_"] in (2, 8)
    classes = cfg["classes"]

    files = [r.path for r in synth["rows"][::4]]
    code, out, err = run(["predict", model, *files, "--json", "--top-k", "2", "--store", synth["store"]], capsys)
    assert code == 0, err
    records = json.loads(out)
    assert [r["path"] for r in records] == [str(f) for f in files]
    for r in records:
        assert set(r) == {"path", "label", "score", "top_k"} and r["label"] in classes
        assert len(r["top_k"]) == 2 and r["top_k"][0] == {"label": r["label"], "score": r["score"]}
        assert 1.0 >= r["top_k"][0]["score"] >= r["top_k"][1]["score"] >= 0.0  # calibrated: may round to 0
    truth = {str(r.path): r.label for r in synth["rows"]}
    assert sum(r["label"] == truth[r["path"]] for r in records) >= 2  # support clips: (near) perfect

    code, out, _ = run(["predict", model, files[0], "--top-k", "1", "--store", synth["store"]], capsys)
    fields = out.strip().split("\t")
    assert code == 0 and fields[0] == str(files[0]) and fields[1] == records[0]["label"] and len(fields) == 3


def test_predict_lists_bad_files_and_classifies_the_rest(tmp_path, synth, capsys):
    model = tmp_path / "m"
    assert (
        run(
            [
                "fit",
                "--manifest",
                synth["manifest"],
                "--method",
                "prototype",
                "--store",
                synth["store"],
                "--out",
                model,
            ],
            capsys,
        )[0]
        == 0
    )
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio at all" * 30)
    good = synth["rows"][0].path
    code, out, err = run(
        ["predict", model, bad, good, tmp_path / "missing.wav", "--json", "--store", synth["store"]], capsys
    )
    assert code == 1
    assert [r["path"] for r in json.loads(out)] == [str(good)]
    assert "2 of 3 file(s) could not be classified" in err
    assert "bad.wav: not audio or undecodable" in err and "missing.wav: file not found" in err


def test_fit_with_bad_support_writes_no_model(tmp_path, synth, capsys):
    rows = [(str(r.path), r.label) for r in synth["rows"]] + [("broken.wav", "siren")]
    (tmp_path / "broken.wav").write_bytes(b"RIFF....garbage")
    m = write_manifest(tmp_path / "support.csv", rows)
    code, out, err = run(
        ["fit", "--manifest", m, "--method", "prototype", "--store", synth["store"], "--out", tmp_path / "model"],
        capsys,
    )
    assert code == 1
    assert "1 of 13 support file(s) could not be embedded; no model written" in err and "broken.wav" in err
    assert not (tmp_path / "model").exists()


def evaluate_argv(synth, out, *extra):
    return ["evaluate", "--manifest", synth["manifest"], "--store", synth["store"], "--out", out, *extra]


def parse_table(stdout: str) -> dict[tuple[str, int], str]:
    lines = stdout.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("method "))
    shots = [int(c.split("-")[0]) for c in lines[head].split()[1:]]
    cells = {}
    for line in lines[head + 2 :]:
        if not line.strip():
            break
        name, rest = line.split(None, 1)
        for k, cell in zip(shots, re.findall(r"\d+\.\d ± \d+\.\d", rest)):
            cells[(name, k)] = cell
    return cells


def test_evaluate_writes_results_json_and_table(tmp_path, synth, capsys, monkeypatch):
    from mgcl.backbones.aisfx import AisfxBackbone

    forwards = []
    original = AisfxBackbone.encode_audio
    monkeypatch.setattr(AisfxBackbone, "encode_audio", lambda self, w: forwards.append(len(w)) or original(self, w))
    out_json = tmp_path / "results.json"
    code, out, err = run(
        evaluate_argv(synth, out_json, "--methods", "prototype,tip_adapter", "--shots", "1,2", "--seeds", "2"), capsys
    )
    assert code == 0, err
    doc = json.loads(out_json.read_text())
    assert {"backbone", "dataset", "protocol", "results", "timing"} <= set(doc)
    assert doc["backbone"] == "aisfx" and doc["dataset"] == "set" and doc["n_classes"] == 3
    assert doc["protocol"]["shots"] == [1, 2] and doc["protocol"]["seeds"] == 2
    assert doc["protocol"]["test_folds"] == ["1", "2"] and doc["protocol"]["support"] and doc["protocol"]["query"]
    assert [(r["method"], r["shots"]) for r in doc["results"]] == [
        ("prototype", 1),
        ("prototype", 2),
        ("tip_adapter", 1),
        ("tip_adapter", 2),
    ]
    for r in doc["results"]:
        assert {"method", "shots", "accuracy_mean", "accuracy_std", "n_seeds", "n_query"} <= set(r)
        assert 0.0 <= r["accuracy_mean"] <= 100.0 and r["n_seeds"] == 2 and r["n_folds"] == 2
        assert r["n_query"] == 6  # each fold in turn is the query: 2 folds of 6 clips
    # the printed table shows exactly the JSON numbers
    cells = parse_table(out)
    assert cells == {
        (r["method"], r["shots"]): f"{r['accuracy_mean']:.1f} ± {r['accuracy_std']:.1f}" for r in doc["results"]
    }
    t = doc["timing"]
    assert t["cache_hits"] == 12 and t["computed"] == 0 and t["failed"] == 0
    assert (
        set(t["methods"]) == {"prototype", "tip_adapter"} and t["methods"]["prototype"]["runs"] == 8
    )  # 2 shots x 2 seeds x 2 folds
    assert forwards == []  # features came from the store: no backbone forward at all

    # a second run on the same data: all cache hits, still no forward, same numbers
    code, _, _ = run(
        evaluate_argv(
            synth, tmp_path / "again.json", "--methods", "prototype,tip_adapter", "--shots", "1,2", "--seeds", "2"
        ),
        capsys,
    )
    again = json.loads((tmp_path / "again.json").read_text())
    assert code == 0 and again["timing"]["cache_hits"] == 12 and again["timing"]["computed"] == 0
    assert forwards == []
    assert [r["accuracy_mean"] for r in again["results"]] == [r["accuracy_mean"] for r in doc["results"]]


def test_evaluate_new_store_computes_then_hits(tmp_path, synth, capsys, monkeypatch):
    from mgcl.backbones.aisfx import AisfxBackbone

    forwards = []
    original = AisfxBackbone.encode_audio
    monkeypatch.setattr(AisfxBackbone, "encode_audio", lambda self, w: forwards.append(len(w)) or original(self, w))
    argv = [
        "evaluate",
        "--manifest",
        synth["manifest"],
        "--store",
        tmp_path / "fresh",
        "--methods",
        "prototype",
        "--shots",
        "1",
        "--seeds",
        "1",
        "--out",
        tmp_path / "r.json",
    ]
    assert run(argv, capsys)[0] == 0
    assert sum(forwards) == 12 and json.loads((tmp_path / "r.json").read_text())["timing"]["computed"] == 12
    assert run(argv, capsys)[0] == 0
    assert sum(forwards) == 12  # second evaluate: no forward
    assert json.loads((tmp_path / "r.json").read_text())["timing"]["cache_hits"] == 12


def test_evaluate_test_fold_keeps_support_and_query_apart(tmp_path, synth, capsys, monkeypatch):
    import mgcl.evaluation.protocols as ev

    splits = []
    original = ev.few_shot_split

    def spy(*args, **kwargs):
        s, q = original(*args, **kwargs)
        splits.append((s, q))
        return s, q

    monkeypatch.setattr(ev, "few_shot_split", spy)
    out_json = tmp_path / "r.json"
    code, _, err = run(
        evaluate_argv(synth, out_json, "--methods", "prototype", "--shots", "1,2", "--seeds", "3", "--test-fold", "2"),
        capsys,
    )
    assert code == 0, err
    doc = json.loads(out_json.read_text())
    assert doc["protocol"]["test_folds"] == ["2"]
    folds = np.array([r.fold for r in synth["rows"]])
    runs = splits[-6:]  # 2 shots x 3 seeds inside the protocol
    for s, q in runs:
        assert set(s).isdisjoint(q)
        assert (folds[s] == "1").all() and (folds[q] == "2").all() and len(q) == (folds == "2").sum()
    assert all(r["n_query"] == 6 for r in doc["results"])


def test_evaluate_ablation_rows(tmp_path, synth, capsys):
    from mgcl.methods import method_class

    try:
        method_class("mgcl")
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"mgcl does not import yet: {exc}")
    out_json = tmp_path / "r.json"
    code, out, err = run(
        evaluate_argv(
            synth, out_json, "--methods", "prototype,mgcl", "--ablate", "fc,cc", "--shots", "1", "--seeds", "1"
        ),
        capsys,
    )
    assert code == 0, err
    doc = json.loads(out_json.read_text())
    assert [r["method"] for r in doc["results"]] == ["prototype", "mgcl", "mgcl-fc", "mgcl-cc"]
    assert doc["methods"]["mgcl-fc"] == {"method": "mgcl", "params": {"ablate": ["fc"]}}
    assert ("mgcl-cc", 1) in parse_table(out)


def test_evaluate_mgcl_f_embeds_support_views_once_and_only_of_support_rows(tmp_path, synth, capsys, monkeypatch):
    import mgcl.store.features as F

    asked = []
    original = F.ViewCache.prepare
    monkeypatch.setattr(
        F.ViewCache,
        "prepare",
        lambda self, rows, names, progress=None: (
            asked.append(sorted(int(i) for i in rows)) or original(self, rows, names, progress)
        ),
    )
    fast = ["--param", "mgcl_f.epoch_grid=0,2", "--param", "mgcl_f.default_epochs=2", "--param", "mgcl_f.cv_rounds=1"]
    argv = evaluate_argv(
        synth,
        tmp_path / "r.json",
        "--methods",
        "mgcl_f",
        "--ablate",
        "views",
        "--shots",
        "1,2",
        "--seeds",
        "1",
        "--test-fold",
        "2",
        *fast,
    )
    code, out, err = run(argv, capsys)
    assert code == 0, err
    doc = json.loads((tmp_path / "r.json").read_text())
    assert [r["method"] for r in doc["results"]] == ["mgcl_f", "mgcl_f", "mgcl_f-views", "mgcl_f-views"]
    assert doc["methods"]["mgcl_f-views"]["params"]["augment"] == []
    folds = np.array([r.fold for r in synth["rows"]])
    assert asked and all((folds[rows] == "1").all() for rows in asked)  # never a query clip's views
    views = doc["timing"]["views"]
    # three views per support row (the module's shared store may hold some of them already:
    # mgcl, in other tests, learns from the same views)
    assert views["failed"] == 0 and views["computed"] > 0
    assert views["computed"] + views["cache_hits"] == 3 * len(asked[0])
    assert "audio views" in out
    code, _, _ = run(argv, capsys)  # again: every view is a store hit
    again = json.loads((tmp_path / "r.json").read_text())["timing"]["views"]
    assert code == 0 and again["computed"] == 0 and again["cache_hits"] == 3 * len(asked[0])


def test_evaluate_bad_file_exit_1_rest_evaluated(tmp_path, synth, capsys):
    rows = [(str(r.path), r.label, r.fold) for r in synth["rows"]] + [("nothing.wav", "siren", "1")]
    m = write_manifest(tmp_path / "ds" / "manifest.csv", rows, header=("path", "label", "fold"))
    code, _, err = run(
        [
            "evaluate",
            "--manifest",
            m,
            "--store",
            synth["store"],
            "--methods",
            "prototype",
            "--shots",
            "1",
            "--seeds",
            "1",
            "--out",
            tmp_path / "r.json",
        ],
        capsys,
    )
    assert code == 1 and "nothing.wav: file not found" in err
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["dataset"] == "ds" and doc["n_clips"] == 12 and doc["timing"]["failed"] == 1


@pytest.mark.parametrize(
    "argv,message",
    [
        (["evaluate", "--manifest", "{m}", "--methods", "prototype,nope"], "unknown method 'nope'"),
        (
            ["evaluate", "--manifest", "{m}", "--backbone", "nope", "--methods", "prototype", "--shots", "1"],
            "unknown backbone 'nope'",
        ),
        (
            ["evaluate", "--manifest", "{nofold}", "--methods", "prototype", "--shots", "1,4"],
            "--shots 4 leaves none for the query",
        ),
        (
            ["evaluate", "--manifest", "{m}", "--methods", "prototype", "--shots", "1,4"],
            "class 'alarm beep' has 2 clips available for support, fewer than --shots 4",
        ),
        (
            ["evaluate", "--manifest", "{m}", "--methods", "prototype", "--shots", "3", "--test-fold", "1"],
            "fewer than --shots 3",
        ),
        (["evaluate", "--manifest", "{m}", "--methods", "prototype", "--shots", "a"], "--shots must be"),
        (
            ["evaluate", "--manifest", "{m}", "--methods", "prototype", "--param", "topk=3"],
            "not of the form method.key=value",
        ),
        (
            ["evaluate", "--manifest", "{m}", "--methods", "prototype", "--param", "prototype.k=3"],
            "method 'prototype' has no parameter 'k'",
        ),
        (["evaluate", "--manifest", "{m}", "--methods", "prototype", "--ablate", "fc"], "--ablate"),
        (
            ["evaluate", "--manifest", "{nofold}", "--methods", "prototype", "--shots", "1", "--test-fold", "1"],
            "--test-fold needs a 'fold' column",
        ),
        (["fit", "--manifest", "{m}", "--method", "nope", "--out", "{out}"], "unknown method 'nope'"),
        (["fit", "--manifest", "{one}", "--method", "prototype", "--out", "{out}"], "need at least 2 classes"),
        (["fit", "--manifest", "{m}", "--method", "zero_shot", "--out", "{out}"], "needs a text encoder"),
        (["predict", "{out}", "{wav}"], "model folder not found"),
        (["predict", "{out}", "{wav}", "--top-k", "0"], "--top-k must be at least 1"),
    ],
)
def test_evaluate_fit_predict_one_line_errors(tmp_path, synth, capsys, argv, message):
    rows = synth["rows"]
    nofold = write_manifest(tmp_path / "nofold.csv", [(str(r.path), r.label) for r in rows])
    one = write_manifest(tmp_path / "one.csv", [(str(r.path), "x") for r in rows[:3]])
    subs = dict(m=synth["manifest"], nofold=nofold, one=one, out=tmp_path / "model", wav=rows[0].path)
    argv = [a.format(**subs) for a in argv] + ["--store", str(synth["store"])]
    code, out, err = run(argv, capsys)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "model").exists()


def test_demo_uses_demo_methods_and_checks_names(tmp_path, capsys, monkeypatch):
    import mgcl.cli.demo as cli_demo
    from mgcl.pipeline import DEMO_METHODS, Demo

    seen = {}

    def fake_demo(workdir, **kw):
        seen.update(kw)
        return Demo(
            Path(workdir) / "manifest.csv",
            4,
            2,
            [],
            None,
            None,
            dict.fromkeys(("generate", "embed", "views", "evaluate", "total"), 0.0),
        )

    monkeypatch.setattr(cli_demo, "run_demo", fake_demo)
    assert main(["demo", "--workdir", str(tmp_path / "w"), "--shots", "1,2"]) == 0
    assert seen["methods"] == tuple(DEMO_METHODS) and seen["shots"] == [1, 2]
    assert main(["demo", "--workdir", str(tmp_path / "w"), "--methods", "prototype,tip_adapter"]) == 0
    assert seen["methods"] == ("prototype", "tip_adapter")
    code = main(["demo", "--workdir", str(tmp_path / "w2"), "--methods", "nope"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "unknown method 'nope'" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "w2").exists()  # nothing generated before the check
