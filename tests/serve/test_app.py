"""The HTTP API through FastAPI's TestClient: every route, its happy path and each error
status (400 bad name / traversal, 401 token, 404, 409, 413 streaming limit, 422 bad audio,
503 full queue, 500 without a trace), on the counting test backbone."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import numpy as np
import pytest

from tests.conftest import tone
from tests.serve.conftest import client_for, make_service, need, noise, support_files, wav_bytes

LOW = wav_bytes(tone(310, 1.0, 8000, seed=7))
HIGH = wav_bytes(tone(2400, 1.0, 8000, seed=7))


def one(name: str, data: bytes, field: str = "files"):
    return [(field, (name, data, "audio/wav"))]


# ----------------------------------------------------------------------------- page, health, docs
def test_health_info_page_and_docs(served):
    _, client = served
    assert client.get("/healthz").json() == {"status": "ok"}
    info = client.get("/info").json()
    assert info["backbone"]["name"] == "counting-test" and info["backbone"]["sample_rate"] == 8000
    assert "prototype" in info["methods"] and info["limits"]["max_upload_mb"] == 20.0
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert 'src="/static/app.js"' in page.text and "http" not in page.text.split("<body>")[1]  # no CDN
    for f in ("app.js", "style.css"):
        assert client.get(f"/static/{f}").status_code == 200
    schema = client.get("/openapi.json").json()
    assert {"/models", "/models/{name}/predict", "/models/{name}/explain", "/healthz"} <= set(schema["paths"])
    assert client.get("/docs").status_code == 200
    assert "access-control-allow-origin" not in client.get("/models", headers={"Origin": "http://evil.test"}).headers


# ----------------------------------------------------------------------------- models
def test_list_and_get_models(served):
    service, client = served
    listed = client.get("/models").json()["models"]
    m = next(x for x in listed if x["name"] == "tones")
    cfg = json.loads((service.models.root / "tones" / "config.json").read_text())
    assert m["sha256"] == cfg["weights"]["sha256"] and m["created"] == cfg["created"]
    assert m["classes"] == ["high", "low"] and m["method"] == "prototype" and m["backbone"] == "counting-test"
    assert client.get("/models/tones").json()["support_counts"] == {"high": 3, "low": 3}
    assert client.get("/models/nope").status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/models/..%2F..%2Fetc/predict",
        "/models/..%2F../predict",
        "/models/%2e%2e/predict",
        "/models/.hidden/predict",
        "/models/a%2Fb/predict",
        "/models/" + "x" * 65 + "/predict",
        "/models/na%20me/predict",
    ],
)
def test_bad_names_and_traversal_are_400(served, path):
    _, client = served
    r = client.post(path, files=one("q.wav", LOW))
    assert r.status_code == 400, (path, r.status_code, r.text)
    assert "invalid model name" in r.json()["detail"]


def test_a_symlink_out_of_the_models_folder_is_refused(served, tmp_path):
    service, client = served
    (service.models.root / "escape").symlink_to(tmp_path)
    try:
        assert client.get("/models/escape").status_code == 400
        assert client.delete("/models/escape").status_code == 400
        assert tmp_path.exists()
    finally:
        (service.models.root / "escape").unlink()


def test_predict_top_k_batches_and_reports_bad_files_one_by_one(served):
    service, client = served
    bb = service.backbone
    calls = bb.calls
    files = one("a.wav", LOW) + one("b.wav", HIGH) + one("broken.wav", b"RIFF....WAVEfmt ") + one("c.wav", LOW[:-4])
    r = client.post("/models/tones/predict?top_k=1", files=files)
    assert r.status_code == 200, r.text
    res = r.json()["results"]
    assert [x["file"] for x in res] == ["a.wav", "b.wav", "broken.wav", "c.wav"]
    assert res[0]["label"] == "low" and res[1]["label"] == "high" and len(res[0]["top_k"]) == 1
    assert "not audio or undecodable" in res[2]["error"] and "/" not in res[2]["error"]  # no server path
    assert bb.calls == calls + 1  # the request's good files went through one forward
    # the same clip again: the feature store answers, no forward
    before = bb.clips_encoded
    r2 = client.post("/models/tones/predict", files=one("again.wav", LOW))
    assert r2.json()["results"][0]["label"] == "low" and bb.clips_encoded == before


@pytest.mark.parametrize(
    "data,reason",
    [
        (b"this is not audio at all", "not audio or undecodable"),
        (b"", "empty file"),
        (wav_bytes(np.full(800, np.nan, dtype=np.float32), subtype="FLOAT"), "NaN"),
        (wav_bytes(tone(300, 1.0, 8000))[:30], "not audio or undecodable"),
    ],
    ids=["not-audio", "empty", "nan", "truncated"],
)
def test_unusable_audio_is_422_with_mgcls_reason(served, data, reason):
    _, client = served
    r = client.post("/models/tones/predict", files=one("x.wav", data))
    assert r.status_code == 422, r.text
    assert reason in r.json()["detail"] and r.json()["detail"].startswith("x.wav: ")
    assert "\n" not in r.json()["detail"]


def test_predict_unknown_model_is_404(served):
    _, client = served
    assert client.post("/models/nope/predict", files=one("q.wav", LOW)).status_code == 404


def test_explain_png_and_json(served):
    _, client = served
    r = client.post("/models/tones/explain", files=one("q.wav", HIGH, "file"))
    assert r.status_code == 200 and r.headers["content-type"] == "image/png" and r.content[:8] == b"\x89PNG\r\n\x1a\n"
    doc = client.post("/models/tones/explain?format=json", files=one("q.wav", HIGH, "file")).json()
    assert doc["predicted"] == "high" and doc["file"] == "q.wav" and doc["top_k"][0]["label"] == "high"
    assert client.post("/models/tones/explain", files=one("q.wav", b"junk", "file")).status_code == 422
    assert client.post("/models/tones/explain?format=svg", files=one("q.wav", HIGH, "file")).status_code == 400


# ----------------------------------------------------------------------------- fit, delete
def test_fit_as_a_job_then_delete(served):
    service, client = served
    files, labels = support_files(n=2)
    r = client.post("/models", data={"name": "job-model", "labels": labels, "method": "tip_adapter"}, files=files)
    assert r.status_code == 202, r.text
    job = r.json()
    for _ in range(300):
        job = client.get(f"/jobs/{job['id']}").json()
        if job["status"] in ("done", "failed"):
            break
        time.sleep(0.05)
    assert job["status"] == "done", job
    assert job["result"]["method"] == "tip_adapter" and job["done"] == job["total"] == 4
    saved = json.loads((service.models.root / "job-model" / "config.json").read_text())
    assert saved["support_names"] == ["low0.wav", "low1.wav", "high0.wav", "high1.wav"]  # not server paths
    assert client.post("/models/job-model/predict", files=one("q.wav", HIGH)).json()["results"][0]["label"] == "high"
    assert client.delete("/models/job-model").json() == {"deleted": "job-model"}
    assert client.get("/models/job-model").status_code == 404
    assert client.delete("/models/job-model").status_code == 404
    assert client.post("/models/job-model/predict", files=one("q.wav", HIGH)).status_code == 404
    assert "job-model" not in [m["name"] for m in client.get("/models").json()["models"]]
    assert client.get("/jobs/nonexistent").status_code == 404


@pytest.mark.parametrize(
    "data,status,words",
    [
        ({"name": "tones"}, 409, "exists already"),
        ({"name": "../x"}, 400, "invalid model name"),
        ({"name": "ok", "method": "nonsense"}, 400, "unknown method"),
        ({"name": "ok", "method": "prototype", "params": "{not json"}, 400, "JSON object"),
        ({"name": "ok", "method": "prototype", "params": '{"no_such_param": 1}'}, 400, "no_such_param"),
        ({"name": "ok", "method": "zero_shot"}, 400, "text encoder"),
    ],
)
def test_fit_refusals(served, data, status, words):
    _, client = served
    files, labels = support_files(n=1)
    r = client.post("/models?wait=true", data={"labels": labels, **data}, files=files)
    assert r.status_code == status, r.text
    assert words in r.json()["detail"]


def test_fit_needs_two_classes_and_one_label_per_file(served):
    _, client = served
    files, labels = support_files(n=1)
    r = client.post("/models?wait=true", data={"name": "x1", "labels": ["a", "a"]}, files=files)
    assert r.status_code == 400 and "at least 2 classes" in r.json()["detail"]
    r = client.post("/models?wait=true", data={"name": "x1", "labels": ["a"]}, files=files)
    assert r.status_code == 400 and "one label per file" in r.json()["detail"]
    r = client.post("/models?wait=true", data={"name": "x1"}, files=files)
    assert r.status_code == 400 and "labels" in r.json()["detail"]


def test_fit_with_a_bad_example_is_422_and_saves_nothing(served):
    service, client = served
    files, labels = support_files(n=1)
    files.append(("files", ("bad.wav", b"nope", "audio/wav")))
    r = client.post("/models?wait=true", data={"name": "badfit", "labels": labels + ["low"]}, files=files)
    assert r.status_code == 422 and "bad.wav" in r.json()["detail"] and "no model fitted" in r.json()["detail"]
    assert not (service.models.root / "badfit").exists()
    assert not [p for p in service.models.root.iterdir() if p.name.startswith(".")]


def test_a_half_written_model_is_never_listed(served, monkeypatch):
    service, client = served
    (service.models.root / ".tmp-partial-123").mkdir()
    (service.models.root / "no-weights").mkdir()
    (service.models.root / "no-weights" / "config.json").write_text("{}")
    names = [m["name"] for m in client.get("/models").json()["models"]]
    assert ".tmp-partial-123" not in names and "no-weights" not in names
    # a save that dies half way leaves nothing behind and nothing listed
    from mgcl.classifier.estimator import FewShotAudioClassifier

    def crash(self, path):
        path.mkdir(parents=True)
        (path / "weights.safetensors").write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(FewShotAudioClassifier, "save", crash)
    files, labels = support_files(n=1)
    r = client.post("/models?wait=true", data={"name": "crashy", "labels": labels, "method": "prototype"}, files=files)
    assert r.status_code == 500 and "disk full" not in r.text and "Traceback" not in r.text
    assert "crashy" not in [m["name"] for m in client.get("/models").json()["models"]]
    assert not (service.models.root / "crashy").exists()
    assert sorted(p.name for p in service.models.root.iterdir() if p.name.startswith(".")) == [".tmp-partial-123"]


def test_models_stay_loaded_lru(served):
    service, client = served
    client.post("/models/tones/predict", files=one("q.wav", LOW))
    loads = service.models.loads
    for _ in range(3):
        client.post("/models/tones/predict", files=one("q.wav", LOW))
    assert service.models.loads == loads
    assert "tones" in service.models.loaded()


# ----------------------------------------------------------------------------- limits
def test_upload_limit_from_content_length_is_413_before_the_app(tmp_path):
    service = make_service(tmp_path, max_upload_mb=0.01)
    client = client_for(service)
    big = wav_bytes(noise(2.0, 8000))  # 32 KB > 10 KB
    r = client.post("/models/any/predict", files=one("big.wav", big))
    assert r.status_code == 413 and "--max-upload-mb" in r.json()["detail"]


def test_upload_limit_while_streaming_stops_reading(tmp_path):
    """No Content-Length (chunked): the body is counted as it arrives and refused past the
    limit; the rest is never read."""
    need("fastapi")
    from mgcl.serve.app import create_app

    service = make_service(tmp_path, max_upload_mb=0.05)  # 52 KB
    app = create_app(service)
    chunk = b"x" * 16384
    sent = {"n": 0}
    boundary = b"b0undary"

    async def receive():
        sent["n"] += 1
        if sent["n"] == 1:
            body = b"--" + boundary + b'\r\nContent-Disposition: form-data; name="files"; filename="a.wav"\r\n\r\n'
            return {"type": "http.request", "body": body, "more_body": True}
        return {"type": "http.request", "body": chunk, "more_body": sent["n"] < 1000}  # 16 MB offered

    out = []

    async def send(message):
        out.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/models/tones/predict",
        "raw_path": b"/models/tones/predict",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"multipart/form-data; boundary=" + boundary), (b"host", b"t")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    asyncio.run(app(scope, receive, send))
    start = next(m for m in out if m["type"] == "http.response.start")
    assert start["status"] == 413
    assert sent["n"] <= 6  # about 52 KB of the 16 MB offered were read
    body = b"".join(m.get("body", b"") for m in out if m["type"] == "http.response.body")
    assert b"--max-upload-mb" in body


def test_duration_limit_after_decoding(tmp_path):
    service = make_service(tmp_path, max_seconds=1.5)
    client = client_for(service)
    files, labels = support_files(n=1)
    assert client.post("/models?wait=true", data={"name": "m", "labels": labels, "method": "prototype"}, files=files)
    r = client.post("/models/m/predict", files=one("long.wav", wav_bytes(tone(300, 3.0, 8000))))
    assert r.status_code == 422 and "3.0 s of audio" in r.json()["detail"] and "1.5 s" in r.json()["detail"]
    ok = client.post("/models/m/predict", files=one("short.wav", wav_bytes(tone(300, 1.0, 8000))))
    assert ok.status_code == 200


def test_token_guards_every_route_but_health_and_page(tmp_path):
    service = make_service(tmp_path, token="s3cret")
    client = client_for(service)
    for method, path in [
        ("get", "/models"),
        ("get", "/info"),
        ("get", "/models/x"),
        ("delete", "/models/x"),
        ("get", "/jobs/x"),
        ("get", "/openapi.json"),
        ("get", "/docs"),
    ]:
        r = getattr(client, method)(path)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", (method, path)
    assert client.post("/models/x/predict", files=one("q.wav", LOW)).status_code == 401
    assert client.post("/models", data={"name": "x", "labels": ["a"]}, files=one("q.wav", LOW)).status_code == 401
    assert client.get("/models", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/models", headers={"Authorization": "Basic s3cret"}).status_code == 401
    assert client.get("/models", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    for path in ("/healthz", "/", "/static/app.js"):
        assert client.get(path).status_code == 200


def test_full_queue_is_503_with_retry_after(tmp_path):
    service = make_service(tmp_path, queue=1, workers=1)
    client = client_for(service)
    files, labels = support_files(n=1)
    assert client.post("/models?wait=true", data={"name": "m", "labels": labels, "method": "prototype"}, files=files)
    started, release = threading.Event(), threading.Event()

    def slow():
        started.set()
        release.wait(30)

    running = service.pool.submit(slow)
    assert started.wait(10)
    waiting = service.pool.submit(lambda: None)  # the queue (1) is now full
    try:
        r = client.post("/models/m/predict", files=one("q.wav", LOW))
        assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1 and "busy" in r.json()["detail"]
        r = client.post("/models", data={"name": "m2", "labels": labels, "method": "prototype"}, files=files)
        assert r.status_code == 503
    finally:
        release.set()
    running.result(10)
    waiting.result(10)
    assert client.post("/models/m/predict", files=one("q.wav", LOW)).status_code == 200


def test_no_stack_trace_in_any_answer(served, monkeypatch):
    service, client = served

    def boom(*a, **k):
        raise RuntimeError("secret detail at /srv/internal/path.py")

    monkeypatch.setattr(service, "predict_many", boom)
    r = client.post("/models/tones/predict", files=one("q.wav", LOW))
    assert r.status_code == 500
    assert r.json() == {"detail": "internal error (see the server log)"}
    assert "secret" not in r.text and "Traceback" not in r.text


def test_cors_only_for_the_given_origin(tmp_path):
    service = make_service(tmp_path, cors=("http://app.example",))
    client = client_for(service)
    r = client.options("/models", headers={"Origin": "http://app.example", "Access-Control-Request-Method": "GET"})
    assert r.headers.get("access-control-allow-origin") == "http://app.example"
    r = client.get("/models", headers={"Origin": "http://other.example"})
    assert "access-control-allow-origin" not in r.headers


def test_predict_requests_are_announced_to_the_pool_while_they_upload(served, monkeypatch):
    service, client = served
    flags = []
    real = service.pool.submit_batchable

    def spy(*args, **kwargs):
        flags.append((dict(service.pool._arriving), kwargs.get("arrived")))
        return real(*args, **kwargs)

    monkeypatch.setattr(service.pool, "submit_batchable", spy)
    assert client.post("/models/tones/predict", files=one("q.wav", LOW)).status_code == 200
    assert flags == [({("predict", "tones"): 1}, True)]
    assert client.post("/models/nope/predict", files=one("q.wav", LOW)).status_code == 404
    assert service.pool._arriving == {}  # handed over or withdrawn, never left behind
