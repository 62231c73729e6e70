"""Audio captions from a transformers audio-to-text model, cached by audio content.

The audio side of the generative enrichment (DESIGN §1): each support clip gets a
sentence ("a dog barks while cars pass by") whose text embedding ``g_i`` feeds the
caption-cache branch and the instance contrast of mgcl / mgcl_f.

Data flow::

    sources (files / (waveform, sr)) -> source_digest -> CaptionCache hit? -> caption
                                                      └ miss -> load_source (16 kHz mono)
                                                        -> Captioner.caption (batched)
                                                        -> CaptionCache.put

Captioners are loaded with transformers' own classes, chosen by ``config.model_type``:

- ``whisper``: ``WhisperForConditionalGeneration`` (Whisper fine-tuned for audio
  captioning, e.g. ``MU-NLPC/whisper-small-audio-captioning`` with the style prefix
  ``prompt="clotho > caption: "``). A prompt is forced after the tokenizer's prefix
  tokens (``<|startoftranscript|>...``) and is not part of the caption.
- ``qwen2_audio``: ``Qwen2AudioForConditionalGeneration`` with a chat turn
  (audio + ``prompt``, default "Describe the sound."); a prompt that already holds the
  ``<|AUDIO|>`` token is used as the raw text instead.
- any other ``AutoModelForSpeechSeq2Seq`` type (speech_to_text, moonshine, ...).

Only the first ``chunk_length`` seconds (30 s for released Whisper / Qwen2-Audio) of a
clip are heard: the feature extractors truncate. Decoding is greedy by default and
deterministic.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from mgcl.errors import AudioError, BackboneError, MgclError
from mgcl.util.hashing import stable_hash, weights_stamp
from mgcl.util.hub import OFFLINE_HELP, unreachable_reason
from mgcl.util.text import one_line

#: Bump when prompting / cleaning of captions changes: it is part of every identity.
CAPTION_VERSION = "cap1"

DEFAULT_QWEN_PROMPT = "Describe the sound."

#: The test-only random captioner's name on the command line.
TINY_RANDOM = "tiny-random"


# --------------------------------------------------------------------------------------
# protocol
# --------------------------------------------------------------------------------------


@runtime_checkable
class Captioner(Protocol):
    """Anything that turns waveforms into sentences.

    ``identity`` names the model and every setting that changes its output (it keys the
    cache); ``sample_rate`` is the rate ``caption`` expects; ``caption`` maps float32 mono
    waveforms to one cleaned caption each ("" when the model said nothing).
    """

    identity: str
    sample_rate: int

    def caption(self, waveforms: list[np.ndarray]) -> list[str]: ...


# --------------------------------------------------------------------------------------
# small pure steps
# --------------------------------------------------------------------------------------


def clean_caption(text: str, prompt: str | None = None) -> str:
    """Collapse whitespace; drop a leading echo of ``prompt`` (or of its text before the
    last ':', as Whisper captioners fine-tuned with "clotho > caption: " prefixes do)."""
    text = " ".join(str(text).split())
    p = " ".join((prompt or "").split())
    if p:
        if text.lower().startswith(p.lower()):
            text = text[len(p) :].strip()
        elif p.endswith(":") and text.lower().startswith(p[:-1].strip().lower() + ":"):
            text = text.split(":", 1)[1].strip()
    return text


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence transformers' per-call generation chatter (restored afterwards)."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


# --------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------


def _family(model_type: str) -> str:
    """'whisper', 'qwen2_audio' or 'seq2seq'; BackboneError for non audio-to-text types."""
    if model_type in ("whisper", "qwen2_audio"):
        return model_type
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES,
    )

    if model_type in MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES:
        return "seq2seq"
    raise BackboneError(
        f"model type '{model_type}' is not an audio-to-text model (supported: whisper, "
        "qwen2_audio, or any AutoModelForSpeechSeq2Seq type)"
    )


def _model_class(family: str):
    import transformers

    return {
        "whisper": transformers.WhisperForConditionalGeneration,
        "qwen2_audio": transformers.Qwen2AudioForConditionalGeneration,
        "seq2seq": transformers.AutoModelForSpeechSeq2Seq,
    }[family]


def _load(source: str):
    """``(model, processor)`` from a hub id or a local folder; one-line BackboneError."""
    path = os.path.expanduser(source)
    if not os.path.isdir(path) and not _looks_like_hub_id(source):
        raise BackboneError(
            f"cannot load captioner '{source}': no such folder (pass an existing local folder or "
            "a hub id such as MU-NLPC/whisper-small-audio-captioning; HF_HUB_OFFLINE=1 uses only "
            "the local Hugging Face cache)"
        )
    if os.path.isdir(path):
        source = path
    why = unreachable_reason(source)
    if why is not None:  # fail now, not after half a minute of retries
        raise BackboneError(f"cannot load captioner: {why}; {OFFLINE_HELP}")
    try:
        from transformers import AutoConfig, AutoProcessor

        config = AutoConfig.from_pretrained(source)
        family = _family(config.model_type)
        processor = AutoProcessor.from_pretrained(source)
        model = _model_class(family).from_pretrained(source, dtype="auto")
        if family != "qwen2_audio" and not (
            hasattr(processor, "feature_extractor") and hasattr(processor, "tokenizer")
        ):  # AutoProcessor gave a bare tokenizer or feature extractor: complete it
            fe, tok = _parts(processor, source)
            processor = SimpleNamespace(feature_extractor=fe, tokenizer=tok)
    except BackboneError as e:
        raise BackboneError(f"cannot load captioner '{source}': {e}") from None
    except Exception as e:
        raise BackboneError(
            f"cannot load captioner '{source}': {one_line(e)} (check the name, pass a local "
            "folder, or set HF_HUB_OFFLINE=1 to use the local Hugging Face cache)"
        ) from e
    return model, processor


def _looks_like_hub_id(source: str) -> bool:
    """'name' or 'org/name' (no further slashes, not a path starting with / . ~)."""
    parts = source.split("/")
    return 1 <= len(parts) <= 2 and all(parts) and not source.startswith((".", "~")) and "\\" not in source


def _parts(processor, source: str | None):
    """``(feature_extractor, tokenizer)`` of a processor (or of a bare extractor/tokenizer)."""
    fe = getattr(processor, "feature_extractor", None)
    tok = getattr(processor, "tokenizer", None)
    if fe is None and hasattr(processor, "sampling_rate"):
        fe = processor
    if tok is None and hasattr(processor, "batch_decode") and hasattr(processor, "convert_tokens_to_ids"):
        tok = processor
    try:
        if fe is None and source is not None:
            from transformers import AutoFeatureExtractor

            fe = AutoFeatureExtractor.from_pretrained(source)
        if tok is None and source is not None:
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(source)
    except Exception as e:
        raise BackboneError(f"cannot load captioner '{source}': {one_line(e)}") from e
    if fe is None or tok is None:
        missing = "feature extractor" if fe is None else "tokenizer"
        raise BackboneError(f"captioner '{source}': its processor has no {missing}")
    return fe, tok


# --------------------------------------------------------------------------------------
# the transformers captioner
# --------------------------------------------------------------------------------------


class TransformersCaptioner:
    """An audio-to-text model from transformers as a :class:`Captioner`.

    Parameters
    ----------
    model_id_or_path: hub id or local folder (``HF_HUB_OFFLINE=1`` for the local cache only).
    device:          torch device; default ``"cuda"`` when available, else ``"cpu"``.
    batch_size:      clips per ``generate`` call.
    max_new_tokens:  caption length limit in tokens.
    num_beams:       1 = greedy (default); more = beam search. Never sampling.
    prompt:          Whisper: text forced after the start tokens (a "style prefix" such as
                     "clotho > caption: "), not part of the caption. Qwen2-Audio: the user
                     instruction (default "Describe the sound."). Other models: forced
                     decoder prefix.
    model, processor: an already built model and processor (skip loading).
    identity:        override the cache identity (random factories use it).
    """

    def __init__(
        self,
        model_id_or_path: str,
        device: str | None = None,
        batch_size: int = 8,
        max_new_tokens: int = 40,
        num_beams: int = 1,
        prompt: str | None = None,
        *,
        model=None,
        processor=None,
        identity: str | None = None,
    ):
        for name, value in (("batch_size", batch_size), ("max_new_tokens", max_new_tokens), ("num_beams", num_beams)):
            if int(value) < 1:
                raise MgclError(f"{name} must be at least 1, got {value}")
        source = str(model_id_or_path)
        if os.path.isdir(os.path.expanduser(source)):
            source = os.path.expanduser(source)
        if model is None or processor is None:
            model, processor = _load(source)
        self.source = source
        self.family = _family(model.config.model_type)
        try:
            self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
            self.model = model.to(self.device).eval()
        except (RuntimeError, AssertionError, ValueError) as e:
            raise BackboneError(f"captioner '{source}': cannot use device '{device}' ({one_line(e)})") from e
        self.processor = processor
        self.feature_extractor, self.tokenizer = _parts(processor, None)
        self.sample_rate = int(self.feature_extractor.sampling_rate)
        self.batch_size = int(batch_size)
        self.max_new_tokens = int(max_new_tokens)
        self.num_beams = int(num_beams)
        self.prompt = prompt if prompt else None
        if self.family == "qwen2_audio":
            self.tokenizer.padding_side = "left"  # batched decoder-only generation
            self._chat_text = self._qwen_text(self.prompt or DEFAULT_QWEN_PROMPT)
        self._decoder_prefix = self._prefix_ids()
        self.identity = identity or self._default_identity()

    # -- construction helpers ---------------------------------------------------------

    def _prefix_ids(self) -> list[int] | None:
        """Forced decoder tokens for encoder-decoder models given a prompt, else None."""
        if self.prompt is None or self.family == "qwen2_audio":
            return None
        ids = list(self.tokenizer(self.prompt, add_special_tokens=False)["input_ids"])
        start = getattr(self.tokenizer, "prefix_tokens", None)  # Whisper: <|startoftranscript|>...
        if not start:
            cfg = self.model.generation_config
            sot = cfg.decoder_start_token_id
            if sot is None:
                sot = self.model.config.decoder_start_token_id
            if sot is None:
                raise BackboneError(f"captioner '{self.source}': no decoder start token to put the prompt after")
            start = [int(sot)]
        return [int(t) for t in start] + [int(t) for t in ids]

    def _qwen_text(self, prompt: str) -> str:
        audio_token = getattr(self.processor, "audio_token", "<|AUDIO|>")
        if audio_token in prompt:
            return prompt
        conversation = [
            {"role": "user", "content": [{"type": "audio", "audio_url": "clip.wav"}, {"type": "text", "text": prompt}]}
        ]
        if getattr(self.processor, "chat_template", None):
            return self.processor.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)
        return f"<|audio_bos|>{audio_token}<|audio_eos|>{prompt}"

    def _max_new(self, prefix_len: int) -> int:
        """``max_new_tokens``, clipped so that prefix + caption fit the decoder's positions."""
        limit = getattr(self.model.config, "max_target_positions", None)
        if self.family != "whisper" or not limit:
            return self.max_new_tokens
        return max(1, min(self.max_new_tokens, int(limit) - prefix_len))

    def _default_identity(self) -> str:
        digest = stable_hash(
            self.model.config.to_dict(),
            self.model.generation_config.to_dict(),
            self.feature_extractor.to_dict(),
            getattr(self.model.config, "_commit_hash", None) or "",
            weights_stamp(self.source),
            [type(self.tokenizer).__name__, len(self.tokenizer)],
            {"max_new_tokens": self.max_new_tokens, "num_beams": self.num_beams, "prompt": self.prompt},
        )
        return f"caption:{self.source}:{digest}:{CAPTION_VERSION}"

    def __repr__(self) -> str:
        return f"TransformersCaptioner(identity={self.identity!r}, device={str(self.device)!r})"

    # -- captioning -------------------------------------------------------------------

    @torch.no_grad()
    def caption(self, waveforms: list[np.ndarray]) -> list[str]:
        """Float32 mono waveforms at ``sample_rate`` -> one cleaned caption each."""
        waves = []
        for i, w in enumerate(waveforms):
            w = np.asarray(w, dtype=np.float32)
            if w.ndim != 1 or w.size == 0:
                raise AudioError(f"waveform {i}", f"expected non-empty mono audio, got shape {w.shape}")
            waves.append(w)
        out: list[str] = []
        with _quiet_transformers():
            for start in range(0, len(waves), self.batch_size):
                chunk = waves[start : start + self.batch_size]
                if self.family == "qwen2_audio":
                    texts = self._generate_qwen(chunk)
                else:
                    texts = self._generate_seq2seq(chunk)
                out += [clean_caption(t, self.prompt if self.family != "qwen2_audio" else None) for t in texts]
        return out

    def _to_device(self, inputs) -> dict:
        dtype = self.model.dtype
        moved = {}
        for k, v in inputs.items():
            if isinstance(v, torch.Tensor):
                v = v.to(self.device, dtype=dtype) if v.is_floating_point() else v.to(self.device)
            moved[k] = v
        return moved

    def _generate_seq2seq(self, chunk: list[np.ndarray]) -> list[str]:
        kw: dict[str, Any] = {}
        if self.family != "whisper":
            kw["padding"] = True
            kw["return_attention_mask"] = True
        inputs = self._to_device(
            self.feature_extractor(chunk, sampling_rate=self.sample_rate, return_tensors="pt", **kw)
        )
        gen: dict[str, Any] = {"num_beams": self.num_beams, "do_sample": False}
        prefix_len = 4  # Whisper's own start tokens: at most sot, language, task, notimestamps
        if self._decoder_prefix is not None:
            prefix = torch.tensor([self._decoder_prefix], dtype=torch.long, device=self.device)
            gen["decoder_input_ids"] = prefix.expand(len(chunk), -1)
            prefix_len = len(self._decoder_prefix)
        gen["max_new_tokens"] = self._max_new(prefix_len)
        seqs = self.model.generate(**inputs, **gen)
        if isinstance(seqs, dict) or hasattr(seqs, "sequences"):
            seqs = seqs["sequences"]
        if self._decoder_prefix is not None and seqs.shape[1] >= prefix_len:
            head = torch.tensor(self._decoder_prefix, device=seqs.device)
            if torch.equal(seqs[0, :prefix_len], head):  # this model echoes the forced prefix
                seqs = seqs[:, prefix_len:]
        return self.tokenizer.batch_decode(seqs, skip_special_tokens=True)

    def _generate_qwen(self, chunk: list[np.ndarray]) -> list[str]:
        inputs = self.processor(
            text=[self._chat_text] * len(chunk),
            audio=chunk,
            sampling_rate=self.sample_rate,
            return_tensors="pt",
            padding=True,
        )
        inputs = self._to_device(inputs)
        seqs = self.model.generate(
            **inputs, max_new_tokens=self.max_new_tokens, num_beams=self.num_beams, do_sample=False
        )
        seqs = seqs[:, inputs["input_ids"].shape[1] :]
        return self.tokenizer.batch_decode(seqs, skip_special_tokens=True)


# --------------------------------------------------------------------------------------
# captioners by name; caption files (what `mgcl caption --out` writes)
# --------------------------------------------------------------------------------------


def make_captioner(name: str, device=None, batch_size=8, max_new_tokens=40, num_beams=1, prompt=None):
    """'tiny-random' -> the random test captioner; anything else -> TransformersCaptioner."""
    kw = {
        "device": device,
        "batch_size": batch_size,
        "max_new_tokens": max_new_tokens,
        "num_beams": num_beams,
        "prompt": prompt,
    }
    if name == TINY_RANDOM:
        return tiny_random_captioner(**kw)
    return TransformersCaptioner(name, **kw)


def manifest_key(path: Path, manifest: Path) -> str:
    """The path as written in the manifest (relative to its folder, or absolute)."""
    path = Path(path)
    try:
        return path.relative_to(Path(manifest).parent).as_posix()
    except ValueError:
        return path.as_posix()


def render_captions(captions: dict[str, str], out: Path) -> bytes:
    """JSON object, or CSV with header path,caption when ``out`` ends in .csv."""
    if out.suffix.lower() == ".csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["path", "caption"])
        w.writerows(captions.items())
        return buf.getvalue().encode("utf-8")
    return (json.dumps(captions, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def read_caption_file(path: str | os.PathLike) -> dict[str, str]:
    """A captions file written by ``mgcl caption``: JSON ``{"path": "caption"}`` or a CSV
    with header ``path,caption``. One-line MgclError when missing or malformed."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise MgclError(f"{path}: captions file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MgclError(f"{path}: cannot read captions file ({one_line(exc)})") from None
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        if not reader.fieldnames or not {"path", "caption"} <= {h.strip() for h in reader.fieldnames}:
            raise MgclError(f"{path}: captions CSV needs a header with columns path,caption")
        return {(r.get("path") or "").strip(): r.get("caption") or "" for r in reader if (r.get("path") or "").strip()}
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise MgclError(f"{path}: not a JSON file ({one_line(exc)})") from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise MgclError(f'{path}: expected a JSON object {{"path": "caption", ...}}')
    return data


# --------------------------------------------------------------------------------------
# a random model (tests only: its captions mean nothing)
# --------------------------------------------------------------------------------------

#: Words the tiny random captioner emits (whole-word tokens), so its output reads as text.
_TINY_WORDS = (
    "a",
    "the",
    "of",
    "and",
    "with",
    "in",
    "while",
    "then",
    "dog",
    "barks",
    "bird",
    "chirps",
    "engine",
    "hums",
    "rain",
    "falls",
    "wind",
    "blows",
    "door",
    "slams",
    "water",
    "flows",
    "bell",
    "rings",
    "car",
    "passes",
    "people",
    "talk",
    "siren",
    "wails",
    "loud",
    "soft",
    "distant",
    "nearby",
    "high",
    "low",
    "pitched",
    "metal",
    "clanks",
    "footsteps",
    "music",
    "plays",
    "crowd",
    "cheers",
    "baby",
    "cries",
)
_TINY_CHARS = list("abcdefghijklmnopqrstuvwxyz0123456789.,'-!?:>")
_TINY_SPECIALS = [
    "<|endoftext|>",
    "<|startoftranscript|>",
    "<|en|>",
    "<|translate|>",
    "<|transcribe|>",
    "<|startofprev|>",
    "<|notimestamps|>",
]


def tiny_whisper_tokenizer():
    """A ``WhisperTokenizer`` built in code (no download): byte-level BPE without merges.

    Ids: space + 45 characters (what text, e.g. a prompt, encodes to), then 48 whole-word
    tokens (" dog", " barks", ...: reachable by decoding only), then Whisper's special
    tokens ``<|endoftext|>`` (eos/pad/unk), ``<|startoftranscript|>``, ``<|en|>``,
    ``<|translate|>``, ``<|transcribe|>``, ``<|startofprev|>``, ``<|notimestamps|>``.
    """
    from transformers import WhisperTokenizer

    space = "\u0120"  # byte-level BPE's symbol for ' '
    tokens = [space] + _TINY_CHARS + [space + w for w in _TINY_WORDS]
    vocab = {t: i for i, t in enumerate(tokens)}
    return WhisperTokenizer(
        vocab=vocab,
        merges=[],
        unk_token="<|endoftext|>",
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=_TINY_SPECIALS[1:],
    )


def tiny_random_captioner(seed: int = 0, **kw) -> TransformersCaptioner:
    """A tiny Whisper with RANDOM weights (tests only): meaningless, deterministic captions.

    Architecture: d_model 32, 2 encoder + 2 decoder layers, 2 heads, 101-token vocabulary
    (:func:`tiny_whisper_tokenizer`). Whisper's encoder needs exactly
    ``2 * max_source_positions`` mel frames (two convolutions, the second with stride 2),
    so the feature extractor hears 4 s chunks (``chunk_length=4``: 400 frames of 10 ms)
    and ``max_source_positions=200``; 80 mel bins at 16 kHz as released Whisper. Weights
    are drawn with ``init_std=0.5`` (the default 0.02 gives the same text for every clip);
    generation may only emit whole words or end-of-text (not first), with
    ``no_repeat_ngram_size=2``. ``kw`` goes to :class:`TransformersCaptioner` (device,
    batch_size, max_new_tokens, num_beams, prompt).
    """
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
    )

    tok = tiny_whisper_tokenizer()
    ids = dict(zip(_TINY_SPECIALS, tok.convert_tokens_to_ids(_TINY_SPECIALS)))
    eot, sot = ids["<|endoftext|>"], ids["<|startoftranscript|>"]
    first_word = 1 + len(_TINY_CHARS)
    config = WhisperConfig(
        vocab_size=len(tok),
        num_mel_bins=80,
        d_model=32,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_source_positions=200,
        max_target_positions=64,
        pad_token_id=eot,
        bos_token_id=eot,
        eos_token_id=eot,
        decoder_start_token_id=sot,
        init_std=0.5,
        suppress_tokens=[],
        begin_suppress_tokens=[],
    )
    fe = WhisperFeatureExtractor(feature_size=80, sampling_rate=16000, chunk_length=4)
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = WhisperForConditionalGeneration(config)
    finally:
        torch.random.set_rng_state(state)
    # A fresh GenerationConfig (not one derived from the model config): only those keep
    # custom keys such as no_timestamps_token_id through save_pretrained/from_pretrained.
    gc = GenerationConfig(
        decoder_start_token_id=sot,
        eos_token_id=eot,
        pad_token_id=eot,
        bos_token_id=eot,
        max_length=config.max_target_positions,
        no_repeat_ngram_size=2,
        suppress_tokens=list(range(first_word)) + [i for s, i in ids.items() if s != "<|endoftext|>"],
        begin_suppress_tokens=[eot],
        no_timestamps_token_id=ids["<|notimestamps|>"],
    )
    model.generation_config = gc
    processor = WhisperProcessor(feature_extractor=fe, tokenizer=tok)
    captioner = TransformersCaptioner(TINY_RANDOM, model=model, processor=processor, identity="pending", **kw)
    digest = stable_hash(
        config.to_dict(),
        gc.to_dict(),
        fe.to_dict(),
        {"max_new_tokens": captioner.max_new_tokens, "num_beams": captioner.num_beams, "prompt": captioner.prompt},
    )
    captioner.identity = f"caption:tiny-random-whisper:RANDOM-WEIGHTS:seed={seed}:{digest}:{CAPTION_VERSION}"
    return captioner
