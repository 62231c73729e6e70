"""A picture-sized log-mel spectrogram of a recording of any length, streamed.

The recording is read a block at a time (:func:`mgcl.audio.stream.iter_blocks`) at
``sample_rate``; each block's mel power frames (n_fft 1024, hop 512, HTK mel filters) are
averaged into ``columns`` equal stretches of the whole recording, so memory holds one block
and the (n_mels, columns) picture, whatever the length. -> dB, ``10 log10(mean power)``.
"""

from __future__ import annotations

import numpy as np

from mgcl.audio.stream import duration as source_duration
from mgcl.audio.stream import iter_blocks
from mgcl.backbones.dsp import hz_to_mel_htk, mel_filterbank, mel_to_hz_htk

N_FFT = 1024
HOP = 512


def overview_spectrogram(
    source, sample_rate: int = 16000, columns: int = 1200, n_mels: int = 64
) -> tuple[np.ndarray, np.ndarray, float]:
    """(spectrogram (n_mels, columns') in dB, mel band centre frequencies (n_mels,), duration s).

    Column j averages the mel power of the STFT frames centred in
    ``[j·duration/columns, (j+1)·duration/columns)``; columns' = min(columns, frames)."""
    total = source_duration(source)
    n_frames = max(1, int(total * sample_rate) // HOP)
    cols = max(1, min(columns, n_frames))
    fb = mel_filterbank(sample_rate, N_FFT, n_mels).astype(np.float64)
    window = np.hanning(N_FFT + 1)[:-1]
    sums = np.zeros((n_mels, cols))
    counts = np.zeros(cols)
    carry = np.zeros(0, dtype=np.float32)
    frame0 = 0  # index of the next STFT frame (frame f starts at sample f * HOP)
    for block in iter_blocks(source, sample_rate):
        buf = np.concatenate([carry, block])
        n = (len(buf) - N_FFT) // HOP + 1 if len(buf) >= N_FFT else 0
        if n > 0:
            idx = np.arange(N_FFT)[None, :] + HOP * np.arange(n)[:, None]
            power = np.abs(np.fft.rfft(buf[idx] * window, axis=1)) ** 2  # (n, 513)
            mel = power @ fb.T  # (n, n_mels)
            col = np.minimum(((frame0 + np.arange(n)) * HOP + N_FFT / 2) / sample_rate / total * cols, cols - 1)
            col = col.astype(np.int64)
            np.add.at(counts, col, 1.0)
            for m in range(n_mels):
                np.add.at(sums[m], col, mel[:, m])
            frame0 += n
            carry = buf[n * HOP :]
        else:
            carry = buf
    spec = 10.0 * np.log10(np.maximum(sums / np.maximum(counts, 1.0), 1e-10))
    freqs = mel_to_hz_htk(np.linspace(hz_to_mel_htk(0.0), hz_to_mel_htk(sample_rate / 2.0), n_mels + 2)[1:-1])
    return spec.astype(np.float32), freqs, total


__all__ = ["overview_spectrogram"]
