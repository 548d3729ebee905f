"""Edge detection: recipe defaults, data module, Lightning task and `train_edges`.

Batches are dicts {"image": (B, 3, H, W) in [0, 1], "edges": (B, 1, H, W) annotator fraction
(-1 = not scored), "annotators": (B,), "name"}. Models return {"fused", "sides"} logits.
Inference (`EdgeDetector`) and the pretrained HED import live in `perpixel.tasks.edges_predict`.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from perpixel.data.edges import BSDS500, SyntheticEdges, collate_edges
from perpixel.data.transforms import build_transform
from perpixel.errors import ConfigError, PerpixelError
from perpixel.losses.edges import EdgeLoss, edge_fraction
from perpixel.models import build_model
from perpixel.tasks.config import DEFAULTS, load_config
from perpixel.tasks.data import SPLIT_SEEDS, SegmentationData
from perpixel.tasks.optim import RecipeTask
from perpixel.tasks.train import fit, init_weights, start_run

EDGE_DEFAULTS: dict[str, Any] = {
    "seed": 0,
    "out": "runs/edges",
    "init_from": None,  # an edge checkpoint whose model weights start this run
    "init_vgg16": None,  # HED only: a torchvision VGG16 state dict (.pth) for the backbone
    "data": {
        "kind": "synthetic",  # synthetic | bsds500
        "root": None,  # bsds500: images/ + groundTruth/ (or the BSR download)
        "train_split": None,  # None: "train+val" for bsds500 (as the literature), else "train"
        "val_split": "val",
        "test_split": "test",
        "val_limit": None,  # validate on the first N images only (full size, so slow)
        "cache": True,  # bsds500: load all images and annotations once, up front
        "synthetic": {"num_train": 500, "num_val": 50, "num_test": 50, "height": 64, "width": 64},
        "augment": {},  # see perpixel.data.transforms.build_transform
        "batch_size": 8,
        "val_batch_size": 1,  # mixed sizes are padded (not scored) when > 1
        "num_workers": 2,
    },
    "model": {"name": "unet_edges"},
    "loss": {
        "balance": "dataset",  # dataset (textbook beta) | image (HED) | none
        "beta": None,  # None: edge_fraction of the training set
        "consensus": None,  # k annotators (int) or a fraction (float); None: soft targets
        "side_weights": 1.0,
        "fused_weight": 1.0,
        "pixel_reduction": "mean",  # or "sum" (HED's Caffe loss; scale the lr down)
    },
    "optim": {
        "name": "adamw",  # adamw | adam | sgd
        "lr": 1e-3,
        "weight_decay": 1e-4,
        "momentum": 0.9,  # sgd
        "schedule": "cosine",  # cosine | poly | constant
        "warmup_epochs": 0,
    },
    "val": {"thresholds": 19, "tolerance": 0.0075},  # approximate F (see approx_f_counts)
    "trainer": copy.deepcopy(DEFAULTS["trainer"]),
}


def load_edge_config(
    path: str | Path | None = None, overrides: list[str] | dict | None = None
) -> dict:
    """EDGE_DEFAULTS <- YAML file <- overrides (dotted `key=value` strings or a nested dict)."""
    return load_config(path, overrides, EDGE_DEFAULTS)


# ---------------------------------------------------------------- data


def build_edge_dataset(data: dict, role: str, train: bool = False, seed: int = 0) -> Dataset:
    """The edge dataset playing `role` ("train", "val" or "test") of a config `data` section."""
    split = data.get(f"{role}_split") or role
    if role == "train" and not data.get("train_split") and data["kind"] == "bsds500":
        split = "train+val"
    transform = build_transform(data["augment"]) if train else None
    limit = data["val_limit"] if role == "val" else None
    if data["kind"] == "synthetic":
        if split not in SPLIT_SEEDS:
            raise ConfigError(f"synthetic data has splits train/val/test, not {split!r}")
        conf = {k: v for k, v in data["synthetic"].items() if not k.startswith("num_")}
        n = data["synthetic"][f"num_{split}"]
        n = min(n, limit) if limit else n
        return SyntheticEdges(n, seed=1000 * seed + SPLIT_SEEDS[split], transform=transform, **conf)
    if data["kind"] == "bsds500":
        if data["root"] is None:
            raise ConfigError("data.root is required for bsds500 data")
        return BSDS500(data["root"], split, transform, cache=data["cache"], limit=limit)
    raise ConfigError(f"unknown edge data.kind {data['kind']!r}: synthetic or bsds500")


class EdgeData(SegmentationData):
    """Train/val/test loaders of edge batches (the segmentation loaders, edge datasets and
    `collate_edges`); the trainer must be made with `use_distributed_sampler=False`."""

    def dataset(self, split: str) -> Dataset:
        if split not in self.datasets:
            self.datasets[split] = build_edge_dataset(
                self.data, split, train=split == "train", seed=self.seed
            )
        return self.datasets[split]

    def _loader(self, split: str, batch_size: int, shuffle: bool):
        loader = super()._loader(split, batch_size, shuffle)
        loader.collate_fn = collate_edges  # read when iterated, so this takes effect
        return loader


# ---------------------------------------------------------------- cheap validation score


def approx_f_counts(
    prob: torch.Tensor,
    edges: torch.Tensor,
    annotators: torch.Tensor,
    thresholds: torch.Tensor,
    radius: int,
) -> torch.Tensor:
    """Counts for an APPROXIMATE boundary F-measure (a training monitor, not the benchmark:
    no thinning, no one-to-one matching; `perpixel edges bench` gives the real ODS/OIS/AP).

    A predicted pixel (prob >= t) is correct when a human boundary lies within `radius`
    pixels (square window); an annotator's boundary pixel is found when a predicted pixel
    lies within `radius`, counted once per annotator who marked it.

    Args:
        prob: (B, 1, H, W) edge probabilities; edges: (B, 1, H, W) fractions (-1 = not scored);
        annotators: (B,); thresholds: (T,).

    Returns:
        (4, T) float64: matched predictions, predictions, matched human pixels, human pixels.
    """
    valid = edges >= 0
    counts = (edges.clamp(min=0) * annotators.view(-1, 1, 1, 1).to(edges)).round()
    pred = ((prob >= thresholds.view(1, -1, 1, 1).to(prob)) & valid).float()  # (B, T, H, W)
    k = 2 * radius + 1
    near_pred = F.max_pool2d(pred, k, 1, radius)
    near_gt = F.max_pool2d((counts > 0).float(), k, 1, radius)
    dims = (0, 2, 3)
    return torch.stack(
        [
            (pred * near_gt).sum(dims),
            pred.sum(dims),
            (near_pred * counts).sum(dims),
            counts.sum(dims).expand(len(thresholds)),
        ]
    ).double()


def f_from_counts(c: torch.Tensor) -> tuple[float, float]:
    """(best F over thresholds, its threshold index) from `approx_f_counts` sums."""
    p = c[0] / c[1].clamp(min=1)
    r = c[2] / c[3].clamp(min=1)
    f = torch.where(p + r > 0, 2 * p * r / (p + r), torch.zeros_like(p))
    i = int(f.argmax())
    return float(f[i]), i


# ---------------------------------------------------------------- task


class EdgeTask(RecipeTask):
    """Model from `config["model"]` + deep-supervised `EdgeLoss`; checkpoints carry the config
    and beta, so `EdgeTask.load_from_checkpoint(path)` rebuilds everything."""

    def __init__(self, config: dict, beta: float | None = None):
        super().__init__()
        self.save_hyperparameters()
        self.config = config
        self.model = build_model(config["model"])
        lc = config["loss"]
        beta = lc["beta"] if lc["beta"] is not None else beta
        self.beta = beta
        try:
            self.loss = EdgeLoss(
                lc["balance"],
                beta=beta,
                consensus=lc["consensus"],
                side_weights=lc["side_weights"],
                fused_weight=lc["fused_weight"],
                pixel_reduction=lc["pixel_reduction"],
            )
        except ValueError as e:
            raise ConfigError(f"loss: {e}") from None
        v = config["val"]
        t = torch.linspace(0, 1, v["thresholds"] + 2)[1:-1]
        self.register_buffer("thresholds", t, persistent=False)
        self.register_buffer(
            "f_counts", torch.zeros(4, len(t), dtype=torch.float64), persistent=False
        )
        self.last_metrics: dict[str, dict] = {}
        if config["trainer"].get("channels_last"):
            self.model = self.model.to(memory_format=torch.channels_last)

    def forward(self, image: torch.Tensor) -> dict:
        """(B, 3, H, W) in [0, 1] -> {"fused": (B, 1, H, W), "sides": [...]} logits."""
        if self.config["trainer"].get("channels_last"):
            image = image.contiguous(memory_format=torch.channels_last)
        return self.model(image)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        terms = self.loss.terms(self(batch["image"]), batch["edges"], batch["annotators"])
        loss = self.loss.combine(terms)
        n = len(batch["image"])
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=n)
        self.log("train/loss_fused", terms["fused"], on_step=False, on_epoch=True, batch_size=n)
        return loss

    def _eval_step(self, batch: dict, stage: str) -> None:
        out = self(batch["image"])
        loss = self.loss(out, batch["edges"], batch["annotators"])
        self.log(f"{stage}/loss", loss, sync_dist=True, batch_size=len(batch["image"]))
        h, w = batch["image"].shape[-2:]
        radius = max(1, round(self.config["val"]["tolerance"] * math.hypot(h, w)))
        prob = out["fused"].float().sigmoid()
        self.f_counts += approx_f_counts(
            prob, batch["edges"], batch["annotators"], self.thresholds, radius
        )

    def _eval_end(self, stage: str) -> None:
        counts = self.trainer.strategy.reduce(self.f_counts.clone(), reduce_op="sum")
        f, i = f_from_counts(counts)
        self.last_metrics[stage] = {"f_approx": f, "threshold": float(self.thresholds[i])}
        self.log(f"{stage}/f_approx", f, prog_bar=True)  # already summed over processes
        self.f_counts.zero_()


# ---------------------------------------------------------------- training


def _init_model(task: EdgeTask, conf: dict) -> None:
    """Start from `init_from` (an edge checkpoint) and/or `init_vgg16` (a torchvision VGG16)."""
    if conf["init_from"]:
        from perpixel.tasks.edges_predict import load_edge_task

        init_weights(task, conf["init_from"], load_edge_task)
    if conf["init_vgg16"]:
        from perpixel.models.hed_import import vgg16_backbone_from_torchvision

        if conf["model"].get("name") != "hed":
            raise ConfigError("init_vgg16 needs model.name: hed")
        path = Path(conf["init_vgg16"])
        if not path.is_file():
            raise PerpixelError(f"{path}: VGG16 weights not found")
        state = torch.load(path, map_location="cpu", weights_only=True)
        task.model.load_state_dict(vgg16_backbone_from_torchvision(state), strict=False)


def train_edges(conf: dict, resume: bool = False) -> dict:
    """Train an edge recipe (see EDGE_DEFAULTS); returns {"best", "last", "best_val_f_approx",
    "beta", "seconds", "is_global_zero"}. With `resume`, continues from out/checkpoints/last.ckpt.
    """
    start_run(conf, resume)
    data = EdgeData(conf["data"], conf["seed"])
    train_set, val_set = data.dataset("train"), data.dataset("val")
    for ds in (train_set, val_set):
        if isinstance(ds, BSDS500) and not conf["data"]["cache"]:
            ds.validate()  # fail fast, naming the bad file (a cache has read everything)
    beta = None
    if conf["loss"]["balance"] == "dataset" and conf["loss"]["beta"] is None:
        beta = edge_fraction(train_set)
    task = EdgeTask(conf, beta)
    if not resume:
        _init_model(task, conf)
    result = fit(task, data, conf, resume, monitor="val/f_approx", mode="max")
    result["best_val_f_approx"] = result.pop("best_score")
    result["beta"] = task.beta
    return result
