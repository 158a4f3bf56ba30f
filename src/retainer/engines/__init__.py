"""Engines execute a compiled Plan. Each engine is one small module registered here; its
driver is imported only when the engine is used."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from retainer.engines.base import Engine
    from retainer.rulebook.loader import Rulebook

# engine name → "module:class"; each class is built from the rulebook (its settings).
ENGINES = {"duckdb": "retainer.engines.duckdb:DuckDBEngine",
           "postgres": "retainer.engines.postgres:PostgresEngine",
           "spark": "retainer.engines.spark:SparkEngine"}


def create_engine(rulebook: Rulebook) -> Engine:
    """A compute engine for a project whose `engine:` is not the embedded DuckDB."""
    name = rulebook.config.engine
    if name not in ENGINES:
        from retainer.errors import RetainerError
        raise RetainerError(f"the {name} engine is not available in this version of Retainer",
                            hint="use engine: duckdb")
    module, _, attribute = ENGINES[name].partition(":")
    factory = getattr(import_module(module), attribute)
    engine: Engine = factory.for_rulebook(rulebook)
    return engine
