"""Category descriptions from a language model (or a file, or the shipped sets).

Every generator has the same two members::

    identity: str                      # generator + model + prompt version (cache key part)
    describe(class_names, per_class, siblings) -> {class_name: [sentence, ...]}

* :class:`OpenAIChatGenerator` -- any OpenAI-compatible ``/chat/completions`` endpoint
  (llama.cpp server, vLLM, Ollama, hosted APIs), standard library HTTP only.
* :class:`TransformersGenerator` -- a local Hugging Face causal LM, greedy decoding.
* :class:`FileGenerator` -- a JSON or YAML file the user wrote.
* :class:`BuiltinGenerator` -- the description sets shipped in ``mgcl/text/data``.

The two language-model generators share one prompt (:data:`PROMPT_VERSION`) and one
ask / parse / validate / re-ask loop (:func:`ask_for_descriptions`): an answer that is not
a JSON object mapping each requested class to enough distinct sentences is never accepted;
the model is told what was wrong and asked again (bounded), and a final failure raises an
:class:`~mgcl.errors.MgclError` naming the classes and the reason.
"""

from __future__ import annotations

import contextlib
import http.client
import inspect
import json
import os
import random
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Protocol, runtime_checkable

from mgcl.errors import MgclError
from mgcl.text.prompts import readable_label
from mgcl.util.text import one_line
from mgcl.version import __version__

#: Bump when the prompt or the validation rules change: cached answers are keyed by it.
PROMPT_VERSION = "describe-v1"

#: How many sibling class names the prompt lists at most.
MAX_SIBLINGS = 80
#: How much of a rejected answer is shown back to the model when re-asking.
MAX_ECHO_CHARS = 3000

SYSTEM_PROMPT = (
    "You write short descriptions of how sound classes sound, for a text encoder that is matched "
    "against audio recordings. Describe only what a listener HEARS: pitch, timbre, rhythm, "
    "duration, loudness envelope (attack, sustain, decay), the sound source and the acoustic "
    "setting. No visual details, no history, no opinions. Each description is one sentence, "
    "differs from the others, and sets its class apart from the sibling classes it is "
    "confused with. Answer with one JSON object and nothing else."
)


Messages = list[dict[str, str]]


@runtime_checkable
class DescriptionGenerator(Protocol):
    """What :func:`mgcl.text.descriptions.get_descriptions` needs from a generator."""

    identity: str

    def describe(self, class_names: list[str], per_class: int, siblings: list[str]) -> dict[str, list[str]]:
        """At least ``per_class`` distinct sentences for every name in ``class_names``."""
        ...


# ------------------------------------------------------------------------------ prompt
def build_messages(class_names: Sequence[str], per_class: int, siblings: Sequence[str]) -> Messages:
    """The chat messages asking for ``per_class`` descriptions of each class."""
    asked = set(class_names)
    others = [s for s in dict.fromkeys(siblings) if s not in asked]
    if len(others) > MAX_SIBLINGS:
        others = others[:MAX_SIBLINGS] + [f"... ({len(others) - MAX_SIBLINGS} more)"]
    skeleton = json.dumps({c: ["...", "..."] for c in class_names[:2]}, ensure_ascii=False)
    lines = [
        f"Classes to describe: {json.dumps(list(class_names), ensure_ascii=False)}.",
        "They have to be told apart from each other"
        + (f" and from these sibling classes: {json.dumps(others, ensure_ascii=False)}." if others else "."),
        (
            f"For each class to describe, write {per_class} distinct one-sentence descriptions of what "
            'it sounds like, for example "a sharp, high-pitched bark repeated in short bursts" or '
            '"a low, steady hum with a faint rattle, as from a motor idling indoors".'
        ),
        (
            f"Answer with a JSON object whose keys are exactly the {len(class_names)} class names above "
            f"and whose values are lists of {per_class} strings, like {skeleton}."
        ),
    ]
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "\n".join(lines)}]


def reask_message(problems: Mapping[str, str], pending: Sequence[str], per_class: int) -> str:
    """The user turn that tells the model what was wrong with its last answer."""
    what = "; ".join(f"{json.dumps(c, ensure_ascii=False)}: {problems[c]}" for c in pending)
    return (
        f"That answer cannot be used: {what}. Answer again with one JSON object (no prose, no code "
        f"fence) whose keys are exactly {json.dumps(list(pending), ensure_ascii=False)} and whose "
        f"values are lists of {per_class} distinct, non-empty one-sentence descriptions."
    )


# ------------------------------------------------------------------------------ parse
_FENCE = re.compile(r"```[A-Za-z0-9_-]*[ \t]*\n?(.*?)```", re.DOTALL)


def _norm_sentence(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip().rstrip(".!").strip().casefold()


def _norm_key(s: str) -> str:
    """Class-name match key: readable name, case and punctuation ignored
    ('Dog_Bark' ~ 'dog bark', 'cafe/restaurant' ~ 'cafe restaurant')."""
    return re.sub(r"[^\w]+", " ", readable_label(str(s)).casefold()).replace("_", " ").strip()


def _extract_json(text: str):
    """The JSON value in a model's answer: code fences stripped, prose around an object
    tolerated. Raises ValueError with a short reason."""
    body = text.strip()
    fenced = _FENCE.search(body)
    if fenced:
        body = fenced.group(1).strip()
    try:
        return json.loads(body)
    except ValueError as exc:
        first, last = body.find("{"), body.rfind("}")
        if 0 <= first < last:
            try:
                return json.loads(body[first : last + 1])
            except ValueError:
                pass
        raise ValueError(f"it is not valid JSON ({exc})".splitlines()[0]) from None


def parse_descriptions(
    text: str | None, class_names: Sequence[str], per_class: int
) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Validate one model answer.

    Returns ``(good, problems)``: ``good`` maps each class whose list is acceptable to its
    stripped sentences (at least ``per_class``, no duplicate, none empty, none shared with
    another class of the answer); ``problems`` maps every other requested class to a short
    reason. Keys are matched exactly, then by readable name ignoring case.
    """
    if text is None or not str(text).strip():
        return {}, dict.fromkeys(class_names, "the answer was empty")
    try:
        data = _extract_json(str(text))
    except ValueError as exc:
        return {}, dict.fromkeys(class_names, f"the answer was not a JSON object: {exc}")
    if not isinstance(data, dict):
        kind = type(data).__name__.replace("dict", "object").replace("list", "array")
        return {}, dict.fromkeys(class_names, f"the answer was a JSON {kind}, not an object")
    if not any(c in data for c in class_names):  # {"classes": {...}} or {"descriptions": {...}}
        inner = [v for k, v in data.items() if k in ("classes", "descriptions") and isinstance(v, dict)]
        if len(inner) == 1:
            data = inner[0]
    by_norm: dict[str, object] = {}
    for k, v in data.items():
        by_norm.setdefault(_norm_key(k), v)

    good: dict[str, list[str]] = {}
    problems: dict[str, str] = {}
    for c in class_names:
        if c in data:
            value = data[c]
        elif _norm_key(c) in by_norm:
            value = by_norm[_norm_key(c)]
        else:
            problems[c] = "the class is missing from the answer"
            continue
        if not isinstance(value, list):
            problems[c] = f"its value is a JSON {type(value).__name__}, not a list of strings"
            continue
        if not all(isinstance(s, str) for s in value):
            problems[c] = "its list holds items that are not strings"
            continue
        items = [s.strip() for s in value if s.strip()]
        n_empty = len(value) - len(items)
        if not items:
            problems[c] = "its list is empty"
            continue
        seen: set[str] = set()
        repeated = None
        for s in items:
            key = _norm_sentence(s)
            if key in seen:
                repeated = s
                break
            seen.add(key)
        if repeated is not None:
            problems[c] = f"it repeats a description ({json.dumps(repeated[:80], ensure_ascii=False)})"
            continue
        if len(items) < per_class:
            problems[c] = f"it has {len(items)} description{'s' if len(items) != 1 else ''}, {per_class} needed" + (
                f" ({n_empty} empty)" if n_empty else ""
            )
            continue
        good[c] = items

    owner: dict[str, str] = {}  # a sentence given for two classes sets neither apart
    for c, items in good.items():
        for s in items:
            other = owner.setdefault(_norm_sentence(s), c)
            if other != c:
                problems.setdefault(c, f"it shares a description with {json.dumps(other, ensure_ascii=False)}")
                problems.setdefault(other, f"it shares a description with {json.dumps(c, ensure_ascii=False)}")
    for c in problems:
        good.pop(c, None)
    return good, problems


def ask_for_descriptions(
    complete: Callable[[Messages], str],
    class_names: Sequence[str],
    per_class: int,
    siblings: Sequence[str],
    max_reasks: int = 2,
    source: str = "the language model",
) -> dict[str, list[str]]:
    """The ask / validate / re-ask loop shared by every language-model generator.

    ``complete(messages) -> str`` is one chat completion. Classes whose lists pass
    :func:`parse_descriptions` are kept; for the others the conversation goes on with the
    rejected answer and a message saying what was wrong, at most ``max_reasks`` times.
    Raises MgclError naming the classes still missing and why.
    """
    class_names = list(dict.fromkeys(class_names))
    if not class_names:
        return {}
    messages = build_messages(class_names, per_class, siblings)
    result: dict[str, list[str]] = {}
    pending = class_names
    for attempt in range(max_reasks + 1):
        try:
            answer = complete(messages)
        except MgclError as exc:
            raise MgclError(f"could not get descriptions for {', '.join(repr(c) for c in pending)}: {exc}") from None
        good, problems = parse_descriptions(answer, pending, per_class)
        result.update(good)
        pending = [c for c in pending if c in problems]
        if not pending:
            return {c: result[c] for c in class_names}
        if attempt == max_reasks:
            reasons = "; ".join(f"'{c}': {problems[c]}" for c in pending)
            n = max_reasks + 1
            raise MgclError(
                one_line(
                    f"could not get valid descriptions for {', '.join(repr(c) for c in pending)} from {source} "
                    f"after {n} attempt{'s' if n != 1 else ''}: {reasons}",
                    600,
                )
            )
        echo = answer if len(answer or "") <= MAX_ECHO_CHARS else answer[:MAX_ECHO_CHARS] + " ..."
        messages = messages + [
            {"role": "assistant", "content": echo or ""},
            {"role": "user", "content": reask_message(problems, pending, per_class)},
        ]
    raise AssertionError("unreachable")  # pragma: no cover


def _chunks(items: Sequence[str], size: int) -> list[list[str]]:
    size = max(1, int(size))
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


# ------------------------------------------------------------------------------ OpenAI HTTP
def _sleep(seconds: float) -> None:  # patched by tests
    time.sleep(seconds)


class OpenAIChatGenerator:
    """Descriptions from an OpenAI-compatible chat-completions endpoint.

    ``base_url`` is the API root the endpoint hangs off, e.g. ``http://localhost:8080/v1``
    (llama.cpp server), ``http://localhost:11434/v1`` (Ollama), ``http://host:8000/v1`` (vLLM)
    or ``https://api.openai.com/v1``. The key is read from the environment variable
    ``api_key_env`` at request time (none is fine for a local server).

    Transport: ``timeout`` seconds per request; 5xx, 429, timeouts and connection errors are
    retried ``max_retries`` times with capped exponential back-off plus jitter (``Retry-After``
    honoured); other 4xx fail at once. Content: see :func:`ask_for_descriptions`
    (``max_reasks`` re-asks). ``classes_per_request`` classes go into one request.
    """

    prompt_version = PROMPT_VERSION
    cacheable = True

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str | None = "OPENAI_API_KEY",
        timeout: float = 60,
        max_retries: int = 4,
        max_reasks: int = 2,
        classes_per_request: int = 8,
        temperature: float | None = None,
        max_tokens: int | None = None,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
    ):
        if not base_url or not re.match(r"^https?://", str(base_url)):
            raise MgclError(
                f"base URL must start with http:// or https://, got '{base_url}' (e.g. http://localhost:8080/v1)"
            )
        if not model:
            raise MgclError("an OpenAI-compatible endpoint needs a model name (--model)")
        if timeout <= 0 or max_retries < 0 or max_reasks < 0 or classes_per_request < 1:
            raise MgclError("timeout must be > 0, max_retries and max_reasks >= 0, classes_per_request >= 1")
        self.base_url = str(base_url).rstrip("/")
        self.url = self.base_url + "/chat/completions"
        self.model = str(model)
        self.api_key_env = api_key_env
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.max_reasks = int(max_reasks)
        self.classes_per_request = int(classes_per_request)
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.requests_made = 0

    @property
    def identity(self) -> str:
        return f"openai:{self.model}:{PROMPT_VERSION}"

    def describe(self, class_names: list[str], per_class: int, siblings: list[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for chunk in _chunks(class_names, self.classes_per_request):
            out.update(
                ask_for_descriptions(
                    self.complete,
                    chunk,
                    per_class,
                    siblings or class_names,
                    self.max_reasks,
                    source=f"model '{self.model}' at {self.url}",
                )
            )
        return {c: out[c] for c in class_names}

    # -- one chat completion -------------------------------------------------------
    def complete(self, messages: Messages) -> str:
        """POST the messages, return the assistant's text ('' when it sent none)."""
        payload: dict = {"model": self.model, "messages": messages, "response_format": {"type": "json_object"}}
        if self.temperature is not None:
            payload["temperature"] = self.temperature
        if self.max_tokens is not None:
            payload["max_tokens"] = self.max_tokens
        body = self._post(payload)
        return self._content(body)

    def _headers(self) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": f"mgcl/{__version__}",
        }
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key.strip()}"
        return headers

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        delay = min(self.max_backoff, self.backoff * 2**attempt) * (0.5 + 0.5 * random.random())
        if retry_after:
            with contextlib.suppress(ValueError):  # an HTTP date: keep the back-off
                delay = max(delay, min(float(retry_after), self.max_backoff))
        return delay

    def _post(self, payload: dict) -> bytes:
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        headers = self._headers()
        attempts = self.max_retries + 1
        reason = "no attempt made"
        for attempt in range(attempts):
            retry_after = None
            request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
            self.requests_made += 1
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return response.read()
            except urllib.error.HTTPError as exc:
                try:
                    detail = one_line(exc.read().decode("utf-8", "replace"), 200)
                except Exception:  # noqa: BLE001 - the body is only a hint
                    detail = ""
                if exc.code != 429 and exc.code < 500:
                    raise MgclError(self._client_error(exc.code, detail)) from None
                reason = f"HTTP {exc.code}" + (f" ({detail})" if detail else "")
                retry_after = exc.headers.get("Retry-After") if exc.headers else None
            except (TimeoutError, urllib.error.URLError, http.client.HTTPException, OSError) as exc:
                inner = getattr(exc, "reason", None) or exc
                if isinstance(inner, TimeoutError) or "timed out" in str(inner):
                    reason = f"no answer within {self.timeout:g} s"
                else:
                    reason = one_line(f"connection failed ({inner})", 200)
            if attempt + 1 < attempts:
                _sleep(self._delay(attempt, retry_after))
        raise MgclError(f"{self.url}: {reason}; gave up after {attempts} attempt{'s' if attempts != 1 else ''}")

    def _client_error(self, code: int, detail: str) -> str:
        hint = {
            401: f" (set the API key in ${self.api_key_env})" if self.api_key_env else " (an API key is needed)",
            403: " (the API key may lack access to this model)",
            404: f" (check the base URL -- it usually ends in /v1 -- and the model name '{self.model}')",
        }.get(code, "")
        return f"{self.url}: HTTP {code}{hint}" + (f": {detail}" if detail else "")

    def _content(self, body: bytes) -> str:
        try:
            data = json.loads(body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise MgclError(
                f"{self.url}: the server's answer is not JSON "
                f"({one_line(body[:120].decode('utf-8', 'replace'), 120)!r}); "
                "is the base URL an OpenAI-compatible API root (usually ending in /v1)?"
            ) from None
        if isinstance(data, dict) and data.get("error"):
            raise MgclError(
                f"{self.url}: the server answered with an error: {one_line(json.dumps(data['error']), 200)}"
            )
        try:
            message = data["choices"][0]["message"]
        except (KeyError, IndexError, TypeError):
            raise MgclError(
                f"{self.url}: the server's answer has no choices[0].message; is it an "
                "OpenAI-compatible chat-completions endpoint?"
            ) from None
        content = message.get("content") if isinstance(message, dict) else None
        if content is None:
            return ""
        if isinstance(content, list):  # content parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        if not isinstance(content, str):
            raise MgclError(f"{self.url}: choices[0].message.content is a {type(content).__name__}, not text")
        return content


# ------------------------------------------------------------------------------ transformers
class TransformersGenerator:
    """Descriptions from a local Hugging Face causal language model (greedy by default).

    ``model`` is a hub id or local folder (loaded with ``AutoModelForCausalLM`` and
    ``AutoTokenizer``), or an already built model, then with ``tokenizer``. The prompt goes
    through the tokenizer's chat template when it has one, else as plain text.
    """

    prompt_version = PROMPT_VERSION
    cacheable = True

    def __init__(
        self,
        model,
        tokenizer=None,
        max_new_tokens: int = 1024,
        device: str | None = None,
        max_reasks: int = 2,
        classes_per_request: int = 4,
        do_sample: bool = False,
    ):
        if model is None or model == "":
            raise MgclError("a transformers generator needs a model id or folder (--model)")
        self._model_arg = model
        self._tokenizer = tokenizer
        self._model = None if isinstance(model, (str, Path)) else model
        if self._model is not None and tokenizer is None:
            raise MgclError("a model object needs its tokenizer")
        self.model = (
            str(model)
            if isinstance(model, (str, Path))
            else str(getattr(getattr(model, "config", None), "name_or_path", "") or type(model).__name__)
        )
        self.max_new_tokens = int(max_new_tokens)
        self.device = device
        self.max_reasks = int(max_reasks)
        self.classes_per_request = int(classes_per_request)
        self.do_sample = bool(do_sample)

    @property
    def identity(self) -> str:
        decoding = "sample" if self.do_sample else "greedy"
        return f"transformers:{self.model}:{decoding}:{self.max_new_tokens}:{PROMPT_VERSION}"

    def _load(self):
        if self._model is not None:
            return self._model, self._tokenizer
        import torch
        import transformers
        from transformers import AutoModelForCausalLM, AutoTokenizer

        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        kw = {}
        if str(device).startswith("cuda"):
            kw["dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype"] = "auto"
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(self._model_arg))
            model = AutoModelForCausalLM.from_pretrained(str(self._model_arg), **kw)
        except (OSError, ValueError) as exc:
            raise MgclError(one_line(f"cannot load text-generation model '{self._model_arg}': {exc}", 300)) from None
        self._model, self._tokenizer = model.to(device).eval(), tokenizer
        return self._model, self._tokenizer

    def _prompt_text(self, tokenizer, messages: Messages) -> str:
        if getattr(tokenizer, "chat_template", None):
            return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        turns = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
        return "\n\n".join(turns) + "\n\nAssistant:"

    def complete(self, messages: Messages) -> str:
        """One raw generation: the decoded new tokens."""
        import torch

        model, tokenizer = self._load()
        text = self._prompt_text(tokenizer, messages)
        enc = tokenizer(text, return_tensors="pt", add_special_tokens=False)
        device = next(model.parameters()).device
        enc = {k: v.to(device) for k, v in enc.items()}
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=self.max_new_tokens, do_sample=self.do_sample, pad_token_id=pad)
        new = out[0, enc["input_ids"].shape[1] :]
        return tokenizer.decode(new, skip_special_tokens=True)

    def describe(self, class_names: list[str], per_class: int, siblings: list[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for chunk in _chunks(class_names, self.classes_per_request):
            out.update(
                ask_for_descriptions(
                    self.complete,
                    chunk,
                    per_class,
                    siblings or class_names,
                    self.max_reasks,
                    source=f"model '{self.model}'",
                )
            )
        return {c: out[c] for c in class_names}


# ------------------------------------------------------------------------------ files
def validate_description_map(data, where: str) -> dict[str, list[str]]:
    """``{class: [sentence, ...]}`` (or ``{"classes": {...}}``) checked: every value a
    non-empty list of non-empty, distinct strings. Returns stripped copies."""
    if isinstance(data, dict) and isinstance(data.get("classes"), dict):
        data = data["classes"]
    if not isinstance(data, dict) or not data:
        raise MgclError(
            f'{where}: expected an object {{"class": ["sentence", ...], ...}} '
            f'(or {{"classes": {{...}}}}), got {type(data).__name__ if data else "nothing"}'
        )
    out: dict[str, list[str]] = {}
    for label, items in data.items():
        if not isinstance(items, list) or not items:
            raise MgclError(f"{where}: class '{label}': expected a non-empty list of sentences")
        clean: list[str] = []
        seen: set[str] = set()
        for i, s in enumerate(items):
            if not isinstance(s, str) or not s.strip():
                raise MgclError(f"{where}: class '{label}', item {i + 1}: expected a non-empty string, got {s!r}"[:300])
            key = _norm_sentence(s)
            if key in seen:
                raise MgclError(f"{where}: class '{label}': duplicate description {s.strip()[:80]!r}")
            seen.add(key)
            clean.append(s.strip())
        out[str(label)] = clean
    return out


def _load_mapping(path: Path):
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MgclError(f"{path}: descriptions file not found") from None
    except IsADirectoryError:
        raise MgclError(f"{path}: is a folder, not a descriptions file") from None
    except UnicodeDecodeError:
        raise MgclError(f"{path}: not a UTF-8 text file") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise MgclError(
                f"{path}: reading YAML needs PyYAML (pip install pyyaml), or write the file as JSON"
            ) from None
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise MgclError(one_line(f"{path}: not a valid YAML file ({exc})", 300)) from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise MgclError(one_line(f"{path}: not a valid JSON file ({exc})", 300)) from None


def match_class(name: str, available: Mapping[str, object]):
    """The key of ``available`` for class ``name``: exact, then readable name ignoring case."""
    if name in available:
        return name
    want = _norm_key(name)
    for k in available:
        if _norm_key(k) == want:
            return k
    return None


def _require(found: Mapping[str, list[str]], class_names: Sequence[str], per_class: int, where: str, fix: str):
    missing = [c for c in class_names if c not in found]
    if missing:
        shown = ", ".join(repr(c) for c in missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
        raise MgclError(f"{where} has no descriptions for {shown}{fix}")
    short = [c for c in class_names if len(found[c]) < per_class]
    if short:
        c = short[0]
        raise MgclError(
            f"{where}: class '{c}' has {len(found[c])} descriptions, fewer than the {per_class} "
            "asked for (lower --per-class)"
        )


class FileGenerator:
    """Descriptions from a JSON or YAML file ``{class: [sentence, ...]}`` (or the shipped
    ``{"classes": {...}}`` format). Classes are matched by label, then by readable name."""

    prompt_version = "file"
    cacheable = False
    model = None

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.classes = validate_description_map(_load_mapping(self.path), str(self.path))

    @property
    def identity(self) -> str:
        return f"file:{self.path}"

    def lookup(self, name: str) -> list[str] | None:
        key = match_class(name, self.classes)
        return list(self.classes[key]) if key is not None else None

    def describe(
        self, class_names: list[str], per_class: int, siblings: list[str] | None = None
    ) -> dict[str, list[str]]:
        found = {c: d for c in class_names if (d := self.lookup(c)) is not None}
        _require(
            found,
            class_names,
            per_class,
            str(self.path),
            f" (it has {len(self.classes)} classes, e.g. {', '.join(repr(k) for k in list(self.classes)[:3])})",
        )
        return {c: found[c] for c in class_names}


# ------------------------------------------------------------------------------ shipped sets
def _data_dir():
    return resources.files("mgcl.text").joinpath("data")


def available_sets() -> list[str]:
    """Names of the shipped description sets (``mgcl/text/data/<name>.json``)."""
    d = _data_dir()
    if not d.is_dir():
        return []
    return sorted(p.name[:-5] for p in d.iterdir() if p.name.endswith(".json") and not p.name.startswith("."))


_SET_CACHE: dict[str, dict] = {}


def load_set(name: str) -> dict:
    """A shipped set: ``{"dataset", "version", "source", "classes": {label: [sentence, ...]}}``."""
    if name in _SET_CACHE:
        return _SET_CACHE[name]
    names = available_sets()
    if name not in names:
        raise MgclError(
            f"unknown dataset '{name}' for shipped descriptions; available: {', '.join(names) or 'none installed'}"
        )
    where = f"shipped set '{name}'"
    try:
        data = json.loads(_data_dir().joinpath(f"{name}.json").read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise MgclError(one_line(f"{where}: not valid JSON ({exc})", 300)) from None
    if not isinstance(data, dict) or not isinstance(data.get("classes"), dict):
        raise MgclError(f'{where}: expected {{"dataset", "version", "source", "classes": {{...}}}}')
    doc = dict(data)
    doc["classes"] = validate_description_map(data["classes"], where)
    _SET_CACHE[name] = doc
    return doc


class BuiltinGenerator:
    """The shipped description sets. With ``dataset`` only that set; with None a class is
    looked up across all sets (exact label first, then readable name, sets in name order)."""

    prompt_version = "builtin"
    cacheable = False
    model = None

    def __init__(self, dataset: str | None = None):
        self.dataset = dataset
        self.sets = [dataset] if dataset else available_sets()
        for s in self.sets:
            load_set(s)  # unknown name / malformed file: fail now

    @property
    def identity(self) -> str:
        versions = ",".join(f"{s}@{load_set(s).get('version', '?')}" for s in self.sets)
        return f"builtin:{versions}"

    def classes(self) -> list[str]:
        """Class labels of the chosen set, in file order."""
        if not self.dataset:
            raise MgclError("name a dataset to list its classes")
        return list(load_set(self.dataset)["classes"])

    def lookup(self, name: str) -> list[str] | None:
        for s in self.sets:  # exact labels first, in every set
            if name in load_set(s)["classes"]:
                return list(load_set(s)["classes"][name])
        for s in self.sets:
            key = match_class(name, load_set(s)["classes"])
            if key is not None:
                return list(load_set(s)["classes"][key])
        return None

    def describe(
        self, class_names: list[str], per_class: int, siblings: list[str] | None = None
    ) -> dict[str, list[str]]:
        found = {c: d for c in class_names if (d := self.lookup(c)) is not None}
        where = f"shipped set '{self.dataset}'" if self.dataset else "the shipped sets"
        _require(
            found,
            class_names,
            per_class,
            where,
            f" ({'sets: ' + ', '.join(self.sets) if self.sets else 'none installed'}); "
            "use --llm openai, transformers or file:PATH for other classes",
        )
        return {c: found[c] for c in class_names}


# ------------------------------------------------------------------------------ factory
GENERATORS = {
    "openai": OpenAIChatGenerator,
    "transformers": TransformersGenerator,
    "file": FileGenerator,
    "builtin": BuiltinGenerator,
}


def make_generator(spec: str, **options) -> DescriptionGenerator:
    """A generator from a ``--llm`` spec: ``openai``, ``transformers``, ``file:PATH`` (or
    ``file`` with ``path=``), ``builtin`` or ``builtin:DATASET``. Options that the chosen
    generator does not take, and None values, are ignored."""
    kind, _, arg = str(spec or "").partition(":")
    kind = kind.strip().lower()
    options = {k: v for k, v in options.items() if v is not None}
    if kind not in GENERATORS:
        raise MgclError(f"unknown --llm '{spec}'; choose openai, transformers, file:PATH or builtin[:DATASET]")
    if kind == "openai":
        if not options.get("base_url"):
            raise MgclError(
                "--llm openai needs --base-url URL (e.g. http://localhost:8080/v1 for a llama.cpp "
                "server, http://localhost:11434/v1 for Ollama) and --model NAME"
            )
        if not options.get("model"):
            raise MgclError("--llm openai needs --model NAME (the model the server serves)")
    if kind == "transformers" and not options.get("model"):
        raise MgclError("--llm transformers needs --model ID_OR_FOLDER (a Hugging Face text-generation model)")
    if kind == "file":
        path = arg or options.get("path")
        if not path:
            raise MgclError("--llm file needs a path: --llm file:descriptions.json (JSON or YAML)")
        return FileGenerator(path)
    if kind == "builtin":
        return BuiltinGenerator(arg or options.get("dataset") or None)
    cls = GENERATORS[kind]
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
    return cls(**{k: v for k, v in options.items() if k in accepted})
