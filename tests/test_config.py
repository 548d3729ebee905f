import pytest

from perpixel.config import parse_overrides, resolve_recipe
from perpixel.errors import ConfigError
from perpixel.tasks import load_recipe as load_config
from perpixel.tasks.segmentation.defaults import DEFAULTS


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
    c = load_config(resolve_recipe(name))
    assert c["model"]["name"] == "unet"


# ---------------------------------------------------------------- sections, task, base


def test_model_override_merges_into_the_recipe():
    """`-o model.depth=3` changes one option; the recipe's name and width stay."""
    c = load_config("camvid_unet", ["model.depth=3"])
    assert c["model"] == {"name": "unet", "base_channels": 16, "depth": 3}


def test_model_name_change_starts_from_that_models_defaults():
    c = load_config("camvid_unet", ["model.name=linear"])
    assert c["model"] == {"name": "linear"}  # base_channels/depth belong to the U-Net
    with pytest.raises(ConfigError, match="unknown options.*not_an_option"):
        load_config("camvid_unet", ["model.not_an_option=1"])
    with pytest.raises(ConfigError, match="unknown options.*depth"):
        load_config("camvid_unet", ["model.name=linear", "model.depth=2"])


def test_augment_override_merges(tmp_path):
    c = load_config("camvid_unet", ["data.augment.hflip=false"])
    assert c["data"]["augment"] == {
        "scale": [0.75, 1.5],
        "crop": [256, 320],
        "hflip": False,
        "color_jitter": 0.2,
    }
    assert load_config("camvid_unet", ["data.augment=null"])["data"]["augment"] == {}


def test_edge_recipe_is_read_as_an_edge_recipe():
    c = load_config("bsds_unet_ds")
    assert c["task"] == "edges" and c["data"]["val_limit"] == 25


def test_edge_key_without_task_names_the_task(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text("data: {kind: bsds500, val_limit: 3}\n")
    with pytest.raises(ConfigError, match="edges recipes.*task: edges"):
        load_config(p)


def test_edge_model_in_a_segmentation_recipe_names_the_task(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text("task: segmentation\nmodel: {name: hed}\n")
    with pytest.raises(
        ConfigError, match=r"'hed' outputs edges.*\['deconvnet', .*'unet'.*\].*task: edges"
    ):
        load_config(p)
    p.write_text("task: edges\nmodel: {name: unet}\n")
    with pytest.raises(ConfigError, match="task: segmentation"):
        load_config(p)


def test_unknown_task(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text("task: instances\n")
    with pytest.raises(ConfigError, match="unknown task 'instances'"):
        load_config(p)


def test_base_recipe_states_only_what_differs(tmp_path):
    (tmp_path / "a.yaml").write_text(
        "task: segmentation\nout: runs/a\nmodel: {name: unet, base_channels: 8}\n"
        "optim: {lr: 0.1, weight_decay: 0.5}\n"
    )
    (tmp_path / "b.yaml").write_text("base: a\nout: runs/b\noptim: {lr: 0.01}\nmodel: {depth: 2}\n")
    c = load_config(tmp_path / "b.yaml")
    assert c["out"] == "runs/b" and c["optim"]["lr"] == 0.01 and c["optim"]["weight_decay"] == 0.5
    assert c["model"] == {"name": "unet", "base_channels": 8, "depth": 2}
    (tmp_path / "c.yaml").write_text("base: c\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(tmp_path / "c.yaml")
    (tmp_path / "d.yaml").write_text("base: nowhere\n")
    with pytest.raises(ConfigError, match="nowhere: config file not found"):
        load_config(tmp_path / "d.yaml")


def test_finetune_recipe_is_its_base_plus_changes():
    stage1, stage2 = load_config("camvid_unet"), load_config("camvid_unet_finetune")
    assert stage2["init_from"] == "runs/camvid_unet/checkpoints/best.ckpt"
    assert stage2["data"] == stage1["data"] and stage2["model"] == stage1["model"]
    assert stage2["loss"]["dice"] == 0.5 and stage2["optim"]["lr"] == 0.0003


@pytest.mark.parametrize(
    "path", sorted(resolve_recipe("synthetic_unet").parents[1].glob("*/*.yaml"))
)
def test_every_packaged_recipe_starts_with_its_task(path):
    first = next(
        line for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")
    )
    assert first == f"task: {path.parent.name}"
    c = load_config(path)
    assert c["task"] == path.parent.name
    assert c["trainer"]["precision"] == "auto"
