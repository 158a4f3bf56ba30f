"""What measures read, gathered in one in-memory DuckDB connection.

* the project's sources, as the `src_<name>` views the engine attaches;
* the accounts *as of* a date (`snapshot(as_of)`): the published results when they were
  computed for that date, otherwise the rulebook evaluated again as of it — exactly, since
  nothing dated after `as_of` is ever counted — with state machines starting from the stages
  history held just before it;
* `observed_until`: the latest moment the project has looked at its data (the latest run), so
  an outcome whose horizon ends later is known to be incomplete.

Every query is a sqlglot tree rendered for DuckDB; nothing is built by pasting strings.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlglot import exp

from retainer.compile.catalog import Catalog
from retainer.compile.plan import compile_plan
from retainer.compile.sql import alias, col
from retainer.compile.staging import src
from retainer.engines.duckdb import DuckDBEngine
from retainer.errors import RetainerError
from retainer.project import Project, utc_now
from retainer.rulebook.loader import Rulebook
from retainer.state import store_exists

DIALECT = "duckdb"
PUBLISHED = "published"  # the catalog the output database is attached as


@dataclass
class Workspace:
    project: Project
    engine: DuckDBEngine
    catalog: Catalog
    published_as_of: datetime | None
    history_as_of: datetime | None      # the latest run in history
    observed_until: datetime
    snapshots: dict[datetime, str] = field(default_factory=dict)

    @property
    def rulebook(self) -> Rulebook:
        return self.project.rulebook

    @property
    def latest(self) -> datetime:
        """The date measures default to: the latest results (published or in history)."""
        known = [m for m in (self.published_as_of, self.history_as_of) if m is not None]
        if not known:
            raise RetainerError("no results to measure yet",
                                hint="run 'retainer run' (or 'retainer backfill') first, or "
                                     "pass --as-of")
        return max(known)

    @property
    def key(self) -> str:
        return self.rulebook.key_column("account")

    def rows(self, query: exp.Query) -> list[tuple[Any, ...]]:
        return self.engine.query(query)

    def create_table(self, name: str, query: exp.Query) -> str:
        self.engine.create_table(name, query)
        return name

    def register(self, name: str, table: Any) -> str:
        """An Arrow table (rows from the state store) as a temporary table."""
        self.engine.connection.register("__arrow", table)
        try:
            self.create_table(name, exp.select(exp.Star()).from_("__arrow"))
        finally:
            self.engine.connection.unregister("__arrow")
        return name

    def columns(self, table: str) -> dict[str, str]:
        rows = self.rows(exp.Describe(this=exp.to_table(table)))  # type: ignore[arg-type]
        return {str(r[0]): str(r[1]) for r in rows}

    # --- the accounts as of a date ----------------------------------------------------------

    def snapshot(self, as_of: datetime) -> str:
        """A table with one row per account as of `as_of` (the columns of account_results)."""
        if as_of in self.snapshots:
            return self.snapshots[as_of]
        name = f"snapshot_{len(self.snapshots)}"
        if as_of == self.published_as_of:
            self.create_table(name, exp.select(exp.Star()).from_(
                exp.table_("account_results", db="main", catalog=PUBLISHED)))
        else:
            self._evaluate(as_of)
            self.create_table(name, exp.select(exp.Star()).from_(
                exp.table_("account_results", db="main")))
        self.snapshots[as_of] = name
        return name

    def _evaluate(self, as_of: datetime) -> None:
        plan = compile_plan(self.rulebook, self.catalog, as_of, utc_now())
        # Text files are parsed on every read, and a report evaluates several dates.
        self.engine.materialize_sources(self.rulebook, plan.sources,
                                        ("csv", "json", "parquet"))
        if plan.state_machines:
            self.engine.load_previous_state(self._stages_before(as_of, plan.state_machines))
        self.engine.execute(plan)
        self.engine.publish(plan, {"as_of": as_of.isoformat(sep=" ")})

    def _stages_before(self, as_of: datetime, dimensions: Sequence[str]) -> Any:
        """The open stages history held just before `as_of` (None without a store)."""
        if not _store_exists(self.project):
            return None
        at = exp.cast(exp.Literal.string(as_of.isoformat(sep=" ")), "TIMESTAMP")
        query = (exp.select("level", "entity_id", "dimension", "segment", "entered_at")
                 .from_("memberships")
                 .where(col("dimension").isin(*(exp.Literal.string(d) for d in dimensions)))
                 .where(col("entered_at") < at)
                 .where(exp.or_(col("exited_at").is_(exp.null()), col("exited_at") >= at.copy())))
        with self.project.store() as store:
            return store.backend.fetch_arrow(query)

    # --- sources -------------------------------------------------------------------------

    def source_rows(self, source: str) -> tuple[exp.Select, exp.Expr]:
        """`FROM src_<source> AS s` with the joins that give each row its account id, and the
        expression of that id (text; through the identity map, or through the row's contact)."""
        spec = self.rulebook.sources[source]
        select = exp.select().from_(exp.alias_(exp.to_table(src(source)), "s"))
        if spec.account is not None:
            own = exp.cast(col(spec.account, "s"), "VARCHAR")
            identities = self.rulebook.source_of_kind("identities")
            if identities is None:
                return select, own
            select = select.join(self._identity_map(identities).subquery("ids"),
                                 join_type="left", on=col("__alias", "ids").eq(own))
            return select, exp.Coalesce(this=col("__account", "ids"), expressions=[own.copy()])
        contacts = self.rulebook.source_of_kind("contacts")
        if contacts is None or spec.contact is None:
            raise RetainerError(f"source '{source}' names neither an account nor a contact "
                                "that belongs to one")
        contact = exp.cast(col(spec.contact, "s"), "VARCHAR")
        select = select.join(self._contact_map(contacts).subquery("c"), join_type="left",
                             on=col("__contact", "c").eq(contact))
        return select, col("__account", "c")

    def _identity_map(self, source: str) -> exp.Select:
        # As in the pipeline: an alias claimed by two accounts resolves to the smaller id.
        spec = self.rulebook.sources[source]
        assert spec.alias and spec.account
        alias_id = exp.cast(col(spec.alias, "s"), "VARCHAR")
        return (exp.select(alias(alias_id, "__alias"),
                           alias(exp.Min(this=exp.cast(col(spec.account, "s"), "VARCHAR")),
                                 "__account"))
                .from_(exp.alias_(exp.to_table(src(source)), "s"))
                .where(col(spec.alias, "s").is_(exp.null()).not_())
                .where(col(spec.account, "s").is_(exp.null()).not_())
                .group_by(alias_id.copy()))

    def _contact_map(self, source: str) -> exp.Select:
        """Each contact id's account (the smaller one if a contact id appears twice)."""
        spec = self.rulebook.sources[source]
        assert spec.key and spec.account
        rows, account = self.source_rows(source)
        key = exp.cast(col(spec.key, "s"), "VARCHAR")
        return (rows.select(alias(key, "__contact"), alias(exp.Min(this=account), "__account"))
                .where(col(spec.key, "s").is_(exp.null()).not_()).group_by(key.copy()))


@contextmanager
def open_workspace(project: Project) -> Iterator[Workspace]:
    """A workspace over the project's sources, its published results and its history."""
    engine = DuckDBEngine()
    try:
        catalog = engine.attach_sources(project.rulebook)
        published = _attach_published(project, engine)
        latest = _history_as_of(project)
        known = [m for m in (published, latest) if m is not None]
        yield Workspace(project, engine, catalog, published, latest,
                        max(known) if known else utc_now())
    finally:
        engine.close()


def _attach_published(project: Project, engine: DuckDBEngine) -> datetime | None:
    path = project.output_database
    if not path.exists():
        return None
    attach = exp.Attach(this=exp.alias_(exp.Literal.string(str(path)), PUBLISHED),
                        expressions=[exp.AttachOption(this=exp.var("READ_ONLY"))])
    engine.connection.execute(attach.sql(DIALECT))
    info = exp.table_("run_info", db="main", catalog=PUBLISHED)
    try:
        rows = dict(engine.query(exp.select("key", "value").from_(info).where(
            col("key").isin(exp.Literal.string("as_of"), exp.Literal.string("rulebook_hash")))))
    except RetainerError:
        return None
    # Results of another version of the rulebook may lack what the measures group by.
    if "as_of" not in rows or json.loads(rows.get("rulebook_hash", "null")) != \
            project.rulebook.content_hash:
        return None
    return datetime.fromisoformat(json.loads(rows["as_of"]))


def _store_exists(project: Project) -> bool:
    return store_exists(project.rulebook.config.state, project.root)


def _history_as_of(project: Project) -> datetime | None:
    if not _store_exists(project):
        return None
    with project.store() as store:
        return store.latest_as_of()


def moment(value: datetime) -> exp.Expr:
    """A timestamp literal (UTC, naive) for the trees."""
    return exp.cast(exp.Literal.string(value.isoformat(sep=" ")), "TIMESTAMP")
