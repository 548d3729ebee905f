"""The base of every model: options in `default_conf`, overridden by keyword arguments."""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import torch
import torch.nn as nn

# what a model's forward returns, given (B, in_channels, H, W) images in [0, 1]:
# "logits": (B, num_classes, H, W) class logits (segmentation);
# "edges": {"fused": (B, 1, H, W), "sides": [(B, 1, H, W), ...]} edge logits;
# "keypoints": {"logits": (B, 65, H/8, W/8) interest-point logits per 8x8 cell (64 positions +
# a "no point" dustbin), "descriptors": (B, D, H/8, W/8) L2-normalised along dim 1, absent
# without a descriptor head}; H and W multiples of 8
# "panoptic": a dict of dense (B, *, H', W') maps (the heads' raw outputs; see
# `perpixel.models.panoptic.base.PanopticModel`, whose `losses` and `predict` interpret them)
OUTPUT_KINDS = ("logits", "edges", "keypoints", "panoptic")


class Model(nn.Module):
    """A model configured by options: `Model(**conf)`, `conf` overriding `default_conf`.

    Subclasses set `default_conf` (every option with its default) and `output` (one of
    `OUTPUT_KINDS`), call `super().__init__(**conf)` and read `self.conf`. Unknown options
    raise ValueError. `renamed_keys` maps old state-dict key prefixes to new ones, so that
    checkpoints saved before a rename still load.
    """

    default_conf: ClassVar[dict[str, Any]] = {}
    output: ClassVar[str] = ""
    renamed_keys: ClassVar[dict[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.output not in OUTPUT_KINDS:
            raise TypeError(f"{cls.__name__}.output must be one of {OUTPUT_KINDS}")

    def __init__(self, **conf: Any):
        super().__init__()
        unknown = set(conf) - set(self.default_conf)
        if unknown:
            raise ValueError(f"{type(self).__name__}: unknown options {sorted(unknown)}")
        # a deep copy: editing a model's (nested) options never edits the class defaults
        self.conf: dict[str, Any] = {**copy.deepcopy(self.default_conf), **conf}

    def forward_with_aux(self, x: torch.Tensor) -> tuple[Any, list[torch.Tensor]]:
        """(what `forward` returns, auxiliary logits for deep-supervision losses in training,
        each shaped like the main logits); models without auxiliary heads return []."""
        return self(x), []

    def load_pretrained(self) -> str | None:
        """Load the pretrained weights the options name, before training from scratch;
        returns a description of what was loaded (None: nothing, the default)."""
        return None

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for old, new in self.renamed_keys.items():
            for key in [k for k in state_dict if k.startswith(prefix + old)]:
                state_dict[prefix + new + key[len(prefix + old) :]] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
