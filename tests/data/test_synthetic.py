"""Tests for the seeded synthetic sound-event dataset (mgcl.data.synthetic)."""

from __future__ import annotations

import csv
import json
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mgcl.data import synthetic
from mgcl.data.synthetic import (
    CLASSES,
    EVENT_DURATIONS,
    EVENT_GENERATORS,
    class_slug,
    make_dataset,
    synth_clip,
    synth_event,
)

SMALL = {"n_per_class": 5, "classes": ("siren", "knock", "rain"), "sr": 8000, "duration": 1.0}


def _read_manifest(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


# --------------------------------------------------------------------------- classes


def test_classes_are_readable_and_complete():
    assert 8 <= len(CLASSES) <= 10
    assert len(set(CLASSES)) == len(CLASSES)
    assert set(CLASSES) == set(EVENT_GENERATORS) == set(EVENT_DURATIONS)
    for label in CLASSES:
        assert label == label.strip().lower() and "_" not in label
        assert EVENT_GENERATORS[label].__doc__, f"{label} generator lacks a docstring"
    assert class_slug("alarm beep") == "alarm_beep"
    assert len({class_slug(c) for c in CLASSES}) == len(CLASSES)


@pytest.mark.parametrize("label", CLASSES)
def test_event_generators_shape_and_variation(label):
    sr = 16000
    a = synth_event(label, np.random.default_rng(1), sr, 1.0)
    b = synth_event(label, np.random.default_rng(2), sr, 1.0)
    assert a.shape == b.shape == (sr,)
    assert np.all(np.isfinite(a)) and np.isclose(np.abs(a).max(), 1.0)
    # two draws of one class differ (random pitch / rhythm / timbre), not just by a gain
    corr = abs(np.corrcoef(a, b)[0, 1])
    assert corr < 0.9
    # a very short event is still audible (not silence)
    short = synth_event(label, np.random.default_rng(3), sr, 0.05)
    assert short.shape == (800,) and np.abs(short).max() > 0.99


# --------------------------------------------------------------------------- clips


def test_synth_clip_is_deterministic():
    for label in CLASSES:
        x1, m1 = synth_clip(label, np.random.default_rng(7), sr=8000, duration=2.0)
        x2, m2 = synth_clip(label, np.random.default_rng(7), sr=8000, duration=2.0)
        x3, m3 = synth_clip(label, np.random.default_rng(8), sr=8000, duration=2.0)
        np.testing.assert_array_equal(x1, x2)
        assert m1 == m2
        assert not np.array_equal(x1, x3)
        assert m1["onset"] != m3["onset"] or m1["snr_db"] != m3["snr_db"]


@pytest.mark.parametrize("sr", [16000, 22050])
def test_synth_clip_shape_dtype_range(sr):
    rng = np.random.default_rng(0)
    for label in CLASSES:
        x, meta = synth_clip(label, rng, sr=sr, duration=2.5)
        assert x.shape == (round(2.5 * sr),)
        assert x.dtype == np.float32
        assert np.all(np.isfinite(x))
        assert 0.1 < np.abs(x).max() <= 1.0
        assert meta["label"] == label
        assert 0.0 <= meta["onset"] < meta["offset"] <= 2.5
        assert 3.0 <= meta["snr_db"] <= 20.0
        assert meta["distractor"] in (None, *CLASSES) and meta["distractor"] != label
        json.dumps(meta)  # metadata is plain data


@pytest.mark.parametrize("label", CLASSES)
def test_event_lies_at_reported_onset(label):
    sr = 16000
    for seed in range(3):
        x, meta = synth_clip(label, np.random.default_rng(seed), sr=sr, duration=4.0, snr_db=30.0, distractor_prob=0.0)
        a, b = round(meta["onset"] * sr), round(meta["offset"] * sr)
        assert b - a >= 0.3 * sr
        inside = np.mean(x[a:b].astype(np.float64) ** 2)
        outside = np.mean(np.concatenate([x[:a], x[b:]]).astype(np.float64) ** 2)
        assert inside > 100.0 * outside, (label, seed, inside / outside)


def test_snr_and_event_duration_are_honoured():
    """SNR is local (vs the background under the event); the background outside the event
    is a noisy proxy for it (colour, slow drift), so check the mean and a loose maximum."""
    sr = 16000
    measured = {}
    for snr in (0.0, 10.0, 20.0):
        measured[snr] = []
        for label in CLASSES:
            x, meta = synth_clip(
                label,
                np.random.default_rng(int(snr)),
                sr=sr,
                duration=3.0,
                snr_db=snr,
                event_duration=1.25,
                distractor_prob=0.0,
            )
            assert meta["snr_db"] == snr
            a, b = round(meta["onset"] * sr), round(meta["offset"] * sr)
            assert b - a == round(1.25 * sr)
            x = x.astype(np.float64)
            inside = np.mean(x[a:b] ** 2)
            outside = np.mean(np.concatenate([x[:a], x[b:]]) ** 2)
            measured[snr].append(10 * np.log10(max(inside / outside - 1.0, 1e-6)))
    for snr, values in measured.items():
        errors = np.abs(np.array(values) - snr)
        assert errors.mean() < 1.5 and errors.max() < 5.0, (snr, values)
    assert np.mean(measured[0.0]) + 7 < np.mean(measured[10.0]) < np.mean(measured[20.0]) - 7


def test_distractor_is_another_quieter_class():
    seen = 0
    for seed in range(20):
        x, meta = synth_clip("dog bark", np.random.default_rng(seed), sr=8000, duration=3.0, distractor_prob=1.0)
        assert meta["distractor"] in CLASSES and meta["distractor"] != "dog bark"
        assert 0.0 <= meta["distractor_onset"] < meta["distractor_offset"] <= 3.0
        seen += 1
    assert seen == 20
    _, meta = synth_clip("siren", np.random.default_rng(0), sr=8000, distractor_prob=0.0)
    assert meta["distractor"] is None


def test_synth_clip_rejects_bad_arguments():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="unknown synthetic class"):
        synth_clip("unicorn", rng)
    with pytest.raises(ValueError, match="event_duration"):
        synth_clip("siren", rng, duration=1.0, event_duration=2.0)
    with pytest.raises(ValueError, match="snr_db"):
        synth_clip("siren", rng, snr_db=(20, 3))


# --------------------------------------------------------------------------- dataset


def test_make_dataset_writes_files_and_manifest(tmp_path):
    root = tmp_path / "syn"
    manifest = make_dataset(root, n_folds=3, **SMALL)
    assert manifest == root / "manifest.csv"
    header, rows = _read_manifest(manifest)
    assert header == ["path", "label", "fold"]
    assert len(rows) == 15
    assert Counter(r["label"] for r in rows) == {"siren": 5, "knock": 5, "rain": 5}
    for r in rows:
        rel = Path(r["path"])
        assert not rel.is_absolute() and "\\" not in r["path"]
        slug = class_slug(r["label"])
        i = int(rel.stem.rsplit("_", 1)[1])
        assert r["path"] == f"audio/{slug}/{slug}_{i:03d}.wav"
        assert int(r["fold"]) == i % 3 + 1
        info = sf.info(str(root / rel))
        assert (info.samplerate, info.frames, info.channels) == (8000, 8000, 1)
        assert info.format == "WAV" and info.subtype == "PCM_16"
    assert Counter(r["fold"] for r in rows) == {"1": 6, "2": 6, "3": 3}
    params = json.loads((root / "synthetic.json").read_text())
    assert params["seed"] == 0 and params["n_per_class"] == 5 and params["n_folds"] == 3
    assert params["classes"] == list(SMALL["classes"]) and "mgcl_version" in params
    assert not [p for p in root.rglob("*") if p.name.endswith(".tmp")]

    # the WAV holds what synth_clip makes for that clip (to 16-bit precision)
    data, _ = sf.read(str(root / "audio/knock/knock_002.wav"), dtype="float32")
    clip, _ = synth_clip("knock", synthetic._clip_rng(0, "knock", 2), sr=8000, duration=1.0)
    np.testing.assert_allclose(data, clip, atol=1.0 / 32768 + 1e-6)


def test_make_dataset_without_folds_has_two_columns(tmp_path):
    header, rows = _read_manifest(make_dataset(tmp_path, **SMALL))
    assert header == ["path", "label"] and len(rows) == 15


def test_make_dataset_is_deterministic_and_seeded(tmp_path):
    a = _tree_bytes(make_dataset(tmp_path / "a", seed=3, **SMALL).parent)
    b = _tree_bytes(make_dataset(tmp_path / "b", seed=3, **SMALL).parent)
    c = _tree_bytes(make_dataset(tmp_path / "c", seed=4, **SMALL).parent)
    assert a == b
    wavs = [k for k in a if k.endswith(".wav")]
    assert len(wavs) == 15 and all(a[k] != c[k] for k in wavs)


def test_clip_does_not_depend_on_other_classes(tmp_path):
    full = make_dataset(tmp_path / "full", **SMALL).parent
    sub = make_dataset(tmp_path / "sub", n_per_class=2, classes=("rain",), sr=8000, duration=1.0).parent
    for i in range(2):
        rel = f"audio/rain/rain_{i:03d}.wav"
        assert (full / rel).read_bytes() == (sub / rel).read_bytes()


def test_make_dataset_reuses_existing(tmp_path):
    manifest = make_dataset(tmp_path, n_folds=5, **SMALL)
    wav = tmp_path / "audio" / "rain" / "rain_004.wav"
    before = {p: p.stat().st_mtime_ns for p in (manifest, wav, tmp_path / "synthetic.json")}
    assert make_dataset(tmp_path, n_folds=5, **SMALL) == manifest
    assert {p: p.stat().st_mtime_ns for p in before} == before

    # other parameters: regenerated (new content, new parameters recorded)
    old = wav.read_bytes()
    make_dataset(tmp_path, n_folds=5, seed=1, **SMALL)
    assert wav.read_bytes() != old
    assert json.loads((tmp_path / "synthetic.json").read_text())["seed"] == 1

    # a file deleted behind its back: regenerated, not reused
    wav.unlink()
    make_dataset(tmp_path, n_folds=5, seed=1, **SMALL)
    assert wav.is_file()


def test_interrupted_run_leaves_no_manifest(tmp_path, monkeypatch):
    make_dataset(tmp_path, **SMALL)
    real = synthetic.synth_clip
    calls = {"n": 0}

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(synthetic, "synth_clip", failing)
    with pytest.raises(KeyboardInterrupt):
        make_dataset(tmp_path, seed=9, **SMALL)
    # the old manifest (seed 0) must not survive next to half-rewritten seed-9 audio
    assert not (tmp_path / "manifest.csv").exists()
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
    monkeypatch.setattr(synthetic, "synth_clip", real)
    header, rows = _read_manifest(make_dataset(tmp_path, seed=9, **SMALL))
    assert len(rows) == 15 and all((tmp_path / r["path"]).is_file() for r in rows)


def test_make_dataset_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="unknown synthetic class"):
        make_dataset(tmp_path, classes=["siren", "unicorn"])
    with pytest.raises(ValueError, match="duplicate"):
        make_dataset(tmp_path, classes=["siren", "siren"])
    with pytest.raises(ValueError, match="n_folds"):
        make_dataset(tmp_path, n_per_class=3, n_folds=4)
    with pytest.raises(ValueError, match="n_per_class"):
        make_dataset(tmp_path, n_per_class=0)
    assert not os.listdir(tmp_path)


# --------------------------------------------------------------------------- separability


def _band_features(x: np.ndarray, sr: int) -> np.ndarray:
    """Mean and std over time of a 32-band log-spaced log power spectrogram."""
    n_fft, hop = 512, 256
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop] * np.hanning(n_fft)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    edges = np.geomspace(50.0, sr / 2, 33)
    bands = np.stack(
        [power[:, (freqs >= lo) & (freqs < hi)].sum(axis=1) for lo, hi in zip(edges[:-1], edges[1:])], axis=1
    )
    logb = np.log(bands + 1e-10)
    logb -= logb.mean()  # invariant to the clip's overall level
    return np.concatenate([logb.mean(axis=0), logb.std(axis=0)])


def test_classes_carry_class_information():
    """A nearest-class-mean classifier on 4 clips per class beats chance by far."""
    sr, n_train, n_test = 16000, 4, 6
    rng = np.random.default_rng(123)
    feats, labels = [], []
    for ci, label in enumerate(CLASSES):
        for _ in range(n_train + n_test):
            x, _ = synth_clip(label, rng, sr=sr)  # default SNR range and distractors
            feats.append(_band_features(x.astype(np.float64), sr))
            labels.append(ci)
    X, y = np.array(feats), np.array(labels)
    train = (np.arange(len(y)) % (n_train + n_test)) < n_train
    mu, sd = X[train].mean(axis=0), X[train].std(axis=0) + 1e-6
    Z = (X - mu) / sd
    means = np.stack([Z[train & (y == c)].mean(axis=0) for c in range(len(CLASSES))])
    dists = ((Z[~train][:, None, :] - means[None]) ** 2).sum(axis=-1)
    accuracy = float(np.mean(dists.argmin(axis=1) == y[~train]))
    chance = 1.0 / len(CLASSES)
    assert accuracy > 2.0 * chance, accuracy
