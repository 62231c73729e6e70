"""The description sets shipped in package data (mgcl/text/data/*.json): complete for
their dataset's class list, at least 8 distinct non-empty sentences per class, no duplicate
within a file, and printed by `mgcl describe --dataset NAME --llm builtin`."""

from __future__ import annotations

import json
import re

import pytest

from mgcl.text import llm
from mgcl.text.llm import BuiltinGenerator, load_set

# The datasets' own label identifiers (what their manifests carry).
EXPECTED = {
    "esc50": [
        "dog",
        "rooster",
        "pig",
        "cow",
        "frog",
        "cat",
        "hen",
        "insects",
        "sheep",
        "crow",
        "rain",
        "sea_waves",
        "crackling_fire",
        "crickets",
        "chirping_birds",
        "water_drops",
        "wind",
        "pouring_water",
        "toilet_flush",
        "thunderstorm",
        "crying_baby",
        "sneezing",
        "clapping",
        "breathing",
        "coughing",
        "footsteps",
        "laughing",
        "brushing_teeth",
        "snoring",
        "drinking_sipping",
        "door_wood_knock",
        "mouse_click",
        "keyboard_typing",
        "door_wood_creaks",
        "can_opening",
        "washing_machine",
        "vacuum_cleaner",
        "clock_alarm",
        "clock_tick",
        "glass_breaking",
        "helicopter",
        "chainsaw",
        "siren",
        "car_horn",
        "engine",
        "train",
        "church_bells",
        "airplane",
        "fireworks",
        "hand_saw",
    ],
    "urbansound8k": [
        "air_conditioner",
        "car_horn",
        "children_playing",
        "dog_bark",
        "drilling",
        "engine_idling",
        "gun_shot",
        "jackhammer",
        "siren",
        "street_music",
    ],
    "fsdkaggle2018": [
        "Acoustic_guitar",
        "Applause",
        "Bark",
        "Bass_drum",
        "Burping_or_eructation",
        "Bus",
        "Cello",
        "Chime",
        "Clarinet",
        "Computer_keyboard",
        "Cough",
        "Cowbell",
        "Double_bass",
        "Drawer_open_or_close",
        "Electric_piano",
        "Fart",
        "Finger_snapping",
        "Fireworks",
        "Flute",
        "Glockenspiel",
        "Gong",
        "Gunshot_or_gunfire",
        "Harmonica",
        "Hi-hat",
        "Keys_jangling",
        "Knock",
        "Laughter",
        "Meow",
        "Microwave_oven",
        "Oboe",
        "Saxophone",
        "Scissors",
        "Shatter",
        "Snare_drum",
        "Squeak",
        "Tambourine",
        "Tearing",
        "Telephone",
        "Trumpet",
        "Violin_or_fiddle",
        "Writing",
    ],
    "gtzan": ["blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock"],
    "vocalsound": ["laughter", "sigh", "cough", "throatclearing", "sneeze", "sniff"],
    "nsynth": [
        "bass",
        "brass",
        "flute",
        "guitar",
        "keyboard",
        "mallet",
        "organ",
        "reed",
        "string",
        "synth_lead",
        "vocal",
    ],
    "tut2017": [
        "beach",
        "bus",
        "cafe/restaurant",
        "car",
        "city_center",
        "forest_path",
        "grocery_store",
        "home",
        "library",
        "metro_station",
        "office",
        "park",
        "residential_area",
        "train",
        "tram",
    ],
    "env45": [
        "bicycle bell",
        "bicycle freewheel",
        "bite chew apple",
        "blender",
        "boiling kettle",
        "branch trimmer",
        "chainsaw",
        "chopping vegetables",
        "clanking dishes",
        "coffee bean grinder",
        "coin drop",
        "compressed air spray",
        "crumpling paper",
        "drill",
        "dropping stones",
        "electric can opener",
        "electric shaver",
        "footsteps in pebbles",
        "footsteps in sand",
        "glass smash",
        "hair dryer",
        "hammer metal",
        "hammer nail",
        "hands rubbing",
        "hatchet",
        "lawnmower",
        "leaf blower",
        "nails from box",
        "peeling vegetables",
        "pepper grinder",
        "pouring liquid",
        "ratchet",
        "rustling branch",
        "sawing wood",
        "scissors",
        "shovel",
        "spray can shake",
        "stapler",
        "suitcase rolling",
        "typing",
        "vacuum",
        "velcro",
        "walking leaves",
        "water splash",
        "zipper",
    ],
}
SIZES = {
    "esc50": 50,
    "urbansound8k": 10,
    "fsdkaggle2018": 41,
    "gtzan": 10,
    "vocalsound": 6,
    "nsynth": 11,
    "tut2017": 15,
    "env45": 45,
}
MIN_PER_CLASS = 8


def test_expected_lists_have_the_documented_sizes():
    assert {k: len(set(v)) for k, v in EXPECTED.items()} == SIZES


def shipped(name: str) -> dict:
    if not llm._data_dir().joinpath(f"{name}.json").is_file():
        pytest.skip(f"shipped set mgcl/text/data/{name}.json does not exist yet")
    return load_set(name)


def _norm(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip().rstrip(".").casefold()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shipped_set_is_complete_for_its_class_list(name):
    doc = shipped(name)
    assert doc.get("dataset") == name
    assert doc.get("version") not in (None, "") and doc.get("source")
    gen = BuiltinGenerator(name)
    missing = [c for c in EXPECTED[name] if gen.lookup(c) is None]
    assert missing == [], f"{name}: no descriptions for {missing}"
    extra = [k for k in doc["classes"] if llm.match_class(k, dict.fromkeys(EXPECTED[name])) is None]
    assert extra == [], f"{name}: classes not in the dataset: {extra}"
    assert len(doc["classes"]) == SIZES[name]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shipped_set_has_enough_distinct_sentences_and_no_duplicate(name):
    shipped(name)
    # read the raw file: load_set strips whitespace, the file itself must be clean
    raw = json.loads(llm._data_dir().joinpath(f"{name}.json").read_text(encoding="utf-8"))
    seen: dict[str, str] = {}
    for label, items in raw["classes"].items():
        assert isinstance(items, list) and len(items) >= MIN_PER_CLASS, f"{name}/{label}: {len(items)} descriptions"
        for s in items:
            assert isinstance(s, str) and s.strip() == s and len(s.split()) >= 3, f"{name}/{label}: {s!r}"
            key = _norm(s)
            assert key not in seen, f"{name}: {s!r} appears for '{seen.get(key)}' and '{label}'"
            seen[key] = label


def test_cli_prints_urbansound8k(capsys):
    doc = shipped("urbansound8k")
    from mgcl.cli import main

    assert main(["describe", "--dataset", "urbansound8k", "--llm", "builtin", "--out", "-"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert list(printed) == list(doc["classes"])
    assert all(v == doc["classes"][k][:8] for k, v in printed.items())  # default --per-class 8


def test_every_shipped_file_is_a_known_dataset():
    assert set(llm.available_sets()) <= set(EXPECTED), "a shipped set without an expected class list here"
