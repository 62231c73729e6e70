"""`mgcl fit --reject auto [--background]` then `mgcl predict` / `mgcl info` on tiny synthetic
audio: unknown rows, the threshold in the summary and in the model."""

from __future__ import annotations

import csv
import json

import pytest
import soundfile as sf

from mgcl import backbones as backbones_mod
from mgcl.cli import main
from tests.conftest import tone

SR = 8000
FREQS = {"low": 300.0, "mid": 900.0, "high": 1500.0}  # the counting backbone's bands 0, 1, 2
UNSEEN = 3500.0  # band 6: no support class sounds like it


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def tones(tmp_path, monkeypatch):
    """A support folder (3 classes x 3 tones), queries (one per class and 2 unseen tones),
    background noise clips, and the counting test backbone registered by name."""
    monkeypatch.setitem(backbones_mod._REGISTRY, "counting-test", ("tests.conftest:CountingBackbone", "test"))

    def write(path, samples):
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, samples, SR)
        return path

    for name, f in FREQS.items():
        for i in range(3):
            write(tmp_path / "support" / name / f"{name}{i}.wav", tone(f * (1 + 0.02 * i), 1.0, SR, seed=i))
        write(tmp_path / "queries" / f"q_{name}.wav", tone(f * 1.01, 1.0, SR, seed=9))
    for i in range(2):
        write(tmp_path / "queries" / f"q_unseen{i}.wav", tone(UNSEEN * (1 + 0.02 * i), 1.0, SR, seed=i))
    for i in range(4):
        write(tmp_path / "background" / f"bg{i}.wav", tone(UNSEEN * (1 - 0.03 * i), 1.0, SR, seed=20 + i))
    return tmp_path


def fit(tones, capsys, *extra):
    argv = ["fit", "--folders", tones / "support", "--backbone", "counting-test", "--method", "prototype"]
    argv += ["--store", tones / "store", "--out", tones / "model", *extra]
    return run(argv, capsys)


def test_fit_reject_auto_then_predict_writes_unknown_rows(tones, capsys):
    code, out, err = fit(tones, capsys, "--reject", "auto")
    assert code == 0, err
    assert "open set: 'unknown' below probability" in out and "accepts 95% of 9 held-out support clips" in out
    cfg = json.loads((tones / "model" / "config.json").read_text())
    assert cfg["open_set"]["reject"] == "auto" and 0 < cfg["open_set"]["threshold"] < 1
    code, out, err = run(["predict", tones / "model", tones / "queries", "--out", tones / "p.csv"], capsys)
    assert code == 0, err
    rows = {r["file"].rsplit("/", 1)[-1]: r for r in csv.DictReader((tones / "p.csv").open())}
    assert {k: r["label"] for k, r in rows.items()} == {
        "q_high.wav": "high",
        "q_low.wav": "low",
        "q_mid.wav": "mid",
        "q_unseen0.wav": "unknown",
        "q_unseen1.wav": "unknown",
    }
    assert all(lab.split(":")[0] in FREQS for lab in rows["q_unseen0.wav"]["top_k"].split(";"))  # classes only
    assert "unknown 2" in out
    code, out, _ = run(["info", tones / "model"], capsys)
    assert code == 0 and "open set: 'unknown' below probability" in out


def test_fit_background_and_unknown_label_and_errors(tones, capsys):
    code, out, err = fit(
        tones, capsys, "--reject", "auto", "--background", tones / "background", "--unknown-label", "?"
    )
    assert code == 0, err
    assert "open set: '?' below probability" in out and "background" in out
    doc = json.loads((tones / "model" / "config.json").read_text())["open_set"]
    assert doc["unknown_label"] == "?" and doc["stats"]["background_rejected"] == 1.0
    code, out, _ = run(["predict", tones / "model", tones / "queries", "--json"], capsys)
    labels = {r["path"].rsplit("/", 1)[-1]: r["label"] for r in json.loads(out)}
    assert labels["q_unseen0.wav"] == labels["q_unseen1.wav"] == "?" and labels["q_low.wav"] == "low"
    # --background without --reject auto; a bad --reject; no rejection by default
    code, _, err = fit(tones, capsys, "--background", tones / "background")
    assert code == 2 and "--background is used only to choose the threshold of --reject auto" in err
    code, _, err = fit(tones, capsys, "--reject", "often")
    assert code == 2 and "reject must be 'auto', None or a probability" in err
    code, out, _ = fit(tones, capsys)
    assert code == 0 and "open set: no rejection" in out
    code, out, _ = run(["predict", tones / "model", tones / "queries", "--json"], capsys)
    assert "unknown" not in {r["label"] for r in json.loads(out)}


def test_evaluate_open_set_reports_auroc_and_accuracy_at_the_threshold(tones, capsys):
    """5 tone classes x 4 clips in 2 folds: support from fold 1, queries fold 2, 1 class held out."""
    lines = ["path,label,fold"]
    for c, f in enumerate([300.0, 900.0, 1500.0, 2200.0, 3500.0]):
        for i in range(4):
            p = tones / "set" / f"c{c}_{i}.wav"
            p.parent.mkdir(parents=True, exist_ok=True)
            sf.write(p, tone(f * (1 + 0.01 * i), 1.0, SR, seed=i), SR)
            lines.append(f"{p.name},c{c},{i % 2 + 1}")
    (tones / "set" / "manifest.csv").write_text("\n".join(lines) + "\n")
    argv = ["evaluate", "--manifest", tones / "set" / "manifest.csv", "--backbone", "counting-test"]
    argv += ["--methods", "prototype", "--shots", "1,2", "--seeds", "2", "--test-fold", "2", "--open-set", "1"]
    code, out, err = run([*argv, "--store", tones / "store", "--out", tones / "r.json"], capsys)
    assert code == 0, err
    assert "open set: 1 class held out per seed" in out and "2-shot AUROC" in out
    doc = json.loads((tones / "r.json").read_text())
    assert doc["protocol"]["open_set"]["unknown_classes"] == 1
    two = next(r for r in doc["results"] if r["shots"] == 2)
    assert two["n_unknown"] == 2 and two["rejecting_runs"] == 2 and two["auroc_mean"] > 50.0
    code, _, err = run([*argv[:-1], "9", "--store", tones / "store"], capsys)
    assert code == 2 and "--open-set must be an integer from 1 to 3" in err
