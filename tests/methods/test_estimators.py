"""Methods are scikit-learn estimators: keyword-only ``__init__`` that stores its arguments
unchanged, validation at ``fit``; ``get_params`` / ``set_params`` / ``clone`` / ``repr`` work
for every registered method, and a clone (or a refit) fits exactly like the original."""

from __future__ import annotations

import functools
import inspect
import json

import pytest
import torch
from sklearn.base import clone

from mgcl.errors import MgclError, NotFittedError
from mgcl.methods import available_methods, make_method, method_class
from mgcl.methods.mgcl.finetuned import MGCLF
from mgcl.methods.mgcl.training_free import MGCL
from mgcl.methods.registry import coerce_params
from mgcl.types import SupportViews, TextFeatures, l2_normalize

from ._synth import few_shot, make_features, make_text

NAMES = available_methods()
#: Shorter selection grids for the fine-tuned methods (the cross-validation still runs).
FAST = {
    "mgcl_f": {"epoch_grid": (0, 3), "default_epochs": 3, "cv_rounds": 1},
    "tip_adapter_f": {"epoch_grid": (0, 5)},
    "treff": {"epoch_grid": (0, 5)},
}
#: A non-default value of every kind a parameter has (tuples, dicts, None, strings, numbers).
NON_DEFAULT = {
    "zero_shot": {"scale": 50.0},
    "zero_shot_desc": {"scale": 50.0},
    "prototype": {"center": False, "scale": 5.0},
    "linear_probe": {"c_grid": (0.1, 1.0), "default_C": 0.5},
    "tip_adapter": {"betas": (1.0, 4.0), "default_alpha": 2.0},
    "tip_adapter_f": {"alphas": (1.0,), "epoch_grid": (0, 5), "seed": 3},
    "treff": {"gammas": (1.0, 10.0), "reg": 0.1, "epoch_grid": (0, 5)},
    "plot": {"use_descriptions": False, "n_iters": 50},
    "mgcl": {
        "branches": ("cc", "fc", "zs"),
        "default_alpha": {"fc": 0.5},
        "segment": None,
        "augment": ("noise",),
        "view_weight": None,
    },
    "mgcl_f": {
        "losses": ("ce", "coarse"),
        "branch_weights": {"lin": 1.0, "cc": 0.5},
        "cv_rule": "best",
        "segment": (1.0, 0.5),
        "view_weight": 0.5,
        "head_c_grid": (1.0,),
    },
}


def method(name: str, **params):
    return make_method(name, **{**FAST.get(name, {}), **params})


def saved_and_loaded_params(m) -> dict:
    """``get_params`` through a saved model's config.json and back (``coerce_params``)."""
    return coerce_params(type(m), json.loads(json.dumps(m.get_params())), m.name)


@functools.cache
def problem(shots: int, seed: int = 0, captions: bool = True):
    """(support, labels, query, text with support captions, views: 2 per support clip)."""
    support, ys, query, _, m = few_shot(shots, n_query_per_class=3, seed=seed, noise=0.5, common=0.5)
    text = make_text(m, n_desc=2, seed=seed)
    if captions:
        g = torch.Generator().manual_seed(seed)
        caps = l2_normalize(support.clip + 0.3 * torch.randn(len(ys), support.dim, generator=g))
        text = TextFeatures(prompts=text.prompts, descriptions=text.descriptions, captions=caps)
    source = torch.arange(len(ys)).repeat_interleave(2)
    views = SupportViews(make_features(ys[source], m, noise=0.6, seed=seed + 7), source)
    return support, ys, query, text, views


def fit(m, shots: int = 2, seed: int = 0, captions: bool = True, text: bool = True):
    support, ys, _, t, views = problem(shots, seed, captions)
    torch.manual_seed(0)
    return m.fit(support, ys, text=t if (text or m.needs_text) else None, views=views)


def query(shots: int = 2, seed: int = 0):
    return problem(shots, seed)[2]


# ----------------------------------------------------------------------------- __init__
@pytest.mark.parametrize("name", NAMES)
def test_init_is_keyword_only_and_stores_its_arguments_unchanged(name):
    cls = method_class(name)
    params = [p for k, p in inspect.signature(cls.__init__).parameters.items() if k != "self"]
    assert params and all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params)
    with pytest.raises(TypeError):
        cls(next(iter(make_method(name).get_params().values())))
    # as given, even where fit wants a tuple: a list (JSON's) is kept, the same object
    given = {k: list(v) if isinstance(v, tuple) else v for k, v in NON_DEFAULT[name].items()}
    m = cls(**given)
    for k, v in given.items():
        assert getattr(m, k) is v, k
    assert m.get_params() == {**make_method(name).get_params(), **given}


# ----------------------------------------------------------------------------- params
@pytest.mark.parametrize("non_default", [False, True], ids=["defaults", "non-default"])
@pytest.mark.parametrize("name", NAMES)
def test_get_params_round_trips(name, non_default):
    m = make_method(name, **(NON_DEFAULT[name] if non_default else {}))
    p = m.get_params()
    assert set(p) == set(inspect.signature(type(m).__init__).parameters) - {"self"}
    assert type(m)(**p).get_params() == p
    assert type(m)(**saved_and_loaded_params(m)).get_params() == p  # as a saved model's config.json does


@pytest.mark.parametrize("name", NAMES)
def test_set_params_changes_a_parameter(name):
    m = make_method(name)
    key, value = next((k, v) for k, v in m.get_params().items() if isinstance(v, float))
    assert m.set_params(**{key: 2 * value + 1}) is m
    assert m.get_params()[key] == 2 * value + 1 and getattr(m, key) == 2 * value + 1
    assert m.get_params() == make_method(name, **{key: 2 * value + 1}).get_params()
    with pytest.raises(ValueError):
        m.set_params(no_such_parameter=1)


def test_set_params_reaches_the_next_fit():
    m = fit(make_method("mgcl", branches=("cc", "fc")), text=False)
    assert m.branches_ == ["cc", "fc"]
    fit(m.set_params(branches=["cc"], ablate=[]), text=False)  # a list, as JSON gives it
    assert m.branches_ == ["cc"]
    a = fit(make_method("prototype"), text=False).logits(query())
    b = fit(make_method("prototype").set_params(scale=20.0), text=False).logits(query())
    assert torch.allclose(b, 2 * a)


@pytest.mark.parametrize("name", NAMES)
def test_repr(name):
    m = make_method(name)
    assert repr(m) == f"{type(m).__name__}()"  # only what differs from the defaults is shown
    key, value = next(iter(NON_DEFAULT[name].items()))
    text = repr(make_method(name, **{key: value}))
    assert text.startswith(f"{type(m).__name__}(") and f"{key}=" in text
    assert repr(fit(method(name))).startswith(f"{type(m).__name__}(")  # fitted: the same


# ----------------------------------------------------------------------------- clone
@pytest.mark.parametrize("name", NAMES)
def test_clone_has_the_same_params_and_no_learned_state(name):
    for m in (make_method(name), make_method(name, **NON_DEFAULT[name])):
        c = clone(m)
        assert type(c) is type(m) and c is not m
        assert c.get_params() == m.get_params()
    fitted = fit(method(name))
    c = clone(fitted)
    assert c.get_params() == fitted.get_params()
    assert not [k for k in vars(c) if k.endswith("_")]
    with pytest.raises(NotFittedError):
        c.logits(query())


@pytest.mark.parametrize("name", NAMES)
def test_the_clone_fits_and_predicts_like_the_original(name):
    m = fit(method(name))
    z = m.logits(query())
    c = fit(clone(m))  # same data, same torch seed
    assert torch.equal(c.logits(query()), z)
    assert torch.equal(c.predict(query()), m.predict(query()))
    # and as a saved model comes back: config.json (params) + learned state
    tensors, values = m.learned_state()
    loaded = type(m)(**saved_and_loaded_params(m)).load_learned_state(tensors, json.loads(json.dumps(values)))
    assert torch.equal(loaded.logits(query()), z)


#: The methods that choose hyper-parameters by cross-validation on the support.
SELECTING = ("linear_probe", "tip_adapter", "tip_adapter_f", "treff", "mgcl", "mgcl_f")


@pytest.mark.parametrize("name", NAMES)
def test_held_out_params_pin_the_choices_and_refit_like_the_original(name, forbid_cross_validation):
    """``clone(m).set_params(**m.held_out_params())`` refitted on the same support chooses
    nothing (no cross-validation call) and is the same model; {} for a method that chooses nothing."""
    m = fit(method(name), shots=3)
    pinned = m.held_out_params()
    assert (pinned != {}) == (name in SELECTING)
    json.dumps(pinned)  # JSON-able, as a model's params are saved
    forbid_cross_validation()
    c = fit(clone(m).set_params(**pinned), shots=3)
    assert torch.equal(c.logits(query(3)), m.logits(query(3)))
    learned = [{k: v for k, v in x.learned_state()[1].items() if k != "cv_accuracy_"} for x in (c, m)]
    assert json.dumps(learned[0], sort_keys=True) == json.dumps(learned[1], sort_keys=True)
    assert c.held_out_params() == pinned
    with pytest.raises(NotFittedError):
        make_method(name).held_out_params()
    if name in SELECTING:  # the same method unpinned does cross-validate (the check above can fail)
        with pytest.raises(AssertionError, match="cross-validation"):
            fit(clone(m), shots=3)


@pytest.mark.parametrize("name", NAMES)
def test_fitting_twice_forgets_the_first_fit(name):
    """A second fit (other data, other shots, no captions) is a fresh fit: same predictions,
    same learned attributes (nothing left over from the first, e.g. caption keys)."""
    m = fit(method(name), shots=3, seed=1)
    again = fit(m, shots=2, seed=2, captions=False, text=False)
    fresh = fit(method(name), shots=2, seed=2, captions=False, text=False)
    q = query(2, 2)
    assert torch.equal(again.logits(q), fresh.logits(q))
    assert torch.equal(again.predict(q), fresh.predict(q))
    assert sorted(k for k in vars(again) if k.endswith("_")) == sorted(k for k in vars(fresh) if k.endswith("_"))
    assert json.dumps(again.learned_state()[1], sort_keys=True) == json.dumps(fresh.learned_state()[1], sort_keys=True)
    # and the same data twice: the same model
    assert torch.equal(fit(m, shots=2, seed=2, captions=False, text=False).logits(q), fresh.logits(q))


# ----------------------------------------------------------------------------- mgcl_f
def test_clone_of_mgcl_f_is_an_mgcl_f_with_its_own_parameters():
    m = make_method("mgcl_f")
    c = clone(m)
    assert isinstance(c, MGCLF) and type(c) is MGCLF
    assert c.get_params() == m.get_params()
    assert set(m.get_params()) == set(inspect.signature(MGCLF.__init__).parameters) - {"self"}
    assert set(MGCL().get_params()) < set(m.get_params())
    # its own defaults where they differ from mgcl's
    assert (m.saliency, m.view_weight) == (4.0, None) and (MGCL().saliency, MGCL().view_weight) == (16.0, 1.0)
    c = clone(make_method("mgcl_f", cv_rule="best", epoch_grid=[0, 3]))
    assert c.cv_rule == "best" and c.epoch_grid == [0, 3]


# ----------------------------------------------------------------------------- validation
BAD = [
    ("mgcl_f", {"cv_rule": "nope"}, "cv_rule must be 'one_se' or 'best', got 'nope'"),
    ("mgcl_f", {"head_c_grid": (0.0, 1.0)}, "head_c_grid must be positive numbers"),
    ("mgcl_f", {"head_c_grid": ()}, "head_c_grid must be positive numbers"),
    ("mgcl_f", {"losses": 5}, "losses must be a list of values"),
    ("mgcl_f", {"view_weight": -1.0}, "view_weight must be a number >= 0"),
    ("mgcl_f", {"final_weights": {"lin": -1.0}}, "final_weights must be"),
    ("mgcl_f", {"final_weights": [1.0]}, "final_weights must be"),
    ("mgcl", {"view_weight": True}, "view_weight must be a number >= 0"),
    ("mgcl", {"view_weight": "half"}, "view_weight must be a number >= 0"),
    ("mgcl", {"branches": ("cc", "nope")}, r"unknown branch\(es\) \['nope'\]"),
    ("mgcl", {"branches": "cc"}, "branches must be a list of values"),
    ("mgcl", {"betas": 8.0}, "betas must be a list of values"),
    ("mgcl", {"segment": 2.2}, "segment must be a list of values"),
    ("mgcl", {"segment": (2.2, -1.0)}, "segment: segment window and hop must be positive"),
    ("mgcl", {"augment": ("echo",)}, "unknown audio view 'echo'"),
    ("mgcl", {"augment": "noise"}, "augment must be a list of values"),
]


@pytest.mark.parametrize("name, params, message", BAD, ids=[f"{n}-{next(iter(p))}" for n, p, _ in BAD])
def test_a_bad_parameter_value_fails_at_fit_in_one_line(name, params, message):
    m = make_method(name, **params)  # __init__ checks nothing
    assert m.get_params() == {**make_method(name).get_params(), **params}
    clone(m)  # nor does clone
    with pytest.raises(MgclError, match=message) as err:
        fit(m, text=False)
    assert "\n" not in str(err.value)


def test_view_names_checks_the_views_before_fit():
    assert make_method("mgcl", augment=["noise", "lowpass"]).view_names() == ("noise", "lowpass")
    for bad, message in ((("echo",), "unknown audio view 'echo'"), ("noise", "augment must be a list")):
        with pytest.raises(MgclError, match=message) as err:
            make_method("mgcl_f", augment=bad).view_names()
        assert "\n" not in str(err.value)
