"""Checks of the syncs against the compiled plan: run by `retainer validate` and before
every `retainer sync`. Settings only known when sending (a webhook's secret in the
environment) are checked when the destination is opened. A sync must be the only writer
of its target (sync/targets.py)."""

from __future__ import annotations

from retainer.compile.catalog import Catalog
from retainer.compile.plan import Plan
from retainer.destinations import destination_class
from retainer.destinations.files import valid_stream
from retainer.errors import Problem, did_you_mean
from retainer.rulebook.destination_models import Sync
from retainer.rulebook.expressions import ExpressionError, Type
from retainer.rulebook.loader import Origin, Rulebook
from retainer.sync import targets
from retainer.sync.columns import compile_where, dimension_names, planned_columns
from retainer.sync.plan import stream_of


def problems(rulebook: Rulebook, plan: Plan, catalog: Catalog) -> list[Problem]:
    found: list[Problem] = []
    for name, sync in rulebook.syncs.items():
        origin = rulebook.origin("syncs", name)
        settings = rulebook.destinations.get(sync.to)
        if settings is None:
            declared = sorted(rulebook.destinations)
            found.append(Problem(
                f"sync '{name}' sends to '{sync.to}', which is not a declared destination",
                origin.at("to"), did_you_mean(sync.to, declared) or (
                    "declared destinations: " + ", ".join(declared) if declared else
                    "declare it under 'destinations:' (see docs/sync.md)")))
        stream = stream_of(name, sync)
        if settings is not None:
            found += _destination_fit(name, sync, settings.type, stream, origin)
        columns = planned_columns(rulebook, plan, sync.entity)
        if not columns:
            found.append(Problem(
                f"sync '{name}' sends {sync.entity}s, but the rulebook publishes no "
                f"{sync.entity} results", origin.at("entity"),
                "contact results need a contacts source and contact traits, segments or "
                "tags"))
            continue
        found += _columns(rulebook, name, sync, columns, origin)
    if rulebook.syncs:
        found += targets.problems(rulebook)
    return found


def _destination_fit(name: str, sync: Sync, kind: str, stream: str, origin: Origin
                     ) -> list[Problem]:
    found = []
    if sync.mode == "mirror" and not destination_class(kind).supports_delete:
        found.append(Problem(f"sync '{name}' mirrors to a {kind} destination, which cannot "
                             "delete", origin.at("mode"), "use mode: upsert"))
    where = origin.at("table") if sync.table else origin.location
    if kind == "files" and not valid_stream(stream):
        found.append(Problem(f"'{stream}' cannot be a file name", where,
                             "use letters, digits, '_', '-' and '.' in 'table' (no '/')"))
    if kind == "postgres" and stream.count(".") > 1:
        found.append(Problem(f"'{stream}' is not a table name", where,
                             "write table or schema.table"))
    return found


def _columns(rulebook: Rulebook, name: str, sync: Sync, columns: dict[str, Type],
             origin: Origin) -> list[Problem]:
    found = []
    if sync.mode == "changes":
        followed = dimension_names(rulebook, sync.entity)
        for index, column in enumerate(sync.columns):
            if column not in followed:
                found.append(Problem(
                    f"sync '{name}' sends segment changes, and '{column}' is not a "
                    f"dimension or tag of {sync.entity}s", origin.at("columns", index),
                    did_you_mean(column, followed) or "list dimensions and tags to follow "
                    "(default: all of them)"))
        if sync.where is not None:
            found.append(Problem("'where' does not apply to mode: changes",
                                 origin.at("where"), "a changes sync sends every change of "
                                 "the dimensions and tags in 'columns'; remove 'where'"))
        return found
    for index, column in enumerate(sync.columns):
        if column not in columns:
            found.append(Problem(
                f"'{column}' is not a column of the {sync.entity} results",
                origin.at("columns", index), did_you_mean(column, columns) or
                "results hold the traits, segments, tags, health and included columns"))
    try:
        compile_where(sync, columns)
    except ExpressionError as exc:
        found.append(Problem(exc.message, origin.inside(("where",), exc.offset), exc.hint))
    return found
