"""Lazy re-exports for a package's ``__init__`` (PEP 562).

A package names what it re-exports and from which submodule; a name is imported on
first use and then kept in the package, so importing the package itself costs
nothing (``coord todo list`` must not load networkx or redis-py).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable


def lazy_exports(package: str, exports: dict[str, str]
                 ) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package`` re-exporting ``name`` from
    ``package.<exports[name]>``."""

    def getattr_(name: str) -> object:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        setattr(sys.modules[package], name, value)
        return value

    def dir_() -> list[str]:
        return sorted(exports)

    return getattr_, dir_


class LazyModule:
    """A module imported on its first attribute read: ``steering = LazyModule(
    "coordination.sweeps.steering")`` keeps ``steering.pause(...)`` as written while a
    module that only reads never loads it. (Under ``TYPE_CHECKING`` import the real
    module instead, so types are checked.)"""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> object:
        return getattr(importlib.import_module(self._name), attr)
