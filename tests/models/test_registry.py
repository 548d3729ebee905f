"""The model registry: every model has a tester, output kinds, configuration checks."""

import importlib
import pkgutil

import pytest

import tests.models
from perpixel.errors import ConfigError
from perpixel.models import (
    MODELS,
    OUTPUT_KINDS,
    OUTPUTS,
    Model,
    build_model,
    check_model_conf,
    models_for,
)

from .base import ModelTester


def collected_testers() -> list[type[ModelTester]]:
    """Every concrete `ModelTester` subclass in a test module of tests/models (which pytest
    collects), importing them all."""
    for info in pkgutil.walk_packages(tests.models.__path__, "tests.models."):
        importlib.import_module(info.name)
    found, todo = [], [ModelTester]
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        if "model_class" in vars(cls) and cls.__module__.rpartition(".")[2].startswith("test_"):
            found.append(cls)
    return found


def test_every_model_has_a_tester():
    found = collected_testers()
    assert {cls.name for cls in found} == set(MODELS)
    assert {cls.model_class for cls in found} == set(MODELS.values())
    for cls in found:
        assert MODELS[cls.name] is cls.model_class, cls.__name__


SEGMENTATION = [
    "deconvnet", "deeplab_v1", "deeplab_v2", "deeplab_v3", "deeplab_v3plus", "fcn16s", "fcn32s",
    "fcn8s", "filterbank_linear", "fpn", "linear", "patch_cnn", "pspnet", "segnet",
    "segnet_basic", "superpixel_linear", "unet", "vgg_unet",
]  # fmt: skip


def test_outputs_come_from_the_classes():
    assert OUTPUTS == {
        **dict.fromkeys(SEGMENTATION, "logits"),
        "hed": "edges",
        "unet_edges": "edges",
        "superpoint": "keypoints",
        "magicpoint": "keypoints",
        "panoptic_deeplab": "panoptic",
        "mask_rcnn": "panoptic",
    }
    assert all(OUTPUTS[n] == cls.output in OUTPUT_KINDS for n, cls in MODELS.items())
    assert all(issubclass(cls, Model) for cls in MODELS.values())
    assert models_for("logits") == SEGMENTATION
    assert models_for("edges") == ["hed", "unet_edges"]
    assert models_for("keypoints") == ["magicpoint", "superpoint"]
    assert models_for("panoptic") == ["mask_rcnn", "panoptic_deeplab"]
    assert models_for("points") == []


def test_check_model_conf():
    check_model_conf({"name": "unet", "depth": 2})
    check_model_conf({}, output="logits")  # the default model is the U-Net
    check_model_conf({"name": "hed", "widths": [2] * 5}, output="edges", task="edge")
    check_model_conf({"name": "superpoint", "batch_norm": True}, output="keypoints")
    with pytest.raises(ConfigError, match="unknown model 'nope'"):
        check_model_conf({"name": "nope"})
    with pytest.raises(ConfigError, match=r"outputs edges, which segmentation recipes"):
        check_model_conf({"name": "hed"}, output="logits", task="segmentation")
    with pytest.raises(ConfigError, match=r"\['deconvnet', .*'unet', 'vgg_unet'\]"):
        check_model_conf({"name": "unet_edges"}, output="logits")
    with pytest.raises(ConfigError, match=r"model 'linear': unknown options \['depth'\]"):
        check_model_conf({"name": "linear", "depth": 2})


def test_build_model_defaults_to_unet():
    assert type(build_model({"depth": 1, "base_channels": 2})) is MODELS["unet"]
