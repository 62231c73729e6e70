"""Real-size smoke test: what a user with real CLAP weights runs, on the released architecture.

`clap-random` is the released CLAP (153.5 M parameters, published feature-extractor
settings) with random weights. A handful of short clips named after env45 classes (so
``--descriptions builtin`` finds the shipped descriptions): ``mgcl fit --method mgcl_f``,
``mgcl predict``, ``mgcl explain``, each in its own process as a user runs it, each under
3 GB of peak RSS. (The tiny CLAP never showed the real model's memory: text embeddings
that carried an autograd graph cost 11 GB at this size, and a crash after 5 minutes.)
"""

from __future__ import annotations

import json

import pytest

from tests.test_benchmark_scripts import load_script

pytestmark = pytest.mark.realsize

bench = load_script("clap_realsize")


def test_fit_predict_explain_mgcl_f_at_real_size(tmp_path):
    full = bench.synthetic_manifest(tmp_path / "clips", classes=3, per_class=3, seconds=3.0)
    support, queries = bench.subset_manifest(full, tmp_path, classes=3, per_class=2)
    store, model = str(tmp_path / "store"), str(tmp_path / "model")
    common = ["--backbone", "clap-random", "--store", store, "--backbone-batch-size", "16"]
    runs = {
        "fit": bench.mgcl(
            "fit",
            "--manifest",
            str(support),
            "--method",
            "mgcl_f",
            "--descriptions",
            "builtin",
            "--out",
            model,
            *common,
        ),
        "predict": bench.mgcl("predict", model, *queries, "--json", "--store", store),
        "explain": bench.mgcl(
            "explain",
            model,
            queries[0],
            "--out",
            str(tmp_path / "why.png"),
            "--json",
            "--concepts",
            "text",
            "--store",
            store,
        ),
    }
    results = {}
    for name, cmd in runs.items():
        r = results[name] = bench.run_measured(cmd)
        assert r["rc"] == 0, f"{name}: {r['stderr']}"
        assert r["peak_rss_mb"] < bench.RSS_TARGET_MB, f"{name}: peak RSS {r['peak_rss_mb']} MB"
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["backbone"]["name"] == "clap-random" and config["method"]["name"] == "mgcl_f"
    assert config["learned"]["segment_frames_"] == [7, 2]  # 2.2 s every 0.55 s in 0.3125 s frames
    predictions = json.loads(results["predict"]["stdout"])
    assert len(predictions) == len(queries)
    classes = sorted(config["classes"])
    assert all(p["label"] in classes for p in predictions)
    why = json.loads(results["explain"]["stdout"])
    assert why["concepts"]["kind"] == "descriptions" and len(why["concepts"]["labels"]) > 2
    assert (tmp_path / "why.png").stat().st_size > 1000
