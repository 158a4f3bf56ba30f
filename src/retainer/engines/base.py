"""What every engine provides. Differences between engines are data (Capabilities), not
branches in the compiler."""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlglot import exp

from retainer.compile.capabilities import Capabilities
from retainer.compile.catalog import Catalog
from retainer.compile.plan import Plan, Step
from retainer.errors import RetainerError
from retainer.rulebook.loader import Rulebook

Progress = Callable[[Step, int, int], None]


class Engine(ABC):
    """Computes a plan. The local DuckDB engine also keeps the published results; other
    engines compute in place and hand their staged outputs over as Arrow tables."""

    capabilities: Capabilities

    @abstractmethod
    def attach_sources(self, rulebook: Rulebook) -> Catalog:
        """Make every source readable as `src_<name>`; return what the engine sees."""

    @abstractmethod
    def attach_rows(self, rulebook: Rulebook,
                    rows: Mapping[str, Sequence[Mapping[str, Any]]]) -> Catalog:
        """Sources from literal rows (rule tests), typed like the real sources."""

    def materialize_sources(self, rulebook: Rulebook, names: Sequence[str],
                            formats: Sequence[str] = ("csv", "json")) -> None:
        """Optionally read sources into the engine once (for repeated reads)."""
        del rulebook, names, formats

    @abstractmethod
    def load_previous_state(self, rows: Any = None) -> None:
        """The stages history holds: an Arrow table of (level, entity_id, dimension, segment,
        entered_at), or None for none."""

    @abstractmethod
    def execute(self, plan: Plan, progress: Progress | None = None) -> None:
        """Run the plan's work steps."""

    @abstractmethod
    def stage_outputs(self, plan: Plan, temporary: bool = True) -> None:
        """Compute every output step into `<name>__next`, publishing nothing."""

    @abstractmethod
    def staged_arrow(self, name: str) -> Any:
        """The rows of one staged output as an Arrow table."""

    @abstractmethod
    def query(self, sql: exp.Expr, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The rows of a query (a sqlglot tree) over the attached sources, `?` placeholders
        bound to `parameters` in order. Values are typed as DuckDB gives them on every
        engine: text as str, a TIMESTAMP as a naive datetime in UTC, whole numbers as int."""

    def forget_contacts(self, ids: Sequence[str], key: str) -> int:
        """Delete these contacts from whatever the engine keeps of a run beyond it (rows in
        published results, copies of file sources); returns the result rows deleted. Most
        engines keep nothing: the local DuckDB holds the results."""
        del ids, key
        return 0

    def release_sources(self) -> None:
        """Drop the copies of file sources this engine loaded to read them, where they would
        outlive it (a reader done with the sources says so; a run keeps its work). Most
        engines read files in place or into their own session: nothing to drop."""
        return None

    def close_after_reading(self) -> None:
        """Close an engine opened to read sources, releasing them first. A release that
        fails (its connection lost) leaves the copies to the next run, which replaces them,
        and must not hide the error that stopped the reading."""
        try:
            with contextlib.suppress(RetainerError):
                self.release_sources()
        finally:
            self.close()

    @abstractmethod
    def close(self) -> None: ...
