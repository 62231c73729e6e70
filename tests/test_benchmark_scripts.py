"""The benchmark scripts' synthetic problems (benchmarks/*.py are scripts, loaded by path)."""

import importlib.util
import json
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fit_speed_views_are_noisy_copies_of_their_own_clip():
    fs = load_script("fit_speed")
    gen = torch.Generator().manual_seed(0)
    support, ys = fs.synthetic(torch.randn(5, 32, generator=gen), 3, 6, gen)
    views = fs.views_of(support, 2, gen)
    assert views.source.tolist() == list(range(15)) * 2
    nearest = (views.features.clip @ support.clip.T).argmax(1)
    assert torch.equal(nearest, views.source)  # each view is closest to the clip it was made from
    assert torch.equal(views.features.frame_mask, support.frame_mask[views.source])


def test_fit_speed_runs_and_every_method_learns(tmp_path):
    fs = load_script("fit_speed")
    out = tmp_path / "fit.json"
    argv = [
        "--classes",
        "4",
        "--shots",
        "2",
        "--queries",
        "40",
        "--frames",
        "6",
        "--dim",
        "32",
        "--methods",
        "prototype,mgcl",
        "--out",
        str(out),
    ]
    assert fs.main(argv) == 0
    doc = json.loads(out.read_text())
    assert doc["methods"]["mgcl"]["views"] == 4 * 2 * 3 and doc["methods"]["prototype"]["views"] == 0
    assert all(r["accuracy"] > 90 for r in doc["methods"].values()), doc["methods"]
