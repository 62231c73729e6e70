"""Audio-level augmentation of support clips: new views the backbone embeds like any clip.

A few labelled clips cover little of a class's variation; views of each support clip
under small, label-preserving changes (background noise, band limits, playback speed,
onset) let a trained method see more of it. Unlike the feature-level crops of
:mod:`mgcl.methods.augment`, these views are re-embedded by the backbone (once per clip
and view: they are cached in the feature store like any clip, see
:func:`mgcl.store.features.embed_views`).

Each view is a small pure function of a mono waveform ``x`` (n,) float32 at rate ``sr``:

    noise      x + σ n,  n ~ N(0, 1),  σ = rms(x) 10^(-SNR/20),  SNR = 15 dB
    lowpass    4th-order Butterworth low-pass at 3 kHz
    highpass   4th-order Butterworth high-pass at 500 Hz
    slower     played at 0.9x speed (pitch and tempo down: resampled to sr / 0.9)
    faster     played at 1.1x speed (resampled to sr / 1.1)
    roll       circular shift by a third of the clip (the event moves in time)

The noise is seeded from the clip's content digest, so a view is the same on every run
(and its cache entry stays valid).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np
import soxr

from mgcl.types import AUDIO_VIEWS, DEFAULT_VIEWS, check_views  # noqa: F401  (the names; made here)

#: Bump when any view changes: it is part of every view's cache key.
AUGMENT_VERSION = "views-v1"


def add_noise(x: np.ndarray, snr_db: float, seed: int) -> np.ndarray:
    """x + σ n with n ~ N(0, 1) seeded by ``seed`` and σ = rms(x) 10^(-snr_db / 20)."""
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    noise = np.random.default_rng(seed).standard_normal(len(x))
    return (x + noise * rms * 10.0 ** (-snr_db / 20.0)).astype(np.float32)


def butterworth(x: np.ndarray, sr: int, hz: float, kind: str) -> np.ndarray:
    """4th-order Butterworth ``kind`` ('low' / 'high') filter at ``hz`` (causal, second-order sections)."""
    import scipy.signal  # noqa: PLC0415 - here: 0.15 s of every command's start-up, needed only to make views

    sos = scipy.signal.butter(4, hz, btype=kind, fs=sr, output="sos")
    return scipy.signal.sosfilt(sos, x).astype(np.float32)


def change_speed(x: np.ndarray, sr: int, factor: float) -> np.ndarray:
    """Play ``factor`` times faster (pitch and tempo together): resample sr -> sr / factor."""
    return soxr.resample(x, sr, sr / factor, quality="HQ").astype(np.float32)


def roll(x: np.ndarray, fraction: float) -> np.ndarray:
    """Circular shift by ``fraction`` of the clip's length."""
    return np.roll(x, int(len(x) * fraction))


View = Callable[[np.ndarray, int, int], np.ndarray]  # (x, sr, seed) -> x'

VIEWS: dict[str, View] = {
    "noise": lambda x, sr, seed: add_noise(x, 15.0, seed),
    "lowpass": lambda x, sr, seed: butterworth(x, sr, 3000.0, "low"),
    "highpass": lambda x, sr, seed: butterworth(x, sr, 500.0, "high"),
    "slower": lambda x, sr, seed: change_speed(x, sr, 0.9),
    "faster": lambda x, sr, seed: change_speed(x, sr, 1.1),
    "roll": lambda x, sr, seed: roll(x, 1.0 / 3.0),
}
assert set(VIEWS) == set(AUDIO_VIEWS)


def seed_of(digest: str) -> int:
    """A 32-bit seed from a content digest (hex string)."""
    return int.from_bytes(hashlib.blake2b(digest.encode(), digest_size=4).digest(), "little")


def view_key(digest: str, name: str) -> str:
    """Cache key of view ``name`` of the clip whose content digest is ``digest``."""
    h = hashlib.blake2b(f"{digest}|{name}|{AUGMENT_VERSION}".encode(), digest_size=16)
    return "v" + h.hexdigest()


def make_view(x: np.ndarray, sr: int, name: str, digest: str) -> np.ndarray:
    """View ``name`` of waveform x (n,) at rate sr -> (n',) float32, finite, never empty."""
    out = np.nan_to_num(VIEWS[name](np.asarray(x, dtype=np.float32), int(sr), seed_of(digest)))
    return out if len(out) else np.zeros(1, dtype=np.float32)
