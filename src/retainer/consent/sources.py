"""Source tables read as they are *now* — not the run's snapshot — for the consent gate and
for contacts' addresses at dispatch: a withdrawal recorded after the run must still stop
the next message, and a changed address must be the one used.

Sources are read through the project's engine, only the ones asked for: an in-memory DuckDB
for `engine: duckdb` (files, or tables of the project's DuckDB database), else the configured
engine — PostgreSQL reads its `table:` sources in the database, Spark those of its catalog —
so a source is read wherever the run reads it.

Starting that engine is the costly part (a Spark session takes seconds; a PostgreSQL engine
is a connection holding the work schema's lock), and an act reads sources several times:
within `shared_sources` every read of the rulebook's sources goes through one engine,
opened at the first read. Each read still attaches its sources again — a view re-bound, a
file read again — so it sees them as they are at that moment; no row is kept between reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import replace
from typing import TYPE_CHECKING

from retainer.errors import RetainerError
from retainer.rulebook.loader import Rulebook

if TYPE_CHECKING:
    from retainer.compile.catalog import Catalog
    from retainer.engines.base import Engine


def consent_source(rulebook: Rulebook) -> str | None:
    """The consents source: `consent.source`, else the source of kind consents."""
    return rulebook.consent.source or rulebook.source_of_kind("consents")


class SourceReader:
    """The project's engine for reading sources now: opened at the first read, kept until
    `close` (after which a read would open it again)."""

    def __init__(self, rulebook: Rulebook) -> None:
        self.rulebook = rulebook
        self._engine: Engine | None = None

    def read(self, names: list[str]) -> tuple[Engine, Catalog]:
        """The engine with `src_<name>` over the named sources as they are now, and their
        columns."""
        unknown = [n for n in names if n not in self.rulebook.sources]
        if unknown:
            raise RetainerError(f"no source named '{unknown[0]}'",
                                hint="sources: " + ", ".join(self.rulebook.sources))
        engine = self._opened()
        subset = replace(self.rulebook, sources={n: self.rulebook.sources[n] for n in names})
        return engine, engine.attach_sources(subset)

    def catalog(self) -> Catalog:
        """What the engine sees of every source (for validating the rulebook)."""
        return self.read(list(self.rulebook.sources))[1]

    def close(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.close_after_reading()

    def _opened(self) -> Engine:
        if self._engine is None:
            from retainer.engines import create_engine
            from retainer.engines.duckdb import DuckDBEngine
            self._engine = DuckDBEngine() if self.rulebook.config.engine == "duckdb" \
                else create_engine(self.rulebook)
        return self._engine


# The reader of the innermost `shared_sources`. Found through the context rather than
# passed down, because some reads are reached through code every command shares (the
# checks `retainer validate` makes read the contacts' roles).
_SHARED: ContextVar[SourceReader | None] = ContextVar("shared_sources", default=None)


@contextmanager
def shared_sources(rulebook: Rulebook) -> Iterator[SourceReader]:
    """Every `open_sources` of this rulebook inside the block reads through one engine,
    closed when the block ends (however it ends), or earlier by `close`."""
    reader = SourceReader(rulebook)
    token = _SHARED.set(reader)
    try:
        yield reader
    finally:
        _SHARED.reset(token)
        reader.close()


@contextmanager
def open_sources(rulebook: Rulebook, names: list[str]) -> Iterator[tuple[Engine, Catalog]]:
    """The project's engine with `src_<name>` over the named sources, and their columns:
    the shared engine inside `shared_sources`, else one opened for this read."""
    shared = _SHARED.get()
    if shared is not None and shared.rulebook is rulebook:
        yield shared.read(names)
        return
    reader = SourceReader(rulebook)
    try:
        yield reader.read(names)
    finally:
        reader.close()
