"""Seeded random splits of a folder without train/val/test subfolders."""

from __future__ import annotations

import random

from perpixel.errors import ConfigError

SPLIT_KEYS = ("val", "test", "seed")


def check_split(spec: dict) -> None:
    """ConfigError unless `spec` is {"val": f, "test": f, "seed": int} with fractions in
    [0, 1) summing below 1 (any key may be left out: 0, 0 and 0)."""
    if not isinstance(spec, dict) or set(spec) - set(SPLIT_KEYS):
        raise ConfigError(
            f"data.split must be a mapping with keys {list(SPLIT_KEYS)}, e.g. "
            f"{{val: 0.15, test: 0.25, seed: 0}}; got {spec!r}"
        )
    fractions = [spec.get("val", 0), spec.get("test", 0)]
    if (
        not all(isinstance(f, (int, float)) and 0 <= f < 1 for f in fractions)
        or sum(fractions) >= 1
    ):
        raise ConfigError(
            f"data.split: val and test are fractions in [0, 1) summing below 1, not {spec}"
        )
    if not isinstance(spec.get("seed", 0), int):
        raise ConfigError(f"data.split.seed must be an integer, not {spec.get('seed')!r}")


def seeded_split(n: int, spec: dict) -> dict[str, list[int]]:
    """Indices 0..n-1 shuffled by `spec["seed"]` and cut into round(val * n) "val",
    round(test * n) "test" and the rest "train" (each sorted). The same n and spec give the
    same split on every machine."""
    check_split(spec)
    order = list(range(n))
    random.Random(spec.get("seed", 0)).shuffle(order)
    n_val, n_test = round(spec.get("val", 0) * n), round(spec.get("test", 0) * n)
    return {
        "val": sorted(order[:n_val]),
        "test": sorted(order[n_val : n_val + n_test]),
        "train": sorted(order[n_val + n_test :]),
    }
