"""Recipe values are checked when the recipe is loaded (type, choices, lower bounds), so a bad
one fails in one line naming the key, before any run folder exists."""

import re

import pytest

from perpixel.cli import main
from perpixel.config import (
    CHOICES,
    MINIMUM,
    VALUE_KINDS,
    BadValue,
    check_values,
    packaged_recipes,
)
from perpixel.errors import ConfigError
from perpixel.models import MODELS
from perpixel.tasks import TASKS, get_task, load_recipe


def test_bad_number_names_key_value_and_expectation():
    with pytest.raises(ConfigError) as e:
        load_recipe("synthetic_unet", ["optim.lr=abc"])
    assert str(e.value) == "recipe: optim.lr = 'abc' is not a number (e.g. 0.001)"


@pytest.mark.parametrize(
    "override, problem",
    [
        ("data.batch_size=true", "data.batch_size = True is not an integer (e.g. 8)"),
        ("data.batch_size=2.5", "data.batch_size = 2.5 is not an integer"),
        ("trainer.channels_last=3", "trainer.channels_last = 3 is not true or false"),
        ("optim.lr=true", "optim.lr = True is not a number"),
        ("out=[a]", "out = ['a'] is not a string"),
        ("data=3", "data = 3 is not a section"),
        ("data.root=3", "data.root = 3 is not null or a string"),
        ("trainer.devices=1.5", "trainer.devices = 1.5 is not an integer, a string or a list"),
        ("loss.class_weights=[1, a]", "loss.class_weights = [1, 'a'] is not null, a string or"),
    ],
)
def test_wrong_types_are_refused(override, problem):
    with pytest.raises(ConfigError, match="^" + re.escape("recipe: " + problem)):
        load_recipe("synthetic_unet", [override])


@pytest.mark.parametrize(
    "override, problem",
    [
        ("data.batch_size=-2", "data.batch_size = -2 is not >= 1"),
        ("data.batch_size=0", "data.batch_size = 0 is not >= 1"),
        ("optim.lr=0", "optim.lr = 0 is not > 0"),
        ("optim.lr=-1e-3", "optim.lr = -0.001 is not > 0"),
        ("trainer.max_epochs=0", "trainer.max_epochs = 0 is not >= 1"),
        ("data.num_workers=-1", "data.num_workers = -1 is not >= 0"),
    ],
)
def test_values_below_their_minimum_are_refused(override, problem):
    with pytest.raises(ConfigError, match="^" + re.escape("recipe: " + problem)):
        load_recipe("synthetic_unet", [override])


def test_choices_are_checked_at_load():
    with pytest.raises(ConfigError, match="optim.name = 'adagrad' is not one of 'adamw', 'adam'"):
        load_recipe("synthetic_unet", ["optim.name=adagrad"])
    with pytest.raises(ConfigError, match="optim.schedule = 'linear' is not one of 'cosine'"):
        load_recipe("synthetic_unet", ["optim.schedule=linear"])
    for schedule in ("null", "none", "constant", "poly"):
        load_recipe("synthetic_unet", ["optim.name=sgd", f"optim.schedule={schedule}"])


def test_model_options_are_typed_against_the_models_defaults():
    with pytest.raises(ConfigError, match=r"^recipe: model.depth = 'abc' is not an integer"):
        load_recipe("synthetic_unet", ["model.depth=abc"])
    with pytest.raises(ConfigError, match="model.batch_norm = 1 is not true or false"):
        load_recipe("synthetic_unet", ["model.batch_norm=1"])
    with pytest.raises(ConfigError, match="model.widths = 64 is not a list"):
        load_recipe("bsds_hed", ["model.widths=64"])
    with pytest.raises(ConfigError, match="model.name = 3 is not a string"):
        load_recipe("synthetic_unet", ["model.name=3"])
    with pytest.raises(ConfigError, match="model = None is not a section"):
        load_recipe("synthetic_unet", ["model=null"])
    assert load_recipe("bsds_unet_ds", ["model.depth=3"])["model"]["depth"] == 3


def test_number_strings_become_floats(tmp_path):
    """PyYAML (YAML 1.1) reads 1e-3 as a string; users type it, so it is read as 0.001."""
    c = load_recipe("synthetic_unet", ["optim.lr=1e-3", "trainer.gradient_clip_val=1e1"])
    assert c["optim"]["lr"] == 0.001 and isinstance(c["optim"]["lr"], float)
    assert c["trainer"]["gradient_clip_val"] == 10.0
    p = tmp_path / "r.yaml"
    p.write_text("task: segmentation\noptim: {lr: 1e-3}\nloss: {class_weights: [1, 5e-1]}\n")
    c = load_recipe(p)
    assert c["optim"]["lr"] == 0.001 and isinstance(c["optim"]["lr"], float)
    assert c["loss"]["class_weights"] == [1, 0.5]
    # only where a number is expected: a string key keeps its string, an int key refuses it
    assert load_recipe("synthetic_unet", ["out=1e3"])["out"] == "1e3"
    with pytest.raises(ConfigError, match="data.batch_size = '1e1' is not an integer"):
        load_recipe("synthetic_unet", ["data.batch_size=1e1"])
    with pytest.raises(ConfigError, match="optim.lr = 'nan' is not a number"):
        load_recipe("synthetic_unet", ["optim.lr=nan"])


def test_a_bad_value_in_a_file_names_the_file(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text("task: segmentation\ndata: {batch_size: eight}\n")
    with pytest.raises(ConfigError, match=f"^{p}: data.batch_size = 'eight' is not an integer"):
        load_recipe(p)
    with pytest.raises(ConfigError, match="^recipe: data.num_workers = 'x'"):
        load_recipe(p, ["data.batch_size=2", "data.num_workers=x"])  # set by the override


@pytest.mark.parametrize(
    "recipe, overrides",
    [
        ("synthetic_unet", ["trainer.devices=2", "trainer.precision=16"]),
        ("synthetic_unet", ["trainer.devices=[0, 1]", "trainer.precision=bf16-mixed"]),
        ("synthetic_unet", ["trainer.devices=auto", "trainer.limit_train_batches=5"]),
        ("synthetic_unet", ["loss.class_weights=[1, 2.5]", "loss.ce=1", "data.root=/x"]),
        ("camvid_unet", ["loss.class_weights=inverse_frequency", "init_from=a.ckpt"]),
        ("bsds_hed", ["loss.consensus=2", "loss.side_weights=[1, 0.5, 0.5, 0.5, 0.5]"]),
        ("bsds_hed", ["loss.beta=0.1", "init_vgg16=vgg.pth", "data.train_split=null"]),
        ("synthetic_edges", ["data.val_limit=5", "optim.warmup_epochs=0.5"]),
        ("synthetic_unet", ["model.name=vgg_unet", "model.encoder_weights=null"]),
    ],
)
def test_keys_that_take_several_types(recipe, overrides):
    load_recipe(recipe, overrides)


def test_all_packaged_recipes_load():
    recipes = packaged_recipes()
    assert {"synthetic_unet", "camvid_unet", "bsds_hed", "synthetic_edges"} <= set(recipes)
    for name, path in recipes.items():
        conf = load_recipe(path)
        assert conf["task"] == path.parent.name, name
    for name in TASKS:
        load_recipe(None, {"task": name})  # the defaults themselves pass


def test_value_tables_name_real_keys():
    """A typo in VALUE_KINDS, CHOICES or MINIMUM would silently check nothing."""

    def keys(node, where=()):
        for k, v in node.items():
            yield ".".join((*where, k))
            if isinstance(v, dict):
                yield from keys(v, (*where, k))

    known = {k for t in TASKS for k in keys(get_task(t).defaults)}
    known |= {k for m in MODELS.values() for k in keys(m.default_conf, ("model",))}
    assert set(VALUE_KINDS) | set(CHOICES) | set(MINIMUM) <= known


def test_check_values_infers_types_from_the_defaults():
    """A new key with a concrete default is checked with no table entry; None takes anything."""
    defaults = {"n": 1, "x": 0.5, "s": "a", "b": False, "l": [], "free": None, "sec": {"k": 1}}
    conf = {"n": 2, "x": "2e-1", "s": "b", "b": True, "l": [1], "free": object(), "sec": {"k": 3}}
    check_values(conf, defaults)
    assert conf["x"] == 0.2
    for key, bad in [("n", "1"), ("x", "a"), ("s", 1), ("b", 0), ("l", "a"), ("sec", 1)]:
        with pytest.raises(BadValue) as e:
            check_values({**conf, key: bad}, defaults)
        assert e.value.path == (key,)
    with pytest.raises(BadValue, match="sec.k = 'a' is not an integer"):
        check_values({"sec": {"k": "a"}}, defaults)
    check_values({"augment": {"anything": "goes"}}, {"augment": {}})  # open section


def test_cli_bad_value_fails_in_one_line_and_writes_nothing(tmp_path, capsys):
    run = tmp_path / "run"
    code = main(["train", "synthetic_unet", "-o", "optim.lr=abc", "--out", str(run)])
    assert code == 2
    assert not run.exists()
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        "perpixel train: error: recipe: optim.lr = 'abc' is not a number (e.g. 0.001)"
    ]
