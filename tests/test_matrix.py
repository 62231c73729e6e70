"""Every registered method x a text backbone and an audio-only backbone, end to end.

Through the command line, as a user runs it: ``mgcl fit`` (with class descriptions and one
caption per clip for the text backbone), ``mgcl predict``, ``mgcl explain``, and the saved
model loaded back in Python. The text backbone is the tiny random CLAP (the same code as the
released CLAP); the audio-only one is the real aisfx network. A method that needs a text
tower must fail on the audio-only backbone with a one-line error and write nothing.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from mgcl.classifier.estimator import FewShotAudioClassifier
from mgcl.cli import main
from mgcl.methods import available_methods, method_class
from tests.conftest import aisfx_or_skip, tone

CLASSES = {"siren": 900.0, "engine": 120.0, "whistle": 2500.0}
SHOTS = 3
BACKBONES = ("clap-tiny-random", "aisfx")
METHODS = available_methods()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """Support manifest (3 classes x 3 clips of 3 s at 16 kHz), two queries, a descriptions
    file, a captions file keyed as `mgcl caption` writes it, and one shared feature store."""
    import soundfile as sf

    root = tmp_path_factory.mktemp("matrix")
    rows, captions = [], {}
    for c, (label, freq) in enumerate(CLASSES.items()):
        for k in range(SHOTS):
            rel = f"audio/{label}_{k}.wav"
            (root / "audio").mkdir(exist_ok=True)
            sf.write(root / rel, tone(freq * (1 + 0.03 * k), 3.0, 16000, seed=10 * c + k), 16000)
            rows.append((rel, label))
            captions[rel] = f"a {label} sound, take {k}"
    with open(root / "support.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([("path", "label"), *rows])
    queries = []
    for label, freq in list(CLASSES.items())[:2]:
        q = root / f"query_{label}.wav"
        sf.write(q, tone(freq * 1.01, 2.5, 16000, seed=99), 16000)
        queries.append(q)
    descriptions = {label: [f"the sound of a {label}", f"a loud {label} nearby"] for label in CLASSES}
    (root / "descriptions.json").write_text(json.dumps(descriptions))
    (root / "captions.json").write_text(json.dumps(captions))
    return {"root": root, "queries": queries, "store": root / "store"}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("backbone", BACKBONES)
def test_every_method_fits_predicts_saves_loads_and_explains(workspace, backbone, method, capsys):
    if backbone == "aisfx":
        aisfx_or_skip()
    root, store = workspace["root"], str(workspace["store"])
    out = root / f"model-{backbone}-{method}"
    text = backbone != "aisfx"
    fit = [
        "fit",
        "--manifest",
        str(root / "support.csv"),
        "--backbone",
        backbone,
        "--method",
        method,
        "--store",
        store,
        "--out",
        str(out),
    ]
    if text:
        fit += ["--descriptions", str(root / "descriptions.json"), "--captions", str(root / "captions.json")]
    capsys.readouterr()
    rc = main(fit)
    err = capsys.readouterr().err
    if not text and method_class(method).needs_text:
        assert rc == 2 and "needs a text encoder" in err and len(err.strip().splitlines()) == 1
        assert not out.exists()
        return
    assert rc == 0, err
    assert (out / "config.json").is_file() and (out / "weights.safetensors").is_file()

    queries = [str(q) for q in workspace["queries"]]
    assert main(["predict", str(out), *queries, "--store", store, "--json", "--top-k", "3"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["path"] for r in records] == queries
    for r in records:
        assert r["label"] in CLASSES and len(r["top_k"]) == 3
        assert sum(t["score"] for t in r["top_k"]) == pytest.approx(1.0, abs=1e-4)

    # the saved model alone (JSON + safetensors) gives the same answers in Python
    clf = FewShotAudioClassifier.load(out, store=store)
    assert clf.method == method and sorted(clf.classes_) == sorted(CLASSES)
    proba = clf.predict_proba(queries)
    for r, p in zip(records, proba):
        best = int(np.argmax(p))
        assert clf.classes_[best] == r["label"] and p[best] == pytest.approx(r["score"], abs=1e-5)

    png = root / f"explain-{backbone}-{method}.png"
    assert main(["explain", str(out), queries[0], "--out", str(png), "--store", store, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert png.stat().st_size > 1000
    assert doc["predicted"] == records[0]["label"]
