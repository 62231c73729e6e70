"""A synthetic long recording with events at known times, and a model fitted on a few clips of
the same kinds of sound (aisfx, training-free mgcl): shared by the detection tests."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from mgcl.data.soundscapes import soundscape
from mgcl.data.synthetic import synth_event

SR = 22050
TARGET, OTHER = "siren", "knock"


def noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """Low-passed (brown-ish) noise at a steady level."""
    x = np.cumsum(rng.standard_normal(n)) * 0.02
    x -= np.convolve(x, np.ones(2048) / 2048, mode="same")
    return x + 0.05 * rng.standard_normal(n)


def scene(seed: int, duration: float, n_target: int, n_other: int):
    """(waveform, [PlacedEvent]) with ``n_target`` sirens and ``n_other`` knocks (1.5 s each)."""
    rng = np.random.default_rng(seed)
    labels = [TARGET] * n_target + [OTHER] * n_other
    rng.shuffle(labels)
    events = [(lab, synth_event(lab, rng, SR, 1.5), lab) for lab in labels]
    return soundscape(rng, SR, duration, lambda n: noise(rng, n), events, ebr_db=(12.0, 15.0), min_gap=2.0, start=1.0)


@pytest.fixture(scope="package")
def detection_case(tmp_path_factory):
    """Support clips (3 sirens, 3 knocks, 3 background) as files, a 40 s recording with 4
    sirens and 2 knocks, and a fitted aisfx + mgcl model saved to a folder."""
    import importlib.util

    if importlib.util.find_spec("aisfx") is None:
        pytest.skip("aisfx weights not installed (pip install --no-deps aisfx==0.1.2)")
    from mgcl.classifier.estimator import FewShotAudioClassifier

    root = tmp_path_factory.mktemp("detection")
    rng = np.random.default_rng(123)
    paths, labels = [], []
    for i in range(3):
        for lab in (TARGET, OTHER, "background"):
            bg = noise(rng, int(2.0 * SR))
            if lab != "background":
                ev = synth_event(lab, rng, SR, 1.5)
                s = int(0.25 * SR)
                bg[s : s + len(ev)] += ev * 4 * np.std(bg)
            p = root / f"support/{lab}_{i}.wav"
            p.parent.mkdir(exist_ok=True)
            sf.write(p, (0.9 * bg / np.abs(bg).max()).astype(np.float32), SR)
            paths.append(str(p))
            labels.append(lab)
    wave, events = scene(7, 40.0, 4, 2)
    rec = root / "recording.wav"
    sf.write(rec, wave, SR)
    clf = FewShotAudioClassifier(backbone="aisfx", method="mgcl", store=str(root / "store"))
    clf.fit(paths, labels)
    model = root / "model"
    clf.save(model)
    return {"root": root, "recording": rec, "wave": wave, "events": events, "clf": clf, "model": model}
