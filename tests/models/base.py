"""The one tester that every registered model passes, whatever its output kind.

Subclass `ModelTester` in `tests/models/<output>/test_<model>.py`; set `name` (the
`build_model` name), `model_class` and `conf` (small options that keep the test fast); edge
models also set `num_sides`. What a model returns depends on its `output` kind:
"logits": (B, num_classes, H, W); "edges": {"fused": (B, 1, H, W), "sides": num_sides x
(B, 1, H, W)}; "keypoints": {"logits": (B, 65, H/8, W/8), "descriptors": (B, D, H/8, W/8)}
(no "descriptors" without a descriptor head), at sizes that are multiples of 8.
"panoptic": a dict of dense (B, K, H, W) maps, K from `model.map_channels()`; their
gradients are checked through `model.losses` on a hand-made target, and they export as one
tuple (`PanopticMaps`).
`tests/models/test_registry.py` checks that every model in `MODELS` has one.
"""

from __future__ import annotations

import copy
from typing import cast

import pytest
import torch

from perpixel.engine.export import export_onnx
from perpixel.errors import ConfigError, PerpixelError
from perpixel.models import MODELS, OUTPUT_KINDS, OUTPUTS, build_model
from perpixel.models.base import Model
from perpixel.models.edges import FusedLogits
from perpixel.models.keypoints import KeypointOutputs
from perpixel.models.panoptic import PanopticMaps, PanopticModel

SIZES = [(17, 29), (37, 53), (64, 64)]  # (H, W): odd sizes, as most models take any size
# the sizes for the output kinds whose models take only some sizes (a subclass may override)
SIZES_FOR = {"keypoints": [(16, 24), (40, 56), (64, 64)]}  # multiples of the 8x8 cells


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
    other_in_channels: int | None = 1  # an in_channels other than the default it takes, or None
    sizes: list[tuple[int, int]] | None = None  # 3 (H, W); None: SIZES_FOR or SIZES

    # ------------------------------------------------------------ helpers

    @property
    def output(self) -> str:
        return self.model_class.output

    @property
    def size_list(self) -> list[tuple[int, int]]:
        """The three sizes the tests use, smallest first."""
        return self.sizes or SIZES_FOR.get(self.output, SIZES)

    def expected_shapes(self, model: Model, batch: int, h: int, w: int) -> list[tuple]:
        """The shapes of `maps(model(images(batch, h, w)))`."""
        c = model.conf
        if self.output == "panoptic":
            return [(batch, k, h, w) for _, k in sorted(model.map_channels().items())]
        if self.output == "edges":
            return [(batch, 1, h, w)] * (1 + self.num_sides)
        if self.output == "keypoints":
            shapes = [(batch, 65, h // 8, w // 8)]
            if c["descriptors"]:
                shapes.append((batch, c["descriptor_dim"], h // 8, w // 8))
            return shapes
        return [(batch, c["num_classes"], h, w)]

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
        """Every map a model returns: [logits], [fused, *sides] or [logits, descriptors]."""
        if self.output == "edges":
            assert isinstance(out, dict) and set(out) == {"fused", "sides"}
            return [out["fused"], *out["sides"]]
        if self.output == "keypoints":
            assert isinstance(out, dict) and set(out) in ({"logits"}, {"logits", "descriptors"})
            return [out[k] for k in ("logits", "descriptors") if k in out]
        if self.output == "panoptic":
            assert isinstance(out, dict)
            return [out[k] for k in sorted(out)]
        assert isinstance(out, torch.Tensor)
        return [out]

    def assert_maps_close(self, a, b, **tol) -> None:
        for x, y in zip(self.maps(a), self.maps(b), strict=True):
            torch.testing.assert_close(x, y, **tol)

    def exportable(self, model: Model) -> torch.nn.Module:
        """The module to export: one (B, C, H, W) output (`export_onnx`), or for keypoint
        models a tuple of maps (`KeypointOutputs`)."""
        if self.output == "keypoints":
            return KeypointOutputs(model)
        if self.output == "panoptic":
            return PanopticMaps(model)
        return FusedLogits(model) if self.output == "edges" else model

    # ------------------------------------------------------------ shapes

    @pytest.mark.parametrize("batch", [1, 3])
    @pytest.mark.parametrize("k", range(len(SIZES)))
    def test_output_shapes(self, k, batch):
        size = self.size_list[k]
        model = self.build()
        maps = self.maps(model(self.images(batch, *size)))
        if self.output == "logits":
            assert model.conf["num_classes"] == self.num_classes
        assert [y.shape for y in maps] == self.expected_shapes(model, batch, *size)
        for y in maps:
            assert y.dtype == torch.float32
            assert torch.isfinite(y).all()
        if self.output == "keypoints" and len(maps) == 2:  # unit descriptors
            torch.testing.assert_close(maps[1].norm(dim=1), torch.ones_like(maps[1][:, 0]))

    def test_num_classes_and_in_channels(self):
        over = {}
        if "num_classes" in self.model_class.default_conf:
            over["num_classes"] = 5
        if self.other_in_channels is not None:
            over["in_channels"] = self.other_in_channels
        model = self.build(**over)
        size = self.size_list[0]
        out = model(self.images(2, *size, channels=over.get("in_channels", 3)))
        assert [y.shape for y in self.maps(out)] == self.expected_shapes(model, 2, *size)
        if "num_classes" in over:
            semantic = out["semantic"] if self.output == "panoptic" else self.maps(out)[0]
            assert semantic.shape[1] == 5

    def test_export_module_returns_the_main_map(self):
        model = self.build().eval()
        x = self.images(2, *self.size_list[0])
        with torch.no_grad():
            got = self.exportable(model)(x)
            maps = self.maps(model(x))
        got = list(got) if isinstance(got, tuple) else [got]
        # the main map alone; keypoint and panoptic models export every map
        want = maps if self.output in ("keypoints", "panoptic") else maps[:1]
        assert len(got) == len(want)
        for a, b in zip(got, want, strict=True):
            torch.testing.assert_close(a, b)

    # ------------------------------------------------------------ training and inference

    @staticmethod
    def panoptic_target(batch: int, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(semantic, instances) (B, H, W) int64: stuff classes 0/1 in halves, two thing
        instances (classes 2 and 3, so `thing_ids` [2, 3]) as rectangles, a void corner."""
        semantic = torch.zeros(batch, h, w, dtype=torch.long)
        semantic[:, h // 2 :] = 1
        instances = torch.zeros(batch, h, w, dtype=torch.long)
        semantic[:, 1 : h // 2, 1 : w // 3] = 2
        instances[:, 1 : h // 2, 1 : w // 3] = 1
        semantic[:, h // 3 : h - 1, w // 2 : w - 1] = 3
        instances[:, h // 3 : h - 1, w // 2 : w - 1] = 2
        semantic[:, :2, -2:] = 255
        return semantic, instances

    def test_gradients_reach_every_parameter(self):
        model = self.build().train()
        if self.output == "panoptic":  # through the model's own losses
            h, w = self.size_list[-1]
            losses = cast(PanopticModel, model).losses(
                self.images(2, h, w), *self.panoptic_target(2, h, w)
            )
            assert losses and all(torch.isfinite(v) and v.dim() == 0 for v in losses.values())
            sum(losses.values()).backward()
            assert_every_parameter_learns(model)
            return
        out, aux = model.forward_with_aux(self.images(2, *self.size_list[0]))
        maps = self.maps(out)
        for a in aux:  # auxiliary logits (deep supervision): shaped like the main map
            assert a.shape == maps[0].shape
        g = torch.Generator().manual_seed(1)
        loss = sum((y * torch.randn(y.shape, generator=g)).sum() for y in maps + aux)
        loss.backward()
        assert_every_parameter_learns(model)

    def test_eval_mode_is_deterministic(self):
        model = self.build().eval()
        x = self.images(2, *self.size_list[1])
        with torch.no_grad():
            a, b = model(x), model(x)
        for y, z in zip(self.maps(a), self.maps(b), strict=True):
            assert torch.equal(y, z)

    def test_eval_batch_items_are_independent(self):
        model = self.build().eval()
        x = self.images(3, *self.size_list[0])
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
        x = self.images(1, *self.size_list[0])
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
        x = self.images(1, *self.size_list[0])
        with torch.no_grad():
            self.assert_maps_close(model(x), other(x), rtol=0, atol=0)

    def test_onnx_export_agrees_with_onnx_runtime(self, tmp_path):
        # ONNX Runtime is checked against PyTorch at a size other than the traced one
        module = self.exportable(self.build())
        if not getattr(self.model_class, "exportable", True):  # refused, leaving no file
            with pytest.raises(PerpixelError, match=rf"^{self.name} cannot be exported to ONNX: "):
                export_onnx(module, tmp_path / "m.onnx", sample_size=(32, 48))
            assert list(tmp_path.iterdir()) == []
            return
        r = export_onnx(module, tmp_path / "m.onnx", sample_size=(32, 48))
        if self.output == "keypoints":  # sizes rounded up to the 8x8 cells
            assert r["checked_size"] == [2, 3, 72, 64]
        else:
            assert r["checked_size"] == [2, 3, 69, 61]
        assert r["max_abs_diff"] < 1e-3
        assert (tmp_path / "m.onnx").is_file()

    # ------------------------------------------------------------ configuration

    def test_output_kind(self):
        assert self.model_class.output in OUTPUT_KINDS
        assert OUTPUTS[self.name] == self.model_class.output

    def test_default_conf(self):
        dc = self.model_class.default_conf
        assert isinstance(dc, dict)
        assert "in_channels" in dc
        if self.output in ("logits", "panoptic"):
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
