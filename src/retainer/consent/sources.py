"""Source tables read as they are *now* — not the run's snapshot — for the consent gate and
for contacts' addresses at dispatch: a withdrawal recorded after the run must still stop
the next message, and a changed address must be the one used.

Sources are read through the project's engine, only the ones asked for: an in-memory DuckDB
for `engine: duckdb` (files, or tables of the project's DuckDB database), else the configured
engine — PostgreSQL reads its `table:` sources in the database, Spark those of its catalog —
so a source is read wherever the run reads it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING

from retainer.errors import RetainerError
from retainer.rulebook.loader import Rulebook

if TYPE_CHECKING:
    from retainer.compile.catalog import Catalog
    from retainer.engines.base import Engine


def source_of_kind(rulebook: Rulebook, kind: str) -> str | None:
    return next((n for n, s in rulebook.sources.items() if s.kind == kind), None)


def consent_source(rulebook: Rulebook) -> str | None:
    """The consents source: `consent.source`, else the source of kind consents."""
    return rulebook.consent.source or source_of_kind(rulebook, "consents")


@contextmanager
def open_sources(rulebook: Rulebook, names: list[str]) -> Iterator[tuple[Engine, Catalog]]:
    """The project's engine with `src_<name>` over the named sources, and their columns."""
    from retainer.engines import create_engine
    from retainer.engines.duckdb import DuckDBEngine

    unknown = [n for n in names if n not in rulebook.sources]
    if unknown:
        raise RetainerError(f"no source named '{unknown[0]}'",
                            hint="sources: " + ", ".join(rulebook.sources))
    subset = replace(rulebook, sources={n: rulebook.sources[n] for n in names})
    engine: Engine = DuckDBEngine() if rulebook.config.engine == "duckdb" \
        else create_engine(subset)
    try:
        catalog = engine.attach_sources(subset)
        yield engine, catalog
    finally:
        engine.close()
