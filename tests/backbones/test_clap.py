"""ClapBackbone on the tiny random CLAP: shapes, windowing, masks, determinism, compat.

No network, no audio files: waveforms are synthesised with numpy.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")

from mgcl.backbones import Backbone, get_backbone  # noqa: E402
from mgcl.backbones.clap import ClapBackbone, tiny_random_clap  # noqa: E402
from mgcl.errors import AudioError, BackboneError  # noqa: E402
from mgcl.types import l2_normalize  # noqa: E402

SR = 48_000
W = 10.0  # max_length_s of the tiny feature extractor (same as the released models)


# ---------------------------------------------------------------- helpers (test-only)


def tone(seconds: float, freq: float = 440.0, seed: int = 0) -> np.ndarray:
    """A sine plus a little noise, float32 mono at 48 kHz."""
    t = np.arange(int(round(seconds * SR))) / SR
    rng = np.random.default_rng(seed)
    x = 0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(t.size)
    return x.astype(np.float32)


def noise(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.1 * rng.standard_normal(int(round(seconds * SR)))).astype(np.float32)


def frames_per_window(bb: ClapBackbone) -> int:
    """Time frames of one window, from the HTSAT geometry (not from the code under test).

    Swin grid side = spec_size / patch_stride, halved by each of len(depths)-1 patch
    mergings; the spectrogram is folded freq_ratio = spec_size/num_mel_bins times in time.
    """
    a = bb.model.config.audio_config
    stride = a.patch_stride[0] if isinstance(a.patch_stride, (list, tuple)) else a.patch_stride
    side = a.spec_size // stride // 2 ** (len(a.depths) - 1)
    return side * (a.spec_size // a.num_mel_bins)


def expected_valid(seconds: float, tw: int) -> int:
    """Frames starting in real audio: full windows give tw, the tail ceil(rest/W*tw)."""
    full, rest = divmod(seconds, W)
    return int(full) * tw + (math.ceil(rest / W * tw) if rest > 1e-9 else 0)


@pytest.fixture(scope="module")
def bb() -> ClapBackbone:
    return tiny_random_clap(seed=0, device="cpu", batch_size=4)


@pytest.fixture(scope="module")
def bb_fused() -> ClapBackbone:
    return tiny_random_clap(seed=0, enable_fusion=True, device="cpu", batch_size=4)


@pytest.fixture(scope="module")
def mixed(bb):
    """1 s, 10 s and 25 s clips encoded in one batch."""
    waves = [tone(1.0, 300), noise(10.0, 1), tone(25.0, 900, seed=2)]
    return waves, bb.encode_audio(waves)


# ---------------------------------------------------------------- tests


def test_protocol_and_registry():
    bb = get_backbone("clap-tiny-random", device="cpu")
    assert isinstance(bb, Backbone)
    assert bb.name == "clap-tiny-random" and "random" in bb.identity
    assert (bb.sample_rate, bb.dim, bb.has_text) == (48_000, 32, True)
    other = {
        tiny_random_clap(seed=1).identity,
        tiny_random_clap(seed=0, enable_fusion=True).identity,
    }
    assert bb.identity not in other and len(other) == 2


def test_shapes_and_norms(bb, mixed):
    _, feats = mixed
    tw = frames_per_window(bb)
    assert feats.clip.shape == (3, 32)
    assert feats.frames.shape == (3, expected_valid(25.0, tw), 32)  # the 25 s clip's frames
    assert feats.frame_mask.dtype == torch.bool
    assert torch.allclose(feats.clip.norm(dim=1), torch.ones(3), atol=1e-5)
    real = feats.frames[feats.frame_mask]
    assert torch.allclose(real.norm(dim=-1), torch.ones(real.shape[0]), atol=1e-5)
    assert torch.all(feats.frames[~feats.frame_mask] == 0)

    text = bb.encode_text(["This is a sound of a dog.", "rain", "a very " * 40 + "long text"])
    assert text.shape == (3, 32)
    assert torch.allclose(text.norm(dim=1), torch.ones(3), atol=1e-5)
    assert not torch.allclose(text[0], text[1])


def test_window_mask_counts(bb, mixed):
    _, feats = mixed
    tw = frames_per_window(bb)
    assert tw == 64
    counts = feats.frame_mask.sum(dim=1).tolist()
    assert counts == [expected_valid(s, tw) for s in (1.0, 10.0, 25.0)] == [7, 64, 160]
    # real frames are a prefix of each row
    for row, n in zip(feats.frame_mask, counts):
        assert row[:n].all() and not row[n:].any()


def test_long_clip_is_concatenation_of_windows(bb):
    a, b = tone(10.0, 500, seed=3), noise(10.0, 4)
    joint = bb.encode_audio([np.concatenate([a, b])])
    apart = bb.encode_audio([a, b])
    tw = frames_per_window(bb)
    assert torch.allclose(joint.frames[0, :tw], apart.frames[0, :tw], atol=1e-5)
    assert torch.allclose(joint.frames[0, tw : 2 * tw], apart.frames[1, :tw], atol=1e-5)
    expected = l2_normalize(apart.clip[0] + apart.clip[1])
    assert torch.allclose(joint.clip[0], expected, atol=1e-5)


def hf_clip(bb, wave: np.ndarray) -> torch.Tensor:
    """The standard Hugging Face recipe for one clip of at most 10 s -> (D,) normalised."""
    inputs = bb.feature_extractor(
        wave, truncation="rand_trunc", padding="repeatpad", sampling_rate=SR, return_tensors="pt"
    )
    with torch.no_grad():
        out = bb.model.get_audio_features(input_features=inputs["input_features"].float())
    ref = out if isinstance(out, torch.Tensor) else out.pooler_output
    return l2_normalize(ref[0])


@pytest.mark.parametrize("seconds", [4.0, W])
def test_clip_matches_plain_transformers_pipeline(bb, seconds):
    """A clip <= 10 s gets exactly the embedding of the standard HF recipe."""
    wave = tone(seconds, 700, seed=5)
    assert torch.allclose(bb.encode_audio([wave]).clip[0], hf_clip(bb, wave), atol=1e-5)


def test_frame_step_and_frames_per_window_come_from_the_config(bb):
    tw = frames_per_window(bb)
    assert bb.frames_per_window == tw == 64
    assert bb.frame_step == pytest.approx(W / tw)
    feats = bb.encode_audio([tone(3.0)])
    assert feats.frame_step == pytest.approx(W / tw)


N = int(W * SR)  # samples of one window


@pytest.mark.parametrize("n_samples", [N, N + 1, 2 * N - 1, int(25 * SR)])
def test_a_long_clip_ends_with_its_final_window_never_a_looped_snippet(bb, monkeypatch, n_samples):
    """Clips of W, W + 1 sample, 2W - 1 and 25 s: every window the tower sees is real audio
    of full length (no repeat-padded tail), the last one the clip's final W seconds; its
    frames that cover new audio (and only those) are kept; the clip embedding weighs each
    window by the samples it brings."""
    wave = noise(n_samples / SR, seed=11)
    seen = []
    encode = bb._encode_windows
    monkeypatch.setattr(bb, "_encode_windows", lambda w: (seen.extend(len(x) for x in w), encode(w))[1])
    feats = bb.encode_audio([wave])
    monkeypatch.undo()
    full, rest = divmod(n_samples, N)
    tw = frames_per_window(bb)
    assert seen == [N] * (full + (rest > 0))  # never a window shorter than W
    n_last = math.ceil(rest * tw / N)
    assert int(feats.frame_mask.sum()) == full * tw + n_last
    alone = bb.encode_audio([wave[k * N : (k + 1) * N] for k in range(full)] + ([wave[-N:]] if rest else []))
    assert torch.allclose(feats.frames[0, : full * tw], alone.frames[:full].reshape(-1, 32), atol=1e-5)
    weights = [N] * full
    if rest:  # the final window's last n_last frames: those over the new samples
        assert torch.allclose(feats.frames[0, full * tw :], alone.frames[full, tw - n_last :], atol=1e-5)
        weights.append(rest)
    expected = l2_normalize((alone.clip * torch.tensor(weights, dtype=torch.float32)[:, None]).sum(0))
    assert torch.allclose(feats.clip[0], expected, atol=1e-5)
    spans = bb.frame_spans(n_samples)
    assert len(spans) == full * tw + n_last
    assert np.all(np.diff(spans[:, 0]) > 0) and spans[-1, 1] == pytest.approx(n_samples / SR)
    if rest:  # the kept frames of the final window end on the clip's last sample
        assert spans[full * tw, 0] == pytest.approx((n_samples - N) / SR + (tw - n_last) * W / tw)


def test_clips_up_to_one_window_are_unchanged_by_the_final_window_rule(bb):
    """A 10.05 s clip used to get a 54 ms window looped to 10 s; clips <= W keep their
    single repeat-padded window (and so the embedding of the HF recipe)."""
    short = tone(0.5, 500, seed=12)
    feats = bb.encode_audio([short])
    assert torch.allclose(feats.clip[0], hf_clip(bb, short), atol=1e-5)
    assert int(feats.frame_mask.sum()) == math.ceil(0.5 / W * frames_per_window(bb))


def test_determinism_and_batch_independence(bb):
    a, b, c = tone(3.0, 250, seed=6), noise(12.0, 7), tone(0.5, 1000, seed=8)
    first, second = bb.encode_audio([a]), bb.encode_audio([a])
    assert torch.equal(first.clip, second.clip) and torch.equal(first.frames, second.frames)
    batch = bb.encode_audio([b, a, c])
    t = first.frames.shape[1]
    assert torch.allclose(batch.clip[1], first.clip[0], atol=1e-5)
    assert torch.allclose(batch.frames[1, :t], first.frames[0], atol=1e-5)
    assert torch.equal(batch.frame_mask[1, :t], first.frame_mask[0])


def test_fused_config(bb_fused):
    assert bb_fused.model.config.audio_config.enable_fusion and bb_fused.truncation == "fusion"
    waves = [tone(1.0, 300), noise(10.0, 1), tone(25.0, 900, seed=2)]
    rng_before = np.random.get_state()[1].copy()
    feats = bb_fused.encode_audio(waves)
    assert np.array_equal(np.random.get_state()[1], rng_before)  # global RNG untouched
    tw = frames_per_window(bb_fused)
    assert feats.frames.shape == (3, expected_valid(25.0, tw), 32)
    assert feats.frame_mask.sum(dim=1).tolist() == [expected_valid(s, tw) for s in (1, 10, 25)]
    assert torch.allclose(feats.clip.norm(dim=1), torch.ones(3), atol=1e-5)
    # the extractor's random is_longer must not make fused outputs random or batch-dependent
    for _ in range(3):
        again = bb_fused.encode_audio([waves[0]])
        assert torch.allclose(again.clip[0], feats.clip[0], atol=1e-5)
    text = bb_fused.encode_text(["a dog", "a cat"])
    assert text.shape == (2, 32)


def test_transformers_4x_and_5x_return_types(monkeypatch):
    bb = tiny_random_clap(seed=3)
    waves = [tone(2.0, 400, seed=9), noise(11.0, 10)]
    texts = ["a bell rings", "wind"]
    ref_audio, ref_text = bb.encode_audio(waves), bb.encode_text(texts)

    model = bb.model
    orig_audio, orig_text = model.get_audio_features, model.get_text_features
    out = orig_audio(input_features=torch.zeros(1, 1, 251, 16))
    assert not isinstance(out, torch.Tensor)  # installed 5.x: an output object

    # 4.x: a bare projected tensor
    monkeypatch.setattr(model, "get_audio_features", lambda **kw: orig_audio(**kw).pooler_output)
    monkeypatch.setattr(model, "get_text_features", lambda **kw: orig_text(**kw).pooler_output)
    old = bb.encode_audio(waves)
    assert torch.allclose(old.clip, ref_audio.clip, atol=1e-6)
    assert torch.allclose(old.frames, ref_audio.frames, atol=1e-6)
    assert torch.allclose(bb.encode_text(texts), ref_text, atol=1e-6)

    # an output object whose pooler_output is the un-projected tower pooler
    monkeypatch.setattr(model, "get_audio_features", lambda **kw: model.audio_model(**kw))
    monkeypatch.setattr(model, "get_text_features", lambda **kw: model.text_model(**kw))
    raw = bb.encode_audio(waves)
    assert torch.allclose(raw.clip, ref_audio.clip, atol=1e-5)
    assert torch.allclose(bb.encode_text(texts), ref_text, atol=1e-5)


@pytest.mark.parametrize("make", ["missing", "empty"])
def test_loading_failure_is_one_line(tmp_path, make):
    folder = tmp_path / "no-such-clap" if make == "missing" else tmp_path  # empty folder
    with pytest.raises(BackboneError) as info:
        ClapBackbone(str(folder), device="cpu")
    message = str(info.value)
    assert "\n" not in message and str(folder) in message and "HF_HUB_OFFLINE" in message


def test_bad_waveforms(bb):
    with pytest.raises(AudioError):
        bb.encode_audio([np.zeros(0, dtype=np.float32)])
    with pytest.raises(AudioError):
        bb.encode_audio([np.zeros((2, SR), dtype=np.float32)])
    empty = bb.encode_audio([])
    assert len(empty) == 0 and empty.dim == 32


def test_text_embeddings_carry_no_autograd_graph(bb):
    """Text features leave the backbone as plain tensors, even when the caller records
    gradients (a fine-tuned method trains on them: a graph here made every training step
    backpropagate into the text tower, and fail on the second step)."""
    with torch.enable_grad():
        text = bb.encode_text(["a dog barks", "rain on a roof"])
    assert text.grad_fn is None and not text.requires_grad


def test_random_backbones_refuse_a_checkpoint_in_one_line():
    with pytest.raises(BackboneError) as info:
        get_backbone("clap-tiny-random", checkpoint="/some/dir")
    assert "\n" not in str(info.value) and "--backbone clap --checkpoint" in str(info.value)


def test_an_unreachable_hub_fails_at_once_in_one_line(monkeypatch):
    """Offline, a hub id that is not in the local cache fails before transformers' retries,
    naming the way out (--checkpoint DIR, docs/offline.md)."""
    import time

    import mgcl.util.hub as hub

    monkeypatch.setattr(hub, "in_local_cache", lambda repo, filename="config.json": False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    with pytest.raises(BackboneError) as info:
        ClapBackbone("some-org/some-clap", device="cpu")
    message = str(info.value)
    assert time.perf_counter() - t0 < 2.0
    assert "\n" not in message and "HF_HUB_OFFLINE" in message and "--checkpoint DIR" in message
    assert "docs/offline.md" in message
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=3.0: False)
    with pytest.raises(BackboneError, match="unreachable"):
        ClapBackbone("some-org/some-clap", device="cpu")
    assert hub.unreachable_reason("/a/local/folder") is None  # a path is never a hub id
