"""Descriptions and captions reach the text branches (wiring of --descriptions / --captions)."""

import json

import pytest
import torch

from mgcl.backbones import get_backbone
from mgcl.cli import main
from mgcl.data.manifest import read_manifest
from mgcl.data.synthetic import make_dataset
from mgcl.errors import MgclError
from mgcl.evaluation.protocols import _text_for
from mgcl.methods import make_method
from mgcl.store.features import embed_sources
from mgcl.text.resolve import captions_from_file, captions_wanted, resolve_descriptions, text_features


@pytest.fixture(scope="module")
def tiny():
    return get_backbone("clap-tiny-random")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("syn")
    return make_dataset(root, n_per_class=3, classes=["siren", "knock", "rain"], duration=1.5, seed=1)


def _desc(classes, word):
    return {c: [f"{word} sound number {i} of {c}" for i in range(8)] for c in classes}


def test_fine_text_logits_change_when_descriptions_change(tiny, dataset):
    rows = read_manifest(dataset)
    classes = sorted({r.label for r in rows})
    feats = embed_sources(tiny, [r.path for r in rows]).stacked()
    y = torch.tensor([classes.index(r.label) for r in rows])
    out = []
    for word in ("loud metallic", "soft watery"):
        text = text_features(tiny, classes, _desc(classes, word), None)
        m = make_method("mgcl", branches=("zs", "ft"), alphas=(1.0,)).fit(feats, y, text=text)
        out.append(m.branch_logits(feats))
    assert set(out[0]) == {"zs", "ft"}
    assert not torch.allclose(out[0]["ft"], out[1]["ft"])
    assert not torch.allclose(out[0]["zs"], out[1]["zs"])  # W_c = mean(prompt, descriptions)


def test_builtin_descriptions_match_by_label(tiny):
    found = resolve_descriptions("builtin", ["dog_bark", "siren", "not a class"], has_text=True, warn=lambda m: None)
    assert set(found) == {"dog_bark", "siren"} and len(found["siren"]) >= 8
    assert resolve_descriptions("none", ["siren"], has_text=True) is None
    notes = []
    assert resolve_descriptions("builtin", ["siren"], has_text=False, warn=notes.append) is None
    assert notes == []  # the default stays silent for audio-only backbones


def test_caption_file_is_matched_to_manifest_rows(tmp_path, dataset, tiny):
    rows = read_manifest(dataset)
    table = {p.relative_to(dataset.parent).as_posix(): f"caption {i}" for i, p in enumerate(r.path for r in rows)}
    f = tmp_path / "caps.json"
    f.write_text(json.dumps(table))
    caps = captions_from_file(str(f), [r.path for r in rows], dataset)
    assert caps == [f"caption {i}" for i in range(len(rows))]
    text = text_features(tiny, ["knock", "rain", "siren"], None, caps)
    assert text.captions.shape == (len(rows), tiny.dim)
    sub = _text_for(text, [0, 2])  # a task's text side: its support clips' captions
    torch.testing.assert_close(sub.captions, text.captions[[0, 2]])
    del table[next(iter(table))]
    f.write_text(json.dumps(table))
    with pytest.raises(MgclError, match="no caption for 1 of"):
        captions_from_file(str(f), [r.path for r in rows], dataset)


def test_evaluate_with_descriptions_and_auto_captions(tmp_path, dataset, capsys):
    desc = tmp_path / "desc.json"
    desc.write_text(json.dumps(_desc(["siren", "knock", "rain"], "bright")))
    out = tmp_path / "r.json"
    argv = [
        "evaluate",
        "--manifest",
        str(dataset),
        "--backbone",
        "clap-tiny-random",
        "--store",
        str(tmp_path / "store"),
        "--methods",
        "zero_shot,zero_shot_desc,mgcl",
        "--shots",
        "1",
        "--seeds",
        "2",
        "--descriptions",
        str(desc),
        "--captions",
        "auto",
        "--captioner",
        "tiny-random",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    doc = json.loads(out.read_text())
    acc = {r["method"]: r["accuracy_mean"] for r in doc["results"]}
    assert set(acc) == {"zero_shot", "zero_shot_desc", "mgcl"}
    # captions were cached in the store: a second run captions nothing new
    caption_files = list((tmp_path / "store" / "captions").glob("*/??/*.json"))
    assert len(caption_files) == len(read_manifest(dataset))
    mtimes = [p.stat().st_mtime_ns for p in caption_files]
    assert main(argv) == 0
    assert [p.stat().st_mtime_ns for p in caption_files] == mtimes


def test_captions_ignored_with_a_note_on_audio_only_backbones(tmp_path, dataset, capsys):
    pytest.importorskip("aisfx")
    assert captions_wanted("auto", has_text=False, warn=lambda m: print(m)) is False
    assert "ignored" in capsys.readouterr().out
    assert captions_wanted("none", has_text=True) is False and captions_wanted("auto", has_text=True)
