"""The command line on a one-node Ray cluster started with ``ray start --head`` (2 CPUs, a
bounded object store, token authentication): ``--engine ray --address`` gives the local
engine's output lines, store and predictions; a client without the token gets one line.
The cluster is stopped after the module and no process of it may be left."""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from mgcl.cli import main
from tests.engines.conftest import OBJECT_STORE_BYTES, needs_ray, ray_processes, store_keys

pytestmark = needs_ray


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(ray_token, ray_dir):
    """``ray start --head --block`` in its own process group; its address. Teardown: SIGTERM to
    the group (SIGKILL after 5 s; ``ray stop`` would stop every Ray node of the machine), then
    check that none of this node's processes is left."""
    temp = ray_dir / "cluster"
    port = free_port()
    ray_cli = Path(sys.executable).with_name("ray")
    proc = subprocess.Popen(
        [
            str(ray_cli),
            "start",
            "--head",
            "--block",
            f"--port={port}",
            "--num-cpus=2",
            f"--object-store-memory={OBJECT_STORE_BYTES}",
            "--include-dashboard=false",
            "--disable-usage-stats",
            f"--temp-dir={temp}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while True:  # the GCS port answers when the head node is up
            assert proc.poll() is None, "ray start --head failed"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "ray start --head did not come up in 90 s"
                time.sleep(0.5)
        time.sleep(1.0)  # the raylet registers just after the GCS
        yield f"127.0.0.1:{port}"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        for _ in range(50):
            if not ray_processes(str(temp)):
                break
            time.sleep(0.2)
        assert not ray_processes(str(temp)), "Ray processes left after the cluster was stopped"


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def lines(text: str, start: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip().startswith(start)]


def test_embed_on_a_cluster_matches_the_local_engine(cluster, clip_set, tmp_path, capsys):
    _, _, manifest = clip_set
    common = ["embed", "--manifest", str(manifest), "--backbone", "aisfx", "--batch-size", "3"]
    pytest.importorskip("aisfx")
    code_l, out_l, err_l = run_cli(capsys, *common, "--store", str(tmp_path / "local"))
    ray = ["--engine", "ray", "--address", cluster, "--workers", "2", "--cpus-per-worker", "1"]
    code_r, out_r, err_r = run_cli(capsys, *common, "--store", str(tmp_path / "ray"), *ray)
    assert code_l == code_r == 1
    assert lines(out_r, "computed:") == lines(out_l, "computed:") == ["computed: 8, cache hits: 0, failed: 3"]
    assert lines(err_r, "FAILED") == lines(err_l, "FAILED") and len(lines(err_r, "FAILED")) == 3
    keys = store_keys(tmp_path / "local")  # same backbone folder, same entries, same features
    assert store_keys(tmp_path / "ray") == keys and len(keys) == 8
    for k in keys:
        a, b = load_file(str(tmp_path / "local" / k)), load_file(str(tmp_path / "ray" / k))
        assert max(float((a[n] - b[n]).abs().max()) for n in ("clip", "frames")) <= 1e-5, k
    # a re-run on the cluster: all hits
    code, out, _ = run_cli(capsys, *common, "--store", str(tmp_path / "ray"), *ray)
    assert code == 1 and lines(out, "computed:") == ["computed: 0, cache hits: 8, failed: 3"]


def test_predict_on_a_cluster_writes_the_local_predictions(cluster, clip_set, tmp_path, capsys):
    pa = pytest.importorskip("pyarrow.parquet")
    paths, labels, _ = clip_set
    support = tmp_path / "support.csv"
    support.write_text("path,label\n" + "".join(f"{p},{lab}\n" for p, lab in zip(paths, labels) if lab)[:10_000])
    model = tmp_path / "model"
    fit = ["fit", "--manifest", str(support), "--backbone", "clap-tiny-random", "--method", "prototype"]
    code, _, err = run_cli(capsys, *fit, "--descriptions", "none", "--store", str(tmp_path / "s0"), "--out", str(model))
    assert code == 0, err
    queries = [str(Path(paths[0]).parent)]  # the folder: 8 tones, garbage.wav, empty.wav
    code_l, _, err_l = run_cli(
        capsys, "predict", str(model), *queries, "--store", str(tmp_path / "s1"), "--out", str(tmp_path / "p.csv")
    )
    code_r, out_r, err_r = run_cli(
        capsys,
        "predict",
        str(model),
        *queries,
        "--store",
        str(tmp_path / "s2"),
        "--out",
        str(tmp_path / "p.parquet"),
        "--engine",
        "ray",
        "--address",
        cluster,
        "--workers",
        "1",
    )
    assert code_l == code_r == 1 and lines(err_r, "FAILED") == lines(err_l, "FAILED")
    assert "written:" in out_r
    with open(tmp_path / "p.csv") as f:
        want = [(r["file"], r["label"], float(r["probability"])) for r in csv.DictReader(f)]
    table = pa.read_table(tmp_path / "p.parquet").to_pylist()
    got = [(r["file"], r["label"], round(r["probability"], 6)) for r in table]
    assert got == want and len(got) == 8
    assert [a["label"] for a in table[0]["top_k"]] and set(table[0]["top_k"][0]) == {"label", "probability"}


def test_a_client_without_the_token_gets_one_line(cluster, clip_set, tmp_path):
    _, _, manifest = clip_set
    env = dict(os.environ, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(tmp_path / "no-token"))
    (tmp_path / "no-token").write_text("")
    pytest.importorskip("aisfx")
    args = ["embed", "--manifest", str(manifest), "--backbone", "aisfx", "--store", str(tmp_path / "s")]
    proc = subprocess.run(
        [sys.executable, "-m", "mgcl.cli", *args, "--engine", "ray", "--address", cluster],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("mgcl embed: error: Ray refused the connection") and "auth_token" in last


def test_evaluate_on_a_cluster_gives_the_local_results(cluster, clip_set, tmp_path, capsys):
    pytest.importorskip("aisfx")
    _, _, manifest = clip_set
    common = ["evaluate", "--manifest", str(manifest), "--backbone", "aisfx", "--methods", "prototype,tip_adapter"]
    common += ["--shots", "1,2", "--seeds", "2"]
    docs = []
    for name, extra in (("local", []), ("ray", ["--engine", "ray", "--address", cluster, "--workers", "2"])):
        out = tmp_path / f"{name}.json"
        code, _, err = run_cli(capsys, *common, "--store", str(tmp_path / name), "--out", str(out), *extra)
        assert code == 1 and len(lines(err, "FAILED")) == 3  # the bad files are left out, the rest evaluated
        docs.append(json.loads(out.read_text()))
    local, ray = docs
    scores = lambda doc: [{k: v for k, v in row.items() if "seconds" not in k} for row in doc["results"]]
    assert scores(ray) == scores(local) and ray["failed_files"] == local["failed_files"]
    assert ray["timing"]["computed"] == local["timing"]["computed"] == 8
