"""A seeded synthetic sound-event dataset built from numpy alone (no downloads).

Each class is a small pure function ``(rng, sr, duration) -> np.ndarray`` that synthesises
one sound event of ``duration`` seconds with randomised parameters (pitch, rate, rhythm,
timbre, envelope), so that clips of one class vary while keeping their acoustic identity.
Frequency ranges of the classes overlap on purpose (siren, alarm beep and phone ring share
the 0.5-3 kHz band; knock, footsteps and engine hum share the low end; rain, bird chirp and
glass clink share the high end), so telling them apart takes more than one band energy.

:func:`synth_clip` places one event at a random onset and SNR into coloured background
noise (optionally with a quieter distractor event of another class); :func:`make_dataset`
writes a folder of 16-bit WAV clips and a ``manifest.csv`` (``path,label[,fold]``).
Everything is deterministic for a seed.
"""

from __future__ import annotations

import csv
import io
import json
import os
import zlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import soundfile as sf

from mgcl.util.atomic import atomic_write_bytes
from mgcl.version import __version__

__all__ = [
    "CLASSES",
    "EVENT_GENERATORS",
    "EVENT_DURATIONS",
    "class_slug",
    "synth_event",
    "synth_clip",
    "make_dataset",
]

EventGenerator = Callable[[np.random.Generator, int, float], np.ndarray]

_TWO_PI = 2.0 * np.pi


# ----------------------------------------------------------------------------- helpers


def _n(sr: int, duration: float) -> int:
    return max(1, int(round(duration * sr)))


def _time(n: int, sr: int) -> np.ndarray:
    return np.arange(n, dtype=np.float64) / sr


def _phase(freq: np.ndarray | float, sr: int, n: int | None = None, phase0: float = 0.0):
    """Running phase (radians) of an oscillator with instantaneous frequency ``freq`` (Hz)."""
    if np.ndim(freq) == 0:
        return phase0 + _TWO_PI * float(freq) * np.arange(n, dtype=np.float64) / sr
    return phase0 + _TWO_PI * np.cumsum(freq) / sr


def _harmonics(
    phase: np.ndarray, freq: np.ndarray | float, amps: Sequence[float], sr: int, orders: Sequence[float] | None = None
) -> np.ndarray:
    """Sum ``amps[i] * sin(orders[i] * phase)``, muting any partial above 0.45 * sr.

    Without ``orders`` (harmonics 1, 2, 3, ...) the sines come from the Chebyshev
    recurrence ``sin(k p) = 2 cos(p) sin((k-1) p) - sin((k-2) p)``: one sin and one cos in
    all instead of one sin per harmonic.
    """
    out = np.zeros(phase.shape, dtype=np.float64)
    limit = 0.45 * sr
    freq = np.asarray(freq, dtype=np.float64)
    fmin = float(np.min(freq))
    if orders is None:
        two_cos = 2.0 * np.cos(phase)
        prev, cur = np.zeros_like(phase), np.sin(phase)
        for k, a in enumerate(amps, start=1):
            if k > 1:
                prev, cur = cur, two_cos * cur - prev
            if k * fmin >= limit:
                break
            if a != 0.0:
                out += a * cur if k * float(np.max(freq)) < limit else a * cur * (k * freq < limit)
        return out
    for k, a in zip(orders, amps):
        if a == 0.0 or k * fmin >= limit:
            continue
        s = np.sin(k * phase)
        out += a * s if k * float(np.max(freq)) < limit else a * s * (k * freq < limit)
    return out


def _fade(x: np.ndarray, sr: int, seconds: float, fade_out: float | None = None) -> np.ndarray:
    """Raised-cosine fade-in of ``seconds`` and fade-out of ``fade_out`` (default: same)."""
    fade_out = seconds if fade_out is None else fade_out
    for length, at_start in ((seconds, True), (fade_out, False)):
        m = min(len(x) // 2, int(length * sr))
        if m < 2:
            continue
        ramp = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, m))
        if at_start:
            x[:m] *= ramp
        else:
            x[-m:] *= ramp[::-1]
    return x


def _gate(t: np.ndarray, period: float, on: float, ramp: float) -> np.ndarray:
    """Periodic on/off gate (1 for ``on`` s of each ``period``) with linear ramps."""
    pos = np.mod(t, period)
    return np.clip(np.minimum(pos, on - pos) / ramp, 0.0, 1.0)


def _segments_gate(n: int, sr: int, segments: Iterable[tuple[float, float]], ramp: float):
    """Gate that is 1 inside each ``(start, end)`` segment (seconds), with linear ramps."""
    t = _time(n, sr)
    g = np.zeros(n, dtype=np.float64)
    for start, end in segments:
        g = np.maximum(g, np.clip(np.minimum(t - start, end - t) / ramp, 0.0, 1.0))
    return g


def _fast_len(n: int) -> int:
    """Smallest 2**a * 3**b * 5**c >= n (an FFT length numpy transforms quickly)."""
    best = 1 << max(0, (n - 1).bit_length())
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            if m < n:  # multiply by the power of two that reaches n
                m <<= (-(-n // m) - 1).bit_length()
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


def _spectral_filter(x: np.ndarray, sr: int, response: Callable[[np.ndarray], np.ndarray]):
    """Filter ``x`` by multiplying its spectrum with ``response(freqs_hz)`` (zero phase)."""
    nfft = _fast_len(len(x))
    spec = np.fft.rfft(x, nfft)
    freqs = np.fft.rfftfreq(nfft, 1.0 / sr)
    return np.fft.irfft(spec * response(freqs), nfft)[: len(x)]


def _coloured_noise(
    rng: np.random.Generator,
    n: int,
    sr: int,
    exponent: float,
    low_cut: float = 20.0,
    response: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """Noise with power spectrum ~ 1/f**exponent (0 white, 1 pink, 2 brown), unit RMS.

    Drawn directly in the frequency domain (complex Gaussian bins, one inverse FFT);
    ``response(freqs_hz)`` optionally shapes it further.
    """
    nfft = _fast_len(n)
    freqs = np.fft.rfftfreq(nfft, 1.0 / sr)
    bins = rng.standard_normal((2, freqs.size))
    shape = np.maximum(freqs, low_cut) ** (-exponent / 2.0) * (freqs >= low_cut * 0.5)
    if response is not None:
        shape = shape * response(freqs)
    x = np.fft.irfft((bins[0] + 1j * bins[1]) * shape, nfft)[:n]
    return x / (np.sqrt(np.mean(x**2)) + 1e-12)


def _scatter(n: int, starts: np.ndarray, gains: np.ndarray, kernels: np.ndarray, which: np.ndarray) -> np.ndarray:
    """Sum of ``gains[i] * kernels[which[i]]`` placed at ``starts[i]``, ``n`` samples long."""
    klen = kernels.shape[1]
    idx = (starts[:, None] + np.arange(klen)[None, :]).ravel()
    weights = (gains[:, None] * kernels[which]).ravel()
    return np.bincount(idx, weights=weights, minlength=n + klen)[:n]


def _unit_peak(x: np.ndarray) -> np.ndarray:
    peak = np.max(np.abs(x))
    return x / peak if peak > 0 else x


def _place(out: np.ndarray, start: int, grain: np.ndarray, gain: float = 1.0) -> None:
    """Add ``gain * grain`` into ``out`` at sample ``start`` (clipped at the end)."""
    if start >= len(out) or start < 0:
        return
    m = min(len(grain), len(out) - start)
    out[start : start + m] += gain * grain[:m]


# ----------------------------------------------------------------------------- events


def siren(rng: np.random.Generator, sr: int, duration: float) -> np.ndarray:
    """Emergency-vehicle siren.

    A harmonic-rich tone (3-6 partials, random spectral tilt) whose fundamental sweeps
    between ~0.45-0.8 kHz and 1.6-2.4x that, either slowly and smoothly ("wail", 0.4-1.2
    sweeps/s) or in fast rising saw-tooth sweeps ("yelp", 2.5-7 sweeps/s).
    """
    n = _n(sr, duration)
    t = _time(n, sr)
    f_lo = rng.uniform(450.0, 800.0)
    f_hi = f_lo * rng.uniform(1.6, 2.4)
    start = rng.uniform(0.0, 1.0)
    if rng.random() < 0.5:  # wail
        rate = rng.uniform(0.4, 1.2)
        lfo = 0.5 - 0.5 * np.cos(_TWO_PI * (rate * t + start))
    else:  # yelp
        rate = rng.uniform(2.5, 7.0)
        lfo = np.mod(rate * t + start, 1.0) ** rng.uniform(0.6, 1.5)
    freq = f_lo + (f_hi - f_lo) * lfo
    n_harm = int(rng.integers(3, 7))
    amps = np.arange(1, n_harm + 1, dtype=np.float64) ** -rng.uniform(0.6, 1.4)
    x = _harmonics(_phase(freq, sr), freq, amps, sr)
    return _fade(x, sr, 0.05)


def alarm_beep(rng: np.random.Generator, sr: int, duration: float) -> np.ndarray:
    """Electronic alarm / reversing beeper.

    Repeated square-ish beeps (odd harmonics 1, 3, 5, 7 with 1/k**p amplitudes) at a
    carrier of 0.9-3.2 kHz, 50-200 ms on and 40-200 ms off, sometimes alternating between
    two pitches (a "hi-lo" alarm).
    """
    n = _n(sr, duration)
    t = _time(n, sr)
    f1 = rng.uniform(900.0, 3200.0)
    on = rng.uniform(0.05, 0.2)
    period = on + rng.uniform(0.04, 0.2)
    if rng.random() < 0.3:  # two alternating tones
        f2 = f1 * rng.uniform(0.7, 0.9)
        freq = np.where(np.floor(t / period) % 2 == 0, f1, f2)
    else:
        freq = np.full(n, f1)
    odd = np.array([1.0, 3.0, 5.0, 7.0])
    amps = odd ** -rng.uniform(1.0, 1.8)
    x = _harmonics(_phase(freq, sr), freq, amps, sr, orders=odd)
    x *= _gate(t - rng.uniform(0.0, 0.02), period, on, 0.004)
    return _fade(x, sr, 0.005)


def engine_hum(rng: np.random.Generator, sr: int, duration: float) -> np.ndarray:
    """Idling combustion engine / motor.

    A low harmonic drone (firing frequency 22-60 Hz, ~24 partials with a random spectral
    envelope) whose rpm wobbles slightly (periodic plus random-walk drift), mixed with
    low-pass filtered rumble noise amplitude-modulated at the firing rate; slow swell.
    """
    n = _n(sr, duration)
    t = _time(n, sr)
    f0 = rng.uniform(22.0, 60.0)
    # rpm wobble: slow sinusoid + smoothed random walk (control rate 20 Hz)
    n_ctrl = max(2, int(duration * 20) + 2)
    walk = np.cumsum(rng.standard_normal(n_ctrl))
    walk = (walk - walk.mean()) / (np.abs(walk - walk.mean()).max() + 1e-9)
    drift = np.interp(t, np.linspace(0.0, duration, n_ctrl), walk)
    wobble = (
        1.0 + rng.uniform(0.005, 0.03) * np.sin(_TWO_PI * rng.uniform(0.3, 2.0) * t) + rng.uniform(0.0, 0.02) * drift
    )
    freq = f0 * wobble
    phase = _phase(freq, sr)
    k = np.arange(1, 25, dtype=np.float64)
    amps = k ** -rng.uniform(0.4, 1.0) * rng.uniform(0.3, 1.0, size=k.size)
    tone = _harmonics(phase, freq, amps, sr)
    cutoff = rng.uniform(250.0, 800.0)
    rumble = _coloured_noise(rng, n, sr, exponent=1.0, response=lambda f: 1.0 / (1.0 + (f / cutoff) ** 4))
    rumble *= 1.0 + 0.6 * np.sin(phase)
    x = _unit_peak(tone) + rng.uniform(0.2, 0.8) * _unit_peak(rumble)
    return _fade(x, sr, rng.uniform(0.1, 0.4), rng.uniform(0.1, 0.4))


def knock(rng: np.random.Generator, sr: int, duration: float) -> np.ndarray:
    """Knocking on a wooden door.

    Short impulses (2 ms contact click) exciting 4 damped, inharmonic panel modes
    (70-220 Hz fundamental, ratios ~1 : 2.3 : 4 : 6.2, 15-50 ms decays), struck in a
    rhythm of 120-300 ms intervals grouped in 2-4 knocks with pauses between groups.
    """
    n = _n(sr, duration)
    f1 = rng.uniform(70.0, 220.0)
    ratios = np.array([1.0, rng.uniform(2.0, 2.6), rng.uniform(3.5, 4.5), rng.uniform(5.5, 7.0)])
    taus = rng.uniform(0.015, 0.05) / np.sqrt(ratios)
    mode_amps = rng.uniform(0.3, 1.0, size=4) * np.array([1.0, 0.8, 0.5, 0.3])
    klen = _n(sr, 0.25)
    tk = _time(klen, sr)
    keep = ratios * f1 < 0.45 * sr
    modes = (
        mode_amps[keep, None]
        * np.exp(-tk[None, :] / taus[keep, None])
        * np.sin(_TWO_PI * (ratios[keep, None] * f1) * tk[None, :])
    ).sum(axis=0)
    click = rng.standard_normal(klen) * np.exp(-tk / 0.002)
    click = np.convolve(click, np.ones(4) / 4.0, mode="same")  # soften (low-pass)
    kernel = modes + rng.uniform(0.1, 0.5) * click
    interval = rng.uniform(0.12, 0.3)
    group = int(rng.integers(2, 5))
    pause = rng.uniform(0.3, 0.7)
    out = np.zeros(n)
    time, count = rng.uniform(0.0, min(0.03, 0.2 * duration)), 0
    while count == 0 or time < duration - 0.08:  # at least one
        _place(out, int(time * sr), kernel, rng.uniform(0.6, 1.0))
        count += 1
        time += interval * rng.uniform(0.85, 1.15) + (pause if count % group == 0 else 0.0)
    return _fade(out, sr, 0.001, 0.03)


def rain(rng: np.random.Generator, sr: int, duration: float) -> np.ndarray:
    """Rain on a surface.

    Dense random droplet clicks (150-800 per second, log-normal loudness), each a
    2-6 ms decaying, slightly upward-chirping bubble resonance at one of four random
    1.2-5 kHz frequencies, over a pink-ish high-passed hiss; slow fade in/out.
    """
    n = _n(sr, duration)
    rate = rng.uniform(150.0, 800.0)
    n_drops = int(rng.poisson(rate * duration))
    pos = rng.integers(0, n, size=n_drops)
    gains = rng.lognormal(0.0, 0.6, size=n_drops)
    group = rng.integers(0, 4, size=n_drops)
    klen = _n(sr, 0.02)
    tk = _time(klen, sr)
    tau = rng.uniform(0.002, 0.006)
    kernels = np.empty((4, klen))
    for g in range(4):
        fg = min(rng.uniform(1200.0, 5000.0), 0.4 * sr)
        chirp = fg * (1.0 + rng.uniform(0.5, 3.0) * tk)
        kernels[g] = np.exp(-tk / tau) * np.sin(_TWO_PI * np.cumsum(chirp) / sr)
    drops = _scatter(n, pos, gains, kernels, group)
    hiss_cut = rng.uniform(400.0, 1500.0)
    hiss = _coloured_noise(
        rng,
        n,
        sr,
        exponent=rng.uniform(0.3, 1.0),
        response=lambda f: 1.0 / (1.0 + (hiss_cut / np.maximum(f, 1.0)) ** 4),
    )
    x = _unit_peak(drops) + rng.uniform(0.1, 0.4) * _unit_peak(hiss)
    return _fade(x, sr, rng.uniform(0.1, 0.3), rng.uniform(0.1, 0.3))


def bird_chirp(rng: np.random.Generator, sr: int, duration: float) -> np.ndarray:
    """Small songbird.

    Bursts of 2-6 fast upward FM chirps (30-100 ms each, exponential sweep from 1.8-4 kHz
    up by 1.3-2.2x, weak 2nd harmonic, bell-shaped envelope) with 30-120 ms gaps inside a
    burst and 150-500 ms pauses between bursts.
    """
    n = _n(sr, duration)
    out = np.zeros(n)
    f_start = rng.uniform(1800.0, 4000.0)
    ratio = rng.uniform(1.3, 2.2)
    length = rng.uniform(0.03, 0.1)
    gap = rng.uniform(0.03, 0.12)
    burst = int(rng.integers(2, 7))
    pause = rng.uniform(0.15, 0.5)
    h2 = rng.uniform(0.0, 0.3)
    time, count = rng.uniform(0.0, min(0.03, 0.2 * duration)), 0
    while count == 0 or time < duration - 0.03:  # at least one
        L = length * rng.uniform(0.85, 1.15)
        m = _n(sr, L)
        tau = np.arange(m) / m
        f = f_start * rng.uniform(0.95, 1.05) * (ratio * rng.uniform(0.95, 1.05)) ** tau
        f = np.minimum(f, 0.45 * sr)
        grain = _harmonics(_phase(f, sr), f, [1.0, h2], sr) * np.sin(np.pi * tau) ** 2
        _place(out, int(time * sr), grain, rng.uniform(0.6, 1.0))
        count += 1
        time += L + gap * rng.uniform(0.8, 1.2) + (pause if count % burst == 0 else 0.0)
    return _fade(out, sr, 0.002)


def dog_bark(rng: np.random.Generator, sr: int, duration: float) -> np.ndarray:
    """Dog barking.

    1-5 barks of 120-300 ms: a harmonic voice source (f0 300-700 Hz with a rise-fall
    contour) plus breathy noise, both shaped by three vocal-tract formants (~0.5-0.9,
    1.1-1.9, 2.3-3.5 kHz), with a fast attack and decaying envelope.
    """
    n = _n(sr, duration)
    out = np.zeros(n)
    formants = np.array([rng.uniform(500, 900), rng.uniform(1100, 1900), rng.uniform(2300, 3500)])
    widths = np.array([rng.uniform(120, 250), rng.uniform(150, 300), rng.uniform(200, 400)])
    fgain = np.array([1.0, rng.uniform(0.4, 0.9), rng.uniform(0.2, 0.6)])

    grid = np.arange(0.0, sr / 2.0 + 10.0, 10.0)
    table = (fgain * np.exp(-0.5 * ((grid[:, None] - formants) / widths) ** 2)).sum(axis=1) + 0.03

    def response(f: np.ndarray) -> np.ndarray:
        return np.interp(f, grid, table)

    f0p = rng.uniform(300.0, 700.0)
    length = rng.uniform(0.12, 0.3)
    gap = rng.uniform(0.12, 0.45)
    breath = rng.uniform(0.2, 0.7)
    time, count = rng.uniform(0.0, min(0.03, 0.2 * duration)), 0
    while count == 0 or time < duration - 0.08:  # at least one
        L = max(0.02, min(length * rng.uniform(0.85, 1.15), duration - time))
        m = _n(sr, L)
        tau = np.arange(m) / m
        f0 = f0p * rng.uniform(0.92, 1.08) * (0.75 + 0.45 * np.exp(-(((tau - 0.25) / 0.3) ** 2)))
        ph = _phase(f0, sr)
        voice = np.zeros(m)
        two_cos, prev, cur = 2.0 * np.cos(ph), np.zeros(m), np.sin(ph)
        for k in range(1, 26):
            if k > 1:
                prev, cur = cur, two_cos * cur - prev
            fk = k * f0
            if fk.min() >= 0.45 * sr:
                break
            voice += k**-0.7 * response(fk) * cur * (fk < 0.45 * sr)
        noise = _spectral_filter(rng.standard_normal(m), sr, response)
        grain = _unit_peak(voice) + breath * _unit_peak(noise)
        env = np.clip(tau * L / 0.01, 0.0, 1.0) * np.exp(-tau * rng.uniform(1.5, 3.5))
        _place(out, int(time * sr), _fade(grain * env, sr, 0.002, 0.02), rng.uniform(0.7, 1.0))
        time += L + gap * rng.uniform(0.7, 1.3)
        count += 1
    return _fade(out, sr, 0.002)


def glass_clink(rng: np.random.Generator, sr: int, duration: float) -> np.ndarray:
    """Glasses clinking.

    1-3 strikes, each a 2 ms bright tick exciting 4 inharmonic high partials (1.8-4.2 kHz
    fundamental, ratios ~1 : 2.5 : 5.1 : 8.5) that ring and decay over 0.1-0.8 s (higher
    ones faster); each partial is a close doublet (1-6 Hz apart) so the ring beats.
    """
    n = _n(sr, duration)
    t = _time(n, sr)
    f1 = rng.uniform(1800.0, 4200.0)
    ratios = np.array([1.0, rng.uniform(2.1, 2.9), rng.uniform(4.6, 5.6), rng.uniform(7.5, 9.5)])
    freqs = f1 * ratios
    keep = freqs < 0.45 * sr
    freqs = freqs[keep]
    amps = rng.uniform(0.3, 1.0, size=4)[keep] * ratios[keep] ** -0.5
    taus = rng.uniform(0.2, 0.8) / ratios[keep] ** 0.7
    beats = rng.uniform(1.0, 6.0, size=freqs.size)
    out = np.zeros(n)
    strikes = [rng.uniform(0.0, min(0.03, 0.2 * duration))]
    for _ in range(int(rng.integers(0, 3))):
        nxt = strikes[-1] + rng.uniform(0.15, 0.45)
        if nxt < duration - 0.1:
            strikes.append(nxt)
    for s in strikes:
        i0 = int(s * sr)
        tt = t[: n - i0]
        ring = (
            amps[:, None]
            * np.exp(-tt[None, :] / taus[:, None])
            * (
                np.sin(_TWO_PI * freqs[:, None] * tt[None, :])
                + 0.6 * np.sin(_TWO_PI * (freqs + beats)[:, None] * tt[None, :])
            )
        ).sum(axis=0)
        tick = rng.standard_normal(tt.size) * np.exp(-tt / 0.001)
        tick -= np.convolve(tick, np.ones(3) / 3.0, mode="same")  # crude high-pass
        _place(out, i0, ring + rng.uniform(0.2, 0.8) * tick, rng.uniform(0.5, 1.0))
    return _fade(out, sr, 0.001, 0.05)


def footsteps(rng: np.random.Generator, sr: int, duration: float) -> np.ndarray:
    """Walking footsteps.

    Steps every 0.38-0.7 s (slight timing jitter, alternating feet louder/softer), each a
    heel strike then a softer toe strike 30-80 ms later; a strike is a low body thump
    (damped 50-120 Hz sinusoid) plus a band-passed noise scuff whose centre (0.3-3 kHz)
    and length depend on the surface (hard floor vs gravel-like crunch).
    """
    n = _n(sr, duration)
    out = np.zeros(n)
    interval = rng.uniform(0.38, 0.7)
    toe_delay = rng.uniform(0.03, 0.08)
    f_thump = rng.uniform(50.0, 120.0)
    tau_thump = rng.uniform(0.015, 0.04)
    centre = rng.uniform(300.0, 3000.0)
    q = rng.uniform(0.5, 2.0)  # bandwidth in octaves
    tau_scuff = rng.uniform(0.008, 0.05)
    crunch = rng.uniform(0.0, 1.0)
    scuff_gain = rng.uniform(0.4, 1.2)
    klen = _n(sr, 0.15)
    tk = _time(klen, sr)

    def band(f: np.ndarray) -> np.ndarray:
        return np.exp(-0.5 * (np.log2(np.maximum(f, 1.0) / centre) / (q / 2.0)) ** 2)

    def strike() -> np.ndarray:
        thump = np.exp(-tk / tau_thump) * np.sin(_TWO_PI * f_thump * tk)
        noise = rng.standard_normal(klen)
        # gravel: granular crackle = noise gated by sparse random bursts
        grains = 1.0 - crunch + crunch * (rng.random(klen) < 0.08)
        scuff = _spectral_filter(noise * grains, sr, band) * np.exp(-tk / tau_scuff)
        return _fade(_unit_peak(thump) + scuff_gain * _unit_peak(scuff), sr, 0.001, 0.01)

    time, count = rng.uniform(0.0, min(0.05, 0.2 * duration)), 0
    while count == 0 or time < duration - 0.1:  # at least one
        level = 1.0 if count % 2 == 0 else rng.uniform(0.6, 0.9)
        _place(out, int(time * sr), strike(), level)
        _place(out, int((time + toe_delay) * sr), strike(), level * rng.uniform(0.3, 0.6))
        count += 1
        time += interval * rng.uniform(0.92, 1.08)
    return _fade(out, sr, 0.001, 0.02)


def phone_ring(rng: np.random.Generator, sr: int, duration: float) -> np.ndarray:
    """Telephone ringing.

    Either an electromechanical bell ringer (two close tones of 380-620 Hz plus bell-like
    inharmonic overtones, struck by a clapper at 16-25 Hz) or an electronic warble
    (square-ish tone alternating between two 0.7-1.4 kHz pitches 10-20 times a second),
    gated by a ring cadence of 0.3-0.5 s bursts (single or double ring).
    """
    n = _n(sr, duration)
    t = _time(n, sr)
    if rng.random() < 0.5:  # bell ringer
        f1 = rng.uniform(380.0, 620.0)
        f2 = f1 * rng.uniform(1.08, 1.25)
        ratios, ramps = [1.0, 2.0, 2.76, 5.4], [1.0, 0.5, 0.35, 0.15]
        tone = sum(
            a * (np.sin(_TWO_PI * r * f1 * t) + np.sin(_TWO_PI * r * f2 * t))
            for r, a in zip(ratios, ramps)
            if r * f2 < 0.45 * sr
        )
        strike = rng.uniform(16.0, 25.0)
        tone = tone * (0.5 + 0.5 * np.sin(_TWO_PI * strike * t)) ** 2
    else:  # electronic warble
        f1 = rng.uniform(700.0, 1400.0)
        f2 = f1 * rng.uniform(1.2, 1.5)
        warble = rng.uniform(10.0, 20.0)
        freq = np.where(np.mod(warble * t, 1.0) < 0.5, f1, f2)
        odd = np.array([1.0, 3.0, 5.0])
        tone = _harmonics(_phase(freq, sr), freq, odd ** -rng.uniform(1.0, 2.0), sr, orders=odd)
    on = rng.uniform(0.3, 0.5)
    short_off = rng.uniform(0.15, 0.3)
    long_off = rng.uniform(0.4, 0.8)
    double = rng.random() < 0.5
    segments, time = [], rng.uniform(0.0, min(0.03, 0.2 * duration))
    while not segments or time < duration:
        segments.append((time, time + on))
        time += on + short_off
        if double:
            segments.append((time, time + on))
            time += on + long_off
    x = tone * _segments_gate(n, sr, segments, 0.01)
    return _fade(x, sr, 0.005)


#: Class name -> event generator ``(rng, sr, duration) -> waveform``.
EVENT_GENERATORS: dict[str, EventGenerator] = {
    "siren": siren,
    "alarm beep": alarm_beep,
    "engine hum": engine_hum,
    "knock": knock,
    "rain": rain,
    "bird chirp": bird_chirp,
    "dog bark": dog_bark,
    "glass clink": glass_clink,
    "footsteps": footsteps,
    "phone ring": phone_ring,
}

#: Class name -> (min, max) event duration in seconds drawn when none is given.
EVENT_DURATIONS: dict[str, tuple[float, float]] = {
    "siren": (1.0, 2.5),
    "alarm beep": (0.6, 2.0),
    "engine hum": (1.2, 2.5),
    "knock": (0.5, 1.5),
    "rain": (1.2, 2.5),
    "bird chirp": (0.6, 2.0),
    "dog bark": (0.5, 1.8),
    "glass clink": (0.5, 1.5),
    "footsteps": (1.0, 2.5),
    "phone ring": (1.0, 2.5),
}

#: The synthetic class names, in a fixed order.
CLASSES: tuple[str, ...] = tuple(EVENT_GENERATORS)


# ----------------------------------------------------------------------------- clips


def class_slug(label: str) -> str:
    """File-system name of a class: ``"alarm beep"`` -> ``"alarm_beep"``."""
    return "_".join(label.lower().split())


def _check_label(label: str) -> None:
    if label not in EVENT_GENERATORS:
        raise ValueError(f"unknown synthetic class {label!r}; choose from {', '.join(CLASSES)}")


def synth_event(label: str, rng: np.random.Generator, sr: int = 22050, duration: float = 1.0) -> np.ndarray:
    """One clean event of class ``label``, ``duration`` seconds, float64 with peak 1."""
    _check_label(label)
    x = EVENT_GENERATORS[label](rng, sr, duration)
    n = _n(sr, duration)
    x = np.pad(x[:n], (0, max(0, n - len(x))))
    return _unit_peak(x)


def _snr_range(snr_db) -> tuple[float, float]:
    if np.ndim(snr_db) == 0:
        return float(snr_db), float(snr_db)
    lo, hi = (float(v) for v in snr_db)
    if lo > hi:
        raise ValueError(f"snr_db range must be (low, high), got {snr_db!r}")
    return lo, hi


def _event_duration(label: str, rng: np.random.Generator, clip_duration: float) -> float:
    lo, hi = EVENT_DURATIONS[label]
    return min(rng.uniform(lo, hi), 0.8 * clip_duration)


def synth_clip(
    label: str,
    rng: np.random.Generator,
    sr: int = 22050,
    duration: float = 4.0,
    snr_db: float | tuple[float, float] = (3.0, 20.0),
    event_duration: float | None = None,
    distractor_prob: float = 0.5,
) -> tuple[np.ndarray, dict]:
    """A ``duration``-second clip holding one ``label`` event in background noise.

    The event (``event_duration`` seconds, or a class-typical random 0.5-2.5 s) starts at
    a random onset. Its SNR (event power vs the background's power over the event's span)
    is drawn uniformly from ``snr_db`` (a ``(low, high)`` range or one number). The background is
    noise of random colour (1/f**a, a in [0, 2]) with a slow level drift; with probability
    ``distractor_prob`` a second event of another class is added 8-15 dB below the main
    event. The result is peak-normalised to a random peak in [0.3, 0.9].

    Returns ``(waveform, meta)``: float32 ``(round(duration * sr),)`` and a dict with
    ``label``, ``onset`` and ``offset`` (seconds), ``snr_db``, ``distractor`` (a class or
    None), ``distractor_onset``/``distractor_offset`` and ``background_exponent``.
    """
    _check_label(label)
    if sr <= 0:
        raise ValueError(f"sr must be positive, got {sr}")
    if not duration > 0.05:
        raise ValueError(f"duration must be > 0.05 s, got {duration}")
    if event_duration is not None and not 0 < event_duration <= duration:
        raise ValueError(f"event_duration must be in (0, {duration}], got {event_duration}")
    lo, hi = _snr_range(snr_db)
    n = _n(sr, duration)

    ev_dur = _event_duration(label, rng, duration) if event_duration is None else event_duration
    event = synth_event(label, rng, sr, ev_dur)
    m = min(len(event), n)
    event = event[:m]
    start = int(rng.integers(0, n - m + 1))
    snr = float(rng.uniform(lo, hi))

    exponent = float(rng.uniform(0.0, 2.0))
    background = _coloured_noise(rng, n, sr, exponent)
    t = _time(n, sr)
    drift = 1.0 + rng.uniform(0.0, 0.15) * np.sin(_TWO_PI * (rng.uniform(0.05, 0.4) * t + rng.uniform()))
    background *= drift

    def power(x: np.ndarray) -> float:
        return float(np.mean(x**2)) + 1e-20

    # SNR is local: the event's power over the background's power under the event
    event_power = power(background[start : start + m]) * 10.0 ** (snr / 10.0)
    clip = background.copy()
    clip[start : start + m] += event * np.sqrt(event_power / power(event))

    meta: dict = {
        "label": label,
        "onset": start / sr,
        "offset": (start + m) / sr,
        "snr_db": snr,
        "distractor": None,
        "distractor_onset": None,
        "distractor_offset": None,
        "background_exponent": exponent,
    }
    if rng.random() < distractor_prob:
        others = [c for c in CLASSES if c != label]
        other = others[int(rng.integers(0, len(others)))]
        d_event = synth_event(other, rng, sr, _event_duration(other, rng, duration))
        dm = min(len(d_event), n)
        d_start = int(rng.integers(0, n - dm + 1))
        d_power = event_power * 10.0 ** (-rng.uniform(8.0, 15.0) / 10.0)
        clip[d_start : d_start + dm] += d_event[:dm] * np.sqrt(d_power / power(d_event[:dm]))
        meta.update(distractor=other, distractor_onset=d_start / sr, distractor_offset=(d_start + dm) / sr)

    peak = float(rng.uniform(0.3, 0.9))
    clip = clip * (peak / (np.max(np.abs(clip)) + 1e-12))
    return clip.astype(np.float32), meta


# ----------------------------------------------------------------------------- dataset


def _clip_rng(seed: int, label: str, index: int) -> np.random.Generator:
    """Independent stream per (seed, class, clip): a clip does not depend on the others."""
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(label.encode()), index]))


def _atomic_write_wav(path: Path, samples: np.ndarray, sr: int) -> None:
    buf = io.BytesIO()
    sf.write(buf, samples, sr, subtype="PCM_16", format="WAV")
    atomic_write_bytes(path, buf.getvalue())


def _reusable(root: Path, manifest: Path, params: dict, n_rows: int) -> bool:
    spec = root / "synthetic.json"
    if not (manifest.is_file() and spec.is_file()):
        return False
    try:
        if json.loads(spec.read_text(encoding="utf-8")) != params:
            return False
        with open(manifest, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, ValueError, csv.Error):
        return False
    return len(rows) == n_rows and all((root / r.get("path", "")).is_file() for r in rows)


def make_dataset(
    root: str | os.PathLike,
    n_per_class: int = 12,
    classes: Sequence[str] | None = None,
    sr: int = 22050,
    duration: float = 4.0,
    seed: int = 0,
    n_folds: int | None = None,
) -> Path:
    """Write a synthetic dataset under ``root`` and return the path of its manifest.

    Layout: ``root/audio/<slug>/<slug>_<i:03d>.wav`` (16-bit PCM), ``root/synthetic.json``
    (the parameters and the mgcl version) and ``root/manifest.csv`` with header
    ``path,label`` (paths relative to ``root``), plus a ``fold`` column when ``n_folds`` is
    given (clip ``i`` of each class is in fold ``i % n_folds + 1``).

    Deterministic: the same arguments give byte-identical files. Every file is written
    to a temporary name and renamed into place, and the manifest last, so an interrupted
    run never leaves a manifest that names missing or partial files. When the manifest and
    ``synthetic.json`` already match these arguments (and the files exist) nothing is
    rewritten.
    """
    root = Path(root)
    classes = CLASSES if classes is None else tuple(classes)
    if not classes:
        raise ValueError("classes must not be empty")
    for label in classes:
        _check_label(label)
    if len(set(classes)) != len(classes):
        raise ValueError(f"duplicate classes in {list(classes)}")
    if int(n_per_class) != n_per_class or n_per_class < 1:
        raise ValueError(f"n_per_class must be a positive integer, got {n_per_class}")
    if int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    if n_folds is not None and (int(n_folds) != n_folds or not 1 <= n_folds <= n_per_class):
        raise ValueError(f"n_folds must be an integer in [1, n_per_class={n_per_class}], got {n_folds}")
    if int(sr) != sr or sr <= 0:
        raise ValueError(f"sr must be a positive integer, got {sr}")
    n_per_class, seed, sr = int(n_per_class), int(seed), int(sr)
    n_folds = None if n_folds is None else int(n_folds)

    params = {
        "generator": "mgcl.data.synthetic",
        "mgcl_version": __version__,
        "classes": list(classes),
        "n_per_class": n_per_class,
        "sr": int(sr),
        "duration": float(duration),
        "seed": seed,
        "n_folds": n_folds,
    }
    manifest = root / "manifest.csv"
    if _reusable(root, manifest, params, n_per_class * len(classes)):
        return manifest

    root.mkdir(parents=True, exist_ok=True)
    if manifest.exists():  # stale: make sure no manifest names half-rewritten data
        manifest.unlink()
    rows = []
    for label in classes:
        slug = class_slug(label)
        folder = root / "audio" / slug
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n_per_class):
            clip, _ = synth_clip(label, _clip_rng(seed, label, i), sr=sr, duration=duration)
            path = folder / f"{slug}_{i:03d}.wav"
            _atomic_write_wav(path, clip, sr)
            row = [f"audio/{slug}/{path.name}", label]
            if n_folds is not None:
                row.append(str(i % n_folds + 1))
            rows.append(row)

    atomic_write_bytes(root / "synthetic.json", (json.dumps(params, indent=2, sort_keys=True) + "\n").encode("utf-8"))
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["path", "label"] + (["fold"] if n_folds is not None else []))
    writer.writerows(rows)
    atomic_write_bytes(manifest, buf.getvalue().encode("utf-8"))
    return manifest
