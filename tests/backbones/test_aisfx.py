"""The offline aisfx backbone: front end, network, frames and mask, real-audio checks."""

import numpy as np
import pytest
import torch

from tests.conftest import aisfx_or_skip, shared_data, tone

aisfx_or_skip()

from mgcl.audio.decode import load_audio  # noqa: E402
from mgcl.backbones import aisfx as A  # noqa: E402
from mgcl.backbones import get_backbone  # noqa: E402
from mgcl.data.manifest import read_manifest  # noqa: E402


@pytest.fixture(scope="module")
def backbone():
    return get_backbone("aisfx")


def test_mel_filterbank_matches_librosa():
    from mgcl.backbones.dsp import mel_filterbank

    librosa = pytest.importorskip("librosa")
    ref = librosa.filters.mel(sr=44100, n_fft=2048, n_mels=96, fmin=0, fmax=22050, htk=True, norm=1.0)
    np.testing.assert_allclose(mel_filterbank(A.SAMPLE_RATE, A.N_FFT, A.N_MELS), ref, atol=1e-6)


def test_log_mel_matches_librosa_front_end():
    librosa = pytest.importorskip("librosa")
    x = tone(880, 1.5, 44100)
    ref = librosa.feature.melspectrogram(
        y=x / np.abs(x).max(),
        sr=44100,
        n_mels=96,
        norm=1.0,
        fmin=0,
        fmax=22050,
        htk=True,
        power=2.0,
        hop_length=1024,
        win_length=2048,
        pad_mode="constant",
    )
    ref = np.log10(ref * 10000.0 + 1).T / A.LOG_MAX
    ours = A.log_mel(torch.from_numpy(x)).numpy()
    assert ours.shape == ref.shape == (1 + len(x) // 1024, 96)
    np.testing.assert_allclose(ours, ref, atol=2e-4)


def test_blocks_match_package_blocking():
    from aisfx import preprocessing as pp

    for t in (30, 100, 173, 260):
        spec = np.random.default_rng(t).random((t, 96)).astype(np.float32)
        ref = pp.blocking(spec, 100, pp.compute_hopSize(100, 0.5, np.zeros((max(t, 51), 1))), False)
        ours = A.to_blocks(torch.from_numpy(spec)).numpy()
        assert ours.shape == ref.shape
        np.testing.assert_allclose(ours, ref, atol=0)


def test_checkpoint_loads_weights_only(monkeypatch):
    calls = []
    real = torch.load

    def spy(*a, **kw):
        calls.append(kw.get("weights_only"))
        return real(*a, **kw)

    monkeypatch.setattr(torch, "load", spy)
    state = A.load_checkpoint(A.checkpoint_path())
    assert calls == [True]
    assert state["conv_block4.conv2.weight"].shape == (512, 512, 3, 3)


@pytest.mark.parametrize("seconds", [1.0, 10.0, 25.0])
def test_frames_and_mask_for_short_and_long_clips(backbone, seconds):
    x = tone(440, seconds, 44100)
    out = backbone.encode_audio([x, tone(220, 4.0, 44100)])
    n_spec = 1 + len(x) // 1024
    nb = max(1, int(np.ceil((n_spec - 100) / 50)) + 1)
    # every block but the last keeps 6 steps, the last keeps 12; steps start every 8 frames
    starts = [b * 50 + 8 * j for b in range(nb - 1) for j in range(6)] + [(nb - 1) * 50 + 8 * j for j in range(12)]
    expect_valid = sum(s < n_spec for s in starts)
    assert int(out.frame_mask[0].sum()) == expect_valid
    assert out.frames.shape[1] == max(expect_valid, int(out.frame_mask[1].sum()))
    assert abs(expect_valid / seconds - 5.4) < 1.5 or seconds < 2  # ~5 frames per second
    norms = out.frames[0][out.frame_mask[0]].norm(dim=1)
    torch.testing.assert_close(norms, torch.ones_like(norms))
    assert torch.all(out.frames[0][~out.frame_mask[0]] == 0)
    torch.testing.assert_close(out.clip.norm(dim=1), torch.ones(2))


def test_clip_does_not_depend_on_batch(backbone):
    a, b = tone(500, 3.0, 44100), tone(3000, 7.0, 44100, seed=3)
    alone = backbone.encode_audio([a])
    both = backbone.encode_audio([b, a])
    torch.testing.assert_close(alone.clip[0], both.clip[1], atol=1e-5, rtol=0)


def test_blocks_per_forward_change_no_bit(backbone):
    """CPU_BATCH blocks per forward on a CPU (speed), and the features are the same bits as
    with all the blocks in one forward."""
    waves = [tone(500, 4.0, 44100), tone(3000, 6.5, 44100, seed=3)]  # 3 + 5 blocks
    assert backbone.device.type != "cpu" or backbone.batch_size == A.CPU_BATCH
    small = backbone.encode_audio(waves)
    one = A.AisfxBackbone(device=str(backbone.device), batch_size=64)
    whole = one.encode_audio(waves)
    assert torch.equal(small.clip, whole.clip) and torch.equal(small.frames, whole.frames)


@pytest.fixture(scope="module")
def us8k_clips():
    rows = read_manifest(shared_data("urbansound8k-3folds"))
    by_class = {}
    for r in rows:
        if r.fold == "1":
            by_class.setdefault(r.label, []).append(r.path)
    return {c: ps[:4] for c, ps in sorted(by_class.items())[:5]}


def test_equals_the_packages_own_network_on_real_clips(backbone, us8k_clips):
    """Our front end + network against aisfx's EmbeddingNet on the package's own blocks."""
    librosa = pytest.importorskip("librosa")
    from aisfx import preprocessing as pp
    from aisfx.models.cnn2d import CrossNet, EmbeddingNet

    state, ds = torch.load(str(A.checkpoint_path()), map_location="cpu", weights_only=False)  # test oracle only
    net = CrossNet(EmbeddingNet("max", 3, 1, 64), ds, "cpu")
    net.load_state_dict(state)
    net.eval()
    paths = [p for ps in us8k_clips.values() for p in ps[:1]]
    for path in paths:
        y, _ = librosa.load(str(path), sr=44100)  # librosa's decoder and resampler (soxr_hq)
        y = y / np.abs(y).max()
        mel = librosa.feature.melspectrogram(
            y=y,
            sr=44100,
            n_mels=96,
            norm=1.0,
            fmin=0,
            fmax=22050,
            htk=True,
            power=2.0,
            hop_length=1024,
            win_length=2048,
            pad_mode="constant",
        )
        spec = pp.spectrogram_normalize(np.log10(mel * 10000.0 + 1).T)
        blocks = pp.blocking(spec, 100, pp.compute_hopSize(100, 0.5, spec), False)
        with torch.no_grad():
            ref_blocks = net.get_embedding(torch.Tensor(blocks))
        ref = torch.nn.functional.normalize(ref_blocks.mean(0), dim=0)
        ours = backbone.encode_audio([load_audio(path, 44100)])
        torch.testing.assert_close(ours.clip[0], ref, atol=1e-4, rtol=0)
        # block embeddings too: max over the frames of each block
        feats = backbone.block_features(A.to_blocks(A.log_mel(torch.from_numpy(load_audio(path, 44100)))))
        torch.testing.assert_close(feats.amax(dim=2), ref_blocks, atol=1e-3, rtol=1e-4)


def test_same_class_closer_than_different_class(backbone, us8k_clips):
    paths = [p for ps in us8k_clips.values() for p in ps]
    labels = np.repeat(np.arange(len(us8k_clips)), [len(ps) for ps in us8k_clips.values()])
    emb = backbone.encode_audio([load_audio(p, 44100) for p in paths]).clip
    sim = (emb @ emb.T).numpy()
    same = labels[:, None] == labels[None, :]
    off = ~np.eye(len(labels), dtype=bool)
    assert sim[same & off].mean() > sim[~same].mean() + 0.02
