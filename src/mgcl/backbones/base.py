"""The backbone protocol: the only place where audio and text meet a pretrained network.

A backbone turns waveforms into clip and frame embeddings and (when it has a text tower)
sentences into text embeddings, all L2-normalised and in the same joint space.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from mgcl.types import AudioFeatures


@runtime_checkable
class Backbone(Protocol):
    """What every backbone offers.

    Attributes
    ----------
    name:        registry name (``"aisfx"``, ``"clap"``, ...).
    identity:    string that changes whenever the embeddings would change (weights,
                 checkpoint, preprocessing version); keys the feature store.
    sample_rate: rate (Hz) that ``encode_audio`` expects.
    dim:         embedding dimension D.
    frame_step:  seconds between consecutive frames of ``encode_audio``'s output.
    has_text:    True when ``encode_text`` works.

    Optional: ``frame_spans(n_samples, n_frames=None) -> (T, 2)`` start/end seconds of each
    real frame of a clip of ``n_samples`` samples (``mgcl explain`` draws frames on a time
    axis with it; without it, frames are spread evenly over the clip).
    """

    name: str
    identity: str
    sample_rate: int
    dim: int
    frame_step: float
    has_text: bool

    def encode_audio(self, waveforms: Sequence[np.ndarray]) -> AudioFeatures:
        """Float32 mono waveforms at ``sample_rate`` (any lengths) -> AudioFeatures."""
        ...

    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:
        """Sentences -> (N, D) L2-normalised; raises BackboneError for audio-only backbones."""
        ...
