import numpy as np
import pytest

from mgcl.audio import views as A

SR = 16000


def tone(hz, seconds=1.0, sr=SR):
    t = np.arange(int(seconds * sr)) / sr
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def rms(x):
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def test_noise_sits_at_the_asked_snr_and_is_seeded():
    x = tone(440)
    y = A.add_noise(x, 15.0, seed=3)
    snr = 20 * np.log10(rms(x) / rms(y - x))
    assert abs(snr - 15.0) < 0.3
    assert np.array_equal(y, A.add_noise(x, 15.0, seed=3))
    assert not np.array_equal(y, A.add_noise(x, 15.0, seed=4))


@pytest.mark.parametrize("kind, passes, stops", [("low", 300, 7000), ("high", 3000, 100)])
def test_butterworth_keeps_the_pass_band_and_cuts_the_stop_band(kind, passes, stops):
    hz = 3000.0 if kind == "low" else 500.0
    kept = A.butterworth(tone(passes), SR, hz, kind)[SR // 4 :]  # past the transient
    cut = A.butterworth(tone(stops), SR, hz, kind)[SR // 4 :]
    assert rms(kept) > 0.9 * rms(tone(passes))
    assert rms(cut) < 0.05 * rms(tone(stops))


def test_speed_changes_length_and_pitch():
    x = tone(1000)
    y = A.change_speed(x, SR, 1.1)
    assert abs(len(y) - len(x) / 1.1) <= 2
    peak = np.argmax(np.abs(np.fft.rfft(y))) * SR / len(y)
    assert abs(peak - 1100) < 5


def test_roll_is_a_circular_shift():
    x = np.arange(9, dtype=np.float32)
    assert np.array_equal(A.roll(x, 1 / 3), np.roll(x, 3))


def test_every_view_is_finite_float32_and_deterministic():
    x = tone(440, 0.5)
    for name in A.VIEWS:
        y = A.make_view(x, SR, name, "abc")
        assert y.dtype == np.float32 and len(y) > 0 and np.isfinite(y).all()
        assert np.array_equal(y, A.make_view(x, SR, name, "abc"))


def test_keys_differ_by_clip_and_view_and_names_are_checked():
    keys = {A.view_key(d, n) for d in ("a", "b") for n in A.VIEWS}
    assert len(keys) == 2 * len(A.VIEWS)
    assert A.check_views(["noise", "roll"]) == ("noise", "roll")
    with pytest.raises(ValueError, match="unknown audio view 'echo'"):
        A.check_views(["noise", "echo"])
    assert set(A.DEFAULT_VIEWS) <= set(A.VIEWS)
