"""One small Registry class: a name -> callable table filled by a decorator."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from vl.errors import ConfigError, did_you_mean


class Registry:
    """Named callables of one kind (encoders, heads, shapes...), registered with `@REG.register("name")`."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, Callable[..., Any]] = {}

    def register(self, name: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator that adds the decorated callable under `name` (default: its __name__). A class also
        gets `registry_name = name`, so it never spells its own name twice (a saved config needs it)."""

        def add(obj: Callable[..., Any]) -> Callable[..., Any]:
            key = name or obj.__name__
            if key in self._items:
                raise ValueError(f"{self.kind} '{key}' is registered twice")
            self._items[key] = obj
            if isinstance(obj, type):
                obj.registry_name = key
            return obj

        return add

    def get(self, name: str) -> Callable[..., Any]:
        """The callable registered as `name`; a clear error naming the nearest key otherwise."""
        try:
            return self._items[name]
        except KeyError:
            raise ConfigError(f"unknown {self.kind} '{name}'{did_you_mean(name, self._items)}") from None

    def build(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Call the callable registered as `name` with the given arguments."""
        return self.get(name)(*args, **kwargs)

    def keys(self) -> list[str]:
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.keys()})"


def import_modules(package: str, path: Iterable[str]) -> None:
    """Import every module of a package so that each registers what it defines: a new head, encoder or
    task kind is one new file, with no list elsewhere to extend. Called from the package's __init__."""
    for module in pkgutil.iter_modules(path):
        importlib.import_module(f"{package}.{module.name}")


# One registry per kind of component; each package's __init__ imports its modules so they register.
ENCODERS = Registry("encoder")
HEADS = Registry("head")
TASKS = Registry("task kind")  # how a head type is trained, run and scored (vl.tasks), by head type
