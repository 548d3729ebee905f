"""Tests for perpixel.models.base: option handling written once for every model."""

import pytest
import torch
import torch.nn as nn

from perpixel.models.base import Model


class Toy(Model):
    default_conf = {"in_channels": 3, "sizes": [1, 2]}
    output = "logits"
    renamed_keys = {"old.": "new."}

    def __init__(self, **conf):
        super().__init__(**conf)
        self.new = nn.Conv2d(self.conf["in_channels"], 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.new(x)


def test_options_override_the_defaults():
    assert Toy().conf == {"in_channels": 3, "sizes": [1, 2]}
    assert Toy(in_channels=1).conf == {"in_channels": 1, "sizes": [1, 2]}


def test_unknown_options_are_named():
    with pytest.raises(ValueError, match=r"^Toy: unknown options \['a', 'b'\]$"):
        Toy(b=1, a=2, in_channels=1)


def test_defaults_are_never_shared():
    model = Toy()
    model.conf["sizes"].append(3)
    model.conf["in_channels"] = 7
    assert Toy.default_conf == {"in_channels": 3, "sizes": [1, 2]}
    assert Toy().conf["sizes"] == [1, 2]


def test_output_kind_is_checked_when_the_class_is_made():
    with pytest.raises(TypeError, match="output"):

        class NoKind(Model):  # noqa: F841 - defining it is the test
            default_conf = {}


def test_renamed_keys_load():
    model = Toy()
    state = {k.replace("new.", "old.", 1): v + 1 for k, v in model.state_dict().items()}
    assert set(state) == {"old.weight", "old.bias"}
    other = Toy()
    other.load_state_dict(state)
    torch.testing.assert_close(other.new.weight, model.new.weight + 1)
    # a key that is neither old nor new is still unexpected
    with pytest.raises(RuntimeError, match="stray"):
        other.load_state_dict({**state, "stray.weight": torch.zeros(1)})
