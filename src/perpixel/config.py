"""Recipes: YAML files with a `task:` (which defaults they start from) and optionally a
`base:` (another recipe they change), merged section by section, then command-line
overrides. The defaults of each task live in `perpixel/tasks/<task>/defaults.py`; a recipe
is checked against them key by key (`perpixel.tasks.load_recipe`)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from perpixel.errors import ConfigError

PACKAGED = Path(__file__).resolve().parent / "configs"  # configs/<task>/<name>.yaml
OPEN_SECTIONS = ("augment",)  # any keys: the transforms check them; `null` clears it


class UnknownKey(ConfigError):
    """A recipe key that the defaults do not have; `path` is its dotted location."""

    def __init__(self, path: tuple[str, ...], known: list[str]):
        self.path = path
        where = ".".join(path[:-1])
        super().__init__(
            f"unknown config key {where + '.' if where else ''}{path[-1]!r}; known: {known}"
        )


def merge_model(base: dict, override: dict) -> dict:
    """A `model:` section changed by `override`: options merge, but a different `name`
    starts afresh from that model's own defaults (the old model's options would not fit)."""
    if "name" in override and override["name"] != base.get("name"):
        return copy.deepcopy(override)
    return {**copy.deepcopy(base), **copy.deepcopy(override)}


def merge(base: dict, override: dict | None, where: tuple[str, ...] = (), strict=True) -> dict:
    """Deep-merge `override` into a copy of `base`, section by section. With `strict`, a
    key that `base` lacks is an `UnknownKey` error (open sections take any key)."""
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        path = (*where, key)
        if key not in base:
            if strict:
                raise UnknownKey(path, sorted(base))
            out[key] = copy.deepcopy(value)
        elif key == "model" and not where and isinstance(value, dict):
            out[key] = merge_model(base[key] or {}, value)
        elif key in OPEN_SECTIONS and isinstance(base[key], dict):
            out[key] = {} if value is None else {**base[key], **copy.deepcopy(value)}
        elif isinstance(base[key], dict) and isinstance(value, dict):
            out[key] = merge(base[key], value, path, strict)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_overrides(items: list[str] | None) -> dict:
    """`["trainer.max_epochs=3", "data.batch_size=4"]` -> nested dict (YAML-typed values)."""
    out: dict = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not KEY=VALUE (e.g. trainer.max_epochs=3)")
        key, value = item.split("=", 1)
        node = out
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {p!r} is set twice")
        try:
            node[parts[-1]] = yaml.safe_load(value)
        except yaml.YAMLError as e:
            raise ConfigError(f"override {item!r}: value is not valid YAML ({e})") from None
    return out


def packaged_recipes() -> dict[str, Path]:
    """Recipe name -> file, for every recipe shipped in `perpixel/configs/<task>/`."""
    return {p.stem: p for p in sorted(PACKAGED.glob("*/*.yaml"))}


def resolve_recipe(name: str | Path, near: Path | None = None) -> Path:
    """A recipe file: a path, a path relative to `near` (a recipe's `base:`), or the name of
    a packaged recipe (`camvid_unet`, `edges/bsds_unet_ds`)."""
    path = Path(name)
    candidates = [path, path.with_suffix(".yaml")]
    if near is not None and not path.is_absolute():
        candidates += [near / path, near / path.with_suffix(".yaml")]
    for c in candidates:
        if c.is_file():
            return c
    packaged = packaged_recipes()
    if path.stem in packaged:
        return packaged[path.stem]
    raise ConfigError(f"{name}: config file not found (packaged recipes: {sorted(packaged)})")


def read_recipe(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A recipe file as a dict, with its `base:` chain merged in (the file's keys win)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    if path.resolve() in _seen:
        raise ConfigError(f"{path}: `base:` recipes form a cycle")
    try:
        loaded = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: a config is a mapping of sections (task, data, model, ...)")
    base_name = loaded.pop("base", None)
    if base_name is None:
        return loaded
    base = read_recipe(resolve_recipe(base_name, path.parent), (*_seen, path.resolve()))
    if "task" in loaded and "task" in base and loaded["task"] != base["task"]:
        raise ConfigError(
            f"{path}: task {loaded['task']!r} differs from its base's task {base['task']!r}"
        )
    return merge(base, loaded, strict=False)
