"""CLAP (LAION, via Hugging Face transformers) as an mgcl backbone.

Data flow for ``encode_audio`` (W = the feature extractor's ``max_length_s``, 10 s):

    clip (any length) -> consecutive W-second windows; a clip longer than W ends with the
         window of its final W seconds (overlapping the one before: no padding)
      -> ClapFeatureExtractor (repeat-pads a clip shorter than W, never crops)
      -> ClapModel.get_audio_features -> window embedding (D,)
         + audio tower last_hidden_state (C, F, Tw) -> mean over F -> audio_projection
           -> Tw frame embeddings (Tw, D)
      -> clip embedding = normalise(mean of normalised window embeddings, weighted by
                            the real length of each window)
         frames = concatenation of the windows' frames that cover new audio (a padded
         window's repeats, an overlapping last window's already-covered start: masked)

Everything runs in eval mode under ``torch.no_grad``; outputs are float32 CPU tensors.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
import torch

from mgcl.errors import AudioError, BackboneError
from mgcl.types import AudioFeatures, l2_normalize
from mgcl.util.hashing import stable_hash, weights_stamp
from mgcl.util.hub import OFFLINE_HELP, unreachable_reason

DEFAULT_CHECKPOINT = "laion/clap-htsat-unfused"

# Bump whenever windowing / pooling / masking changes: it is part of ``identity``.
PREPROCESSING_VERSION = "pp3"  # pp2: windows weighted by real length; pp3: overlapping last window

TEXT_BATCH_SIZE = 64

# Character-level vocabulary of the tiny offline tokenizer (random models only).
_TINY_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]  # ids 0..3 = CLAP's bos, pad, eos, unk
_TINY_CHARS = list("abcdefghijklmnopqrstuvwxyz0123456789 .,'-!?")


# --------------------------------------------------------------------------------------
# small pure steps
# --------------------------------------------------------------------------------------


def split_windows(waveform: np.ndarray, window: int) -> list[tuple[np.ndarray, int]]:
    """Cut a 1-D waveform (S,) into windows of ``window`` samples: ``[(piece, new), ...]``.

    A clip of at most ``window`` samples is one piece (the feature extractor repeat-pads
    it). A longer clip gives its ``S // window`` consecutive full windows, then, when
    ``r = S mod window > 0``, the window of its final ``window`` samples, which overlaps the
    one before and brings ``new = r`` samples not seen yet (every other piece: all of its
    samples). No piece is padded, so no window of a long clip repeats a snippet of audio.
    """
    n = len(waveform)
    if n <= window:
        return [(waveform, n)]
    full, rest = divmod(n, window)
    pieces = [(waveform[k * window : (k + 1) * window], window) for k in range(full)]
    if rest:
        pieces.append((waveform[n - window :], rest))
    return pieces


def valid_frames(real_samples: int, window: int, frames_per_window: int) -> int:
    """Number of frames of a window that cover ``real_samples`` samples not seen before.

    Frame j of a window covers ``[j*window/T, (j+1)*window/T)``: for a repeat-padded window
    (the audio at its start) the real frames are those starting inside the audio; for an
    overlapping last window (the new audio at its end) those ending inside the new part.
    Either way the count is ``ceil(real_samples*T/window)``.
    """
    return min(frames_per_window, -(-real_samples * frames_per_window // window))


def frames_per_window(audio_config) -> int:
    """Frames T of one window in HTSAT's ``last_hidden_state`` (B, C, F, T).

    HTSAT folds the (spec_size x spec_size) mel image back to time: after ``len(depths) - 1``
    patch merges of a grid of ``spec_size / patch_stride`` it has ``g`` time steps per row and
    ``spec_size // num_mel_bins`` rows of time:  T = (spec_size // num_mel_bins) · g.
    Released models: 4 · 8 = 32 (0.3125 s per frame); the tiny test model: 4 · 16 = 64.
    """
    stride = audio_config.patch_stride
    stride = stride[1] if isinstance(stride, (list, tuple)) else stride
    grid = audio_config.spec_size // 2 ** (len(audio_config.depths) - 1) // stride
    return (audio_config.spec_size // audio_config.num_mel_bins) * grid


def extract_window_features(
    feature_extractor: Any, windows: Sequence[np.ndarray], truncation: str, sample_rate: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-mel inputs for windows no longer than ``max_length_s``.

    Returns ``input_features`` (n, 1 or 4, mel_frames, mel_bins) float32 and ``is_longer``
    (n, 1) bool, all False: no window is longer than the model's input, so the fusion
    branch is off. (The extractor sets one random ``is_longer`` when none is longer, a
    training trick that would make outputs random and batch-dependent; we undo it and
    restore numpy's global RNG, which the extractor draws from.)
    """
    state = np.random.get_state()
    try:
        inputs = feature_extractor(
            [np.asarray(w, dtype=np.float32) for w in windows],
            truncation=truncation,
            padding="repeatpad",
            sampling_rate=sample_rate,
            return_tensors="pt",
        )
    finally:
        np.random.set_state(state)
    features = inputs["input_features"].float()
    is_longer = torch.zeros(features.shape[0], 1, dtype=torch.bool)
    return features, is_longer


def pool_frames(hidden: torch.Tensor, projection: torch.nn.Module) -> torch.Tensor:
    """Audio-tower ``last_hidden_state`` (B, C, F, T) -> frame embeddings (B, T, D).

    Mean over the frequency axis F, then the model's ``audio_projection`` per frame, then
    L2 normalisation. (The projection was trained on time-pooled vectors: an approximation.)
    """
    return l2_normalize(projection(hidden.mean(dim=2).transpose(1, 2)))


def joint_embedding(output: Any, tower_pooled: torch.Tensor | None, projection: torch.nn.Module) -> torch.Tensor:
    """The (B, D) L2-normalised joint embedding from ``get_audio/text_features``' output.

    transformers 4.x returns the projected tensor; 5.x returns an output object whose
    ``pooler_output`` is the projected embedding. If that ``pooler_output`` is still the
    tower's un-projected pooler (``tower_pooled``), the projection is applied here.
    """
    if isinstance(output, torch.Tensor):
        emb = output
    elif getattr(output, "pooler_output", None) is not None:
        emb = output.pooler_output
    elif isinstance(output, (tuple, list)):
        emb = output[1]
    else:
        raise BackboneError(f"unexpected CLAP output type {type(output).__name__}")
    if tower_pooled is not None and (
        emb is tower_pooled or (emb.shape == tower_pooled.shape and torch.equal(emb, tower_pooled))
    ):
        emb = projection(emb)
    return l2_normalize(emb)


@contextmanager
def capture_output(module: torch.nn.Module) -> Iterator[dict]:
    """Record ``last_hidden_state`` and ``pooler_output`` of ``module``'s forward.

    The tensors are taken when the module returns, before any caller rebinds fields of
    the output object (transformers 5.x overwrites ``pooler_output`` in place).
    """
    captured: dict = {}

    def hook(_module, _args, output):
        if isinstance(output, (tuple, list)):
            captured["hidden"], captured["pooled"] = output[0], output[1]
        else:
            captured["hidden"], captured["pooled"] = output.last_hidden_state, output.pooler_output

    handle = module.register_forward_hook(hook)
    try:
        yield captured
    finally:
        handle.remove()


# --------------------------------------------------------------------------------------
# the backbone
# --------------------------------------------------------------------------------------


class ClapBackbone:
    """CLAP audio + text towers; clip, frame and text embeddings in the joint space.

    Parameters
    ----------
    checkpoint: hub id or local folder for ``ClapModel`` / ``ClapProcessor.from_pretrained``
                (set ``HF_HUB_OFFLINE=1`` to use only the local cache).
    device:     torch device; default ``"cuda"`` when available, else ``"cpu"``.
    batch_size: windows (of ``max_length_s``) per forward pass.
    model, processor: an already built ``ClapModel`` and an object with
                ``feature_extractor`` and ``tokenizer`` (e.g. ``ClapProcessor``); skip loading.
    name, identity: override the registry name / cache identity (random factories use them).
    """

    has_text = True

    def __init__(
        self,
        checkpoint: str = DEFAULT_CHECKPOINT,
        device: str | None = None,
        batch_size: int = 8,
        model=None,
        processor=None,
        *,
        name: str = "clap",
        identity: str | None = None,
    ):
        if batch_size < 1:
            raise BackboneError(f"batch_size must be >= 1, got {batch_size}")
        if model is None or processor is None:
            model, processor = _load(checkpoint, model, processor)
        self.checkpoint = checkpoint
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.batch_size = int(batch_size)
        self.model = model.to(self.device).eval()
        self.feature_extractor = processor.feature_extractor
        self.tokenizer = processor.tokenizer

        config = self.model.config
        fe = self.feature_extractor
        self.name = name
        self.sample_rate = int(fe.sampling_rate)
        self.dim = int(config.projection_dim)
        self.max_length_s = fe.max_length_s
        self.window_samples = int(round(fe.max_length_s * fe.sampling_rate))
        self.truncation = "fusion" if config.audio_config.enable_fusion else "rand_trunc"
        self.frames_per_window = frames_per_window(config.audio_config)
        self._check_shapes()
        text_cfg = config.text_config
        self._max_text_len = min(
            int(self.tokenizer.model_max_length),
            int(text_cfg.max_position_embeddings) - int(text_cfg.pad_token_id or 0) - 1,
        )
        self.identity = identity or self._default_identity()

    # -- construction helpers ---------------------------------------------------------

    def _check_shapes(self) -> None:
        """Fail early when the feature extractor does not fit the audio tower."""
        cfg = self.model.config.audio_config
        fe = self.feature_extractor
        ratio = cfg.spec_size // cfg.num_mel_bins
        mel_frames = 1 + self.window_samples // fe.hop_length
        if fe.feature_size != cfg.num_mel_bins or mel_frames > cfg.spec_size * ratio:
            raise BackboneError(
                f"CLAP feature extractor ({fe.feature_size} mel bins, {mel_frames} frames per "
                f"window) does not fit the audio model ({cfg.num_mel_bins} mel bins, at most "
                f"{cfg.spec_size * ratio} frames)"
            )

    def _default_identity(self) -> str:
        cfg = self.model.config
        digest = stable_hash(
            cfg.to_dict(),
            self.feature_extractor.to_dict(),
            getattr(cfg, "_commit_hash", None) or "",
            weights_stamp(self.checkpoint),
            [type(self.tokenizer).__name__, len(self.tokenizer)],
        )
        prep = f"{PREPROCESSING_VERSION}-w{self.max_length_s}s-{self.truncation}"
        return f"clap:{self.checkpoint}:{digest}:{prep}"

    @property
    def frame_step(self) -> float:
        """Seconds between consecutive frames: ``max_length_s / frames_per_window`` (0.3125 s
        for the released models)."""
        return float(self.max_length_s) / self.frames_per_window

    def __repr__(self) -> str:
        return f"ClapBackbone(name={self.name!r}, identity={self.identity!r}, device={str(self.device)!r})"

    # -- audio ------------------------------------------------------------------------

    def _encode_windows(self, windows: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """Windows (each <= max_length_s) -> embeddings (n, D) and frames (n, Tw, D), on CPU."""
        clips, frames = [], []
        for start in range(0, len(windows), self.batch_size):
            chunk = windows[start : start + self.batch_size]
            x, is_longer = extract_window_features(self.feature_extractor, chunk, self.truncation, self.sample_rate)
            x, is_longer = x.to(self.device), is_longer.to(self.device)
            with capture_output(self.model.audio_model) as tower:
                out = self.model.get_audio_features(input_features=x, is_longer=is_longer)
            if "hidden" not in tower:  # a model whose get_audio_features skips audio_model
                tower_out = self.model.audio_model(input_features=x, is_longer=is_longer)
                tower["hidden"] = tower_out.last_hidden_state
            projection = self.model.audio_projection
            clips.append(joint_embedding(out, tower.get("pooled"), projection).float().cpu())
            frames.append(pool_frames(tower["hidden"], projection).float().cpu())
        return torch.cat(clips), torch.cat(frames)

    @torch.no_grad()
    def encode_audio(self, waveforms: Sequence[np.ndarray]) -> AudioFeatures:
        """Float32 mono waveforms at 48 kHz (any lengths) -> AudioFeatures.

        clip (B, D): the normalised mean of the window embeddings, each weighted by the
        samples it brings (:func:`split_windows`); frames (B, T, D): per window, its frames
        that cover new audio (:func:`valid_frames`; Tw = 32 per window for the released
        models, ``frame_step`` = 0.3125 s each), concatenated; frame_mask (B, T) True for
        them. Masked frames are zero.
        """
        owner, windows, new = [], [], []
        for i, w in enumerate(waveforms):
            w = np.asarray(w, dtype=np.float32)
            if w.ndim != 1 or w.size == 0:
                raise AudioError(f"waveform {i}", f"expected non-empty mono audio, got shape {w.shape}")
            for piece, n_new in split_windows(w, self.window_samples):
                owner.append(i)
                windows.append(piece)
                new.append(n_new)
        b = len(waveforms)
        if b == 0:
            return AudioFeatures(
                torch.zeros(0, self.dim),
                torch.zeros(0, 0, self.dim),
                torch.zeros(0, 0, dtype=torch.bool),
                frame_step=self.frame_step,
            )

        win_clip, win_frames = self._encode_windows(windows)
        tw = win_frames.shape[1]
        if tw != self.frames_per_window:  # a tower whose layout differs from HTSAT's
            raise BackboneError(
                f"CLAP audio tower gave {tw} frames per window, expected {self.frames_per_window} from its config"
            )
        counts = [valid_frames(n, self.window_samples, tw) for n in new]
        n_frames = np.bincount(owner, weights=counts, minlength=b).astype(int)
        clip = torch.zeros(b, self.dim)
        frames = torch.zeros(b, int(n_frames.max()), self.dim)
        mask = torch.zeros(b, int(n_frames.max()), dtype=torch.bool)
        filled = np.zeros(b, dtype=int)
        for k, i in enumerate(owner):
            clip[i] += win_clip[k] * new[k]  # windows weigh by the audio they bring
            n, t0 = counts[k], filled[i]
            # a padded window's real frames come first; an overlapping last window's new ones last
            part = win_frames[k, :n] if len(windows[k]) < self.window_samples else win_frames[k, tw - n :]
            frames[i, t0 : t0 + n] = part
            mask[i, t0 : t0 + n] = True
            filled[i] += n
        return AudioFeatures(l2_normalize(clip), frames, mask, frame_step=self.frame_step)

    def frame_spans(self, n_samples: int, n_frames: int | None = None) -> np.ndarray:
        """(T, 2) start/end seconds of the frames ``encode_audio`` keeps for a clip of
        ``n_samples`` samples (:func:`split_windows`, :func:`valid_frames`): frame j of a
        window starting at sample s covers [s + j·W/Tw, s + (j+1)·W/Tw). ``n_frames`` is not
        needed (the layout is exact)."""
        window, tw = self.window_samples, self.frames_per_window
        pieces = split_windows(np.empty(max(int(n_samples), 1), dtype=np.uint8), window)
        spans, start = [], 0
        for piece, n_new in pieces:
            n = valid_frames(n_new, window, tw)
            first = 0 if len(piece) < window else tw - n
            s0 = start if n_new == len(piece) else n_samples - window  # the overlapping last window
            spans += [(s0 + j * window / tw, s0 + (j + 1) * window / tw) for j in range(first, first + n)]
            start += len(piece)
        return np.asarray(spans, dtype=np.float64).reshape(-1, 2) / self.sample_rate

    # -- text -------------------------------------------------------------------------

    @torch.no_grad()
    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:
        """Sentences -> (N, D) L2-normalised text embeddings (CPU float32, no autograd graph)."""
        texts = [str(t) for t in texts]
        if not texts:
            return torch.zeros(0, self.dim)
        out = []
        for start in range(0, len(texts), TEXT_BATCH_SIZE):
            tok = self.tokenizer(
                texts[start : start + TEXT_BATCH_SIZE],
                padding=True,
                truncation=True,
                max_length=self._max_text_len,
                return_tensors="pt",
            )
            ids, attn = tok["input_ids"].to(self.device), tok["attention_mask"].to(self.device)
            with capture_output(self.model.text_model) as tower:
                res = self.model.get_text_features(input_ids=ids, attention_mask=attn)
            out.append(joint_embedding(res, tower.get("pooled"), self.model.text_projection).float().cpu().detach())
        return torch.cat(out)


def _load(checkpoint: str, model=None, processor=None):
    """``ClapModel`` and ``ClapProcessor`` from a hub id or folder; one-line BackboneError."""
    looks_local = os.path.isabs(checkpoint) or checkpoint.startswith((".", "~"))
    if looks_local and not os.path.isdir(os.path.expanduser(checkpoint)):
        raise BackboneError(
            f"cannot load CLAP checkpoint '{checkpoint}': no such folder (pass an existing "
            "local folder or a hub id; HF_HUB_OFFLINE=1 uses only the local Hugging Face cache)"
        )
    checkpoint = os.path.expanduser(checkpoint)
    why = unreachable_reason(checkpoint)
    if why is not None:  # fail now, not after half a minute of retries
        raise BackboneError(f"cannot load CLAP checkpoint: {why}; {OFFLINE_HELP}")
    try:
        from transformers import ClapModel, ClapProcessor

        if model is None:
            model = ClapModel.from_pretrained(checkpoint)
        if processor is None:
            processor = ClapProcessor.from_pretrained(checkpoint)
    except Exception as e:  # noqa: BLE001 - any loading problem becomes one actionable line
        reason = " ".join(str(e).split()) or type(e).__name__
        if len(reason) > 200:
            reason = reason[:197] + "..."
        raise BackboneError(
            f"cannot load CLAP checkpoint '{checkpoint}': {reason} (check the name, pass a "
            "local folder, or set HF_HUB_OFFLINE=1 to use the local Hugging Face cache)"
        ) from e
    return model, processor


# --------------------------------------------------------------------------------------
# random models (tests and speed benchmarks only: their outputs mean nothing)
# --------------------------------------------------------------------------------------


def tiny_tokenizer():
    """A character-level ``PreTrainedTokenizerFast`` built in code (no download).

    47 tokens: ``<s>``=0, ``<pad>``=1, ``</s>``=2, ``<unk>``=3 (CLAP's bos/pad/eos ids),
    then lower-case letters, digits, space and some punctuation. Max length 62.
    """
    from tokenizers import Tokenizer, models, normalizers

    vocab = {t: i for i, t in enumerate(_TINY_SPECIALS + _TINY_CHARS)}
    tk = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tk.normalizer = normalizers.Lowercase()
    return _roberta_like(tk, 62)


def _roberta_like(tk, max_length: int):
    """A ``tokenizers.Tokenizer`` wrapped as CLAP's RoBERTa is: ``<s> ... </s>``, ids 0..3 =
    bos, pad, eos, unk, at most ``max_length`` tokens."""
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast

    tk.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tk,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        model_max_length=max_length,
    )


@lru_cache(maxsize=1)
def _corpus_bpe_json(vocab_size: int = 4000) -> str:
    """A byte-level BPE (RoBERTa's kind of tokenizer) trained in code on the shipped class
    descriptions (package data), serialised. Deterministic; about 0.3 s."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    texts = []
    for f in sorted((resources.files("mgcl") / "text" / "data").iterdir(), key=lambda f: f.name):
        if f.name.endswith(".json"):
            for sentences in json.loads(f.read_text(encoding="utf-8"))["classes"].values():
                texts += [str(t) for t in sentences]
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    tk.train_from_iterator(
        texts,
        trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=_TINY_SPECIALS,
            show_progress=False,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    return tk.to_str()


def corpus_bpe_tokenizer(max_length: int = 512):
    """A byte-level BPE ``PreTrainedTokenizerFast`` of 4,000 tokens trained on the shipped
    descriptions (no download): ``<s>``=0, ``<pad>``=1, ``</s>``=2, ``<unk>``=3 as CLAP's
    RoBERTa. On those sentences it gives 18 tokens on average and at most 33 with ``<s>``
    and ``</s>``, about what RoBERTa's 50,265-token BPE gives them; other text takes more."""
    from tokenizers import Tokenizer

    return _roberta_like(Tokenizer.from_str(_corpus_bpe_json()), max_length)


def _random_backbone(config, feature_extractor, tokenizer, seed: int, name: str, **kw) -> ClapBackbone:
    from transformers import ClapModel, ClapProcessor

    if "checkpoint" in kw:
        raise BackboneError(
            f"backbone '{name}' has random weights and takes no checkpoint "
            "(for a real checkpoint: --backbone clap --checkpoint ID_OR_DIR)"
        )
    torch.manual_seed(seed)
    model = ClapModel(config)
    processor = ClapProcessor(feature_extractor=feature_extractor, tokenizer=tokenizer)
    fusion = "fused" if config.audio_config.enable_fusion else "unfused"
    digest = stable_hash(config.to_dict(), feature_extractor.to_dict())
    identity = f"{name}:seed={seed}:{fusion}:{digest}:{PREPROCESSING_VERSION}"
    return ClapBackbone(checkpoint=name, model=model, processor=processor, name=name, identity=identity, **kw)


def tiny_random_clap(seed: int = 0, enable_fusion: bool = False, **kw) -> ClapBackbone:
    """Tiny CLAP with RANDOM weights (tests only): D=32, 64 frames per 10 s window.

    Same 48 kHz / 10 s windowing as the released models; the feature extractor has 16 mel
    bins and a 1920-sample hop (251 mel frames per window, within the tiny model's 256).
    ``kw`` goes to :class:`ClapBackbone` (device, batch_size).
    """
    from transformers import ClapConfig, ClapFeatureExtractor

    config = ClapConfig(
        audio_config=dict(
            num_mel_bins=16,
            spec_size=64,
            patch_size=2,
            patch_stride=2,
            window_size=4,
            depths=[2, 2],
            num_attention_heads=[2, 2],
            patch_embeds_hidden_size=16,
            hidden_size=32,
            enable_fusion=enable_fusion,
        ),
        text_config=dict(
            vocab_size=99,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=37,
            max_position_embeddings=64,
        ),
        projection_dim=32,
    )
    fe = ClapFeatureExtractor(
        feature_size=16, sampling_rate=48_000, max_length_s=10, hop_length=1920, fft_window_size=2048
    )
    return _random_backbone(config, fe, tiny_tokenizer(), seed, "clap-tiny-random", **kw)


def random_clap(seed: int = 0, **kw) -> ClapBackbone:
    """The released CLAP architecture (``ClapConfig()``: HTSAT-tiny audio tower, RoBERTa-base
    text tower, 153.5 M parameters) with RANDOM weights and ``laion/clap-htsat-unfused``'s
    published feature-extractor settings (64 mel bins, 50 Hz - 14 kHz, hop 480, 10 s windows,
    ``rand_trunc``).

    Same compute and memory as the real model, meaningless outputs: for speed and memory
    benchmarks and the real-size smoke test. Its tokenizer is :func:`corpus_bpe_tokenizer`
    (a byte-level BPE like RoBERTa's, but trained on mgcl's shipped descriptions, 4,000
    tokens), so text costs about what it costs with the real tokenizer.
    ``kw`` goes to :class:`ClapBackbone` (device, batch_size).
    """
    from transformers import ClapConfig, ClapFeatureExtractor

    fe = ClapFeatureExtractor(frequency_min=50, frequency_max=14000, truncation="rand_trunc")
    return _random_backbone(ClapConfig(), fe, corpus_bpe_tokenizer(), seed, "clap-random", **kw)
