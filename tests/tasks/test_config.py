import pytest

from perpixel.errors import ConfigError
from perpixel.tasks.config import DEFAULTS, load_config, parse_overrides


def test_defaults_without_file():
    assert load_config() == DEFAULTS


def test_yaml_and_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("data:\n  batch_size: 3\nmodel: {name: linear}\n")
    c = load_config(p, ["trainer.max_epochs=7", "optim.lr=0.5"])
    assert c["data"]["batch_size"] == 3
    assert c["data"]["num_workers"] == DEFAULTS["data"]["num_workers"]  # deep merge keeps siblings
    assert c["model"] == {"name": "linear"}  # model options replace, not merge
    assert c["trainer"]["max_epochs"] == 7 and c["optim"]["lr"] == 0.5


def test_unknown_key_named(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("trainer:\n  max_epoch: 3\n")
    with pytest.raises(ConfigError, match="trainer.'max_epoch'"):
        load_config(p)


@pytest.mark.parametrize("text", ["- a\n- b\n", "data: [unclosed\n"])
def test_bad_yaml_names_file(tmp_path, text):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_config(p)


def test_missing_file():
    with pytest.raises(ConfigError, match="not found"):
        load_config("nope.yaml")


def test_parse_overrides_types():
    assert parse_overrides(["a.b=3", "a.c=[1, 2]", "d=null"]) == {
        "a": {"b": 3, "c": [1, 2]},
        "d": None,
    }
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_overrides(["novalue"])


@pytest.mark.parametrize("name", ["synthetic_unet", "camvid_unet"])
def test_packaged_recipes_load(name):
    from perpixel.cli import resolve_recipe

    c = load_config(resolve_recipe(name))
    assert c["model"]["name"] == "unet"
