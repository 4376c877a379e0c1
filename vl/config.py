"""Configs are nested dataclasses; YAML is only how they are stored.

    cfg = load_config(ShapesConfig, "configs/shapes/world.yaml", ["image_size=96", "splits.train=500"])
    save_config(cfg, "run/config.yaml")      # the resolved config, every key written out

A misspelled key is an error naming the key and the nearest valid one; a value of the wrong type is
an error naming the key and the type it expects. Numbers written as `3e-4` (a string to YAML 1.1)
are read as floats where the field is a float.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from vl.errors import ConfigError, did_you_mean

T = TypeVar("T")
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def from_dict(cls: type[T], data: Mapping[str, Any] | None, prefix: str = "") -> T:
    """Build dataclass `cls` from a plain mapping, checking every key and converting every value."""
    data = {} if data is None else data
    if not isinstance(data, Mapping):
        raise ConfigError(f"config section '{prefix.rstrip('.') or '<root>'}' must be a mapping, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = typing.get_type_hints(cls)
    for key in data:
        if key not in fields:
            raise ConfigError(f"unknown config key '{prefix}{key}'{did_you_mean(str(key), fields, prefix)}")
    kwargs = {name: _convert(hints[name], data[name], prefix + name) for name in fields if name in data}
    missing = [prefix + f.name for f in fields.values() if f.name not in data and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"missing config key '{missing[0]}'")
    return cls(**kwargs)


def to_dict(cfg: Any) -> Any:
    """A dataclass (or nested containers of them) as plain dicts/lists/scalars, ready for YAML."""
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, Mapping):
        return {str(k): to_dict(v) for k, v in cfg.items()}
    if isinstance(cfg, (list, tuple)):
        return [to_dict(v) for v in cfg]
    return cfg


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Set `a.b.c=value` overrides (values parsed as YAML) into a nested dict, in place."""
    for text in overrides:
        key, sep, raw = text.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override '{text}' must look like key=value, e.g. train.lr=3e-4")
        *parents, leaf = key.strip().split(".")
        node = data
        for i, part in enumerate(parents):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"override '{text}': '{'.'.join(parents[: i + 1])}' is a value, not a section")
            node = child
        try:
            node[leaf] = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as err:
            raise ConfigError(f"override '{text}': value is not valid YAML ({err.problem})") from None
    return data


def load_config(cls: type[T], path: str | Path | None = None, overrides: Iterable[str] = ()) -> T:
    """Read `cls` from a YAML file (or its defaults when `path` is None), then apply dotted overrides."""
    data: Any = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark else ""
            raise ConfigError(f"{path}{where}: not valid YAML ({getattr(err, 'problem', err)})") from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: a config file must hold a mapping of keys, got {type(data).__name__}")
    # Overrides land on defaults + file, so `splits.train=10` keeps the other keys of `splits`.
    merged = _merge(to_dict(cls()), data, cls)
    return from_dict(cls, apply_overrides(merged, overrides))


def save_config(cfg: Any, path: str | Path) -> Path:
    """Write the resolved config as YAML (every key, defaults included) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_yaml(cfg))
    return path


def to_yaml(cfg: Any) -> str:
    """The resolved config as a YAML string, keys in declaration order."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False, default_flow_style=None)


def _merge(base: dict[str, Any], data: Mapping[str, Any], cls: type) -> dict[str, Any]:
    """Defaults `base` with `data` laid over them: nested sections merge, other values replace."""
    hints = typing.get_type_hints(cls)
    for key, value in data.items():
        tp = hints.get(key)
        if dataclasses.is_dataclass(tp) and isinstance(value, Mapping) and isinstance(base.get(key), dict):
            base[key] = _merge(base[key], value, tp)
        else:
            base[key] = value  # unknown keys pass through and are reported by from_dict
    return base


def _convert(tp: Any, value: Any, key: str) -> Any:
    """Check/convert one value against its type hint; errors name the dotted key."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, key + ".")
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(arg, value, key)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0])
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"config key '{key}' is {value!r}{did_you_mean(str(value), map(str, args))}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key '{key}' expects a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"config key '{key}' expects {len(args)} items, got {len(value)}")
            return tuple(_convert(a, v, f"{key}.{i}") for i, (a, v) in enumerate(zip(args, value)))
        item = args[0] if args else Any
        items = [_convert(item, v, f"{key}.{i}") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"config key '{key}' expects a mapping, got {value!r}")
        ktp, vtp = args or (str, Any)
        return {_convert(ktp, k, key): _convert(vtp, v, f"{key}.{k}") for k, v in value.items()}
    return _convert_scalar(tp, value, key)


def _convert_scalar(tp: Any, value: Any, key: str) -> Any:
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str):
            return value
    elif isinstance(value, tp):
        return value
    name = getattr(tp, "__name__", str(tp))
    raise ConfigError(f"config key '{key}' expects {name}, got {value!r}")


MIXED_PRECISION = ("no", "bf16", "fp16")


def check_train_section(train: Any, positive: tuple[str, ...]) -> None:
    """The checks every `train:` section shares: a known mixed precision and positive counts."""
    if train.mixed_precision and train.mixed_precision not in MIXED_PRECISION:
        raise ConfigError(f"train.mixed_precision is '{train.mixed_precision}'; use one of {', '.join(MIXED_PRECISION)}")
    for key in positive:
        if getattr(train, key) <= 0:
            raise ConfigError(f"train.{key} must be positive, got {getattr(train, key)}")
