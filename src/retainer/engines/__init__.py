"""Engines execute a compiled Plan. Each engine is one small module registered here; its
driver is imported only when the engine is used."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from retainer.engines.base import Engine

ENGINES = {"duckdb": "retainer.engines.duckdb:DuckDBEngine"}


def engine_class(name: str) -> type[Engine]:
    module, _, attribute = ENGINES[name].partition(":")
    cls: type[Engine] = getattr(import_module(module), attribute)
    return cls
