"""Audio captions: the tiny random Whisper, the content-addressed cache, `mgcl caption`.

No network: every model is built from a config in code (random weights).
"""

from __future__ import annotations

import argparse
import csv
import json

import numpy as np
import pytest
import torch

from mgcl.audio.decode import load_audio
from mgcl.cli import main
from mgcl.cli.caption import register
from mgcl.errors import BackboneError, MgclError
from mgcl.store.captions import CaptionCache, caption_sources
from mgcl.text.captioners import _TINY_WORDS as TINY_WORDS
from mgcl.text.captioners import (
    Captioner,
    TransformersCaptioner,
    clean_caption,
    read_caption_file,
    tiny_random_captioner,
)
from tests.conftest import tone

SR = 16000
N_TOKENS = 12  # short captions keep the tests fast; length handling is tested on its own


def noise(seconds: float, sr: int = SR, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 0.3, int(seconds * sr)).astype(np.float32)


def clips() -> list[np.ndarray]:
    """Tones of several pitches and lengths, a noise burst, a short silence."""
    return [
        tone(220, 2.0, SR),
        tone(880, 1.0, SR, seed=1),
        tone(3000, 3.5, SR, seed=2),
        noise(1.5),
        np.zeros(4000, np.float32),
    ]


@pytest.fixture(scope="module")
def tiny():
    return tiny_random_captioner(seed=0, max_new_tokens=N_TOKENS)


class Counting:
    """Wraps a captioner and counts the clips it is asked to caption."""

    def __init__(self, inner, identity=None):
        self.inner = inner
        self.identity = identity or inner.identity
        self.sample_rate = inner.sample_rate
        self.calls = 0
        self.clips = 0

    def caption(self, waveforms):
        self.calls += 1
        self.clips += len(waveforms)
        return self.inner.caption(waveforms)


class Scripted:
    """A captioner whose answer is a function of the waveform; a batch holding a clip of
    ``poison_len`` samples raises, as a model failing on one input would."""

    identity = "scripted:v1"
    sample_rate = SR

    def __init__(self, answer, poison_len: int | None = None):
        self.answer = answer
        self.poison_len = poison_len
        self.batches: list[int] = []

    def caption(self, waveforms):
        self.batches.append(len(waveforms))
        if self.poison_len is not None and any(len(w) == self.poison_len for w in waveforms):
            raise RuntimeError("kernel failed\non this clip")
        return [self.answer(w) for w in waveforms]


# ------------------------------------------------------------------------- the tiny model


def test_tiny_captioner_is_deterministic_and_batch_independent(tiny):
    waves = clips()
    batch = tiny.caption(waves)
    assert len(batch) == len(waves)
    assert all(isinstance(c, str) and c for c in batch)
    assert batch == [tiny.caption([w])[0] for w in waves]  # same caption alone and in a batch
    assert (
        tiny_random_captioner(seed=0, max_new_tokens=N_TOKENS).caption(waves) == batch
    )  # rebuilt: same weights, same text
    assert len(set(batch)) >= 3  # the text depends on the audio
    words = set(" ".join(batch).split())
    assert words <= set(TINY_WORDS)  # only whole-word tokens: it reads as (random) text


def test_tiny_captioner_identity_marks_random_and_tracks_settings(tiny):
    assert isinstance(tiny, Captioner)
    assert "tiny-random" in tiny.identity and "RANDOM" in tiny.identity
    assert tiny.sample_rate == 16000
    other_seed = tiny_random_captioner(seed=1, max_new_tokens=N_TOKENS)
    assert other_seed.identity != tiny.identity
    assert other_seed.caption(clips()[:2]) != tiny.caption(clips()[:2])
    assert tiny_random_captioner(max_new_tokens=5).identity != tiny.identity
    assert tiny_random_captioner(prompt="clotho > caption: ", max_new_tokens=N_TOKENS).identity != tiny.identity
    assert (
        tiny_random_captioner(batch_size=2, max_new_tokens=N_TOKENS).identity == tiny.identity
    )  # batching changes nothing


def test_max_new_tokens_bounds_caption_length():
    short = tiny_random_captioner(max_new_tokens=3).caption(clips()[:3])
    assert all(1 <= len(c.split()) <= 3 for c in short)
    # more than the decoder's 64 positions: clipped instead of failing inside generate
    long = tiny_random_captioner(max_new_tokens=500).caption(clips()[:1])
    assert 12 < len(long[0].split()) <= 64


def test_prompt_is_forced_but_not_part_of_the_caption():
    cap = tiny_random_captioner(prompt="clotho > caption: ", max_new_tokens=N_TOKENS)
    assert cap._decoder_prefix[: len(cap.tokenizer.prefix_tokens)] == cap.tokenizer.prefix_tokens
    assert len(cap._decoder_prefix) > len(cap.tokenizer.prefix_tokens)
    out = cap.caption(clips()[:3])
    assert all(c and "clotho" not in c and ">" not in c for c in out)
    assert out != tiny_random_captioner(max_new_tokens=N_TOKENS).caption(
        clips()[:3]
    )  # the prefix conditions the decoder


def test_clean_caption():
    assert clean_caption("  a dog\n barks  ") == "a dog barks"
    assert clean_caption("clotho > caption: a dog barks", "clotho > caption: ") == "a dog barks"
    assert clean_caption("Clotho > caption:a dog", "clotho > caption:") == "a dog"
    assert clean_caption("a dog barks", "clotho > caption: ") == "a dog barks"
    assert clean_caption(" \n ") == ""


def test_saved_folder_loads_through_auto_classes(tiny, tmp_path):
    folder = tmp_path / "tiny-whisper"
    tiny.model.save_pretrained(folder)
    tiny.processor.save_pretrained(folder)
    loaded = TransformersCaptioner(str(folder), device="cpu", max_new_tokens=N_TOKENS)
    assert loaded.family == "whisper"
    assert str(folder) in loaded.identity
    assert loaded.caption(clips()[:3]) == tiny.caption(clips()[:3])


def test_load_failure_of_missing_folder_is_one_line(tmp_path):
    missing = tmp_path / "no-such-captioner"
    with pytest.raises(BackboneError) as e:
        TransformersCaptioner(str(missing))
    msg = str(e.value)
    assert "\n" not in msg
    assert str(missing) in msg and "no such folder" in msg and "HF_HUB_OFFLINE" in msg


def test_load_failure_of_a_non_audio_model_is_one_line(tmp_path):
    folder = tmp_path / "bert"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(BackboneError) as e:
        TransformersCaptioner(str(folder))
    assert "\n" not in str(e.value)
    assert "'bert' is not an audio-to-text model" in str(e.value)


def test_bad_settings_fail_early_in_one_line(tiny):
    with pytest.raises(MgclError, match="batch_size must be at least 1"):
        TransformersCaptioner("x", batch_size=0, model=tiny.model, processor=tiny.processor)
    with pytest.raises(BackboneError, match="cannot use device 'warp-drive'") as e:
        TransformersCaptioner("x", device="warp-drive", model=tiny.model, processor=tiny.processor)
    assert "\n" not in str(e.value)


def tiny_qwen2_audio(seed: int = 0, **kw) -> TransformersCaptioner:
    """A tiny Qwen2-Audio with random weights and a tokenizer built in code."""
    from transformers import (
        GenerationConfig,
        Qwen2AudioConfig,
        Qwen2AudioForConditionalGeneration,
        Qwen2AudioProcessor,
        Qwen2Tokenizer,
        WhisperFeatureExtractor,
    )

    from mgcl.text.captioners import _TINY_CHARS

    chars = ["\u0120", "\u010a"] + _TINY_CHARS + list("ABCDEFGHIJKLMNOPQRSTUVWXYZ|<_")
    vocab = {t: i for i, t in enumerate(chars + ["\u0120" + w for w in TINY_WORDS])}
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|audio_bos|>", "<|AUDIO|>", "<|audio_eos|>"]
    tok = Qwen2Tokenizer(vocab=vocab, merges=[], additional_special_tokens=specials[1:])
    ids = dict(zip(specials, tok.convert_tokens_to_ids(specials)))
    fe = WhisperFeatureExtractor(feature_size=16, sampling_rate=SR, chunk_length=4)
    config = Qwen2AudioConfig(
        audio_config={
            "num_mel_bins": 16,
            "encoder_layers": 1,
            "encoder_attention_heads": 2,
            "encoder_ffn_dim": 32,
            "d_model": 16,
            "max_source_positions": 200,
        },
        text_config={
            "model_type": "qwen2",
            "vocab_size": len(tok),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "max_position_embeddings": 512,
            "initializer_range": 0.5,
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
        },
        audio_token_index=ids["<|AUDIO|>"],
    )
    torch.manual_seed(seed)
    model = Qwen2AudioForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
        suppress_tokens=list(range(len(chars))),
        no_repeat_ngram_size=2,
    )
    processor = Qwen2AudioProcessor(feature_extractor=fe, tokenizer=tok)
    return TransformersCaptioner("tiny-qwen2-audio", model=model, processor=processor, **kw)


def test_qwen2_audio_path_chat_prompt_and_batching():
    cap = tiny_qwen2_audio(max_new_tokens=8)
    assert cap.family == "qwen2_audio"
    assert "Describe the sound." in cap._chat_text and "<|AUDIO|>" in cap._chat_text
    assert "<|im_start|>assistant" in cap._chat_text  # the processor's chat template was applied
    waves = clips()[:4]  # different lengths: left padding must not change the answers
    batch = cap.caption(waves)
    assert all(c and set(c.split()) <= set(TINY_WORDS) for c in batch)
    assert batch == [cap.caption([w])[0] for w in waves]
    raw = tiny_qwen2_audio(prompt="<|audio_bos|><|AUDIO|><|audio_eos|>Generate the caption in English:")
    assert raw._chat_text.startswith("<|audio_bos|>")  # a prompt holding the audio token is used as is


# ------------------------------------------------------------------------- cache + pipeline


def test_second_run_is_all_cache_hits_and_no_model_call(tiny, tmp_path, write_wav):
    paths = [write_wav(f"a/{i}.wav", w, SR) for i, w in enumerate(clips())]
    counting = Counting(tiny)
    cache = CaptionCache(tmp_path / "store", counting.identity)
    first = caption_sources(counting, paths, cache=cache, batch_size=2)
    assert first.computed == len(paths) and first.cache_hits == 0 and not first.errors
    assert counting.clips == len(paths) and counting.calls == 3  # batches of 2, 2, 1
    entries = list((tmp_path / "store" / "captions").rglob("*.json"))
    assert len([e for e in entries if e.name != "captioner.json"]) == len(paths)
    assert (cache.dir / "captioner.json").is_file()

    counting.calls = counting.clips = 0
    ticks = []
    second = caption_sources(
        counting, paths, cache=CaptionCache(tmp_path / "store", counting.identity), progress=ticks.append
    )
    assert second.cache_hits == len(paths) and second.computed == 0
    assert counting.calls == 0
    assert second.values == first.values
    assert sum(ticks) == len(paths)

    other = Counting(tiny, identity=tiny.identity + "-other")
    third = caption_sources(other, paths, cache=CaptionCache(tmp_path / "store", other.identity))
    assert third.cache_hits == 0 and third.computed == len(paths) and other.clips == len(paths)


def test_cache_key_is_audio_content_not_path(tiny, tmp_path, write_wav):
    a = write_wav("one.wav", tone(500, 1.0, SR), SR)
    b = write_wav("copy/two.wav", tone(500, 1.0, SR), SR)
    counting = Counting(tiny)
    cache = CaptionCache(tmp_path / "store", counting.identity)
    caption_sources(counting, [a], cache=cache)
    res = caption_sources(counting, [b, (tone(500, 1.0, SR), SR)], cache=cache)
    assert res.cache_hits == 1 and res.computed == 1  # the copy hits; the in-memory pair is keyed by samples
    assert counting.clips == 2


def test_corrupt_cache_entry_is_a_miss(tiny, tmp_path, write_wav):
    p = write_wav("x.wav", tone(700, 1.0, SR), SR)
    cache = CaptionCache(tmp_path / "store", tiny.identity)
    first = caption_sources(tiny, [p], cache=cache)
    entry = next(e for e in cache.dir.rglob("*.json") if e.name != "captioner.json")
    entry.write_text("{not json")
    again = caption_sources(tiny, [p], cache=cache)
    assert again.computed == 1 and again.cache_hits == 0 and again.values == first.values
    assert json.loads(entry.read_text())["caption"] == first.values[0]


def test_bad_file_is_listed_and_does_not_stop_the_rest(tiny, tmp_path, write_wav):
    good1 = write_wav("g1.wav", tone(300, 1.0, 22050), 22050)
    good2 = write_wav("g2.wav", noise(1.0, 8000), 8000)
    missing = tmp_path / "missing.wav"
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"this is not audio")
    res = caption_sources(tiny, [good1, missing, garbage, good2], batch_size=4)
    assert sorted(res.errors) == [1, 2]
    assert "missing.wav" in res.errors[1] and "not found" in res.errors[1]
    assert "garbage.wav" in res.errors[2]
    assert res.values[1] is None and res.values[2] is None
    assert res.ok == [0, 3] and res.computed == 2
    assert res.values[0] == tiny.caption([load_audio(good1, SR)])[0]


def test_a_clip_that_breaks_the_model_fails_alone():
    poison = 1234
    cap = Scripted(lambda w: f"len {len(w)}", poison_len=poison)
    sources = [
        (np.ones(1000, np.float32) * 0.1, SR),
        (np.ones(poison, np.float32) * 0.1, SR),
        (np.ones(2000, np.float32) * 0.1, SR),
    ]
    res = caption_sources(cap, sources, batch_size=8)
    assert list(res.errors) == [1]
    assert "captioner failed (kernel failed on this clip)" in res.errors[1]
    assert res.values[0] == "len 1000" and res.values[2] == "len 2000"
    assert cap.batches[0] == 3  # tried as one batch first, then clip by clip


def test_empty_caption_is_kept_reported_and_cached(tmp_path):
    cap = Scripted(lambda w: "" if w.max() == 0 else "a sound")
    sources = [(np.zeros(800, np.float32), SR), (np.ones(800, np.float32) * 0.2, SR)]
    cache = CaptionCache(tmp_path, cap.identity)
    res = caption_sources(cap, sources, cache=cache)
    assert res.values == ["", "a sound"] and [i for i, c in enumerate(res.values) if c == ""] == [0] and not res.errors
    again = caption_sources(cap, sources, cache=cache)
    assert again.cache_hits == 2 and again.values == ["", "a sound"]


# ------------------------------------------------------------------------- CLI


def write_manifest(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label"])
        w.writerows(rows)
    return path


@pytest.fixture
def manifest(tmp_path, write_wav):
    rows = []
    for i, w in enumerate(clips()[:4]):
        p = write_wav(f"set/audio/c{i}.wav", w, SR)
        rows.append((p.relative_to(tmp_path / "set").as_posix(), "a" if i % 2 else "b"))
    return write_manifest(tmp_path / "set" / "manifest.csv", rows)


def run_registered(argv):
    """What `mgcl` does: a parser with `register`ed sub-command, MgclError -> exit 2."""
    parser = argparse.ArgumentParser(prog="mgcl")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except MgclError as exc:
        print(f"mgcl caption: error: {exc}")
        return 2


def test_cli_writes_one_caption_per_row_then_hits_the_cache(manifest, tmp_path, capsys, monkeypatch):
    out = tmp_path / "caps.json"
    store = tmp_path / "store"
    argv = [
        "caption",
        "--manifest",
        str(manifest),
        "--captioner",
        "tiny-random",
        "--store",
        str(store),
        "--batch-size",
        "3",
        "--max-new-tokens",
        str(N_TOKENS),
        "--out",
        str(out),
    ]
    assert run_registered(argv) == 0
    text = capsys.readouterr().out
    assert "computed: 4, cache hits: 0, failed: 0" in text
    caps = json.loads(out.read_text())
    assert list(caps) == [f"audio/c{i}.wav" for i in range(4)]  # manifest order, paths as written
    assert all(isinstance(c, str) and c for c in caps.values())
    assert caps["audio/c0.wav"] == tiny_random_captioner(max_new_tokens=N_TOKENS).caption([clips()[0]])[0]

    calls = []
    original = TransformersCaptioner.caption
    monkeypatch.setattr(TransformersCaptioner, "caption", lambda self, w: calls.append(len(w)) or original(self, w))
    out2 = tmp_path / "caps.csv"
    assert run_registered(argv[:-1] + [str(out2)]) == 0
    assert "computed: 0, cache hits: 4, failed: 0" in capsys.readouterr().out
    assert calls == []
    with open(out2, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["path"], r["caption"]) for r in rows] == list(caps.items())
    assert read_caption_file(out2) == caps == read_caption_file(out)


def test_cli_bad_file_exit_1_others_written(manifest, tmp_path, capsys):
    (manifest.parent / "audio" / "broken.wav").write_bytes(b"RIFF garbage")
    with open(manifest, "a") as fh:
        fh.write("audio/broken.wav,a\naudio/missing.wav,b\n")
    out = tmp_path / "caps.json"
    rc = main(
        [
            "caption",
            "--manifest",
            str(manifest),
            "--captioner",
            "tiny-random",
            "--max-new-tokens",
            "4",
            "--store",
            str(tmp_path / "store"),
            "--out",
            str(out),
        ]
    )
    assert rc == 1
    cap = capsys.readouterr()
    assert "failed: 2" in cap.out
    assert "FAILED" in cap.err and "broken.wav" in cap.err and "missing.wav" in cap.err
    assert list(json.loads(out.read_text())) == [f"audio/c{i}.wav" for i in range(4)]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"--captioner": "MISSING_DIR"}, "no such folder"),
        ({"--manifest": "MISSING_CSV"}, "manifest not found"),
        ({"--batch-size": "0"}, "--batch-size must be at least 1"),
        ({"--out": "DIR"}, "is a folder"),
    ],
)
def test_cli_unusable_input_exit_2_one_line(manifest, tmp_path, capsys, change, message):
    args = {
        "--manifest": str(manifest),
        "--captioner": "tiny-random",
        "--store": str(tmp_path / "s"),
        "--out": str(tmp_path / "c.json"),
    }
    subs = {"MISSING_DIR": str(tmp_path / "nope"), "MISSING_CSV": str(tmp_path / "nope.csv"), "DIR": str(tmp_path)}
    args.update({k: subs.get(v, v) for k, v in change.items()})
    rc = main(["caption"] + [x for kv in args.items() for x in kv])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mgcl caption: error:") and message in err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "c.json").exists()


def test_cli_help_teaches(capsys):
    with pytest.raises(SystemExit) as e:
        main(["caption", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "usage: mgcl caption" in out
    for needle in (
        "--captioner",
        "tiny-random",
        "RANDOM",
        "HF_HUB_OFFLINE",
        "clotho > caption",
        "Qwen2-Audio",
        ".csv",
        "cached",
    ):
        assert needle in out


def test_mgcl_command_has_caption(manifest, tmp_path):
    from mgcl import cli

    if "caption" not in cli.build_parser()._subparsers._group_actions[0].choices:
        pytest.skip("`mgcl caption` not wired into mgcl.cli yet (register(sub) missing)")
    out = tmp_path / "c.json"
    assert (
        cli.main(
            [
                "caption",
                "--manifest",
                str(manifest),
                "--captioner",
                "tiny-random",
                "--max-new-tokens",
                "4",
                "--store",
                str(tmp_path / "s"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert len(json.loads(out.read_text())) == 4
    assert (
        cli.main(["caption", "--manifest", str(manifest), "--captioner", str(tmp_path / "nope"), "--out", str(out)])
        == 2
    )
