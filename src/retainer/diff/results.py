"""Each side evaluated in its own in-memory DuckDB engine, and both sides' published results
joined in a third connection (as Arrow tables), where every count is one set-based query."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
from sqlglot import exp

from retainer.compile.plan import Plan, compile_plan
from retainer.diff.impact import Cell, Level, LevelTotal
from retainer.diff.rulebooks import Side, as_side
from retainer.engines.duckdb import DuckDBEngine
from retainer.errors import ValidationError
from retainer.rulebook.loader import Rulebook

# The open memberships of some dimensions, as an Arrow table of (level, entity_id, dimension,
# segment, entered_at): the stages state machines start from.
History = Callable[[Sequence[str], datetime], Any]
LEVELS: tuple[Level, ...] = ("account", "contact")
DIALECT = "duckdb"
# Comparison columns are prefixed by kind (`d__` dimension, `t__` tag, `h__` health) so a tag
# and a dimension of the same name cannot collide; a side lacking one gets a typed NULL.
_KINDS = {"d": "VARCHAR", "t": "BOOLEAN", "h__score": "DOUBLE", "h__band": "VARCHAR"}


@dataclass(frozen=True)
class EvaluatedSide:
    engine: DuckDBEngine
    plan: Plan
    side: Side

    def spec(self, level: Level) -> dict[str, Any]:
        levels: dict[str, dict[str, Any]] = self.plan.explain["levels"]
        return levels.get(level, {})

    def dimensions(self, level: Level) -> dict[str, list[dict[str, Any]]]:
        return dict(self.spec(level).get("dimensions", {}))

    def tags(self, level: Level) -> dict[str, dict[str, Any]]:
        return dict(self.spec(level).get("tags", {}))

    def health(self) -> dict[str, Any] | None:
        return self.spec("account").get("health")

    def columns(self, level: Level) -> dict[str, str]:
        """Result column → comparison column."""
        out = {name: f"d__{name}" for name in self.dimensions(level)}
        out |= {name: f"t__{name}" for name in self.tags(level)}
        if level == "account" and self.health() is not None:
            out |= {"health": "h__score", "health_band": "h__band"}
        return out

    def results(self, level: Level) -> Any:
        """The level's results as an Arrow table: a text key and the compared columns."""
        table = f"{level}_results"
        cursor = self.engine.connection.execute(
            exp.select(exp.Star()).from_(table).limit(0).sql(DIALECT))
        key = str(cursor.description[0][0])
        query = exp.select(_alias(exp.cast(_col(key), "VARCHAR"), "__key"), *(
            _alias(_col(column), alias) for column, alias in self.columns(level).items()))
        return self.engine.connection.sql(query.from_(table).sql(DIALECT)).to_arrow_table()


@contextmanager
def evaluated(rulebook: Rulebook, side: Side, label: str, as_of: datetime,
              clock: datetime, history: History | None) -> Iterator[EvaluatedSide]:
    """Run `rulebook` in memory and publish there: nothing reaches the project's outputs."""
    engine = DuckDBEngine()
    try:
        try:
            plan = compile_plan(rulebook, engine.attach_sources(rulebook), as_of, clock)
        except ValidationError as exc:
            raise as_side(side, label, exc) from None
        if history is not None and plan.state_machines:
            engine.load_previous_state(history(plan.state_machines, as_of))
        engine.execute(plan)
        engine.publish(plan, {"as_of": as_of.isoformat(sep=" "), "project":
                              rulebook.config.name, "rulebook_hash": rulebook.content_hash})
        yield EvaluatedSide(engine, plan, side)
    finally:
        engine.close()


class Joined:
    """Both sides' results in one connection: per level, a full outer join on the entity key
    (an entity missing on one side has NULLs there)."""

    def __init__(self, old: EvaluatedSide, new: EvaluatedSide) -> None:
        self.old, self.new = old, new
        self.connection = duckdb.connect()
        self.levels = [lvl for lvl in LEVELS if old.spec(lvl) or new.spec(lvl)]
        try:
            for level in self.levels:
                self._join(level)
        except BaseException:
            self.connection.close()
            raise

    def _join(self, level: Level) -> None:
        for run in (self.old, self.new):
            name = f"{run.side}_{level}"
            if run.spec(level):
                self.connection.register(name, run.results(level))
            else:
                schema = exp.Schema(this=exp.to_table(name), expressions=[exp.ColumnDef(
                    this=exp.to_identifier("__key"), kind=exp.DataType.build("VARCHAR"))])
                self.connection.execute(exp.Create(this=schema, kind="TABLE").sql(DIALECT))
        old_key, new_key = _col("__key", "old"), _col("__key", "new")
        columns: list[exp.Expr] = [
            _alias(exp.Coalesce(this=old_key, expressions=[new_key.copy()]), "__key"),
            _alias(exp.Not(this=old_key.copy().is_(exp.null())), "__in_old"),
            _alias(exp.Not(this=new_key.copy().is_(exp.null())), "__in_new")]
        compared = dict.fromkeys([*self.old.columns(level).values(),
                                  *self.new.columns(level).values()])
        for run in (self.old, self.new):
            present = set(run.columns(level).values())
            for column in compared:
                kind = _KINDS[column] if column in _KINDS else _KINDS[column[0]]
                value = _col(column, run.side) if column in present else exp.cast(
                    exp.null(), kind)
                columns.append(_alias(value, f"{run.side}__{column}"))
        query = exp.select(*columns).from_(exp.to_table(f"old_{level}").as_("old")).join(
            exp.to_table(f"new_{level}").as_("new"), on=old_key.copy().eq(new_key.copy()),
            join_type="full outer")
        self.connection.execute(exp.Create(this=exp.to_table(f"joined_{level}"), kind="TABLE",
                                           expression=query).sql(DIALECT))

    def rows(self, query: exp.Query) -> list[tuple[Any, ...]]:
        return self.connection.execute(query.sql(DIALECT)).fetchall()

    def matrix(self, level: Level, column: str) -> tuple[Cell, ...]:
        old, new = _col(f"old__{column}"), _col(f"new__{column}")
        query = exp.select(old, new, exp.Count(this=exp.Star())).from_(
            f"joined_{level}").group_by(old.copy(), new.copy())
        return tuple(Cell(r[0], r[1], int(r[2])) for r in self.rows(query))

    def sample_keys(self, level: Level, column: str, limit: int
                    ) -> list[tuple[str | None, str | None, str]]:
        """The `limit` smallest ids (in text order) of every moved from → to cell."""
        old, new = _col(f"old__{column}"), _col(f"new__{column}")
        number = exp.Window(this=exp.RowNumber(), partition_by=[old.copy(), new.copy()],
                            order=exp.Order(expressions=[exp.Ordered(this=_col("__key"))]))
        moved = exp.and_(exp.NullSafeNEQ(this=old.copy(), expression=new.copy()),
                         _col("__in_old"), _col("__in_new"))
        inner = exp.select(old, new, _col("__key"), _alias(number, "__n")).from_(
            f"joined_{level}").where(moved)
        query = exp.select(_col(f"old__{column}"), _col(f"new__{column}"), _col("__key")).from_(
            inner.subquery("moved")).where(
            exp.LTE(this=_col("__n"), expression=exp.Literal.number(limit))).order_by(
            _col("__key"))
        return [(r[0], r[1], str(r[2])) for r in self.rows(query)]

    def totals(self, level: Level, shared: Sequence[str]) -> LevelTotal:
        moved = exp.or_(*(exp.NullSafeNEQ(this=_col(f"old__d__{name}"),
                                          expression=_col(f"new__d__{name}"))
                          for name in shared)) if shared else exp.false()
        entities, changed = self.rows(exp.select(exp.Count(this=exp.Star()), exp.CountIf(
            this=moved)).from_(f"joined_{level}"))[0]
        return LevelTotal(level, int(entities), int(changed or 0))

    def tag_counts(self, level: Level, name: str) -> tuple[int, int, int, int]:
        """Holders before, holders after, gained, lost."""
        old = exp.Coalesce(this=_col(f"old__t__{name}"), expressions=[exp.false()])
        new = exp.Coalesce(this=_col(f"new__t__{name}"), expressions=[exp.false()])
        query = exp.select(
            exp.CountIf(this=old), exp.CountIf(this=new.copy()),
            exp.CountIf(this=exp.and_(new.copy(), exp.not_(old.copy()))),
            exp.CountIf(this=exp.and_(old.copy(), exp.not_(new.copy())))).from_(
            f"joined_{level}")
        row = self.rows(query)[0]
        return int(row[0]), int(row[1]), int(row[2]), int(row[3])

    def score_change(self) -> tuple[int, float | None, float | None]:
        """Scores that differ, and the mean and largest absolute change."""
        old, new = _col("old__h__score"), _col("new__h__score")
        change = exp.Abs(this=exp.Sub(this=new, expression=old))
        row = self.rows(exp.select(
            exp.CountIf(this=exp.NullSafeNEQ(this=old.copy(), expression=new.copy())),
            exp.Avg(this=change), exp.Max(this=change.copy())).from_("joined_account"))[0]
        return int(row[0] or 0), _rounded(row[1]), _rounded(row[2])

    def close(self) -> None:
        self.connection.close()


def _col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table=table, quoted=True)


def _alias(expression: exp.Expr, name: str) -> exp.Expr:
    return exp.alias_(expression, name, quoted=True)


def _rounded(value: Any) -> float | None:
    return None if value is None else round(float(value), 2)
