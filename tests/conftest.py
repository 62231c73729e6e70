"""Shared fixtures: synthetic audio files, a counting test backbone, the real-data location."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from mgcl.types import AudioFeatures, l2_normalize


@pytest.fixture(autouse=True)
def _default_store_in_tmp(tmp_path_factory, monkeypatch):
    """No test writes into the user's feature store: the default store ($MGCL_STORE) is a
    folder of the test session (shared by the tests: entries are keyed by content)."""
    monkeypatch.setenv("MGCL_STORE", str(tmp_path_factory.getbasetemp() / "default-store"))


SHARED_DATA = Path(os.environ.get("MGCL_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def tone(freq: float, seconds: float, sr: int, amp: float = 0.5, seed: int = 0) -> np.ndarray:
    """A sine at ``freq`` Hz with a little noise, float32."""
    t = np.arange(int(seconds * sr)) / sr
    noise = np.random.default_rng(seed).normal(0, 0.01, t.size)
    return (amp * np.sin(2 * np.pi * freq * t) + noise).astype(np.float32)


@pytest.fixture
def write_wav(tmp_path):
    """write_wav(name, samples, sr=16000, **kw) -> Path inside tmp_path."""

    def _write(name: str, samples: np.ndarray, sr: int = 16000, **kw) -> Path:
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        sf.write(p, samples, sr, **kw)
        return p

    return _write


class CountingBackbone:
    """A tiny deterministic test backbone (band energies of 0.25 s frames) that counts calls.

    Not a model: it exists to test the store and the pipeline without a network.
    """

    name = "counting-test"
    identity = "counting-test:v1"
    sample_rate = 8000
    dim = 8
    frame_step = 0.25
    has_text = False

    def __init__(self):
        self.clips_encoded = 0
        self.calls = 0

    def encode_audio(self, waveforms):
        self.calls += 1
        self.clips_encoded += len(waveforms)
        items = []
        hop = self.sample_rate // 4
        for w in waveforms:
            n = max(1, len(w) // hop)
            frames = np.stack(
                [
                    np.abs(np.fft.rfft(w[i * hop : (i + 1) * hop], n=64))[1:33].reshape(8, 4).sum(1) + 1e-3
                    for i in range(n)
                ]
            )
            f = l2_normalize(torch.tensor(frames, dtype=torch.float32))
            items.append((l2_normalize(f.mean(0)), f))
        return AudioFeatures.stack(items, self.frame_step)

    def encode_text(self, texts):
        raise NotImplementedError


@pytest.fixture
def counting_backbone():
    return CountingBackbone()


def shared_data(name: str) -> Path:
    """Path of a set in ../shared/data, or skip the test with a visible reason."""
    p = SHARED_DATA / name / "manifest.csv"
    if not p.is_file():
        pytest.skip(f"real audio not found at {p} (set MGCL_SHARED_DATA to the shared data folder)")
    return p


def aisfx_or_skip():
    import importlib.util

    if importlib.util.find_spec("aisfx") is None:
        pytest.skip("aisfx weights not installed (pip install --no-deps aisfx==0.1.2)")


def file_uri(path) -> str:
    """``file://`` URI of a local path (quoted): read through pyarrow.fs like ``s3://``."""
    from urllib.parse import quote

    return "file://" + quote(str(path))
