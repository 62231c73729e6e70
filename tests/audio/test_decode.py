import numpy as np
import pytest

from mgcl.audio.decode import decode_audio_bytes, load_audio, load_source, resample, to_mono
from mgcl.errors import AudioError
from tests.conftest import file_uri, tone


@pytest.mark.parametrize("fmt,ext", [("WAV", "wav"), ("FLAC", "flac"), ("OGG", "ogg"), ("MP3", "mp3")])
def test_formats_decode_to_float32_mono_at_target_rate(write_wav, fmt, ext):
    x = tone(440, 1.0, 22050)
    p = write_wav(f"a.{ext}", x, 22050, format=fmt)
    y = load_audio(p, 16000)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) - 16000) <= 2000  # mp3 adds encoder delay/padding
    # the tone survives: the spectrum peaks at 440 Hz
    spec = np.abs(np.fft.rfft(y[:16000] if len(y) >= 16000 else y))
    peak_hz = np.argmax(spec) * 16000 / (2 * (len(spec) - 1))
    assert abs(peak_hz - 440) < 5


def test_stereo_is_downmixed(write_wav):
    left = tone(300, 0.5, 16000)
    stereo = np.stack([left, -left], axis=1)  # cancels when averaged
    y = load_audio(write_wav("s.wav", stereo, 16000), 16000)
    assert np.abs(y).max() < 1e-3
    assert to_mono(np.ones((5, 2))).shape == (5,)


def test_resample_preserves_duration_and_pitch():
    x = tone(1000, 2.0, 44100)
    y = resample(x, 44100, 48000)
    assert len(y) == 96000
    spec = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spec) * 48000 / (2 * (len(spec) - 1)) - 1000) < 2


def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match="file not found") as e:
        load_audio(tmp_path / "nope.wav", 16000)
    assert "nope.wav" in str(e.value) and "\n" not in str(e.value)


def test_not_audio(tmp_path):
    p = tmp_path / "fake.wav"
    p.write_text("this is not audio at all" * 10)
    with pytest.raises(AudioError, match="undecodable"):
        load_audio(p, 16000)


def test_empty_file(tmp_path):
    p = tmp_path / "empty.wav"
    p.write_bytes(b"")
    with pytest.raises(AudioError, match="empty file"):
        load_audio(p, 16000)


def test_zero_length_audio(write_wav):
    p = write_wav("zero.wav", np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(AudioError, match="zero-length"):
        load_audio(p, 16000)


def test_nan_and_inf_samples(write_wav):
    x = tone(440, 0.2, 16000)
    x[100] = np.nan
    p = write_wav("nan.wav", x, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN or infinite"):
        load_audio(p, 16000)
    x[100] = np.inf
    p = write_wav("inf.wav", x, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN or infinite"):
        load_audio(p, 16000)


def test_unsupported_extension(tmp_path):
    p = tmp_path / "clip.xyz"
    p.write_bytes(b"123")
    with pytest.raises(AudioError, match="unsupported format"):
        load_audio(p, 16000)


def test_a_uri_or_bytes_decode_to_the_file_samples_and_fail_with_its_reasons(write_wav, tmp_path):
    """load_source of a file:// URI (pyarrow.fs, decoded from memory) and decode_audio_bytes
    give the local file's samples bit for bit, and its one-line reasons with the URI."""
    pytest.importorskip("pyarrow.fs")
    x = tone(440, 0.5, 22050)
    good = [write_wav("a.wav", x, 22050), write_wav("b c.flac", x, 22050, format="FLAC")]
    (tmp_path / "fake.wav").write_text("this is not audio at all" * 10)
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "clip.xyz").write_bytes(b"123")
    bad = [tmp_path / n for n in ("fake.wav", "empty.wav", "clip.xyz", "nope.wav")]
    bad.append(write_wav("nan.wav", np.full(100, np.nan, dtype=np.float32), 16000, subtype="FLOAT"))
    for p in good:
        want = load_audio(p, 16000)
        assert np.array_equal(load_source(file_uri(p), 16000), want)
        assert np.array_equal(decode_audio_bytes(p.read_bytes(), 16000), want)
    for p in [*bad, tmp_path]:
        with pytest.raises(AudioError) as local:
            load_source(str(p), 16000)
        with pytest.raises(AudioError) as remote:
            load_source(file_uri(p), 16000)
        assert remote.value.source == file_uri(p) and remote.value.reason == local.value.reason
    with pytest.raises(AudioError, match=r"^<bytes>: not audio or undecodable \(Format not recognised\)$"):
        decode_audio_bytes(b"RIFF not really" * 10, 16000)
