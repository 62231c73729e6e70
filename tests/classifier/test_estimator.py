"""FewShotAudioClassifier: fit / predict / score, save / load round trip, clear errors."""

from __future__ import annotations

import inspect
import json
import pickle
import shutil
import warnings

import numpy as np
import pytest
import soundfile as sf
import torch

from mgcl import backbones as backbones_mod
from mgcl.classifier.estimator import FewShotAudioClassifier
from mgcl.classifier.persistence import CARD_FILE, CONFIG_FILE, WEIGHTS_FILE
from mgcl.errors import MgclError, NotFittedError
from mgcl.methods import method_class
from mgcl.methods.calibration import fit_temperature, held_out_logits
from mgcl.methods.registry import coerce_params
from mgcl.pipeline import default_store
from mgcl.store.features import default_store_dir
from mgcl.types import AudioFeatures, l2_normalize
from tests.conftest import CountingBackbone, aisfx_or_skip, tone

CLASSES = ["alarm", "engine", "siren"]


def clustered_features(n_per_class: int, seed: int, dim: int = CountingBackbone.dim, frames: int = 5):
    """Clip + frame features of 3 separable classes (class c leans on axis c)."""
    g = torch.Generator().manual_seed(seed)
    items, labels = [], []
    for c, name in enumerate(CLASSES):
        for _ in range(n_per_class):
            f = l2_normalize(torch.randn(frames, dim, generator=g) * 0.6 + 2.0 * torch.eye(dim)[c])
            items.append((l2_normalize(f.mean(0)), f))
            labels.append(name)
    return AudioFeatures.stack(items, CountingBackbone.frame_step), labels


def importable(name: str) -> bool:
    try:
        method_class(name)
        return True
    except Exception:  # noqa: BLE001 - a method still being written must not break this file
        return False


def accepted(name: str, params: dict) -> dict:
    """Only the parameters the method's __init__ takes (keeps this file robust to renames)."""
    if not importable(name):
        return {}
    sig = inspect.signature(method_class(name).__init__).parameters
    return {k: v for k, v in params.items() if k in sig}


# small grids keep the fine-tuned methods to a second or two
FAST = {
    "tip_adapter_f": {"epoch_grid": (0, 2), "default_epochs": 2},
    "mgcl": {"cv_rounds": 1, "alphas": (0.5, 1.0), "betas": (4.0,)},
    "mgcl_f": {"cv_rounds": 1, "alphas": (0.5, 1.0), "betas": (4.0,), "epoch_grid": (0, 2), "default_epochs": 2},
}


def method_param(name):
    marks = [] if importable(name) else [pytest.mark.skip(reason=f"method '{name}' does not import yet")]
    return pytest.param(name, marks=marks, id=name)


ROUND_TRIP = [method_param(m) for m in ("prototype", "linear_probe", "tip_adapter", "tip_adapter_f", "mgcl", "mgcl_f")]


@pytest.fixture
def counting_registered(monkeypatch):
    """Make the test backbone buildable by name, as a saved model needs."""
    monkeypatch.setitem(backbones_mod._REGISTRY, "counting-test", ("tests.conftest:CountingBackbone", "test"))


@pytest.fixture
def tone_files(tmp_path):
    """3 classes x 3 clips of tones (distinct bands per class), 8 kHz wav."""
    files, labels = [], []
    for c, (name, freq) in enumerate(zip(CLASSES, (400, 1200, 2800))):
        for i in range(3):
            p = tmp_path / "audio" / f"{name}_{i}.wav"
            p.parent.mkdir(parents=True, exist_ok=True)
            sf.write(p, tone(freq * (1 + 0.03 * i), 1.0, 8000, seed=10 * c + i), 8000)
            files.append(str(p))
            labels.append(name)
    return files, labels


def fitted(method="prototype", **kw):
    feats, labels = clustered_features(2, seed=0)
    params = accepted(method, FAST.get(method, {}))
    return FewShotAudioClassifier(backbone=CountingBackbone(), method=method, method_params=params, **kw).fit_features(
        feats, labels
    )


# ----------------------------------------------------------------------------- fit / predict on files
@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    aisfx_or_skip()
    from mgcl.data.manifest import read_manifest
    from mgcl.data.synthetic import CLASSES as SYN
    from mgcl.data.synthetic import make_dataset

    root = tmp_path_factory.mktemp("synth")
    manifest = make_dataset(root / "set", n_per_class=4, seed=0, n_folds=2, classes=SYN[:3], duration=2.0)
    return read_manifest(manifest), root / "store"


def test_fit_predict_score_on_files_with_aisfx(synth):
    rows, store = synth
    support = [r for r in rows if r.fold == "1"]
    query = [r for r in rows if r.fold == "2"]
    # mixed inputs: paths and (waveform, sample_rate) pairs
    X = [str(r.path) for r in support[:-2]]
    for r in support[-2:]:
        wave, sr = sf.read(r.path, dtype="float32")
        X.append((wave, sr))
    clf = FewShotAudioClassifier(backbone="aisfx", method="prototype", store=store)
    assert clf.fit(X, [r.label for r in support]) is clf
    assert clf.classes_ == sorted({r.label for r in rows})
    assert clf.dim_ == 512 and clf.backbone_identity_.startswith("aisfx")
    qx, qy = [r.path for r in query], [r.label for r in query]
    pred = clf.predict(qx)
    proba = clf.predict_proba(qx)
    assert proba.shape == (len(query), 3)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-5)
    assert pred == [clf.classes_[i] for i in proba.argmax(1)]
    acc = clf.score(qx, qy)
    assert acc == pytest.approx(np.mean([p == t for p, t in zip(pred, qy)]))
    assert acc > 0.5  # 3 classes: chance is 1/3
    top = clf.top_k(qx[:2], k=5)
    assert [len(t) for t in top] == [3, 3]  # k is clamped to the number of classes
    assert all(t[0][0] == p and t[0][1] >= t[1][1] >= t[2][1] for t, p in zip(top, pred))
    # the store was used: a second classifier embeds nothing new
    assert len(list(store.rglob("*.safetensors"))) == len(support) + len(query)


def test_fit_rejects_bad_support_and_stays_unfitted(tmp_path, tone_files):
    files, labels = tone_files
    (tmp_path / "bad.wav").write_text("not audio" * 40)
    clf = FewShotAudioClassifier(backbone=CountingBackbone(), method="prototype", store=False)
    with pytest.raises(MgclError) as e:
        clf.fit(files + [str(tmp_path / "bad.wav"), str(tmp_path / "gone.wav")], labels + ["siren", "alarm"])
    msg = str(e.value)
    assert "2 of 11 support clips could not be used" in msg
    assert "bad.wav" in msg and "gone.wav: file not found" in msg and "\n" not in msg
    with pytest.raises(NotFittedError):
        clf.predict_features(clustered_features(1, 0)[0])


def test_predict_lists_bad_inputs(tmp_path, tone_files):
    files, labels = tone_files
    clf = FewShotAudioClassifier(backbone=CountingBackbone(), method="prototype", store=False).fit(files, labels)
    with pytest.raises(MgclError, match=r"1 of 2 queries could not be used: .*missing\.wav: file not found"):
        clf.predict([files[0], str(tmp_path / "missing.wav")])
    assert clf.predict([]) == [] and clf.predict_proba([]).shape == (0, 3)


# ----------------------------------------------------------------------------- save / load
@pytest.mark.parametrize("method", ROUND_TRIP)
def test_round_trip_identical(tmp_path, method):
    clf = fitted(method)
    query, _ = clustered_features(4, seed=1)
    before_p, before_l = clf.predict_proba_features(query), clf.predict_features(query)
    clf.save(tmp_path / "model")
    loaded = FewShotAudioClassifier.load(tmp_path / "model")
    assert loaded.classes_ == clf.classes_ and loaded.method == method
    assert np.array_equal(loaded.predict_proba_features(query), before_p)
    assert loaded.predict_features(query) == before_l
    # tuple hyper-parameters come back as tuples (JSON only has lists)
    params = loaded.method_.get_params()
    for k, v in clf.method_.get_params().items():
        assert params[k] == v and type(params[k]) is type(v), k


def test_round_trip_from_audio_builds_backbone_lazily(tmp_path, tone_files, counting_registered):
    files, labels = tone_files
    clf = FewShotAudioClassifier(backbone="counting-test", method="tip_adapter", store=False).fit(files, labels)
    expected = clf.predict_proba(files)
    clf.save(tmp_path / "m")
    loaded = FewShotAudioClassifier.load(tmp_path / "m", store=False)
    assert getattr(loaded, "_backbone", None) is None  # nothing built on load
    assert np.array_equal(loaded.predict_proba(files), expected)
    assert loaded.score(files, labels) == clf.score(files, labels)


def test_saved_folder_holds_config_weights_and_a_model_card(tmp_path):
    clf = fitted("tip_adapter")
    clf.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [CARD_FILE, CONFIG_FILE, WEIGHTS_FILE]
    card = (tmp_path / "m" / CARD_FILE).read_text()
    assert "tip_adapter on counting-test" in card and all(f"| {c} | " in card for c in CLASSES)
    assert "mgcl predict m clip.wav" in card
    cfg = json.loads((tmp_path / "m" / CONFIG_FILE).read_text())
    assert cfg["format_version"] == 1 and cfg["classes"] == CLASSES and cfg["feature_dim"] == 8
    assert cfg["backbone"] == {"name": "counting-test", "options": {}, "identity": "counting-test:v1"}
    assert cfg["method"]["name"] == "tip_adapter" and cfg["method"]["params"]["betas"][0] == 1.0
    assert cfg["learned"]["n_classes_"] == 3 and "alpha_" in cfg["learned"]
    # the two files are all a model needs: a copy elsewhere loads and predicts the same
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        (tmp_path / "copy").mkdir(exist_ok=True)
        shutil.copy(tmp_path / "m" / name, tmp_path / "copy" / name)
    q, _ = clustered_features(2, seed=3)
    assert np.array_equal(
        FewShotAudioClassifier.load(tmp_path / "copy").predict_proba_features(q), clf.predict_proba_features(q)
    )
    # re-saving over an existing model replaces it
    fitted("prototype").save(tmp_path / "m")
    assert FewShotAudioClassifier.load(tmp_path / "m").method == "prototype"


def test_load_never_unpickles(tmp_path, monkeypatch):
    fitted("linear_probe").save(tmp_path / "m")

    def forbidden(*a, **k):
        raise AssertionError("pickle used while loading a model")

    for mod, name in ((pickle, "load"), (pickle, "loads"), (torch, "load"), (np, "load")):
        monkeypatch.setattr(mod, name, forbidden)
    monkeypatch.setattr(pickle, "Unpickler", forbidden)
    loaded = FewShotAudioClassifier.load(tmp_path / "m")
    q, _ = clustered_features(1, seed=2)
    assert len(loaded.predict_features(q)) == 3


def test_backbone_identity_mismatch(tmp_path, counting_registered):
    fitted("prototype").save(tmp_path / "m")
    cfg_path = tmp_path / "m" / CONFIG_FILE
    cfg = json.loads(cfg_path.read_text())
    cfg["backbone"]["identity"] = "counting-test:v0"
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(MgclError, match="was fitted on features of 'counting-test:v0'"):
        FewShotAudioClassifier.load(tmp_path / "m").get_backbone()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        bb = FewShotAudioClassifier.load(tmp_path / "m", strict_backbone=False).get_backbone()
    assert bb.identity == "counting-test:v1" and any("counting-test:v0" in str(x.message) for x in w)


@pytest.mark.parametrize(
    "damage,message",
    [
        (lambda d: shutil.rmtree(d), "model folder not found"),
        (lambda d: (d / WEIGHTS_FILE).unlink(), "weights.safetensors is missing"),
        (lambda d: (d / CONFIG_FILE).unlink(), "config.json is missing"),
        (lambda d: (d / CONFIG_FILE).write_text("{oops"), "not valid JSON"),
        (lambda d: _edit(d, format_version=99), "format version 99 is not supported"),
        (lambda d: (d / WEIGHTS_FILE).write_bytes((d / WEIGHTS_FILE).read_bytes()[:-8]), "does not match"),
        (lambda d: _edit(d, method={"name": "nope", "params": {}}), "unknown method 'nope'"),
    ],
)
def test_load_errors_are_one_line(tmp_path, damage, message):
    fitted("prototype").save(tmp_path / "m")
    damage(tmp_path / "m")
    with pytest.raises(MgclError) as e:
        FewShotAudioClassifier.load(tmp_path / "m")
    assert message in str(e.value) and "\n" not in str(e.value)


def _edit(d, **changes):
    cfg = json.loads((d / CONFIG_FILE).read_text())
    cfg.update(changes)
    (d / CONFIG_FILE).write_text(json.dumps(cfg))


# ----------------------------------------------------------------------------- clear errors
def test_use_before_fit_raises_not_fitted(tmp_path, tone_files):
    clf = FewShotAudioClassifier(backbone=CountingBackbone(), method="prototype", store=False)
    q, _ = clustered_features(1, 0)
    for call in (
        lambda: clf.predict(tone_files[0]),
        lambda: clf.predict_proba_features(q),
        lambda: clf.top_k_features(q, 2),
        lambda: clf.save(tmp_path / "m"),
        lambda: clf.score(tone_files[0], tone_files[1]),
    ):
        with pytest.raises(NotFittedError, match="not fitted yet"):
            call()
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(
    "labels,message",
    [
        (["a"] * 6, "need at least 2 classes"),
        (["a", "b", "a"], "got 6 clips but 3 labels"),
        ("aabbcc", "y must be a list of labels"),
    ],
)
def test_fit_label_errors(labels, message):
    feats, _ = clustered_features(2, 0)
    with pytest.raises(MgclError, match=message):
        FewShotAudioClassifier(backbone=CountingBackbone(), method="prototype").fit_features(feats, labels)


def test_fit_input_errors(tone_files):
    files, labels = tone_files
    clf = FewShotAudioClassifier(backbone=CountingBackbone(), method="prototype", store=False)
    with pytest.raises(MgclError, match="not a single path"):
        clf.fit(files[0], labels[:1])
    with pytest.raises(MgclError, match="input 1: expected an audio path or a \\(waveform, sample_rate\\)"):
        clf.fit([files[0], np.zeros(100)], labels[:2])
    with pytest.raises(MgclError, match="got 9 clips but 8 labels"):
        clf.fit(files, labels[:-1])


def test_wrong_feature_dimension_surfaces():
    clf = fitted("prototype")
    q, _ = clustered_features(1, 0, dim=12)
    with pytest.raises(MgclError, match="dimension 12, the model expects 8"):
        clf.predict_features(q)


def test_method_errors_are_clear():
    feats, labels = clustered_features(2, 0)
    with pytest.raises(MgclError, match="unknown method 'nope'"):
        FewShotAudioClassifier(backbone=CountingBackbone(), method="nope").fit_features(feats, labels)
    with pytest.raises(MgclError, match="method 'prototype' has no parameter 'alpha' \\(parameters: center, scale\\)"):
        FewShotAudioClassifier(
            backbone=CountingBackbone(), method="prototype", method_params={"alpha": 1}
        ).fit_features(feats, labels)
    with pytest.raises(MgclError, match="needs a text encoder"):
        FewShotAudioClassifier(backbone=CountingBackbone(), method="zero_shot").fit_features(feats, labels)


def test_top_k_and_score_on_features():
    clf = fitted("prototype")
    q, y = clustered_features(3, seed=5)
    top = clf.top_k_features(q, 2)
    assert all(len(t) == 2 and t[0][1] >= t[1][1] for t in top)
    assert [t[0][0] for t in top] == clf.predict_features(q)
    assert clf.score_features(q, y) == pytest.approx(np.mean([p == t for p, t in zip(clf.predict_features(q), y)]))
    assert clf.score_features(q, y) == 1.0  # the clusters are separable
    with pytest.raises(MgclError, match="k must be a positive integer"):
        clf.top_k_features(q, 0)
    with pytest.raises(MgclError, match="got 9 clips but 2 labels"):
        clf.score_features(q, y[:2])


def test_coerce_params_restores_tuples():
    cls = method_class("tip_adapter")
    out = coerce_params(cls, {"betas": [1, 2], "alphas": "0.5,1", "default_beta": 3.0})
    assert out == {"betas": (1, 2), "alphas": (0.5, 1), "default_beta": 3.0}
    assert isinstance(out["betas"], tuple) and isinstance(out["alphas"], tuple)


# ----------------------------------------------------------------------------- text backbones
@pytest.fixture(scope="module")
def clap_tiny():
    pytest.importorskip("transformers")
    from mgcl.backbones import get_backbone

    return get_backbone("clap-tiny-random")


def test_text_backbone_builds_text_side_and_round_trips(tmp_path, clap_tiny):
    waves = [(tone(f, 1.0, 16000, seed=i), 16000) for i, f in enumerate((300, 320, 1500, 1600, 4000, 4200))]
    labels = ["hum", "hum", "beep", "beep", "whistle", "whistle"]
    clf = FewShotAudioClassifier(backbone=clap_tiny, method="tip_adapter", store=tmp_path / "s").fit(waves, labels)
    assert clf.method_.text_weights_ is not None and clf.method_.text_weights_.shape == (3, clap_tiny.dim)
    expected = clf.predict_proba(waves)
    clf.save(tmp_path / "m")
    loaded = FewShotAudioClassifier.load(tmp_path / "m")
    assert np.array_equal(loaded.predict_proba_features(clf.embed(waves)), expected)
    assert loaded.method_.text_weights_ is not None  # the text side is saved, not rebuilt
    # descriptions reach the text side
    desc = {"beep": ["a short electronic beep repeated"], "hum": ["a low steady hum"]}
    feats = clf.embed(waves)
    with_desc = FewShotAudioClassifier(backbone=clap_tiny, method="zero_shot_desc", descriptions=desc).fit_features(
        feats, labels
    )
    plain = FewShotAudioClassifier(backbone=clap_tiny, method="zero_shot_desc").fit_features(feats, labels)
    w1, w0 = with_desc.method_.text_weights_, plain.method_.text_weights_
    assert not torch.allclose(w1[0], w0[0]) and torch.allclose(w1[2], w0[2])  # 'whistle' has none


def test_fit_on_files_embeds_audio_views_for_mgcl_f(tone_files, tmp_path):
    files, labels = tone_files
    bb = CountingBackbone()
    params = {**accepted("mgcl_f", FAST["mgcl_f"]), "augment": ("noise", "roll")}
    clf = FewShotAudioClassifier(backbone=bb, method="mgcl_f", method_params=params, store=tmp_path / "store")
    clf.fit(files, labels)
    assert clf.method_.n_views_ == 2 * len(files) and bb.clips_encoded == 3 * len(files)
    FewShotAudioClassifier(
        backbone=bb, method="mgcl_f", method_params=params, store=tmp_path / "store", calibrate=False
    ).fit(files, labels)
    assert bb.clips_encoded == 3 * len(files)  # clips and views all came from the store
    plain = FewShotAudioClassifier(backbone=CountingBackbone(), method="linear_probe", store=False).fit(files, labels)
    assert plain.method_.view_names() == ()


# ----------------------------------------------------------------------------- calibration
def overlapping_features(n_per_class: int, seed: int):
    """Like :func:`clustered_features` but with overlapping classes (so probabilities are not all ~1)."""
    g = torch.Generator().manual_seed(seed)
    items, labels = [], []
    for c, name in enumerate(CLASSES):
        for _ in range(n_per_class):
            f = l2_normalize(torch.randn(5, 8, generator=g) * 1.5 + 1.0 * torch.eye(8)[c])
            items.append((l2_normalize(f.mean(0)), f))
            labels.append(name)
    return AudioFeatures.stack(items, CountingBackbone.frame_step), labels


@pytest.mark.parametrize("method", ["prototype", "tip_adapter"])
def test_calibration_changes_probabilities_not_predictions(method):
    feats, labels = overlapping_features(4, seed=0)
    query, _ = overlapping_features(10, seed=1)
    params = accepted(method, FAST.get(method, {}))
    cal = FewShotAudioClassifier(backbone=CountingBackbone(), method=method, method_params=params).fit_features(
        feats, labels
    )
    raw = FewShotAudioClassifier(
        backbone=CountingBackbone(), method=method, method_params=params, calibrate=False
    ).fit_features(feats, labels)
    assert raw.temperature_ == 1.0 and raw.calibration_.startswith("off")
    assert cal.calibration_ == "leave-one-shot-out, 3 folds" and cal.temperature_ != 1.0
    # the temperature is the one fitted on the support's held-out logits
    codes = torch.as_tensor([CLASSES.index(v) for v in labels])
    held = held_out_logits(cal.method_, feats, codes, n_classes=3, max_folds=3)
    assert cal.temperature_ == pytest.approx(fit_temperature(*held))
    p_cal, p_raw = cal.predict_proba_features(query), raw.predict_proba_features(query)
    assert not np.allclose(p_cal, p_raw, atol=1e-3)
    np.testing.assert_allclose(p_cal.sum(1), 1.0, rtol=1e-5)
    logits = cal.method_.logits(query)
    np.testing.assert_allclose(p_cal, (logits / cal.temperature_).softmax(1).numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(p_raw, logits.softmax(1).numpy(), rtol=1e-5, atol=1e-7)
    assert cal.predict_features(query) == raw.predict_features(query)
    assert cal.predict_features(query) == [CLASSES[i] for i in p_raw.argmax(1)]  # exactly as without calibration
    top = cal.top_k_features(query, 2)
    assert [[p for _, p in t] for t in top] == [sorted(p_cal[i].tolist(), reverse=True)[:2] for i in range(len(top))]


def test_one_shot_is_not_calibrated():
    feats, labels = overlapping_features(1, seed=0)
    clf = FewShotAudioClassifier(backbone=CountingBackbone(), method="prototype").fit_features(feats, labels)
    assert clf.temperature_ == 1.0 and "one clip per class" in clf.calibration_
    q, _ = overlapping_features(2, seed=1)
    np.testing.assert_allclose(clf.predict_proba_features(q), clf.method_.predict_proba(q).numpy())


def test_temperature_and_support_names_saved_and_loaded(tmp_path):
    feats, labels = overlapping_features(3, seed=0)
    names = [f"clips/{v}_{i}.wav" for i, v in enumerate(labels)]
    clf = FewShotAudioClassifier(backbone=CountingBackbone(), method="tip_adapter").fit_features(
        feats, labels, names=names
    )
    assert clf.support_names_ == names
    clf.save(tmp_path / "m")
    cfg = json.loads((tmp_path / "m" / CONFIG_FILE).read_text())
    assert cfg["calibration"] == {"temperature": clf.temperature_, "method": "leave-one-shot-out, 3 folds"}
    assert cfg["support_names"] == names
    assert f"T = {clf.temperature_:.4g}" in (tmp_path / "m" / CARD_FILE).read_text()
    loaded = FewShotAudioClassifier.load(tmp_path / "m")
    assert loaded.temperature_ == clf.temperature_ and loaded.support_names_ == names
    assert loaded.calibration_ == clf.calibration_ and loaded.calibrate is True
    q, _ = overlapping_features(2, seed=4)
    assert np.array_equal(loaded.predict_proba_features(q), clf.predict_proba_features(q))
    # a model saved before calibration (no "calibration", no "support_names") loads with T = 1
    for key in ("calibration", "support_names"):
        cfg.pop(key)
    (tmp_path / "m" / CONFIG_FILE).write_text(json.dumps(cfg))
    old = FewShotAudioClassifier.load(tmp_path / "m")
    assert old.temperature_ == 1.0 and old.support_names_ is None
    np.testing.assert_allclose(old.predict_proba_features(q), clf.method_.predict_proba(q).numpy())
    # a bad temperature is a one-line error naming the file
    cfg["calibration"] = {"temperature": -1.0}
    (tmp_path / "m" / CONFIG_FILE).write_text(json.dumps(cfg))
    with pytest.raises(MgclError, match=r"config.json: calibration temperature must be a positive number"):
        FewShotAudioClassifier.load(tmp_path / "m")


def test_fit_on_audio_records_support_names(tone_files):
    files, labels = tone_files
    X = [files[0], (tone(500, 1.0, 8000), 8000)] + files[2:]
    clf = FewShotAudioClassifier(backbone=CountingBackbone(), method="prototype", store=False).fit(X, labels)
    assert clf.support_names_ == [files[0], "<waveform 1>"] + files[2:]
    feats, _ = clustered_features(2, 0)
    with pytest.raises(MgclError, match="got 6 clips but 2 names"):
        FewShotAudioClassifier(backbone=CountingBackbone(), method="prototype").fit_features(
            feats, CLASSES * 2, names=["a", "b"]
        )


# ----------------------------------------------------------------------------- feature store
def test_default_store_is_the_cli_store(monkeypatch, tmp_path):
    monkeypatch.setenv("MGCL_STORE", str(tmp_path / "env-store"))
    clf = FewShotAudioClassifier()
    assert clf.store is None  # the hyper-parameter is stored as given; resolved at use
    assert clf.store_dir() == default_store_dir() == default_store() == tmp_path / "env-store"
    monkeypatch.delenv("MGCL_STORE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert clf.store_dir() == default_store() == tmp_path / "home" / ".cache" / "mgcl" / "features"
    assert FewShotAudioClassifier(store=False).store_dir() is None
    assert FewShotAudioClassifier(store=tmp_path / "x").store_dir() == tmp_path / "x"


def test_store_false_caches_nothing_and_the_default_store_caches(monkeypatch, tmp_path, tone_files):
    files, labels = tone_files
    monkeypatch.setenv("MGCL_STORE", str(tmp_path / "env-store"))
    bb = CountingBackbone()
    FewShotAudioClassifier(backbone=bb, method="prototype", store=False).fit(files, labels).predict(files[:2])
    assert not (tmp_path / "env-store").exists() and bb.clips_encoded == len(files) + 2
    clf = FewShotAudioClassifier(backbone=bb, method="prototype").fit(files, labels)
    assert len(list((tmp_path / "env-store").rglob("*.safetensors"))) == len(files)
    clf.predict(files)
    assert bb.clips_encoded == 2 * len(files) + 2  # the queries were all cache hits
    clf.save(tmp_path / "m")
    loaded = FewShotAudioClassifier.load(tmp_path / "m", store=False)
    assert loaded._feature_store(bb) is None
