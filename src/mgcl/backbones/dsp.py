"""Signal-processing helpers shared by the backbones and the explanation pictures: HTK mel scale
and an L1-normalised triangular mel filterbank (what aisfx's front end uses)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np


def hz_to_mel_htk(f: np.ndarray) -> np.ndarray:
    """HTK mel scale: m = 2595 log10(1 + f / 700)."""
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz_htk(m: np.ndarray) -> np.ndarray:
    """Inverse HTK mel scale: f = 700 (10^(m / 2595) - 1)."""
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


@lru_cache(maxsize=4)
def mel_filterbank(sr: int, n_fft: int, n_mels: int) -> np.ndarray:
    """Triangular HTK mel filters, each row L1-normalised: (n_mels, n_fft // 2 + 1).

    Same as ``librosa.filters.mel(sr, n_fft, n_mels, fmin=0, fmax=sr/2, htk=True, norm=1)``.
    """
    fft_freqs = np.linspace(0.0, sr / 2.0, 1 + n_fft // 2)
    mel_pts = mel_to_hz_htk(np.linspace(hz_to_mel_htk(0.0), hz_to_mel_htk(sr / 2.0), n_mels + 2))
    fdiff = np.diff(mel_pts)
    ramps = mel_pts[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    norms = np.abs(weights).sum(axis=1, keepdims=True)
    weights = np.where(norms > np.finfo(np.float32).tiny, weights / np.maximum(norms, 1e-30), weights)
    return weights.astype(np.float32)
