"""`mgcl explain`: frame times, branch contributions, OT plans, the PNG and the command.

Small classifiers on synthetic audio: (a) the real offline aisfx backbone with mgcl_f
(skipped with a reason when aisfx is not installed), (b) the tiny random CLAP with class
descriptions and training-free mgcl. No network.
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import types

import numpy as np
import pytest
import soundfile as sf

from mgcl.classifier.estimator import FewShotAudioClassifier
from mgcl.data.synthetic import synth_clip
from mgcl.errors import MgclError
from mgcl.explain.compute import Explanation, explain_clip, frame_spans, frame_times
from mgcl.explain.render import render
from tests.conftest import aisfx_or_skip

SR = 22050
DURATION = 2.5
CLASSES = ("siren", "dog bark", "knock")
DESCRIPTIONS = {
    "siren": ["a loud wail rising and falling in pitch", "an emergency vehicle passing by"],
    "dog bark": ["a sharp bark repeated in short bursts"],
    "knock": ["knocking on a wooden door", "two dull thuds", "a hollow rap of knuckles"],
}


# ----------------------------------------------------------------------------- fixtures
def _clip(label: str, seed: int) -> np.ndarray:
    wave, _ = synth_clip(label, np.random.default_rng(seed), sr=SR, duration=DURATION, snr_db=15.0, distractor_prob=0.0)
    return wave


@pytest.fixture(scope="module")
def audio(tmp_path_factory):
    """Two support clips per class (as (waveform, sr) pairs) and one query file per class."""
    root = tmp_path_factory.mktemp("explain_audio")
    support, labels, queries = [], [], {}
    for k, label in enumerate(CLASSES):
        for i in range(2):
            support.append((_clip(label, 100 * k + i), SR))
            labels.append(label)
        path = root / f"query_{k}.wav"
        sf.write(path, _clip(label, 100 * k + 50), SR)
        queries[label] = path
    return {"support": support, "labels": labels, "queries": queries, "root": root}


@pytest.fixture(scope="module")
def aisfx_model(audio):
    aisfx_or_skip()
    clf = FewShotAudioClassifier(
        backbone="aisfx",
        method="mgcl_f",
        backbone_options={"device": "cpu"},
        method_params={"epoch_grid": (0, 5), "default_epochs": 5},
    )
    return clf.fit(audio["support"], audio["labels"])


@pytest.fixture(scope="module")
def aisfx_support(aisfx_model, audio):
    """The support features (from the store-less classifier: embedded once more, then shared)."""
    return aisfx_model.embed(audio["support"])


def _refit(base, method, support_features, labels):
    """Another method on the same backbone and support features (no second embedding)."""
    clf = FewShotAudioClassifier(backbone=base.get_backbone(), method=method)
    return clf.fit_features(support_features, labels)


@pytest.fixture(scope="module")
def clap_model(audio):
    pytest.importorskip("transformers")
    clf = FewShotAudioClassifier(
        backbone="clap-tiny-random", method="mgcl", backbone_options={"device": "cpu"}, descriptions=DESCRIPTIONS
    )
    return clf.fit(audio["support"], audio["labels"])


@pytest.fixture(scope="module")
def clap_expl(clap_model, audio):
    return explain_clip(clap_model, audio["queries"]["siren"], concepts="text")


@pytest.fixture(scope="module")
def aisfx_expl(aisfx_model, audio):
    return explain_clip(aisfx_model, audio["queries"]["knock"], concepts="audio")


def _check_png(path, min_w=600, min_h=300):
    import matplotlib.image as mpimg

    img = mpimg.imread(str(path))
    assert img.ndim == 3 and img.shape[2] in (3, 4)
    h, w = img.shape[:2]
    assert min_w <= w <= 5000 and min_h <= h <= 4000, img.shape
    assert float(img[..., :3].std()) > 0.05  # something was drawn
    return img


def _check_plan(e: Explanation, n_frames: int):
    m = len(e.concept_labels)
    assert e.plan.shape == (m, n_frames)
    assert np.all(e.plan >= 0)
    np.testing.assert_allclose(e.plan.sum(axis=1), e.row_marginal, atol=2e-4)
    np.testing.assert_allclose(e.plan.sum(axis=0), e.col_marginal, atol=2e-4)
    np.testing.assert_allclose(e.plan.sum(), 1.0, atol=1e-4)


def _check_times(e: Explanation):
    t = e.frame_times
    assert len(t) == len(e.frame_spans) > 0
    assert np.all(np.diff(t) > 0)
    assert t[0] >= 0.0 and t[-1] <= e.duration
    assert np.all(e.frame_spans[:, 0] < e.frame_spans[:, 1])


# ----------------------------------------------------------------------------- frame times
def test_aisfx_frame_spans_follow_the_block_layout():
    from mgcl.backbones import aisfx

    bb = aisfx.AisfxBackbone.__new__(aisfx.AisfxBackbone)  # the layout needs no weights
    for seconds in (0.3, 2.5, 7.31, 31.0):
        n = int(seconds * aisfx.SAMPLE_RATE)
        spans = frame_spans(bb, n)
        _, n_valid = aisfx.frame_layout(1 + n // aisfx.HOP)
        assert len(spans) == n_valid
        t = frame_times(bb, n)
        assert np.all(np.diff(t) > 0) and t[0] >= 0 and t[-1] <= n / aisfx.SAMPLE_RATE
    spans = frame_spans(bb, 20 * aisfx.SAMPLE_RATE)
    rate = len(spans) / 20.0
    assert 5.0 < rate < 5.5  # 6 steps per 50 hops of 1024 samples at 44.1 kHz
    # step 0 of block 1 starts at spectrogram frame 50
    hop = aisfx.HOP / aisfx.SAMPLE_RATE
    assert spans[6, 0] == pytest.approx(49.5 * hop)


def test_clap_frame_spans_window_by_window():
    from mgcl.backbones.clap import ClapBackbone

    bb = types.SimpleNamespace(sample_rate=48_000, window_samples=480_000, frames_per_window=32)
    bb.frame_spans = functools.partial(ClapBackbone.frame_spans, bb)  # the layout needs no model
    n = 24 * 48_000  # windows of 10 s, 10 s, then the final 10 s (14-24 s) of which 4 s are new:
    spans = frame_spans(bb, n, n_frames=77)  # 32 + 32 + 13 frames
    assert spans.shape == (77, 2)
    assert spans[0] == pytest.approx([0.0, 10 / 32])
    assert spans[32, 0] == pytest.approx(10.0)  # evenly spread frames would start at 9.97 s
    assert spans[64, 0] == pytest.approx(14 + 19 * 10 / 32)  # frame 19 of the final window
    assert spans[-1] == pytest.approx([24 - 10 / 32, 24.0])  # ends on the clip's last sample
    assert np.all(np.diff(spans[:, 0]) > 0)
    # the tiny model has 64 frames per window (64 + 64 + 26)
    tiny = types.SimpleNamespace(sample_rate=48_000, window_samples=480_000, frames_per_window=64)
    tiny.frame_spans = functools.partial(ClapBackbone.frame_spans, tiny)
    assert frame_spans(tiny, n, n_frames=154)[1, 0] == pytest.approx(10 / 64)


def test_unknown_backbone_spreads_frames_evenly():
    bb = types.SimpleNamespace(sample_rate=8000)
    t = frame_times(bb, 8000 * 4, n_frames=8)
    np.testing.assert_allclose(t, np.arange(8) * 0.5 + 0.25)


# ----------------------------------------------------------------------------- CLAP + mgcl
def test_clap_mgcl_plan_over_descriptions(clap_model, clap_expl, audio):
    e = clap_expl
    winner = e.predicted
    assert winner == clap_model.predict([str(audio["queries"]["siren"])])[0]
    np.testing.assert_allclose(
        e.probabilities, clap_model.predict_proba([str(audio["queries"]["siren"])])[0], atol=1e-5
    )
    # rows: the prompt, then the class's own sentences
    assert e.concept_kind == "descriptions"
    assert e.concept_labels[0].startswith("prompt:") and winner in e.concept_labels[0]
    assert e.concept_labels[1:] == DESCRIPTIONS[winner]
    feats = clap_model.embed([str(audio["queries"]["siren"])])
    n_real = int(feats.frame_mask.sum())
    _check_plan(e, n_real)
    np.testing.assert_allclose(e.row_marginal, 1.0 / len(e.concept_labels))
    np.testing.assert_allclose(e.col_marginal, 1.0 / n_real)
    _check_times(e)


def test_clap_plan_is_the_fine_text_branchs_plan(clap_model, clap_expl, audio):
    """Σ P ⊙ S of the shown plan is the model's own fine-text OT similarity for the winner."""
    from mgcl.methods.mgcl.branches import LOGIT_SCALE, fine_text_logits

    m = clap_model.method_
    feats = clap_model.embed([str(audio["queries"]["siren"])])
    z = fine_text_logits(feats.frames, feats.frame_mask, m.concepts_, m.concept_mask_, m.eps, LOGIT_SCALE)
    shown = float((clap_expl.plan * clap_expl.plan_similarity).sum()) * LOGIT_SCALE
    assert shown == pytest.approx(float(z[0, clap_expl.winner]), rel=1e-3, abs=1e-3)


def test_mgcl_branch_contributions_sum_to_the_logits(clap_model, clap_expl, audio):
    e = clap_expl
    assert set(e.contributions) == set(clap_model.method_.branches_)
    total = sum(e.contributions.values())
    np.testing.assert_allclose(total, e.logits, rtol=1e-4, atol=1e-4)
    table = e.branch_table()
    assert sum(r["winner"] for r in table) == pytest.approx(float(e.logits[e.winner]), rel=1e-4, abs=1e-4)
    assert sum(r["runner_up"] for r in table) == pytest.approx(float(e.logits[e.runner_up]), rel=1e-4, abs=1e-4)
    assert e.runner_up != e.winner
    assert e.probabilities[e.winner] >= e.probabilities[e.runner_up]


def test_labels_without_stored_sentences(clap_model, audio):
    clf = copy.copy(clap_model)
    clf.descriptions = None
    e = explain_clip(clf, audio["queries"]["knock"], concepts="text")
    m = len(e.concept_labels)
    assert m == 1 + len(DESCRIPTIONS[e.predicted])
    assert e.concept_labels[1:] == [f"description {i}" for i in range(1, m)]
    assert "not stored" in e.concept_note


def test_other_method_has_one_total_bar_and_text_concepts(clap_model, audio):
    clf = FewShotAudioClassifier(backbone=clap_model.get_backbone(), method="tip_adapter", descriptions=DESCRIPTIONS)
    clf.fit(audio["support"], audio["labels"])
    e = explain_clip(clf, audio["queries"]["dog bark"])
    assert list(e.contributions) == ["total"]
    np.testing.assert_allclose(e.contributions["total"], e.logits, atol=1e-5)
    assert e.concept_labels[1:] == DESCRIPTIONS[e.predicted]
    _check_plan(e, len(e.frame_times))


def test_render_clap_png(clap_expl, tmp_path):
    out = render(clap_expl, tmp_path / "sub" / "why.png")
    assert out.is_file()
    _check_png(out)
    assert not list(out.parent.glob(".*.tmp"))  # atomic write left no temp file


def test_summary_is_json(clap_expl):
    doc = json.loads(json.dumps(clap_expl.to_dict(n_matches=4)))
    assert doc["predicted"] == clap_expl.predicted
    assert doc["top_k"][0]["label"] == clap_expl.predicted
    assert len(doc["top_matches"]) == 4
    masses = [m["mass"] for m in doc["top_matches"]]
    assert masses == sorted(masses, reverse=True)
    assert all(0.0 <= m["time"] <= clap_expl.duration for m in doc["top_matches"])
    assert {m["concept"] for m in doc["top_matches"]} <= set(clap_expl.concept_labels)


def test_a_rejected_clip_is_explained_with_the_models_answer(clap_model, audio, tmp_path, monkeypatch, capsys):
    from mgcl.cli.explain import print_summary

    clip = audio["queries"]["siren"]
    kept = explain_clip(clap_model, clip, concepts="text")
    assert not kept.rejected and kept.answer == kept.predicted == clap_model.predict([clip])[0]
    p = float(kept.probabilities[kept.winner])
    monkeypatch.setattr(clap_model, "reject_threshold_", min(1.0, p + 0.01), raising=False)  # just above it
    e = explain_clip(clap_model, clip, concepts="text")
    assert clap_model.predict([clip]) == [clap_model.unknown_label_] == [e.answer]  # what predict says
    assert e.rejected and e.predicted == kept.predicted  # the picture still explains the best class
    doc = e.to_dict()
    assert doc["answer"] == "unknown" and doc["rejected"] and doc["reject_threshold"] == pytest.approx(p + 0.01)
    _check_png(render(e, tmp_path / "rejected.png"))
    print_summary(clip, e)
    assert f"\tunknown\t{p:.3f} (best class {e.predicted} {p:.3f} < rejection threshold" in capsys.readouterr().out


def test_bad_inputs_are_one_line_errors(clap_model, tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio")
    with pytest.raises(MgclError, match="bad.wav"):
        explain_clip(clap_model, bad)
    with pytest.raises(MgclError, match="concepts"):
        explain_clip(clap_model, bad, concepts="images")
    with pytest.raises(MgclError):
        explain_clip(FewShotAudioClassifier(), bad)


# ----------------------------------------------------------------------------- aisfx + mgcl_f
def test_aisfx_mgcl_f_plan_over_frame_prototypes(aisfx_model, aisfx_expl, audio):
    e = aisfx_expl
    m = aisfx_model.method_
    assert e.concept_kind == "frame prototypes"
    assert e.concept_labels == [f"prototype {i + 1}" for i in range(m.frame_prototypes)]
    feats = aisfx_model.embed([str(audio["queries"]["knock"])])
    n_real = int(feats.frame_mask.sum())
    _check_plan(e, n_real)
    # frame marginal = the model's saliency weights
    np.testing.assert_allclose(e.col_marginal, m._view(feats).weights[0][:n_real].numpy(), atol=1e-5)
    _check_times(e)
    assert len(e.frame_times) == n_real
    # the shown plan gives the fp branch's similarity for the winner
    from mgcl.methods.mgcl.branches import LOGIT_SCALE

    terms, _ = m._terms(m.params_, m._view(feats), m.values_)
    shown = float((e.plan * e.plan_similarity).sum()) * LOGIT_SCALE / 10
    assert shown == pytest.approx(float(terms["fp"][0, e.winner]), rel=2e-2, abs=2e-2)


def test_auto_explains_what_decided_and_draws_no_plan_for_a_branch_that_did_not(aisfx_model, audio, tmp_path):
    """With concepts 'auto', the OT panel is drawn only for a branch that moved the decision;
    otherwise the note names the branch that decided and by how much."""
    e = explain_clip(aisfx_model, audio["queries"]["knock"])
    rows = e.branch_table()
    margins = [abs(r["margin"]) for r in rows]
    assert margins == sorted(margins, reverse=True)  # the branches that moved the decision first
    decided = e.deciding_branch
    assert decided is not None and decided["margin"] == max(r["margin"] for r in rows)
    fp = next(r for r in rows if r["branch"] == "fp")
    positive = sum(max(r["margin"], 0.0) for r in rows)
    if max(fp["margin"], 0.0) < 0.1 * positive:  # the prototypes did not decide: no plan, a note
        assert e.plan is None and e.top_matches() == []
        assert decided["name"] in e.concept_note and "not drawn" in e.concept_note
    else:
        assert e.plan is not None
    assert e.to_dict()["decided_by"]["branch"] == decided["branch"]
    _check_png(render(e, tmp_path / "auto.png"))


def test_aisfx_mgcl_f_contributions_sum_to_the_logits(aisfx_model, aisfx_expl):
    e = aisfx_expl
    assert list(e.contributions) == aisfx_model.method_._trained_branches()
    np.testing.assert_allclose(sum(e.contributions.values()), e.logits, rtol=1e-4, atol=1e-4)


def test_aisfx_training_free_mgcl_uses_support_segments(aisfx_model, aisfx_support, audio, tmp_path):
    clf = _refit(aisfx_model, "mgcl", aisfx_support, audio["labels"])
    e = explain_clip(clf, audio["queries"]["siren"])
    assert e.concept_kind == "support segments"
    assert all(lab.startswith("support segment") for lab in e.concept_labels)
    # the columns are the clip's segments: 2.2 s windows every 0.56 s, inside the clip
    n_frames = int(clf.embed([audio["queries"]["siren"]], what="clips").frame_mask[0].sum())
    window, hop = clf.method_.segment_frames_
    assert (window, hop) == (12, 3)  # 2.2 s every 0.55 s in aisfx frames
    assert len(e.frame_spans) == max(0, n_frames - window) // hop + 1
    widths = e.frame_spans[:, 1] - e.frame_spans[:, 0]
    assert np.all(widths > 1.5) and np.all(np.diff(e.frame_spans[:, 0]) > 0)
    assert e.frame_spans[-1, 1] <= len(e.waveform) / e.sample_rate + 0.2
    _check_plan(e, len(e.frame_times))
    np.testing.assert_allclose(sum(e.contributions.values()), e.logits, rtol=1e-4, atol=1e-4)
    _check_png(render(e, tmp_path / "support.png"))


def test_render_without_plan(aisfx_model, aisfx_support, audio, tmp_path):
    clf = _refit(aisfx_model, "prototype", aisfx_support, audio["labels"])
    e = explain_clip(clf, audio["queries"]["siren"])
    assert e.plan is None and "no frame-level concepts" in e.concept_note
    assert e.to_dict()["top_matches"] == []
    with pytest.raises(MgclError, match="no audio concepts"):
        explain_clip(clf, audio["queries"]["siren"], concepts="audio")
    with pytest.raises(MgclError, match="no text tower"):
        explain_clip(clf, audio["queries"]["siren"], concepts="text")
    _check_png(render(e, tmp_path / "noplan.png"), min_h=250)


def test_render_aisfx_png(aisfx_expl, tmp_path):
    _check_png(render(aisfx_expl, tmp_path / "aisfx.png"))


# ----------------------------------------------------------------------------- command
@pytest.fixture(scope="module")
def saved_clap(clap_model, tmp_path_factory):
    return clap_model.save(tmp_path_factory.mktemp("models") / "clap_mgcl")


def test_cli_writes_png(saved_clap, audio, tmp_path, capsys):
    from mgcl.cli.explain import register

    parser = argparse.ArgumentParser(prog="mgcl")
    register(parser.add_subparsers(dest="command"))
    out = tmp_path / "why.png"
    args = parser.parse_args(
        [
            "explain",
            str(saved_clap),
            str(audio["queries"]["knock"]),
            "--out",
            str(out),
            "--store",
            str(tmp_path / "store"),
        ]
    )
    assert args.func(args) == 0
    assert out.is_file()
    _check_png(out)
    text = capsys.readouterr().out
    assert "explanation:" in text and str(out) in text


def test_cli_json(saved_clap, audio, tmp_path, capsys):
    from mgcl.cli import main

    out = tmp_path / "why.png"
    rc = main(
        [
            "explain",
            str(saved_clap),
            str(audio["queries"]["siren"]),
            "--out",
            str(out),
            "--json",
            "--top-k",
            "2",
            "--matches",
            "3",
            "--concepts",
            "text",
            "--store",
            str(tmp_path / "store"),
        ]
    )
    assert rc == 0 and out.is_file()
    doc = json.loads(capsys.readouterr().out)
    assert doc["predicted"] in CLASSES and len(doc["top_k"]) == 2
    assert doc["probability"] == pytest.approx(doc["top_k"][0]["probability"])
    assert {r["branch"] for r in doc["contributions"]} <= {"zs", "cc", "fc", "ft", "gc"}
    assert len(doc["top_matches"]) == 3 and doc["out"] == str(out)


def test_cli_explains_a_clip_named_by_a_uri(saved_clap, audio, tmp_path, capsys):
    from mgcl.cli import main
    from tests.conftest import file_uri

    clip = audio["queries"]["siren"]
    docs = []
    for src in (str(clip), file_uri(clip)):
        out = tmp_path / "why.png"
        assert main(["explain", str(saved_clap), src, "--out", str(out), "--json", "--store", str(tmp_path / "s")]) == 0
        docs.append(json.loads(capsys.readouterr().out))
    local, remote = docs
    assert remote["file"] == file_uri(clip) and remote["top_k"] == local["top_k"]
    missing = file_uri(tmp_path / "absent.wav")
    assert main(["explain", str(saved_clap), missing, "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert missing in err and "file not found" in err and not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("case", ["missing_model", "bad_audio", "missing_audio", "not_png"])
def test_cli_errors_are_one_line(case, saved_clap, audio, tmp_path, capsys):
    from mgcl.cli import main

    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF not really")
    model, clip, out = str(saved_clap), str(audio["queries"]["siren"]), str(tmp_path / "x.png")
    if case == "missing_model":
        model = str(tmp_path / "nope")
    elif case == "bad_audio":
        clip = str(bad)
    elif case == "missing_audio":
        clip = str(tmp_path / "absent.wav")
    else:
        out = str(tmp_path / "x.jpg")
    rc = main(["explain", model, clip, "--out", out, "--store", str(tmp_path / "store")])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.startswith("mgcl explain: error:") and "\n" not in err
    assert not (tmp_path / "x.png").exists()


def test_cli_help_teaches(capsys):
    from mgcl.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["explain", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for word in ("MODEL_DIR", "--out", "--json", "--top-k", "spectrogram", "descriptions", "exit status"):
        assert word in text


def test_the_nearest_support_clips_are_named(aisfx_model, audio, tmp_path):
    """An explanation names the support clips nearest the query (file, label, similarity), so a
    person can go and listen to them; they survive save and load."""
    e = explain_clip(aisfx_model, audio["queries"]["knock"])
    assert len(e.nearest) == 3
    names = {f"<waveform {i}>" for i in range(len(audio["support"]))}  # the support is in-memory audio
    assert all(n["name"] in names and n["label"] in CLASSES for n in e.nearest)
    assert all(audio["labels"][n["row"]] == n["label"] for n in e.nearest)
    sims = [n["similarity"] for n in e.nearest]
    assert sims == sorted(sims, reverse=True) and -1.0 <= sims[-1] <= sims[0] <= 1.0
    q = aisfx_model.embed([audio["queries"]["knock"]])
    row = e.nearest[0]["row"]
    assert sims[0] == pytest.approx(float(q.clip[0] @ aisfx_model.support_clips_[row]), abs=1e-4)
    assert e.to_dict()["nearest_support"] == e.nearest
    aisfx_model.save(tmp_path / "m")
    loaded = FewShotAudioClassifier.load(tmp_path / "m")
    assert loaded.nearest_support(q, 3)[0] == e.nearest
    _check_png(render(e, tmp_path / "nearest.png"))
