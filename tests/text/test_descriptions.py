"""Description cache, get/load helpers, file and builtin generators, and `mgcl describe`."""

from __future__ import annotations

import argparse
import json
import sys

import pytest

from mgcl.cli.describe import register
from mgcl.errors import MgclError
from mgcl.store.descriptions import DescriptionCache, default_cache_dir
from mgcl.text import llm
from mgcl.text.descriptions import get_descriptions, load_descriptions
from mgcl.text.llm import BuiltinGenerator, FileGenerator, make_generator


class CountingGenerator:
    """A fake language model that counts what it is asked."""

    cacheable = True

    def __init__(self, model="m1", prompt_version="v1", per_request=8, n=10):
        self.model, self.prompt_version = model, prompt_version
        self.classes_per_request = per_request
        self.n = n
        self.calls: list[tuple[list[str], int, list[str]]] = []

    @property
    def identity(self):
        return f"counting:{self.model}:{self.prompt_version}"

    def describe(self, class_names, per_class, siblings):
        self.calls.append((list(class_names), per_class, list(siblings)))
        return {c: [f"{c} sound {i} ({self.model})" for i in range(self.n)] for c in class_names}

    @property
    def asked(self):
        return [c for names, _, _ in self.calls for c in names]


# ------------------------------------------------------------------------------ cache
def test_second_call_asks_nothing(tmp_path):
    cache, g = DescriptionCache(tmp_path), CountingGenerator()
    first = get_descriptions(["siren", "dog bark"], g, 4, cache=cache)
    assert list(first) == ["siren", "dog bark"] and all(len(v) == 4 for v in first.values())  # trimmed
    assert g.asked == ["siren", "dog bark"] and cache.misses == 2
    files = sorted(tmp_path.rglob("*.json"))
    assert len(files) == 2
    doc = json.loads(files[0].read_text())
    assert set(doc) == {"generator", "model", "class", "prompt_version", "descriptions"}
    assert len(doc["descriptions"]) == 10  # the whole answer is kept, trimming happens on read

    g2 = CountingGenerator()
    again = get_descriptions(["siren", "dog bark"], g2, 4, cache=DescriptionCache(tmp_path))
    assert g2.calls == [] and again == first


def test_only_missing_classes_are_asked_in_batches(tmp_path):
    cache = DescriptionCache(tmp_path)
    get_descriptions(["a", "b"], CountingGenerator(), 3, cache=cache)
    g = CountingGenerator(per_request=2)
    names = ["a", "b", "c", "d", "e", "f", "g"]
    out = get_descriptions(names, g, 3, cache=cache)
    assert list(out) == names
    assert [call[0] for call in g.calls] == [["c", "d"], ["e", "f"], ["g"]]
    assert all(call[2] == names for call in g.calls)  # siblings: the whole class list


@pytest.mark.parametrize("change", ["model", "prompt_version"])
def test_cache_is_keyed_by_model_and_prompt_version(tmp_path, change):
    cache = DescriptionCache(tmp_path)
    get_descriptions(["siren"], CountingGenerator(), 3, cache=cache)
    g = CountingGenerator(**{change: "other"})
    out = get_descriptions(["siren"], g, 3, cache=cache)
    assert g.asked == ["siren"] and "siren" in out
    same = CountingGenerator()
    get_descriptions(["siren"], same, 3, cache=cache)
    assert same.calls == []


def test_cache_with_too_few_for_per_class_is_a_miss(tmp_path):
    cache = DescriptionCache(tmp_path)
    get_descriptions(["siren"], CountingGenerator(n=3), 3, cache=cache)
    g = CountingGenerator(n=10)
    assert len(get_descriptions(["siren"], g, 6, cache=cache)["siren"]) == 6
    assert g.asked == ["siren"]


def test_corrupt_cache_file_is_a_miss_and_rewritten(tmp_path):
    cache, g = DescriptionCache(tmp_path), CountingGenerator()
    path = cache.path(g, "siren")
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    get_descriptions(["siren"], g, 3, cache=cache)
    assert g.asked == ["siren"] and json.loads(path.read_text())["class"] == "siren"


def test_no_cache_asks_every_time():
    g = CountingGenerator()
    get_descriptions(["siren"], g, 3)
    get_descriptions(["siren"], g, 3)
    assert g.asked == ["siren", "siren"]


def test_default_cache_dir_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("MGCL_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path / "descriptions"
    monkeypatch.delenv("MGCL_CACHE")
    assert default_cache_dir().parts[-3:] == (".cache", "mgcl", "descriptions")


def test_generator_answer_is_validated():
    class Bad(CountingGenerator):
        def describe(self, class_names, per_class, siblings):
            return {c: ["same", "Same.", " ", "other"] for c in class_names}

    with pytest.raises(MgclError, match="gave 2 distinct descriptions for 'siren', 3 needed"):
        get_descriptions(["siren"], Bad(), 3)
    assert get_descriptions(["siren"], Bad(), 2) == {"siren": ["same", "other"]}  # de-duplicated
    with pytest.raises(MgclError, match="per-class"):
        get_descriptions(["siren"], CountingGenerator(), 0)


def test_uncacheable_generator_writes_no_cache(tmp_path):
    f = tmp_path / "d.json"
    f.write_text(json.dumps({"siren": ["a wail.", "a rising tone."]}))
    cache = DescriptionCache(tmp_path / "cache")
    assert get_descriptions(["siren"], FileGenerator(f), 2, cache=cache)["siren"] == ["a wail.", "a rising tone."]
    assert not (tmp_path / "cache").exists()


# ------------------------------------------------------------------------------ file generator
def test_file_generator_json_formats_and_label_matching(tmp_path):
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({"dog_bark": [" a sharp bark. ", "a growl."], "siren": ["a wail.", "a whoop."]}))
    out = FileGenerator(plain).describe(["dog bark", "Siren"], 2, [])
    assert out == {"dog bark": ["a sharp bark.", "a growl."], "Siren": ["a wail.", "a whoop."]}
    shipped = tmp_path / "shipped.json"
    shipped.write_text(json.dumps({"dataset": "x", "version": 1, "classes": {"siren": ["a wail.", "a whoop."]}}))
    assert FileGenerator(shipped).describe(["siren"], 2, []) == {"siren": ["a wail.", "a whoop."]}


def test_file_generator_yaml(tmp_path):
    pytest.importorskip("yaml")
    f = tmp_path / "d.yaml"
    f.write_text("dog bark:\n  - a sharp bark.\n  - a low growl.\nsiren:\n  - a rising wail.\n  - a whoop.\n")
    assert FileGenerator(f).describe(["siren"], 2, []) == {"siren": ["a rising wail.", "a whoop."]}


def test_yaml_without_pyyaml_is_a_clear_error(tmp_path, monkeypatch):
    f = tmp_path / "d.yml"
    f.write_text("siren: [a]\n")
    monkeypatch.setitem(sys.modules, "yaml", None)  # import yaml -> ImportError
    with pytest.raises(MgclError, match="PyYAML"):
        FileGenerator(f)


@pytest.mark.parametrize(
    "content, message",
    [
        ("{oops", "not a valid JSON file"),
        ("[1, 2]", "expected an object"),
        ('{"siren": "a wail"}', "expected a non-empty list"),
        ('{"siren": []}', "expected a non-empty list"),
        ('{"siren": ["a wail", ""]}', "item 2: expected a non-empty string"),
        ('{"siren": ["a wail", 3]}', "item 2: expected a non-empty string"),
        ('{"siren": ["A wail.", "a wail"]}', "duplicate description"),
    ],
)
def test_file_generator_errors(tmp_path, content, message):
    f = tmp_path / "d.json"
    f.write_text(content)
    with pytest.raises(MgclError, match=message) as e:
        FileGenerator(f)
    assert str(f) in str(e.value) and "\n" not in str(e.value)


def test_file_generator_missing_classes_and_too_few(tmp_path):
    f = tmp_path / "d.json"
    f.write_text(json.dumps({"siren": ["a.", "b."]}))
    with pytest.raises(MgclError, match="no descriptions for 'dog bark'"):
        FileGenerator(f).describe(["siren", "dog bark"], 2, [])
    with pytest.raises(MgclError, match="class 'siren' has 2 descriptions, fewer than the 3"):
        FileGenerator(f).describe(["siren"], 3, [])
    with pytest.raises(MgclError, match="not found"):
        FileGenerator(tmp_path / "nope.json")


# ------------------------------------------------------------------------------ builtin + load
@pytest.fixture
def fake_sets(tmp_path, monkeypatch):
    """Two small shipped sets in a temporary package-data folder."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "alpha.json").write_text(
        json.dumps(
            {
                "dataset": "alpha",
                "version": 1,
                "source": "test",
                "classes": {
                    "dog_bark": ["alpha bark 1.", "alpha bark 2."],
                    "siren": ["alpha wail 1.", "alpha wail 2."],
                },
            }
        )
    )
    (data / "beta.json").write_text(
        json.dumps(
            {
                "dataset": "beta",
                "version": 2,
                "source": "test",
                "classes": {"dog bark": ["beta bark 1.", "beta bark 2."], "rain": ["beta rain 1.", "beta rain 2."]},
            }
        )
    )
    monkeypatch.setattr(llm, "_data_dir", lambda: data)
    monkeypatch.setattr(llm, "_SET_CACHE", {})
    return data


def test_builtin_lookup_exact_then_readable(fake_sets):
    assert llm.available_sets() == ["alpha", "beta"]
    g = BuiltinGenerator()
    assert g.lookup("dog bark") == ["beta bark 1.", "beta bark 2."]  # exact label wins over alpha's dog_bark
    assert g.lookup("Dog_Bark") == ["alpha bark 1.", "alpha bark 2."]  # readable match, sets in name order
    assert g.lookup("thunder") is None
    assert BuiltinGenerator("alpha").classes() == ["dog_bark", "siren"]
    assert "alpha@1" in g.identity and "beta@2" in g.identity
    with pytest.raises(MgclError, match="unknown dataset 'gamma'.*alpha, beta"):
        BuiltinGenerator("gamma")
    with pytest.raises(MgclError, match="no descriptions for 'thunder'"):
        g.describe(["siren", "thunder"], 2, [])


def test_load_descriptions_specs(fake_sets, tmp_path, caplog):
    notes = []
    assert load_descriptions(None, ["siren"]) is None
    assert load_descriptions("none", ["siren"]) is None
    got = load_descriptions("builtin", ["siren", "rain", "thunder"], warn=notes.append)
    assert got == {"siren": ["alpha wail 1.", "alpha wail 2."], "rain": ["beta rain 1.", "beta rain 2."]}
    assert len(notes) == 1 and "'thunder'" in notes[0] and "1 of 3" in notes[0]
    f = tmp_path / "mine.json"
    f.write_text(json.dumps({"car horn": ["a honk.", "two honks."]}))
    assert load_descriptions(f, ["car_horn"], warn=notes.append) == {"car_horn": ["a honk.", "two honks."]}
    assert load_descriptions(str(f), ["thunder"], warn=notes.append) is None
    assert "none of the 1 classes" in notes[-1]
    with pytest.raises(MgclError, match="not found"):
        load_descriptions(tmp_path / "nope.json", ["siren"])
    with caplog.at_level("WARNING", logger="mgcl"):
        load_descriptions("builtin", ["siren", "thunder"])
    assert "thunder" in caplog.text  # a note through logging, not a print


# ------------------------------------------------------------------------------ factory
@pytest.mark.parametrize(
    "spec, options, message",
    [
        ("gpt", {}, "unknown --llm 'gpt'"),
        ("openai", {"model": "m"}, "needs --base-url"),
        ("openai", {"base_url": "http://x/v1"}, "needs --model"),
        ("transformers", {}, "needs --model"),
        ("file", {}, "needs a path"),
    ],
)
def test_make_generator_errors(spec, options, message):
    with pytest.raises(MgclError, match=message):
        make_generator(spec, **options)


def test_make_generator_kinds(tmp_path, fake_sets):
    g = make_generator(
        "openai", base_url="http://localhost:8080/v1", model="m", device="cpu", timeout=3, classes_per_request=None
    )
    assert isinstance(g, llm.OpenAIChatGenerator) and g.timeout == 3 and g.classes_per_request == 8
    f = tmp_path / "d.json"
    f.write_text('{"a": ["x"]}')
    assert isinstance(make_generator(f"file:{f}"), FileGenerator)
    assert make_generator("builtin:beta", base_url="ignored").sets == ["beta"]
    assert isinstance(make_generator("transformers", model="some/model"), llm.TransformersGenerator)


# ------------------------------------------------------------------------------ CLI
def run(argv, capsys):
    """`mgcl describe` on a fresh parser, with mgcl.cli.main's error handling."""
    parser = argparse.ArgumentParser(prog="mgcl")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    try:
        rc = args.func(args)
    except MgclError as exc:
        print(f"mgcl {args.command}: error: {exc}", file=sys.stderr)
        rc = 2
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_cli_help_teaches(capsys):
    with pytest.raises(SystemExit) as e:
        run(["describe", "--help"], capsys)
    assert e.value.code == 0
    text = capsys.readouterr().out
    for needle in (
        "usage: mgcl describe",
        "--llm",
        "--base-url",
        "examples:",
        "builtin",
        "file:PATH",
        "pitch",
        "--out -",
    ):
        assert needle in text


def test_cli_file_to_out_and_stdout(tmp_path, capsys):
    f = tmp_path / "mine.json"
    f.write_text(json.dumps({"dog_bark": ["a.", "b.", "c."], "siren": ["d.", "e.", "f."]}))
    out = tmp_path / "o" / "desc.json"
    rc, stdout, err = run(
        ["describe", "--classes", "siren,dog bark", "--llm", f"file:{f}", "--per-class", "2", "--out", str(out)], capsys
    )
    assert rc == 0 and stdout == ""
    assert json.loads(out.read_text()) == {"siren": ["d.", "e."], "dog bark": ["a.", "b."]}
    assert "described 2 classes" in err
    rc, stdout, _ = run(
        ["describe", "--classes", "siren", "--llm", f"file:{f}", "--per-class", "3", "--out", "-"], capsys
    )
    assert rc == 0 and json.loads(stdout) == {"siren": ["d.", "e.", "f."]}


def test_cli_manifest_labels(tmp_path, capsys):
    f = tmp_path / "mine.json"
    f.write_text(json.dumps({"dog_bark": ["a.", "b."], "siren": ["d.", "e."]}))
    m = tmp_path / "manifest.csv"
    m.write_text("path,label\na.wav,siren\nb.wav,dog_bark\nc.wav,siren\n")
    rc, stdout, _ = run(
        ["describe", "--manifest", str(m), "--llm", f"file:{f}", "--per-class", "2", "--out", "-"], capsys
    )
    assert rc == 0 and list(json.loads(stdout)) == ["dog_bark", "siren"]


def test_cli_builtin_dataset_and_classes(fake_sets, capsys):
    rc, stdout, _ = run(
        ["describe", "--dataset", "alpha", "--llm", "builtin", "--per-class", "2", "--out", "-"], capsys
    )
    assert rc == 0 and json.loads(stdout) == {
        "dog_bark": ["alpha bark 1.", "alpha bark 2."],
        "siren": ["alpha wail 1.", "alpha wail 2."],
    }
    rc, stdout, _ = run(["describe", "--classes", "rain", "--llm", "builtin", "--per-class", "2", "--out", "-"], capsys)
    assert rc == 0 and json.loads(stdout) == {"rain": ["beta rain 1.", "beta rain 2."]}


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--classes", "siren", "--llm", "chatgpt"], "unknown --llm 'chatgpt'"),
        (["--classes", "siren", "--llm", "openai", "--model", "m"], "needs --base-url"),
        (["--dataset", "nosuchset", "--llm", "builtin"], "unknown dataset 'nosuchset'"),
        (["--manifest", "/nonexistent/manifest.csv", "--llm", "builtin"], "manifest not found"),
        (["--classes", " , ", "--llm", "builtin"], "--classes is empty"),
        (["--classes", "siren", "--llm", "builtin", "--per-class", "0"], "--per-class must be at least 1"),
        (["--classes", "thunderclap", "--llm", "builtin"], "no descriptions for 'thunderclap'"),
    ],
)
def test_cli_one_line_errors(fake_sets, capsys, argv, message):
    rc, stdout, err = run(["describe", *argv, "--out", "-"], capsys)
    assert rc == 2 and stdout == ""
    assert err.count("\n") == 1 and err.startswith("mgcl describe: error: ") and message in err


def test_cli_out_is_a_folder(tmp_path, capsys, fake_sets):
    rc, _, err = run(["describe", "--dataset", "alpha", "--llm", "builtin", "--out", str(tmp_path)], capsys)
    assert rc == 2 and "is a folder" in err


def test_cli_needs_a_class_source(capsys):
    with pytest.raises(SystemExit) as e:
        run(["describe", "--llm", "builtin", "--out", "-"], capsys)
    assert e.value.code == 2
    assert "one of the arguments --classes --manifest --dataset is required" in capsys.readouterr().err


def test_standalone_main_exit_codes(fake_sets, capsys):
    from mgcl.cli import main

    assert main(["describe", "--dataset", "beta", "--llm", "builtin", "--per-class", "2", "--out", "-"]) == 0
    assert list(json.loads(capsys.readouterr().out)) == ["dog bark", "rain"]
    assert main(["describe", "--dataset", "zzz", "--llm", "builtin", "--out", "-"]) == 2
