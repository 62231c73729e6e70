"""A new user's first hour: `fit --folders`, `predict` on folders / manifests with --out,
`mgcl info`, fit's summary in words, and errors that name the resolved path."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

import mgcl.backbones
import mgcl.classifier.estimator
import mgcl.pipeline
from mgcl.audio.decode import SUPPORTED_EXTENSIONS
from mgcl.cli import main
from mgcl.cli.common import describe_choices, non_default_params
from mgcl.data.inputs import audio_files
from mgcl.data.manifest import read_manifest
from mgcl.data.synthetic import CLASSES, make_dataset


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def sounds(tmp_path_factory):
    """3 classes x 4 clips (2 s) as a folder per class (half of each class one level deeper,
    a non-audio file beside them), embedded once into an aisfx store, and a prototype model
    fitted on the folders."""
    pytest.importorskip("aisfx")
    from mgcl.backbones import get_backbone
    from mgcl.store.features import FeatureStore, embed_sources

    root = tmp_path_factory.mktemp("verbs")
    manifest = make_dataset(root / "set", n_per_class=4, seed=1, n_folds=2, classes=CLASSES[:3], duration=2.0)
    rows = read_manifest(manifest)
    folders = root / "my_sounds"
    for i, r in enumerate(rows):
        d = folders / r.label / ("more" if i % 2 else "")
        d.mkdir(parents=True, exist_ok=True)
        shutil.copy(r.path, d / r.path.name)
    (folders / "notes.txt").write_text("not a class")
    (folders / rows[0].label / "cover.jpg").write_bytes(b"\xff\xd8 not audio")
    store = root / "store"
    bb = get_backbone("aisfx")
    assert not embed_sources(bb, [r.path for r in rows], FeatureStore(store, bb.identity)).errors
    model = root / "model"
    argv = ["fit", "--folders", folders, "--method", "prototype", "--store", store, "--out", model]
    assert main([str(a) for a in argv]) == 0
    return {"manifest": manifest, "rows": rows, "folders": folders, "store": store, "model": model}


def no_backbone(monkeypatch):
    """Fail loudly if anything builds a backbone."""

    def refuse(*args, **kwargs):
        raise AssertionError("a backbone was built")

    for module in (mgcl.backbones, mgcl.pipeline, mgcl.classifier.estimator):
        monkeypatch.setattr(module, "get_backbone", refuse)


# ----------------------------------------------------------------------------- fit --folders
def test_fit_folders_fits_and_says_what_it_did_in_order(tmp_path, sounds, capsys):
    model = tmp_path / "m"
    argv = ["fit", "--folders", sounds["folders"], "--method", "tip_adapter", "--param", "betas=2,8"]
    code, out, err = run([*argv, "--store", sounds["store"], "--out", model], capsys)
    assert code == 0, err
    lines = out.splitlines()
    starts = ["support:", "backbone:", "method:", "chosen on the support set:", "saved:", "time:"]
    at = [next(i for i, line in enumerate(lines) if line.startswith(s)) for s in starts]
    assert at == sorted(at), out
    assert f"support: 12 clips, 3 classes ({sounds['folders']})" in out and out.count("  4 clips") == 3
    assert "backbone: aisfx (0 computed, 12 cache hits)" in out  # copies of embedded clips: same content
    assert "method: tip_adapter (betas=[2, 8])" in out
    assert "chosen on the support set: cache weight alpha " in out and ", sharpness beta " in out
    assert "learned state" not in out and '"beta_"' not in out  # raw state only with -v / --json
    cfg = json.loads((model / "config.json").read_text())
    names = sorted(d.name for d in sounds["folders"].iterdir() if d.is_dir())
    assert cfg["classes"] == names and cfg["support_counts"] == dict.fromkeys(names, 4)
    assert cfg["learned"]["beta_"] in (2, 8)


def test_fit_raw_state_with_verbose_or_json(tmp_path, sounds, capsys):
    base = ["fit", "--folders", sounds["folders"], "--method", "tip_adapter", "--store", sounds["store"]]
    code, out, err = run(["-v", *base, "--out", tmp_path / "a"], capsys)
    assert code == 0, err
    assert "learned state: {" in out and '"beta_"' in out
    code, out, err = run([*base, "--out", tmp_path / "b", "--json"], capsys)
    assert code == 0, err
    doc = json.loads(out)  # one JSON document and nothing else on stdout
    assert doc["support"]["clips"] == 12 and doc["support"]["kind"] == "folders"
    assert doc["backbone"]["name"] == "aisfx" and doc["backbone"]["cache_hits"] == 12
    assert doc["method"]["name"] == "tip_adapter" and set(doc["learned"]) == {"alpha_", "beta_"}
    assert doc["chosen"][0].startswith("cache weight alpha")
    assert doc["model"]["folder"] == str(tmp_path / "b") and (tmp_path / "b" / "config.json").is_file()


def test_fit_folders_with_an_empty_class_folder_is_a_one_line_error(tmp_path, sounds, capsys):
    folders = tmp_path / "s"
    (folders / "dog").mkdir(parents=True)
    shutil.copy(sounds["rows"][0].path, folders / "dog" / "bark.wav")
    (folders / "cat" / "photos").mkdir(parents=True)
    (folders / "cat" / "photos" / "cat.jpg").write_bytes(b"jpeg")
    code, out, err = run(["fit", "--folders", folders, "--store", sounds["store"], "--out", tmp_path / "m"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "class folder 'cat' has no audio files" in err and str(folders / "cat") in err
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("support", [[], ["--folders", "x", "--manifest", "y.csv"]])
def test_fit_takes_exactly_one_of_folders_and_manifest(tmp_path, capsys, support):
    with pytest.raises(SystemExit) as e:
        main(["fit", *support, "--out", str(tmp_path / "m")])
    assert e.value.code == 2 and "--folders" in capsys.readouterr().err


# ----------------------------------------------------------------------------- predict
def read_csv(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def test_predict_a_folder_writes_csv_and_jsonl(tmp_path, sounds, capsys):
    expected = [str(p) for p in audio_files(sounds["folders"], SUPPORTED_EXTENSIONS)]
    assert len(expected) == 12
    out_csv = tmp_path / "out" / "predictions.csv"
    base = ["predict", sounds["model"], sounds["folders"], "--store", sounds["store"]]
    code, out, err = run([*base, "--out", out_csv], capsys)
    assert code == 0, err
    assert "classified 12 of 12 file(s)" in out and f"written: {out_csv} (12 row(s))" in out
    header, rows = read_csv(out_csv)
    assert header == ["file", "label", "probability", "top_k"]
    assert [r["file"] for r in rows] == expected  # one row per audio file, natural order
    classes = json.loads((sounds["model"] / "config.json").read_text())["classes"]
    for r in rows:
        top = [item.rpartition(":") for item in r["top_k"].split(";")]
        assert len(top) == 3 and {lab for lab, _, _ in top} == set(classes)
        assert top[0][0] == r["label"] and float(top[0][2]) == float(r["probability"])
        assert 1.0 >= float(top[0][2]) >= float(top[1][2]) >= float(top[2][2]) >= 0.0
    truth = {str(p): p.relative_to(sounds["folders"]).parts[0] for p in map(Path, expected)}
    assert sum(r["label"] == truth[r["file"]] for r in rows) >= 10  # support clips: (near) perfect

    out_jsonl = tmp_path / "predictions.jsonl"
    code, out, err = run([*base, "--out", out_jsonl, "--top-k", "2"], capsys)
    assert code == 0, err
    records = [json.loads(line) for line in out_jsonl.read_text().splitlines()]
    assert [r["file"] for r in records] == expected
    for r, c in zip(records, rows):
        assert set(r) == {"file", "label", "probability", "top_k"} and r["label"] == c["label"]
        assert r["top_k"][0] == {"label": r["label"], "probability": r["probability"]} and len(r["top_k"]) == 2


def test_predict_mixes_files_folders_and_manifests_and_lists_bad_files(tmp_path, sounds, capsys):
    rows = sounds["rows"]
    clips = tmp_path / "new_clips"
    (clips / "b").mkdir(parents=True)
    shutil.copy(rows[1].path, clips / "b" / "clip10.wav")
    shutil.copy(rows[2].path, clips / "b" / "clip9.wav")
    (clips / "broken.wav").write_text("not audio at all" * 30)
    (clips / "notes.txt").write_text("ignored")
    listed = tmp_path / "more.csv"
    listed.write_text(f"path,label\n{rows[3].path},x\nnew_clips/b/clip9.wav,y\n")
    out_csv = tmp_path / "p.csv"
    argv = ["predict", sounds["model"], rows[0].path, clips, listed, "--out", out_csv, "--store", sounds["store"]]
    code, out, err = run(argv, capsys)
    assert code == 1
    assert "1 of 6 file(s) could not be classified" in err and "broken.wav: not audio or undecodable" in err
    assert "classified 5 of 6 file(s)" in out
    _, got = read_csv(out_csv)
    assert [r["file"] for r in got] == [
        str(rows[0].path),
        str(clips / "b" / "clip9.wav"),  # natural order: clip9 before clip10
        str(clips / "b" / "clip10.wav"),
        str(rows[3].path),
        str(tmp_path / "new_clips" / "b" / "clip9.wav"),  # manifest rows resolved against its folder
    ]


def test_predict_without_out_keeps_lines_and_json(sounds, capsys):
    folder = sounds["folders"]
    code, out, err = run(["predict", sounds["model"], folder, "--top-k", "1", "--store", sounds["store"]], capsys)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 12 and all(len(line.split("\t")) == 3 for line in lines)
    code, out, _ = run(["predict", sounds["model"], folder, "--json", "--store", sounds["store"]], capsys)
    assert code == 0 and len(json.loads(out)) == 12


@pytest.mark.parametrize(
    "extra,message",
    [
        (["{folders}", "--out", "{tmp}/p.txt"], "must end in .csv or .jsonl"),
        (["{tmp}/typo_folder"], "typo_folder: no such file or folder (resolved to "),
        (["{tmp}/empty"], "empty: no audio files"),
        (["{tmp}/none.csv"], "none.csv: manifest not found"),
    ],
)
def test_predict_one_line_errors(tmp_path, sounds, capsys, extra, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "a.txt").write_text("x")
    argv = [a.format(folders=sounds["folders"], tmp=tmp_path) for a in extra]
    code, out, err = run(["predict", sounds["model"], *argv, "--store", sounds["store"]], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "p.txt").exists()


# ----------------------------------------------------------------------------- info
def test_info_lists_what_the_model_knows_without_a_backbone(sounds, capsys, monkeypatch):
    no_backbone(monkeypatch)
    model = sounds["model"]
    code, out, err = run(["info", model], capsys)
    assert code == 0, err
    cfg = json.loads((model / "config.json").read_text())
    assert f"created: {cfg['created']}" in out
    assert "classes: 3 (12 support clips)" in out
    for c in cfg["classes"]:
        assert any(line.split() == [*c.split(), "4", "clips"] for line in out.splitlines()), c
    assert "method: prototype (default hyper-parameters)" in out
    assert f"backbone: aisfx (identity {cfg['backbone']['identity']}" in out
    sha = hashlib.sha256((model / "weights.safetensors").read_bytes()).hexdigest()
    assert f"sha256 {sha}" in out and f"model card: {model / 'README.md'}" in out

    code, out, err = run(["info", model, "--json"], capsys)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["classes"] == [{"name": c, "support": 4} for c in cfg["classes"]]
    assert doc["method"]["name"] == "prototype" and doc["method"]["non_default_params"] == {}
    assert doc["weights"]["sha256"] == sha and doc["backbone"]["name"] == "aisfx"


def test_info_in_words_non_defaults_and_an_older_model(tmp_path, sounds, capsys, monkeypatch):
    model = tmp_path / "tip"
    argv = ["fit", "--folders", sounds["folders"], "--method", "tip_adapter", "--param", "betas=2,8"]
    assert run([*argv, "--store", sounds["store"], "--out", model], capsys)[0] == 0
    cfg_path = model / "config.json"
    cfg = json.loads(cfg_path.read_text())
    del cfg["created"]  # models saved before the creation time was recorded
    cfg_path.write_text(json.dumps(cfg))
    no_backbone(monkeypatch)
    code, out, err = run(["info", model], capsys)
    assert code == 0, err
    assert "method: tip_adapter (betas=[2, 8])" in out
    assert f"chosen on the support set: cache weight alpha 1, sharpness beta {cfg['learned']['beta_']:g}" in out
    assert "created: unknown" in out


@pytest.mark.parametrize("case", ["missing", "not_a_model", "tampered"])
def test_info_one_line_errors(tmp_path, sounds, capsys, case):
    folder = tmp_path / "model"
    if case == "not_a_model":
        folder.mkdir()
    elif case == "tampered":
        shutil.copytree(sounds["model"], folder)
        (folder / "weights.safetensors").write_bytes(b"changed")
    code, out, err = run(["info", folder], capsys)
    message = {
        "missing": "model folder not found",
        "not_a_model": "not an mgcl model folder",
        "tampered": "does not match config.json",
    }[case]
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1 and not out


def test_info_has_teaching_help(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "info" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(["info", "--help"])
    text = capsys.readouterr().out
    assert e.value.code == 0 and text.startswith("usage: mgcl info") and "example" in text


# ----------------------------------------------------------------------------- words
def test_choices_in_words():
    learned = {
        "n_classes_": 3,
        "branches_": ["cc", "fc"],
        "alpha_": {"cc": 0.5, "fc": 1.0},
        "beta_": {"cc": 8.0, "fc": 2.0},
        "cv_accuracy_": 91.66666,
        "spread_": {"cc": 0.5, "fc": 0.6},
        "epochs_": 25,
        "branch_weights_": {"lin": 1.0, "cc": 0.5, "fp": 0.125},
        "params_": {"__tensor_dict__": ["head_w"]},
    }
    lines = describe_choices("mgcl_f", learned)
    assert lines[:3] == [
        "coarse cache (cc): weight 0.5, sharpness beta 8",
        "fine cache, OT (fc): weight 1, sharpness beta 2",
        "chosen by leave-one-shot-out cross-validation, 91.7% of held-out support clips right",
    ]
    assert "fine-tuning epochs: 25" in lines
    weights = "trained branch weights: linear head (lin) 1, coarse cache (cc) 0.5, frame prototypes, OT (fp) 0.125"
    assert weights in lines
    assert not any("spread" in line or "tensor" in line for line in lines)
    one_shot = describe_choices("mgcl", {**learned, "cv_accuracy_": None})
    assert "no cross-validation (one clip per class, or cv_rounds 0): the defaults hold" in one_shot
    assert describe_choices("linear_probe", {"C_": 10.0}) == ["regularisation C 10 (inverse strength)"]
    assert describe_choices("prototype", {"n_classes_": 3, "dim_": 8}) == []


def test_non_default_params():
    assert non_default_params("tip_adapter", {"betas": [2, 8], "alphas": [0.1, 0.3, 1.0, 3.0, 10.0]}) == {
        "betas": [2, 8]
    }
    assert non_default_params("no_such_method", {"a": 1}) == {"a": 1}


# ----------------------------------------------------------------------------- errors name paths
def test_missing_manifest_row_names_the_resolved_path(tmp_path, sounds, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rows = [(str(r.path), r.label) for r in sounds["rows"]] + [("audio/typing/typing01.ogg", "typing")]
    with open("support.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([("path", "label"), *rows])
    code, out, err = run(
        ["fit", "--manifest", "support.csv", "--method", "prototype", "--store", sounds["store"], "--out", "m"],
        capsys,
    )
    assert code == 1 and not Path("m").exists()
    tried = os.path.abspath(os.path.join("audio", "typing", "typing01.ogg"))
    assert f"audio/typing/typing01.ogg: file not found (resolved to {tried})" in err
    assert f"relative paths are resolved against {os.path.abspath('.')}" in err
