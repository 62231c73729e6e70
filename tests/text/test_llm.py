"""Language-model generators: a real HTTP client against a scripted fake OpenAI-compatible
server on 127.0.0.1, a tiny random transformers causal LM, and the shared parser."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mgcl.errors import MgclError
from mgcl.text import llm
from mgcl.text.llm import (
    PROMPT_VERSION,
    OpenAIChatGenerator,
    TransformersGenerator,
    ask_for_descriptions,
    build_messages,
    parse_descriptions,
)


# ------------------------------------------------------------------------------ fake server
def good_answer(classes, n=3) -> str:
    return json.dumps(
        {c: [f"{c}: distinct sound number {i}, with its own pitch and rhythm." for i in range(n)] for c in classes}
    )


def ok(content: str) -> dict:
    return {"kind": "ok", "content": content}


def status(code: int, body: str = '{"error": {"message": "boom"}}', headers=None) -> dict:
    return {"kind": "status", "code": code, "body": body, "headers": headers or {}}


def slow(delay: float, content: str) -> dict:
    return {"kind": "slow", "delay": delay, "content": content}


def raw(body: bytes, code: int = 200) -> dict:
    return {"kind": "raw", "body": body, "code": code}


class FakeChatServer:
    """A scripted OpenAI-compatible server: each POST takes the next action of ``script``
    (the last one repeats) and is recorded in ``requests`` (path, headers, JSON body)."""

    def __init__(self):
        self.script: list[dict] = []
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with fake.lock:
                    fake.requests.append(
                        {"path": self.path, "headers": dict(self.headers), "body": json.loads(body.decode("utf-8"))}
                    )
                    action = fake.script.pop(0) if len(fake.script) > 1 else fake.script[0]
                try:
                    if action["kind"] == "slow":
                        time.sleep(action["delay"])
                    if action["kind"] in ("ok", "slow"):
                        payload = {
                            "id": "x",
                            "object": "chat.completion",
                            "model": "fake",
                            "choices": [
                                {
                                    "index": 0,
                                    "finish_reason": "stop",
                                    "message": {"role": "assistant", "content": action["content"]},
                                }
                            ],
                        }
                        self._send(200, json.dumps(payload).encode())
                    elif action["kind"] == "status":
                        self._send(action["code"], action["body"].encode(), action["headers"])
                    else:
                        self._send(action["code"], action["body"])
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                    pass

            def _send(self, code, data, headers=None):
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda *a: None
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def user_messages(self, i: int) -> list[str]:
        return [m["content"] for m in self.requests[i]["body"]["messages"] if m["role"] == "user"]


@pytest.fixture
def server():
    s = FakeChatServer()
    s.thread.start()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


@pytest.fixture
def sleeps(monkeypatch):
    """Record back-off sleeps instead of sleeping."""
    calls: list[float] = []
    monkeypatch.setattr(llm, "_sleep", calls.append)
    return calls


@pytest.fixture(autouse=True)
def no_key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("MGCL_TEST_KEY", raising=False)


def gen(server, **kw) -> OpenAIChatGenerator:
    kw.setdefault("timeout", 5)
    return OpenAIChatGenerator(server.base_url, "fake-model", **kw)


CLASSES = ["dog bark", "siren"]


# ------------------------------------------------------------------------------ HTTP path
def test_good_answer_one_request(server, sleeps):
    server.script = [ok(good_answer(CLASSES))]
    out = gen(server).describe(CLASSES, 3, CLASSES + ["jackhammer"])
    assert list(out) == CLASSES
    assert all(len(v) == 3 and len(set(v)) == 3 for v in out.values())
    assert len(server.requests) == 1 and sleeps == []
    req = server.requests[0]
    assert req["path"] == "/v1/chat/completions"
    assert req["body"]["model"] == "fake-model"
    assert req["body"]["response_format"] == {"type": "json_object"}
    assert "Authorization" not in req["headers"]  # no key set: fine for a local server
    prompt = server.user_messages(0)[0]
    assert '"dog bark"' in prompt and '"siren"' in prompt and "jackhammer" in prompt  # siblings listed
    system = req["body"]["messages"][0]["content"]
    for word in ("HEARS", "pitch", "timbre", "rhythm", "duration", "loudness envelope", "source", "setting"):
        assert word in system


def test_authorization_header_carries_env_key(server, sleeps, monkeypatch):
    monkeypatch.setenv("MGCL_TEST_KEY", "sk-test-123")
    server.script = [ok(good_answer(CLASSES))]
    gen(server, api_key_env="MGCL_TEST_KEY").describe(CLASSES, 3, CLASSES)
    assert server.requests[0]["headers"]["Authorization"] == "Bearer sk-test-123"


def test_malformed_json_then_good_is_reasked(server, sleeps):
    server.script = [ok('{"dog bark": ["a", "b"'), ok(good_answer(CLASSES))]
    out = gen(server).describe(CLASSES, 3, CLASSES)
    assert len(server.requests) == 2
    assert set(out) == set(CLASSES) and all(len(v) == 3 for v in out.values())
    second = server.requests[1]["body"]["messages"]
    assert [m["role"] for m in second] == ["system", "user", "assistant", "user"]
    assert second[2]["content"] == '{"dog bark": ["a", "b"'  # the model sees its own answer
    assert "not a JSON object" in second[3]["content"]
    assert sleeps == []  # a re-ask is not a transport retry


def test_fenced_answer_with_prose_is_accepted(server, sleeps):
    server.script = [ok("Sure! Here you go:\n```json\n" + good_answer(CLASSES) + "\n```\nEnjoy.")]
    out = gen(server).describe(CLASSES, 3, CLASSES)
    assert len(server.requests) == 1 and len(out["siren"]) == 3


def test_duplicates_are_reasked_for_that_class_only(server, sleeps):
    dup = json.loads(good_answer(CLASSES))
    dup["dog bark"] = ["A low woof.", "a low woof", "A third bark."]  # same sentence twice
    server.script = [ok(json.dumps(dup)), ok(good_answer(["dog bark"]))]
    out = gen(server).describe(CLASSES, 3, CLASSES)
    assert len(server.requests) == 2
    feedback = server.user_messages(1)[-1]
    assert "repeats a description" in feedback and '["dog bark"]' in feedback  # only the bad class re-asked
    assert out["siren"] == dup["siren"]  # the good class from the first answer is kept
    assert len(set(out["dog bark"])) == 3


def test_too_few_and_empty_are_reasked(server, sleeps):
    short = {"dog bark": ["one bark.", "two barks.", ""], "siren": []}
    server.script = [ok(json.dumps(short)), ok(good_answer(CLASSES))]
    out = gen(server).describe(CLASSES, 3, CLASSES)
    feedback = server.user_messages(1)[-1]
    assert "it has 2 descriptions, 3 needed (1 empty)" in feedback and "its list is empty" in feedback
    assert len(server.requests) == 2 and all(len(v) == 3 for v in out.values())


def test_always_malformed_raises_naming_the_class(server, sleeps):
    server.script = [ok("I cannot help with that.")]
    with pytest.raises(MgclError) as e:
        gen(server, max_reasks=2).describe(["siren"], 3, CLASSES)
    msg = str(e.value)
    assert len(server.requests) == 3  # 1 ask + 2 re-asks
    assert "'siren'" in msg and "not a JSON object" in msg and "after 3 attempts" in msg
    assert "\n" not in msg


def test_slower_than_timeout_times_out_and_retries(server, sleeps):
    server.script = [slow(2.0, good_answer(CLASSES)), ok(good_answer(CLASSES))]
    t0 = time.perf_counter()
    out = gen(server, timeout=0.3).describe(CLASSES, 3, CLASSES)
    assert time.perf_counter() - t0 < 1.8  # did not wait for the slow answer
    assert len(server.requests) == 2 and len(sleeps) == 1
    assert all(len(v) == 3 for v in out.values())


def test_always_too_slow_gives_up_with_the_reason(server, sleeps):
    server.script = [slow(1.5, good_answer(CLASSES))]
    with pytest.raises(MgclError) as e:
        gen(server, timeout=0.2, max_retries=1).describe(["siren"], 3, CLASSES)
    assert len(server.requests) == 2 and len(sleeps) == 1
    assert "no answer within 0.2 s" in str(e.value) and "'siren'" in str(e.value)


def test_generators_follow_the_protocol(server):
    from mgcl.text.llm import DescriptionGenerator

    assert isinstance(gen(server), DescriptionGenerator)
    assert isinstance(TransformersGenerator("some/model"), DescriptionGenerator)


def test_500_then_success_backs_off_exponentially(server, sleeps):
    server.script = [status(500), status(503), status(502), ok(good_answer(CLASSES))]
    out = gen(server, backoff=1.0, max_backoff=30).describe(CLASSES, 3, CLASSES)
    assert len(server.requests) == 4 and set(out) == set(CLASSES)
    assert len(sleeps) == 3
    assert 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0 and 2.0 <= sleeps[2] <= 4.0  # 2^k with jitter


def test_backoff_is_capped_and_retry_after_honoured(server, sleeps):
    server.script = [status(429, headers={"Retry-After": "3"}), status(500), status(500), ok(good_answer(CLASSES))]
    gen(server, backoff=1.0, max_backoff=3.5).describe(CLASSES, 3, CLASSES)
    assert sleeps[0] >= 3.0  # Retry-After
    assert all(s <= 3.5 for s in sleeps) and len(sleeps) == 3


def test_retries_exhausted_names_classes_and_reason(server, sleeps):
    server.script = [status(500, body="overloaded")]
    with pytest.raises(MgclError) as e:
        gen(server, max_retries=2).describe(CLASSES, 3, CLASSES)
    msg = str(e.value)
    assert len(server.requests) == 3 and len(sleeps) == 2
    assert "HTTP 500" in msg and "gave up after 3 attempts" in msg and "'dog bark'" in msg and "'siren'" in msg


def test_client_error_fails_at_once(server, sleeps):
    server.script = [status(401, body='{"error": "invalid key"}')]
    with pytest.raises(MgclError) as e:
        gen(server, api_key_env="MGCL_TEST_KEY").describe(CLASSES, 3, CLASSES)
    assert len(server.requests) == 1 and sleeps == []
    assert "HTTP 401" in str(e.value) and "$MGCL_TEST_KEY" in str(e.value)


def test_connection_refused_is_retried(sleeps):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    g = OpenAIChatGenerator(f"http://127.0.0.1:{port}/v1", "m", max_retries=2, timeout=2)
    with pytest.raises(MgclError) as e:
        g.describe(["siren"], 3, [])
    assert g.requests_made == 3 and len(sleeps) == 2
    assert "connection failed" in str(e.value) and "'siren'" in str(e.value)


@pytest.mark.parametrize(
    "body, expect",
    [
        (b"<html>hello</html>", "not JSON"),
        (b'{"object": "list", "data": []}', "choices[0].message"),
        (b'{"error": {"message": "model not loaded"}}', "model not loaded"),
    ],
)
def test_invalid_http_answer_is_a_clear_error(server, sleeps, body, expect):
    server.script = [raw(body)]
    with pytest.raises(MgclError) as e:
        gen(server).describe(["siren"], 3, [])
    assert expect in str(e.value) and "'siren'" in str(e.value)
    assert len(server.requests) == 1


def test_null_content_is_an_empty_answer_and_reasked(server, sleeps):
    payload = {"choices": [{"message": {"role": "assistant", "content": None}}]}
    server.script = [raw(json.dumps(payload).encode()), ok(good_answer(["siren"]))]
    out = gen(server).describe(["siren"], 3, [])
    assert len(server.requests) == 2 and "the answer was empty" in server.user_messages(1)[-1]
    assert len(out["siren"]) == 3


def test_classes_are_batched_per_request(server, sleeps):
    names = [f"class {i}" for i in range(5)]
    server.script = [ok(good_answer(names))]  # extra keys in an answer are ignored
    out = gen(server, classes_per_request=2).describe(names, 3, names)
    assert len(server.requests) == 3 and list(out) == names
    first = server.user_messages(0)[0]
    assert first.startswith('Classes to describe: ["class 0", "class 1"]') and '"class 4"' in first  # sibling


def test_bad_base_url_and_identity():
    with pytest.raises(MgclError, match="http://"):
        OpenAIChatGenerator("localhost:8080", "m")
    g = OpenAIChatGenerator("http://localhost:8080/v1/", "llama3")
    assert g.url == "http://localhost:8080/v1/chat/completions"
    assert "openai" in g.identity and "llama3" in g.identity and PROMPT_VERSION in g.identity


def test_cli_describe_openai_end_to_end_then_cache_hit(server, sleeps, tmp_path, capsys):
    from mgcl.cli import main

    server.script = [ok(good_answer(CLASSES, n=4))]
    out, cache = tmp_path / "desc.json", tmp_path / "cache"
    argv = [
        "describe",
        "--classes",
        "dog bark, siren",
        "--llm",
        "openai",
        "--base-url",
        server.base_url,
        "--model",
        "fake-model",
        "--per-class",
        "3",
        "--cache",
        str(cache),
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    data = json.loads(out.read_text())
    assert list(data) == CLASSES and all(len(v) == 3 for v in data.values())  # extras trimmed
    assert len(server.requests) == 1
    assert "2 generated" in capsys.readouterr().err
    out.unlink()
    assert main(argv) == 0  # second run: everything from the cache
    assert len(server.requests) == 1 and json.loads(out.read_text()) == data
    assert "2 from cache, 0 generated" in capsys.readouterr().err


# ------------------------------------------------------------------------------ shared parser
def test_parse_accepts_wrapped_and_renamed_keys():
    text = json.dumps({"classes": {"Dog_Bark": ["a.", "b."], "SIREN": ["c.", "d."]}})
    good, problems = parse_descriptions(text, ["dog bark", "siren"], 2)
    assert problems == {} and good == {"dog bark": ["a.", "b."], "siren": ["c.", "d."]}


@pytest.mark.parametrize(
    "text, reason",
    [
        ("", "empty"),
        ("[1, 2]", "JSON array, not an object"),
        ('{"siren": "a wail"}', "not a list of strings"),
        ('{"siren": ["a", 3]}', "not strings"),
        ('{"other": ["a", "b"]}', "missing from the answer"),
        ('{"siren": ["a", "b"], "dog": ["b.", "c"]}', "shares a description"),
    ],
)
def test_parse_rejects_with_reason(text, reason):
    good, problems = parse_descriptions(text, ["siren"] + (["dog"] if '"dog"' in text else []), 2)
    assert "siren" not in good and reason in problems["siren"]


def test_ask_loop_keeps_good_classes_and_reasks_rest():
    answers = iter([json.dumps({"a": ["1", "2"]}), json.dumps({"b": ["3", "4"]})])
    seen = []

    def complete(messages):
        seen.append(messages)
        return next(answers)

    out = ask_for_descriptions(complete, ["a", "b"], 2, ["a", "b"], max_reasks=1)
    assert out == {"a": ["1", "2"], "b": ["3", "4"]} and len(seen) == 2
    assert '["b"]' in seen[1][-1]["content"] and "missing from the answer" in seen[1][-1]["content"]


def test_prompt_lists_siblings_but_not_the_asked_classes_twice():
    msgs = build_messages(["siren"], 5, ["siren", "car horn", "dog bark"])
    user = msgs[1]["content"]
    assert '["car horn", "dog bark"]' in user and "5 distinct" in user


# ------------------------------------------------------------------------------ transformers
def tiny_char_tokenizer():
    from tokenizers import Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    tokens = ["<pad>", "<s>", "</s>", "<unk>"] + [chr(i) for i in range(32, 127)] + ["\n"]
    tk = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=[], unk_token="<unk>"))
    tk.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=tk,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        model_max_length=8192,
    )


@pytest.fixture(scope="module")
def tiny_lm_dir(tmp_path_factory):
    """A tiny RANDOM GPT-2 and a character tokenizer, saved as a local model folder."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    tok = tiny_char_tokenizer()
    torch.manual_seed(0)
    cfg = GPT2Config(
        vocab_size=len(tok),
        n_positions=8192,
        n_embd=16,
        n_layer=1,
        n_head=2,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    folder = tmp_path_factory.mktemp("tiny_lm")
    GPT2LMHeadModel(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def test_transformers_random_output_is_reasked_then_fails_clearly(tiny_lm_dir):
    g = TransformersGenerator(str(tiny_lm_dir), max_new_tokens=8, device="cpu", max_reasks=2)
    answers = []
    real = g.complete
    g.complete = lambda messages: answers.append(real(messages)) or answers[-1]
    with pytest.raises(MgclError) as e:
        g.describe(["dog bark"], 2, ["dog bark", "siren"])
    assert len(answers) == 3  # asked, then re-asked twice
    assert all(isinstance(a, str) for a in answers)
    msg = str(e.value)
    assert "'dog bark'" in msg and "after 3 attempts" in msg and str(tiny_lm_dir) in msg and "\n" not in msg


def test_transformers_greedy_is_deterministic(tiny_lm_dir):
    g = TransformersGenerator(str(tiny_lm_dir), max_new_tokens=6, device="cpu")
    msgs = build_messages(["siren"], 2, [])
    assert g.complete(msgs) == g.complete(msgs)
    assert "greedy" in g.identity and PROMPT_VERSION in g.identity


def test_transformers_parse_path_with_fixed_generation(tiny_lm_dir, monkeypatch):
    g = TransformersGenerator(str(tiny_lm_dir), device="cpu")
    seen = []
    fixed = "```json\n" + good_answer(["dog bark", "siren"], n=2) + "\n```"
    monkeypatch.setattr(g, "complete", lambda messages: seen.append(messages) or fixed)
    out = g.describe(["dog bark", "siren"], 2, ["dog bark", "siren", "jackhammer"])
    assert list(out) == ["dog bark", "siren"] and all(len(v) == 2 for v in out.values())
    assert len(seen) == 1 and "jackhammer" in seen[0][1]["content"]


def test_transformers_uses_chat_template_when_present(tiny_lm_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_lm_dir))
    g = TransformersGenerator(str(tiny_lm_dir), device="cpu")
    msgs = build_messages(["siren"], 2, [])
    plain = g._prompt_text(tok, msgs)
    assert plain.endswith("Assistant:") and plain.startswith("System: ")
    tok.chat_template = "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}\n{% endfor %}<|assistant|>"
    templated = g._prompt_text(tok, msgs)
    assert templated.startswith("<|system|>") and templated.endswith("<|assistant|>")


def test_transformers_missing_model_is_a_clear_error(tmp_path):
    g = TransformersGenerator(str(tmp_path / "nope"), device="cpu")
    with pytest.raises(MgclError, match="cannot load text-generation model"):
        g.describe(["siren"], 2, [])
