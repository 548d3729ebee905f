"""Recipes: YAML files with a `task:` (which defaults they start from) and optionally a
`base:` (another recipe they change), merged section by section, then command-line
overrides. The defaults of each task live in `perpixel/tasks/<task>/defaults.py`; a recipe
is checked against them key by key (`perpixel.tasks.load_recipe`): its keys, and the type of
each value (`check_values`), inferred from the default unless `VALUE_KINDS` says otherwise."""

from __future__ import annotations

import copy
import math
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


class BadValue(ConfigError):
    """A recipe value of the wrong type or out of range; `path` is its dotted location."""

    def __init__(self, path: tuple[str, ...], problem: str):
        self.path = path
        super().__init__(f"{'.'.join(path)} = {problem}")


# The type of a recipe value is its default's (a float default takes ints too; an int
# default takes no bools); these keys' defaults do not tell (None, or several types allowed).
# A None default not listed here takes anything. Kinds: null, bool, int, number (int or
# float), str, list, numbers (a list of numbers).
VALUE_KINDS: dict[str, tuple[str, ...]] = {
    "init_from": ("null", "str"),
    "init_vgg16": ("null", "str"),
    "data.root": ("null", "str"),
    "data.train_split": ("null", "str"),  # null: the role's name (edges bsds500: train+val)
    "data.val_split": ("null", "str"),
    "data.test_split": ("null", "str"),
    "data.val_limit": ("null", "int"),
    "loss.class_weights": ("null", "str", "numbers"),
    "loss.beta": ("null", "number"),
    "loss.consensus": ("null", "number"),  # k annotators (int) or a fraction (float)
    "loss.side_weights": ("number", "numbers"),
    "optim.schedule": ("str", "null"),
    "optim.warmup_epochs": ("number",),
    "trainer.devices": ("int", "str", "list"),
    "trainer.precision": ("str", "int"),
    "trainer.gradient_clip_val": ("null", "number"),
    "model.encoder_weights": ("null", "str"),  # vgg_unet; null: random
}
# choices otherwise checked only when training starts (`engine.module.configure_optim`)
CHOICES: dict[str, tuple[Any, ...]] = {
    "optim.name": ("adamw", "adam", "sgd"),
    "optim.schedule": ("cosine", "poly", "constant", "none", None),
}
# numbers with a lower bound: key -> (bound, whether the bound itself is allowed)
MINIMUM: dict[str, tuple[float, bool]] = {
    "optim.lr": (0, False),
    "optim.weight_decay": (0, True),
    "optim.warmup_epochs": (0, True),
    "data.batch_size": (1, True),
    "data.val_batch_size": (1, True),
    "data.num_workers": (0, True),
    "trainer.max_epochs": (1, True),
    "trainer.check_val_every_n_epoch": (1, True),
}
_KIND_NAMES = {
    "null": "null",
    "bool": "true or false",
    "int": "an integer",
    "number": "a number",
    "str": "a string",
    "list": "a list",
    "numbers": "a list of numbers",
}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_kind(value: Any, kind: str) -> bool:
    if kind == "null":
        return value is None
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return _is_number(value)
    if kind == "str":
        return isinstance(value, str)
    if kind == "list":
        return isinstance(value, list)
    if kind == "numbers":
        return isinstance(value, list) and all(_is_number(v) for v in value)
    raise ValueError(f"unknown value kind {kind!r}")


def _kinds_of(default: Any) -> tuple[str, ...] | None:
    """The kinds of value a key with this default takes (None: anything)."""
    if isinstance(default, bool):
        return ("bool",)
    if isinstance(default, int):
        return ("int",)
    if isinstance(default, float):
        return ("number",)
    if isinstance(default, str):
        return ("str",)
    if isinstance(default, list):
        return ("list",)
    return None


def _to_float(value: Any) -> Any:
    """`value` as a float if it is a string such as '1e-3' (YAML 1.1 reads 1e-3 as a string:
    its floats need a dot, 1.0e-3), else `value` unchanged."""
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        if math.isfinite(number):
            return number
    return value


def _convert(value: Any, kinds: tuple[str, ...]) -> Any:
    """Number strings as floats where a number (or a list of numbers) is expected."""
    if "number" in kinds and "str" not in kinds:
        value = _to_float(value)
    if "numbers" in kinds and isinstance(value, list):
        value = [_to_float(v) for v in value]
    return value


def _kinds_text(kinds: tuple[str, ...]) -> str:
    names = [_KIND_NAMES[k] for k in kinds]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def check_values(conf: dict, defaults: dict, where: tuple[str, ...] = ()) -> None:
    """`BadValue` (naming the key, the value and what it should be) unless every value of
    `conf` has the type of its default (see `VALUE_KINDS`), one of its `CHOICES` and at
    least its `MINIMUM`. Number strings ('1e-3') become floats in `conf`. Keys `defaults`
    lacks and open sections (`OPEN_SECTIONS`) are not checked here."""
    for key, value in conf.items():
        if key not in defaults:
            continue
        path, default = (*where, key), defaults[key]
        dotted = ".".join(path)
        if isinstance(default, dict):
            if key in OPEN_SECTIONS:
                continue
            if not isinstance(value, dict):
                raise BadValue(path, f"{value!r} is not a section (key: value, ...)")
            check_values(value, default, path)
            continue
        kinds = VALUE_KINDS.get(dotted) or _kinds_of(default)
        if kinds is None:
            continue
        value = conf[key] = _convert(value, kinds)
        if not any(_is_kind(value, k) for k in kinds):
            example = f" (e.g. {default!r})" if default is not None else ""
            raise BadValue(path, f"{value!r} is not {_kinds_text(kinds)}{example}")
        if dotted in CHOICES and value not in CHOICES[dotted]:
            choices = ", ".join(repr(c) if c is not None else "null" for c in CHOICES[dotted])
            raise BadValue(path, f"{value!r} is not one of {choices}")
        if dotted in MINIMUM and _is_number(value):
            bound, inclusive = MINIMUM[dotted]
            if value < bound or (value == bound and not inclusive) or math.isnan(value):
                raise BadValue(path, f"{value!r} is not {'>=' if inclusive else '>'} {bound}")


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
