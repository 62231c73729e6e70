"""``aisfx``: the pretrained sound-effects embedding network shipped in the aisfx wheel.

Real weights, no network access: the PyPI package ``aisfx`` 0.1.2 (MIT; Ma et al., ISMIR
2022, model "X-Sequential-CE") carries its checkpoint inside the wheel. Install it with
``pip install --no-deps aisfx==0.1.2`` (its pins on numpy 1.23 / librosa 0.9 must not be
installed). We load only the checkpoint, with ``weights_only=True`` and an explicit
allow-list, and rebuild the network here so that frame embeddings are reachable.

Pipeline for one clip (44.1 kHz mono waveform x):
    x / max|x|  ->  |STFT_2048,hop1024(x)|^2  ->  96-bin HTK mel (L1-normalised filters)
    ->  log10(1 + 10^4 mel) / 9.4578  ->  blocks of 100 frames, hop 50   (n_blocks, 100, 96)
    ->  CNN 64-128-256-512 (3 max-pools 2x2)  ->  mean over frequency   (n_blocks, 512, 12)
    block embedding  = max over the 12 time steps                        (n_blocks, 512)
    clip embedding   = normalise(mean over blocks of block embeddings)   (512,)
    frame embeddings = the time steps of each block; overlapping halves are kept once
                       (block b contributes its first 6 steps, the last block all 12),
                       about 5.4 frames per second, each normalised       (T, 512)
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from mgcl.backbones.dsp import mel_filterbank
from mgcl.errors import BackboneError
from mgcl.types import AudioFeatures, l2_normalize

SAMPLE_RATE = 44100
N_FFT = 2048
HOP = 1024
N_MELS = 96
LOG_MAX = 9.457798957824707  # the package's 'original' normalisation maximum
BLOCK = 100  # spectrogram frames per block (~2.3 s)
BLOCK_HOP = 50
POOL = 8  # three 2x2 max-pools: one output time step per 8 spectrogram frames
STEPS = BLOCK // POOL  # 12 time steps per block
FRONTEND_VERSION = "frontend-v1"
#: Blocks per network forward on a CPU: the first layers' activations of 4 blocks (10 MB
#: each) stay near the cache, 48 (the blocks of 16 clips) stream 120 MB tensors through
#: memory; 4 at a time is 30 % faster on 2 cores, with the same bits (each block's result
#: does not depend on the others in its batch).
CPU_BATCH = 4


# --------------------------------------------------------------------------- front end
def log_mel(wave: torch.Tensor) -> torch.Tensor:
    """Peak-normalised log-mel spectrogram of one clip: (n,) -> (T, 96), T = 1 + n // 1024.

    ``log10(1 + 10^4 * mel_power) / 9.4578`` with a centred, zero-padded, periodic-Hann STFT.
    """
    peak = wave.abs().max()
    wave = wave / torch.where(peak > 0, peak, torch.ones_like(peak))
    spec = torch.stft(
        wave,
        n_fft=N_FFT,
        hop_length=HOP,
        window=torch.hann_window(N_FFT, device=wave.device),
        center=True,
        pad_mode="constant",
        return_complex=True,
    )
    power = spec.real.square() + spec.imag.square()  # (1025, T)
    mel = torch.from_numpy(mel_filterbank(SAMPLE_RATE, N_FFT, N_MELS)).to(wave.device) @ power  # (96, T)
    return (torch.log10(1.0 + 10000.0 * mel) / LOG_MAX).T.contiguous()


def n_blocks(n_frames: int, block: int = BLOCK, hop: int = BLOCK_HOP) -> int:
    """Blocks covering all frames, the last one zero-padded: max(1, ceil((T - block)/hop) + 1)."""
    return max(1, math.ceil((n_frames - block) / hop) + 1)


def to_blocks(spec: torch.Tensor, block: int = BLOCK, hop: int = BLOCK_HOP) -> torch.Tensor:
    """(T, M) -> (n_blocks, block, M), zero-padded at the end (the package's ``blocking``
    with ``drop_partial_block=False``)."""
    nb = n_blocks(spec.shape[0], block, hop)
    padded = F.pad(spec, (0, 0, 0, (nb - 1) * hop + block - spec.shape[0]))
    return padded.unfold(0, block, hop).transpose(1, 2).contiguous()


def frame_layout(n_frames: int) -> tuple[list[tuple[int, int]], int]:
    """Which time steps of which block form the clip's frame sequence, and how many are real.

    Returns ``([(block, n_steps_kept), ...], n_valid)``: every block but the last keeps its
    first BLOCK_HOP // POOL = 6 steps (the rest is repeated by the next block), the last keeps
    all 12. A step covers spectrogram frames [8j, 8j + 8) of its block and is real when
    its first frame is inside the clip.
    """
    nb = n_blocks(n_frames)
    keep = BLOCK_HOP // POOL
    layout = [(b, keep) for b in range(nb - 1)] + [(nb - 1, STEPS)]
    starts = [b * BLOCK_HOP + POOL * j for b, k in layout for j in range(k)]
    n_valid = sum(1 for s in starts if s < n_frames)
    return layout, max(n_valid, 1)


# --------------------------------------------------------------------------- network
class ConvBlock(nn.Module):
    """(conv3x3 -> BN -> ReLU) x 2 -> max-pool; parameter names match the aisfx checkpoint."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.bn2 = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor, pool: int) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)), inplace=True)  # in place: one activation less in memory
        x = F.relu(self.bn2(self.conv2(x)), inplace=True)
        return F.max_pool2d(x, pool) if pool > 1 else x


class AisfxNet(nn.Module):
    """The aisfx EmbeddingNet (4 conv blocks, 64-128-256-512) returning frame features.

    forward: blocks (B, 100, 96) -> (B, 512, 12) = conv features averaged over frequency.
    """

    def __init__(self, width: int = 64):
        super().__init__()
        self.conv_block1 = ConvBlock(1, width)
        self.conv_block2 = ConvBlock(width, 2 * width)
        self.conv_block3 = ConvBlock(2 * width, 4 * width)
        self.conv_block4 = ConvBlock(4 * width, 8 * width)

    def forward(self, blocks: torch.Tensor) -> torch.Tensor:
        x = blocks.unsqueeze(1)
        x = self.conv_block1(x, 2)
        x = self.conv_block2(x, 2)
        x = self.conv_block3(x, 2)
        x = self.conv_block4(x, 1)
        return x.mean(dim=3)


def checkpoint_path() -> Path:
    """Path of ``checkpoint.pth`` inside the installed aisfx package (without importing it)."""
    spec = importlib.util.find_spec("aisfx")
    if spec is None or not spec.submodule_search_locations:
        raise BackboneError("the aisfx weights are not installed: run `pip install --no-deps aisfx==0.1.2`")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / "checkpoint.pth"
    if not path.is_file():
        raise BackboneError(f"aisfx is installed but its checkpoint is missing: {path}")
    return path


def load_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """The checkpoint's state dict, loaded with ``weights_only=True``.

    The file is a pickled ``(state_dict, {dataset: (np.int64, int)})`` tuple; the only
    non-tensor globals it needs are numpy's scalar reconstructor and dtypes, allowed by name.
    """
    try:
        from numpy._core.multiarray import scalar  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import scalar
    allowed = [(scalar, "numpy.core.multiarray.scalar"), np.dtype, type(np.dtype(np.int64))]
    try:
        with torch.serialization.safe_globals(allowed):
            state, _ = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - report any failure as one line
        raise BackboneError(f"cannot load aisfx checkpoint {path}: {exc}".splitlines()[0]) from None
    prefix = "embedding_net."
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


@lru_cache(maxsize=1)
def _file_digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


class AisfxBackbone:
    """Audio-only backbone: 512-d clip and frame embeddings from the aisfx network.

    Parameters
    ----------
    device: torch device (default: cuda when available, else cpu).
    batch_size: blocks (2.3 s each) per network forward (bounds memory for long clips);
        default CPU_BATCH on a CPU, 64 on an accelerator.
    """

    name = "aisfx"
    sample_rate = SAMPLE_RATE
    dim = 512
    frame_step = POOL * HOP / SAMPLE_RATE  # 0.1858 s: one time step of a block
    has_text = False

    def __init__(self, device: str | None = None, batch_size: int | None = None):
        if batch_size is not None and (int(batch_size) != batch_size or batch_size < 1):
            raise BackboneError(f"batch_size must be a positive integer, got {batch_size}")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if batch_size is None:
            batch_size = CPU_BATCH if self.device.type == "cpu" else 64
        self.batch_size = int(batch_size)
        path = checkpoint_path()
        self.net = AisfxNet()
        self.net.load_state_dict(load_checkpoint(path))
        self.net.to(self.device).eval()
        self.identity = f"aisfx-0.1.2:{_file_digest(str(path))}:{FRONTEND_VERSION}"

    @torch.inference_mode()
    def block_features(self, blocks: torch.Tensor) -> torch.Tensor:
        """(n_blocks, 100, 96) -> (n_blocks, 512, 12) frame features, in chunks."""
        outs = [
            self.net(blocks[i : i + self.batch_size].to(self.device)).float().cpu()
            for i in range(0, blocks.shape[0], self.batch_size)
        ]
        return torch.cat(outs)

    @torch.inference_mode()
    def encode_audio(self, waveforms: Sequence[np.ndarray]) -> AudioFeatures:
        """Mono 44.1 kHz waveforms -> AudioFeatures (clip (B,512), frames (B,T,512), mask)."""
        specs = [log_mel(torch.as_tensor(np.asarray(w, dtype=np.float32))) for w in waveforms]
        blocks = [to_blocks(s) for s in specs]
        feats = self.block_features(torch.cat(blocks))  # (sum_blocks, 512, 12)
        items, start = [], 0
        for spec, blk in zip(specs, blocks):
            f = feats[start : start + blk.shape[0]]
            start += blk.shape[0]
            clip = l2_normalize(f.amax(dim=2).mean(dim=0))
            layout, n_valid = frame_layout(spec.shape[0])
            frames = torch.cat([f[b, :, :k].T for b, k in layout])[:n_valid]
            items.append((clip, l2_normalize(frames)))
        return AudioFeatures.stack(items, frame_step=self.frame_step)

    @torch.inference_mode()
    def stream_frames(
        self, blocks: Iterable[np.ndarray], peak: float, blocks_per_batch: int | None = None
    ) -> Iterator[tuple[torch.Tensor, np.ndarray]]:
        """Frames of one long recording given as consecutive sample blocks, in order.

        ``blocks``: float32 mono blocks at 44.1 kHz (any sizes) whose concatenation x is the
        recording; ``peak`` = max|x| (a first pass over it: :func:`mgcl.audio.stream.peak`).
        Yields ``(frames (t, 512) L2-normalised, spans (t, 2) seconds)`` pieces; concatenated,
        the frames equal ``encode_audio([x]).frames[0]``'s real frames (same peak
        normalisation, same spectrogram frames, same network blocks, same kept steps; float
        rounding aside) and the spans equal :meth:`frame_spans`. Memory holds one network
        batch of blocks and the samples they need, whatever the length of x.

        Spectrogram frame i covers samples [1024 i - 1024, 1024 i + 1024) of x (zeros outside,
        the centred STFT); block b needs frames [50 b, 50 b + 100) and is not the last one
        exactly when frame 50 b + 100 exists (the clip's T = 1 + n // 1024 frames).
        """
        scale = float(peak) if peak > 0 else 1.0
        batch = int(blocks_per_batch or self.batch_size)
        window = torch.hann_window(N_FFT)
        fb = torch.from_numpy(mel_filterbank(SAMPLE_RATE, N_FFT, N_MELS))
        buf = torch.zeros(N_FFT // 2)  # the padded signal from sample `buf0` on (starts with the centre pad)
        buf0 = -N_FFT // 2
        n_samples = 0
        spec = torch.zeros(0, N_MELS)  # spectrogram frames from index `spec0` on
        spec0 = 0
        next_block = 0
        emitted = 0

        def frames_from(x: torch.Tensor) -> torch.Tensor:
            s = torch.stft(x, n_fft=N_FFT, hop_length=HOP, window=window, center=False, return_complex=True)
            power = s.real.square() + s.imag.square()
            return (torch.log10(1.0 + 10000.0 * (fb @ power)) / LOG_MAX).T

        def run(block_ids: list[int], spec: torch.Tensor, spec0: int):
            chunk = torch.stack([spec[b * BLOCK_HOP - spec0 : b * BLOCK_HOP - spec0 + BLOCK] for b in block_ids])
            return self.block_features(chunk)  # (n, 512, 12)

        def step_spans(b: int, k: int) -> np.ndarray:
            starts = np.array([b * BLOCK_HOP + POOL * j for j in range(k)], dtype=np.float64)
            return np.stack([starts - 0.5, starts + POOL - 0.5], axis=1) * (HOP / SAMPLE_RATE)

        for block in blocks:
            x = torch.as_tensor(np.asarray(block, dtype=np.float32)) / scale
            n_samples += len(x)
            buf = torch.cat([buf, x])
            # spectrogram frames whose samples are all in: frame i needs buf up to 1024 i + 1024 (x coordinates)
            n_ready = (buf0 + len(buf) - N_FFT // 2) // HOP + 1 - (spec0 + len(spec))
            if n_ready > 0:
                first = spec0 + len(spec)
                lo = first * HOP - N_FFT // 2 - buf0
                seg = buf[lo : lo + (n_ready - 1) * HOP + N_FFT]
                spec = torch.cat([spec, frames_from(seg)])
            # blocks known not to be the last: frame 50 b + 100 exists
            ready = []
            while spec0 + len(spec) > next_block * BLOCK_HOP + BLOCK:
                ready.append(next_block)
                next_block += 1
                if len(ready) == batch:
                    break
            while ready:
                feats = run(ready, spec, spec0)
                keep = BLOCK_HOP // POOL
                frames = torch.cat([f[:, :keep].T for f in feats])
                spans = np.concatenate([step_spans(b, keep) for b in ready])
                emitted += len(frames)
                yield l2_normalize(frames), spans
                ready = []
                while spec0 + len(spec) > next_block * BLOCK_HOP + BLOCK and len(ready) < batch:
                    ready.append(next_block)
                    next_block += 1
            # drop what no later block needs
            drop_spec = next_block * BLOCK_HOP - spec0
            if drop_spec > 0:
                spec, spec0 = spec[drop_spec:], spec0 + drop_spec
            drop = (spec0 + len(spec)) * HOP - N_FFT // 2 - buf0
            if drop > 0:
                buf, buf0 = buf[drop:], buf0 + drop
        if n_samples == 0:
            raise BackboneError("cannot stream an empty recording (zero samples)")
        # the end: the centred STFT's right pad, the remaining frames, the last (zero-padded) blocks
        total = 1 + n_samples // HOP
        buf = torch.cat([buf, torch.zeros(N_FFT // 2)])
        missing = total - (spec0 + len(spec))
        if missing > 0:
            first = spec0 + len(spec)
            lo = first * HOP - N_FFT // 2 - buf0
            spec = torch.cat([spec, frames_from(buf[lo : lo + (missing - 1) * HOP + N_FFT])])
        nb = n_blocks(total)
        _, n_valid = frame_layout(total)
        need = (nb - 1) * BLOCK_HOP + BLOCK - spec0
        spec = F.pad(spec, (0, 0, 0, max(0, need - len(spec))))
        rest = list(range(next_block, nb))
        for i in range(0, len(rest), batch):
            ids = rest[i : i + batch]
            feats = run(ids, spec, spec0)
            parts, spans = [], []
            for b, f in zip(ids, feats):
                k = STEPS if b == nb - 1 else BLOCK_HOP // POOL
                parts.append(f[:, :k].T)
                spans.append(step_spans(b, k))
            frames, spans = torch.cat(parts), np.concatenate(spans)
            frames, spans = frames[: n_valid - emitted], spans[: n_valid - emitted]
            emitted += len(frames)
            if len(frames):
                yield l2_normalize(frames), spans

    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:
        raise BackboneError("backbone 'aisfx' is audio-only: it has no text encoder")

    def frame_spans(self, n_samples: int, n_frames: int | None = None) -> np.ndarray:
        """(T, 2) start/end seconds of the real frames of a clip of ``n_samples`` samples at
        44.1 kHz: step j of block b covers spectrogram frames [b·BLOCK_HOP + POOL·j, ... + POOL),
        spectrogram frame i is centred at i·HOP (centred STFT); steps kept as in
        :func:`frame_layout`. ``n_frames`` is not needed (the layout is exact)."""
        layout, n_valid = frame_layout(1 + n_samples // HOP)
        starts = np.array([b * BLOCK_HOP + POOL * j for b, k in layout for j in range(k)][:n_valid], dtype=np.float64)
        return np.stack([starts - 0.5, starts + POOL - 0.5], axis=1) * (HOP / SAMPLE_RATE)
