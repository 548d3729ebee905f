"""A shared tester that every per-pixel classification architecture must pass.

Subclass `ModelTester` in `tests/models/test_<family>.py`, set `name` (the `build_model` name),
`model_class` and `conf` (small options that keep the test fast).
"""

from __future__ import annotations

import pytest
import torch

from perpixel.errors import ConfigError
from perpixel.models import MODELS, build_model

SIZES = [(17, 29), (37, 53), (64, 64)]


def assert_every_parameter_learns(model: torch.nn.Module) -> None:
    """After a backward pass: every parameter has a finite, non-zero gradient."""
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{pname} gets no gradient"
        assert torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, f"{pname} gets a zero gradient"


class OptionTests:
    """Tests every registered model passes, whatever it predicts."""

    name: str
    model_class: type

    def test_unknown_option_raises(self):
        with pytest.raises(ValueError, match="not_an_option"):
            self.model_class(not_an_option=1)
        with pytest.raises(ConfigError, match="not_an_option"):
            build_model({"name": self.name, "not_an_option": 1})


class ModelTester(OptionTests):
    name: str
    model_class: type
    conf: dict = {}
    num_classes: int = 3

    def build(self, **overrides) -> torch.nn.Module:
        torch.manual_seed(0)
        return build_model(
            {"name": self.name, **self.conf, "num_classes": self.num_classes, **overrides}
        )

    @staticmethod
    def images(batch: int, h: int, w: int, channels: int = 3, seed: int = 0) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        return torch.rand(batch, channels, h, w, generator=g)

    # ------------------------------------------------------------ shapes

    @pytest.mark.parametrize("batch", [1, 3])
    @pytest.mark.parametrize("size", SIZES)
    def test_output_shape(self, size, batch):
        model = self.build()
        out = model(self.images(batch, *size))
        assert out.shape == (batch, self.num_classes, *size)
        assert out.dtype == torch.float32
        assert torch.isfinite(out).all()

    def test_num_classes_and_in_channels(self):
        model = self.build(num_classes=5, in_channels=1)
        out = model(self.images(2, 17, 29, channels=1))
        assert out.shape == (2, 5, 17, 29)

    # ------------------------------------------------------------ training and inference

    def test_gradients_reach_every_parameter(self):
        model = self.build()
        model.train()
        out = model(self.images(2, 17, 29))
        g = torch.Generator().manual_seed(1)
        (out * torch.randn(out.shape, generator=g)).sum().backward()
        assert_every_parameter_learns(model)

    def test_eval_mode_is_deterministic(self):
        model = self.build().eval()
        x = self.images(2, 37, 53)
        with torch.no_grad():
            a, b = model(x), model(x)
        assert torch.equal(a, b)

    def test_eval_batch_items_are_independent(self):
        model = self.build().eval()
        x = self.images(3, 17, 29)
        with torch.no_grad():
            together = model(x)
            alone = torch.cat([model(x[i : i + 1]) for i in range(3)])
        torch.testing.assert_close(together, alone, rtol=1e-4, atol=1e-5)

    def test_state_dict_round_trip(self):
        model = self.build().eval()
        other = build_model({"name": self.name, **self.conf, "num_classes": self.num_classes})
        other.load_state_dict(model.state_dict())
        other.eval()
        x = self.images(1, 17, 29)
        with torch.no_grad():
            torch.testing.assert_close(model(x), other(x))

    # ------------------------------------------------------------ configuration

    def test_default_conf(self):
        dc = self.model_class.default_conf
        assert isinstance(dc, dict)
        assert {"in_channels", "num_classes"} <= set(dc)
        before = dict(dc)
        model = self.model_class()
        assert model.conf == dc
        overridden = self.model_class(num_classes=7)
        assert overridden.conf["num_classes"] == 7
        assert self.model_class.default_conf == before  # building never mutates the defaults

    def test_build_model_by_name(self):
        assert MODELS[self.name] is self.model_class
        conf = {"name": self.name, **self.conf, "num_classes": 4}
        copy = dict(conf)
        model = build_model(conf)
        assert isinstance(model, self.model_class)
        assert model.conf["num_classes"] == 4
        assert conf == copy  # the caller's dict is left alone

    def test_unknown_name_raises(self):
        with pytest.raises(ConfigError, match="no_such_model"):
            build_model({"name": "no_such_model"})
