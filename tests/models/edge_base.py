"""A shared tester for edge models: (B, 3, H, W) in [0, 1] -> {"fused", "sides"} logits.

Subclass `EdgeModelTester` in `tests/models/test_<family>.py`; set `name` (the `build_model`
name), `model_class`, `conf` (small options that keep the test fast) and `num_sides`.
"""

from __future__ import annotations

import pytest
import torch

from perpixel.models import MODELS, build_model
from perpixel.models.hed import FusedLogits

from .base import SIZES, OptionTests, assert_every_parameter_learns


class EdgeModelTester(OptionTests):
    name: str
    model_class: type
    conf: dict = {}
    num_sides: int

    def build(self, **overrides) -> torch.nn.Module:
        torch.manual_seed(0)
        return build_model({"name": self.name, **self.conf, **overrides})

    @staticmethod
    def images(batch: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        return torch.rand(batch, 3, h, w, generator=g)

    @pytest.mark.parametrize("batch", [1, 3])
    @pytest.mark.parametrize("size", SIZES)
    def test_output_shapes(self, size, batch):
        out = self.build()(self.images(batch, *size))
        assert set(out) == {"fused", "sides"}
        assert len(out["sides"]) == self.num_sides
        for y in [out["fused"], *out["sides"]]:
            assert y.shape == (batch, 1, *size)
            assert y.dtype == torch.float32
            assert torch.isfinite(y).all()

    def test_fused_logits_wrapper(self):
        model = self.build().eval()
        x = self.images(2, 17, 29)
        with torch.no_grad():
            torch.testing.assert_close(FusedLogits(model)(x), model(x)["fused"])

    def test_gradients_reach_every_parameter(self):
        model = self.build().train()
        out = model(self.images(2, 17, 29))
        g = torch.Generator().manual_seed(1)
        loss = sum(
            (y * torch.randn(y.shape, generator=g)).sum() for y in [out["fused"], *out["sides"]]
        )
        loss.backward()
        assert_every_parameter_learns(model)

    def test_eval_is_deterministic_and_batch_independent(self):
        model = self.build().eval()
        x = self.images(3, 17, 29)
        with torch.no_grad():
            a, b = model(x)["fused"], model(x)["fused"]
            alone = torch.cat([model(x[i : i + 1])["fused"] for i in range(3)])
        assert torch.equal(a, b)
        torch.testing.assert_close(a, alone, rtol=1e-4, atol=1e-5)

    def test_state_dict_round_trip(self):
        model = self.build().eval()
        other = build_model({"name": self.name, **self.conf}).eval()
        other.load_state_dict(model.state_dict())
        x = self.images(1, 17, 29)
        with torch.no_grad():
            torch.testing.assert_close(model(x)["fused"], other(x)["fused"])

    def test_default_conf(self):
        dc = self.model_class.default_conf
        before = dict(dc)
        assert "in_channels" in dc
        assert self.model_class().conf == dc
        assert self.model_class.default_conf == before

    def test_build_model_by_name(self):
        assert MODELS[self.name] is self.model_class
        conf = {"name": self.name, **self.conf}
        copy = dict(conf)
        assert isinstance(build_model(conf), self.model_class)
        assert conf == copy

    def test_onnx_export_fused(self, tmp_path):
        pytest.importorskip("onnxruntime")
        from perpixel.tasks.export import export_onnx

        r = export_onnx(FusedLogits(self.build()), tmp_path / "m.onnx", sample_size=(32, 48))
        assert r["max_abs_diff"] < 1e-3
