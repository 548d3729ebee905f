"""The one tester that every registered model passes, segmentation and edge models alike.

Subclass `ModelTester` in `tests/models/<output>/test_<model>.py`; set `name` (the
`build_model` name), `model_class` and `conf` (small options that keep the test fast); edge
models also set `num_sides`. What a model returns depends on its `output` kind:
"logits": (B, num_classes, H, W); "edges": {"fused": (B, 1, H, W), "sides": num_sides x
(B, 1, H, W)}. `tests/models/test_registry.py` checks that every model in `MODELS` has one.
"""

from __future__ import annotations

import copy

import pytest
import torch

from perpixel.engine.export import export_onnx
from perpixel.errors import ConfigError
from perpixel.models import MODELS, OUTPUTS, build_model
from perpixel.models.base import Model
from perpixel.models.edges import FusedLogits

SIZES = [(17, 29), (37, 53), (64, 64)]


def assert_every_parameter_learns(model: torch.nn.Module) -> None:
    """After a backward pass: every parameter has a finite, non-zero gradient."""
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{pname} gets no gradient"
        assert torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, f"{pname} gets a zero gradient"


class ModelTester:
    name: str
    model_class: type[Model]
    conf: dict = {}
    num_classes: int = 3  # for models with a `num_classes` option
    num_sides: int  # for edge models
    other_in_channels: int | None = 1  # an in_channels other than 3 the model takes, or None

    # ------------------------------------------------------------ helpers

    @property
    def output(self) -> str:
        return self.model_class.output

    def options(self, **overrides) -> dict:
        """`{"name", **conf}` with `num_classes` where the model has it, then `overrides`."""
        conf = {"name": self.name, **self.conf}
        if "num_classes" in self.model_class.default_conf:
            conf["num_classes"] = self.num_classes
        return {**conf, **overrides}

    def build(self, **overrides) -> Model:
        torch.manual_seed(0)
        return build_model(self.options(**overrides))

    @staticmethod
    def images(batch: int, h: int, w: int, channels: int = 3, seed: int = 0) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        return torch.rand(batch, channels, h, w, generator=g)

    def maps(self, out) -> list[torch.Tensor]:
        """Every map a model returns: [logits] or [fused, *sides]."""
        if self.output == "edges":
            assert isinstance(out, dict) and set(out) == {"fused", "sides"}
            return [out["fused"], *out["sides"]]
        assert isinstance(out, torch.Tensor)
        return [out]

    def assert_maps_close(self, a, b, **tol) -> None:
        for x, y in zip(self.maps(a), self.maps(b), strict=True):
            torch.testing.assert_close(x, y, **tol)

    def exportable(self, model: Model) -> torch.nn.Module:
        """The module `export_onnx` takes: one (B, C, H, W) output."""
        return FusedLogits(model) if self.output == "edges" else model

    # ------------------------------------------------------------ shapes

    @pytest.mark.parametrize("batch", [1, 3])
    @pytest.mark.parametrize("size", SIZES)
    def test_output_shapes(self, size, batch):
        maps = self.maps(self.build()(self.images(batch, *size)))
        if self.output == "edges":
            assert len(maps) == 1 + self.num_sides
            channels = 1
        else:
            channels = self.num_classes
        for y in maps:
            assert y.shape == (batch, channels, *size)
            assert y.dtype == torch.float32
            assert torch.isfinite(y).all()

    def test_num_classes_and_in_channels(self):
        over = {}
        if "num_classes" in self.model_class.default_conf:
            over["num_classes"] = 5
        if self.other_in_channels is not None:
            over["in_channels"] = self.other_in_channels
        model = self.build(**over)
        out = model(self.images(2, 17, 29, channels=over.get("in_channels", 3)))
        for y in self.maps(out):
            assert y.shape == (2, over.get("num_classes", 1), 17, 29)

    def test_export_module_returns_the_main_map(self):
        model = self.build().eval()
        x = self.images(2, 17, 29)
        with torch.no_grad():
            torch.testing.assert_close(self.exportable(model)(x), self.maps(model(x))[0])

    # ------------------------------------------------------------ training and inference

    def test_gradients_reach_every_parameter(self):
        model = self.build().train()
        out = model(self.images(2, 17, 29))
        g = torch.Generator().manual_seed(1)
        loss = sum((y * torch.randn(y.shape, generator=g)).sum() for y in self.maps(out))
        loss.backward()
        assert_every_parameter_learns(model)

    def test_eval_mode_is_deterministic(self):
        model = self.build().eval()
        x = self.images(2, 37, 53)
        with torch.no_grad():
            a, b = model(x), model(x)
        for y, z in zip(self.maps(a), self.maps(b), strict=True):
            assert torch.equal(y, z)

    def test_eval_batch_items_are_independent(self):
        model = self.build().eval()
        x = self.images(3, 17, 29)
        with torch.no_grad():
            together = self.maps(model(x))
            alone = [self.maps(model(x[i : i + 1])) for i in range(3)]
        for k, y in enumerate(together):
            torch.testing.assert_close(y, torch.cat([a[k] for a in alone]), rtol=1e-4, atol=1e-5)

    def test_state_dict_round_trip(self):
        model = self.build().eval()
        other = build_model(self.options())
        other.load_state_dict(model.state_dict())
        other.eval()
        x = self.images(1, 17, 29)
        with torch.no_grad():
            self.assert_maps_close(model(x), other(x))

    def test_loads_state_dicts_saved_before_key_renames(self):
        model = self.build().eval()
        old = {}
        for key, value in model.state_dict().items():
            for before, after in self.model_class.renamed_keys.items():
                if key.startswith(after):
                    key = before + key[len(after) :]
                    break
            old[key] = value
        other = build_model(self.options())
        # inside another module too (a task holds its model as `model.`)
        FusedLogits(other).load_state_dict({f"model.{k}": v for k, v in old.items()})
        other.eval()
        x = self.images(1, 17, 29)
        with torch.no_grad():
            self.assert_maps_close(model(x), other(x), rtol=0, atol=0)

    def test_onnx_export_agrees_with_onnx_runtime(self, tmp_path):
        # export_onnx checks ONNX Runtime against PyTorch at a size other than the traced one
        r = export_onnx(self.exportable(self.build()), tmp_path / "m.onnx", sample_size=(32, 48))
        assert r["max_abs_diff"] < 1e-3
        assert r["checked_size"] == [2, 3, 69, 61]
        assert (tmp_path / "m.onnx").is_file()

    # ------------------------------------------------------------ configuration

    def test_output_kind(self):
        assert self.model_class.output in ("logits", "edges")
        assert OUTPUTS[self.name] == self.model_class.output

    def test_default_conf(self):
        dc = self.model_class.default_conf
        assert isinstance(dc, dict)
        assert "in_channels" in dc
        if self.output == "logits":
            assert "num_classes" in dc
        before = copy.deepcopy(dc)
        model = self.model_class()
        assert model.conf == dc
        if "num_classes" in dc:
            overridden = self.model_class(num_classes=7)
            assert overridden.conf["num_classes"] == 7
        for value in model.conf.values():  # nor does editing a model's (nested) options
            if isinstance(value, list):
                value.append(0)
        assert self.model_class.default_conf == before  # building never mutates the defaults

    def test_build_model_by_name(self):
        assert MODELS[self.name] is self.model_class
        conf = self.options(**({"num_classes": 4} if self.output == "logits" else {}))
        copied = copy.deepcopy(conf)
        model = build_model(conf)
        assert isinstance(model, self.model_class)
        if self.output == "logits":
            assert model.conf["num_classes"] == 4
        assert conf == copied  # the caller's dict is left alone

    def test_unknown_option_raises(self):
        with pytest.raises(ValueError, match="not_an_option"):
            self.model_class(not_an_option=1)
        with pytest.raises(ConfigError, match="not_an_option"):
            build_model({"name": self.name, "not_an_option": 1})

    def test_unknown_name_raises(self):
        with pytest.raises(ConfigError, match="no_such_model"):
            build_model({"name": "no_such_model"})
