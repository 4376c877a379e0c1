"""Re-creating a compressed model's shapes from its config: `config.compression` maps a method to what
it changed ({"lowrank": {module path: rank}}); VLModel applies it after building the plain model, so the
checkpoint's tensors fit. An unknown method or module path is a CheckpointError-like ConfigError."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from vl.errors import ConfigError, did_you_mean


def apply_compression(model: nn.Module, compression: dict[str, Any]) -> None:
    """Rebuild the compressed structure `compression` records on a freshly built model (weights follow)."""
    from vl.compress.early_exit import apply_early_exit
    from vl.compress.int8 import apply_int8
    from vl.compress.lowrank import apply_lowrank
    from vl.compress.prune import apply_prune

    # in the order they may be applied: shapes first, then the exits (copies of the heads), quantization
    # last (the saved config sorts its keys)
    appliers = {"prune": apply_prune, "early_exit": apply_early_exit, "lowrank": apply_lowrank, "int8": apply_int8}
    for method in compression:
        if method not in appliers:
            raise ConfigError(f"unknown compression '{method}' in the model config{did_you_mean(method, appliers)}")
    for method, apply in appliers.items():
        if method in compression:
            apply(model, compression[method])


def linears(model: nn.Module, min_features: int, skip: tuple[str, ...] = ()) -> list[tuple[str, nn.Linear]]:
    """(path, layer) of every nn.Linear with both sides >= min_features, not under a `skip` path prefix:
    the layers low-rank and int8 may replace (a snapshot, so they can be replaced while walking it)."""
    return [
        (path, m)
        for path, m in model.named_modules()
        if isinstance(m, nn.Linear) and min(m.in_features, m.out_features) >= min_features and not path.startswith(skip)
    ]


def replace_linear(model: nn.Module, path: str, make: Callable[[nn.Linear], nn.Module], method: str) -> None:
    """Put make(linear) in place of the nn.Linear at a dotted path; a path the model lacks, or one that is
    not a Linear, is a ConfigError naming the `method` whose record named it."""
    parent_path, _, name = path.rpartition(".")
    try:
        parent = model.get_submodule(parent_path) if parent_path else model
        linear = getattr(parent, name)
    except AttributeError:
        raise ConfigError(f"the {method} record names '{path}', which this model does not have; was it made from another model?") from None
    if not isinstance(linear, nn.Linear):
        raise ConfigError(f"the {method} record names '{path}', a {type(linear).__name__}, not a Linear; was it made from another model?")
    setattr(parent, name, make(linear))
