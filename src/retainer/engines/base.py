"""What every engine provides. Differences between engines are data (Capabilities), not
branches in the compiler."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from retainer.compile.capabilities import Capabilities
from retainer.compile.catalog import Catalog
from retainer.compile.plan import Plan, Step
from retainer.rulebook.loader import Rulebook

Progress = Callable[[Step, int, int], None]


class Engine(ABC):
    capabilities: Capabilities

    @abstractmethod
    def attach_sources(self, rulebook: Rulebook) -> Catalog:
        """Make every source readable as `src_<name>`; return what the engine sees."""

    @abstractmethod
    def attach_rows(self, rulebook: Rulebook,
                    rows: Mapping[str, Sequence[Mapping[str, Any]]]) -> Catalog:
        """Sources from literal rows (rule tests), typed like the real sources."""

    @abstractmethod
    def execute(self, plan: Plan, progress: Progress | None = None) -> None:
        """Run the plan's work steps (temporary relations)."""

    @abstractmethod
    def publish(self, plan: Plan, metadata: Mapping[str, Any]) -> None:
        """Write the plan's outputs, all or nothing."""

    @abstractmethod
    def query(self, sql: Any, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of a sqlglot query (or a query string built by the engine itself)."""

    @abstractmethod
    def close(self) -> None: ...
