"""Fixtures of the engine tests: a small labelled set with bad files, the local engine's
results (the reference), and Ray's token authentication in a private token file.

Ray 2.60 turns token authentication on for the clusters it starts and writes
``~/.ray/auth_token`` when there is none; the tests never touch the home folder: one token in
a session folder, named by ``RAY_AUTH_TOKEN_PATH`` (set before anything imports Ray), signs
every Ray instance and cluster of the session.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from mgcl.backbones import get_backbone
from mgcl.store.features import FeatureStore, embed_sources
from tests.conftest import tone

HAS_RAY = importlib.util.find_spec("ray") is not None
needs_ray = pytest.mark.skipif(not HAS_RAY, reason="Ray not installed (pip install -e '.[ray]')")

#: Object store of every test instance (Ray's minimum is 75 MB).
OBJECT_STORE_BYTES = 100 * 2**20

#: Frequencies (Hz) of the good clips; those below 1 kHz are class "low", the others "high".
FREQS = (220, 330, 440, 550, 1800, 2400, 3000, 3600)


@pytest.fixture(scope="session")
def ray_dir():
    """A short private folder for Ray's sessions and the token (Ray's socket paths are
    limited to 107 characters, too short for pytest's tmp paths), removed at the end."""
    d = tempfile.mkdtemp(prefix="mgcl-ray-", dir="/tmp")
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def ray_token(ray_dir):
    """Token authentication on, with a token of this session (environment restored after)."""
    token = ray_dir / "auth_token"
    token.write_text(secrets.token_hex(32))
    saved = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH", "RAY_USAGE_STATS_ENABLED")}
    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token), RAY_USAGE_STATS_ENABLED="0")
    yield token
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def ray_processes(marker: str) -> list[str]:
    """Command lines of the running processes that mention ``marker`` (a Ray temp folder)."""
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines()[1:] if marker in line and "ps -eo" not in line]


@pytest.fixture(scope="session")
def clip_set(tmp_path_factory):
    """8 tones (2 classes) of 1-2.4 s at 16 kHz, an undecodable file, an empty file and a
    missing one: ``(paths, labels)`` with labels None for the bad ones; and a manifest."""
    import soundfile as sf

    root = tmp_path_factory.mktemp("clips")
    paths, labels = [], []
    for k, f in enumerate(FREQS):
        p = root / f"tone{k}.wav"
        sf.write(p, tone(f, 1.0 + 0.2 * k, 16000, seed=k), 16000)
        paths.append(str(p))
        labels.append("low" if f < 1000 else "high")
    (root / "garbage.wav").write_bytes(b"RIFF not really a wave file" * 10)
    (root / "empty.wav").write_bytes(b"")
    bad = [str(root / "garbage.wav"), str(root / "empty.wav"), str(root / "missing.wav")]
    order = paths[:3] + bad[:1] + paths[3:6] + bad[1:] + paths[6:]
    lab = dict(zip(paths, labels))
    manifest = root / "manifest.csv"
    manifest.write_text("path,label\n" + "".join(f"{Path(p).name},{lab.get(p, 'low')}\n" for p in order))
    return order, [lab.get(p) for p in order], manifest


@pytest.fixture(scope="session")
def local_reference(clip_set, tmp_path_factory):
    """The local engine's run per backbone name: ``{name: (backbone, store, CachedRun)}``,
    built on first use."""
    cache = {}

    def get(name: str):
        if name not in cache:
            if name == "aisfx" and importlib.util.find_spec("aisfx") is None:
                pytest.skip("aisfx weights not installed (pip install --no-deps aisfx==0.1.2)")
            bb = get_backbone(name)
            store = FeatureStore(tmp_path_factory.mktemp(f"local-{name}"), bb.identity)
            cache[name] = (bb, store, embed_sources(bb, clip_set[0], store=store, batch_size=3))
        return cache[name]

    return get


def store_keys(folder: Path) -> list[str]:
    """The files below a feature-store folder but its JSON notes (the entries, by content key),
    sorted with their backbone folder; a temporary file would show up too."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.suffix != ".json")


def max_diff(a, b) -> float:
    """Largest absolute difference between two runs' clip and frame features (same ok set)."""
    worst = 0.0
    for i in a.ok:
        (ca, fa), (cb, fb) = a.values[i], b.values[i]
        assert fa.shape == fb.shape
        worst = max(worst, float((ca - cb).abs().max()), float((fa - fb).abs().max()))
    return worst
