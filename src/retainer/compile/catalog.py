"""What the engine can see of each source: its columns and their types."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from retainer.compile.sql import category
from retainer.rulebook.expressions import Type


@dataclass(frozen=True)
class Catalog:
    """Columns of each source as `{source: {column: engine type}}`, in file order."""

    columns: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    described: Mapping[str, str] = field(default_factory=dict)  # source -> where it was read

    def has(self, source: str, column: str) -> bool:
        return column in self.columns.get(source, {})

    def type_of(self, source: str, column: str) -> Type:
        return category(self.columns[source][column])

    def engine_type(self, source: str, column: str) -> str:
        return self.columns[source][column]

    def names(self, source: str) -> list[str]:
        return list(self.columns.get(source, {}))
