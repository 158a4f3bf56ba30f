"""Frozen, validated models of a project and its rulebook. Unknown keys are errors.

The YAML shapes are documented in docs/rulebook.md; these classes (and those of
measure_models, playbook_models and destination_models) are their single definition.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from retainer.rulebook.fields import Entity, Model, Name, WindowField
from retainer.rulebook.playbook_models import ActSettings
from retainer.rulebook.windows import Window

# --- sources ---------------------------------------------------------------------------------

SourceKind = Literal["accounts", "contacts", "identities", "surveys", "subscriptions",
                     "consents", "events"]

# What each kind of source must declare; `events` stands for any timestamped table.
_REQUIRED: dict[str, tuple[tuple[str, ...], ...]] = {
    "accounts": (("key",),),
    "contacts": (("key",), ("account",)),
    "identities": (("alias",), ("account",)),
    "surveys": (("contact", "account"), ("time",)),
    "subscriptions": (("account",),),
    "consents": (("contact",), ("time",)),
    "events": (("account", "contact"), ("time",)),
}


LegalBasis = Literal["consent", "contract", "legitimate_interest", "legal_obligation",
                     "vital_interests", "public_task"]


class Provenance(Model):
    """Where data came from and what it may be used for (docs/consent.md). On a source it is
    the default for all its columns; under `columns:` it is one column's own."""

    legal_basis: LegalBasis | None = None
    purposes: tuple[Name, ...] | None = None     # None: no restriction was declared
    jurisdiction: str | None = None
    origin: str | None = None                    # e.g. "signup form", "billing system"


class Source(Model):
    """A table of input data: a file (CSV, Parquet, JSON) or a table of the project database."""

    kind: SourceKind = "events"
    from_: str | None = Field(default=None, alias="from")
    table: str | None = None
    format: Literal["csv", "parquet", "json"] | None = None
    key: str | None = None
    account: str | None = None
    contact: str | None = None
    time: str | None = None
    role: str | None = None
    alias: str | None = None
    email: str | None = None                     # contacts: the address column (erasure)
    provenance: Provenance | None = None
    columns: dict[str, Provenance] = Field(default_factory=dict)
    description: str | None = None

    @model_validator(mode="after")
    def _check_shape(self) -> Source:
        if (self.from_ is None) == (self.table is None):
            raise ValueError("give exactly one of 'from' (a file path or glob) or 'table' "
                             "(a table in the project database)")
        for options in _REQUIRED[self.kind]:
            if all(getattr(self, option) is None for option in options):
                need = " or ".join(f"'{o}'" for o in options)
                raise ValueError(f"a source of kind '{self.kind}' needs {need} (the column "
                                 f"that holds {_MEANING[options[0]]})")
        for option in ("role", "email"):
            if getattr(self, option) is not None and self.kind != "contacts":
                raise ValueError(f"'{option}' is only for sources of kind 'contacts'")
        return self

    def provenance_of(self, column: str) -> Provenance | None:
        """A column's declared provenance: its own, else the source's."""
        return self.columns.get(column, self.provenance)

    def file_format(self) -> str:
        """The declared format, else the one the file extension implies."""
        if self.format:
            return self.format
        path = (self.from_ or "").lower()
        for suffix, fmt in ((".parquet", "parquet"), (".pq", "parquet"), (".csv", "csv"),
                            (".tsv", "csv"), (".json", "json"), (".jsonl", "json"),
                            (".ndjson", "json"), (".csv.gz", "csv")):
            if path.endswith(suffix):
                return fmt
        raise ValueError(f"cannot tell the format of '{self.from_}' from its extension; "
                         "add format: csv | parquet | json")


_MEANING = {"key": "each row's unique id", "account": "the account id",
            "contact": "the contact id", "time": "the row's timestamp",
            "alias": "the other system's id"}


# --- traits ----------------------------------------------------------------------------------

AGGREGATES = ("count", "count_distinct", "sum", "avg", "min", "max", "latest", "first",
              "exists")
# Aggregates whose value is a source name rather than an expression over its columns.
ROW_AGGREGATES = ("count", "exists")


class AggregateTrait(Model):
    """A value computed from a source's rows inside a window, per account or per contact."""

    count: str | None = None
    count_distinct: str | None = None
    sum: str | None = None
    avg: str | None = None
    min: str | None = None
    max: str | None = None
    latest: str | None = None
    first: str | None = None
    exists: str | None = None
    from_: str | None = Field(default=None, alias="from")
    where: str | None = None
    window: WindowField = Window()
    entity: Entity = "account"
    default: float | int | str | bool | None = None
    description: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _need_function(cls, data: Any) -> Any:
        if isinstance(data, dict):
            given = [key for key in AGGREGATES if key in data]
            if len(given) != 1:
                found = ", ".join(given) if given else "none"
                raise ValueError("a trait needs exactly one of " + ", ".join(AGGREGATES) +
                                 f" (or 'expr' for a derived trait); found {found}")
            func = given[0]
            if func in ROW_AGGREGATES and "from" in data:
                raise ValueError(f"'{func}' names its source directly ({func}: events); "
                                 "remove 'from'")
            if func not in ROW_AGGREGATES and "from" not in data:
                raise ValueError(f"'{func}' needs 'from': the source whose column it reads")
        return data

    @property
    def func(self) -> str:
        return next(key for key in AGGREGATES if getattr(self, key) is not None)

    @property
    def source(self) -> str:
        return self.from_ if self.from_ is not None else str(getattr(self, self.func))

    @property
    def value(self) -> str | None:
        """The expression aggregated; None for row aggregates (count, exists)."""
        return None if self.func in ROW_AGGREGATES else str(getattr(self, self.func))


class DerivedTrait(Model):
    """An expression over other traits, entity columns and `as_of`."""

    expr: str
    entity: Entity = "account"
    description: str | None = None


Trait = AggregateTrait | DerivedTrait


# --- segments, tags, health ------------------------------------------------------------------

class Rule(Model):
    """One ordered rule of a dimension; `when` None is the `else` rule."""

    segment: Name
    when: str | None
    description: str | None = None


class StateMachine(Model):
    """Stages that do not flap: a minimum time in a stage, and the moves allowed out of it."""

    min_days: dict[Name, int] = Field(default_factory=dict)
    transitions: dict[Name, tuple[Name, ...]] = Field(default_factory=dict)


class Dimension(Model):
    """Exclusive segments: rules are tried in order and the first that matches wins."""

    rules: tuple[Rule, ...] = Field(min_length=1)
    entity: Entity = "account"
    description: str | None = None
    state_machine: StateMachine | None = None

    @model_validator(mode="after")
    def _else_last(self) -> Dimension:
        names = [rule.segment for rule in self.rules]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"segment {duplicates[0]!r} appears twice; each segment of a "
                             "dimension is one rule (combine conditions with 'or')")
        for index, rule in enumerate(self.rules[:-1]):
            if rule.when is None:
                later = self.rules[index + 1].segment
                raise ValueError(f"rule '{later}' comes after 'else' ({rule.segment}) and "
                                 "could never match; move 'else' to the end")
        machine = self.state_machine
        if machine is not None:
            named = [*machine.min_days, *machine.transitions,
                     *(t for targets in machine.transitions.values() for t in targets)]
            for segment in named:
                if segment not in names:
                    raise ValueError(f"state_machine names '{segment}', which is not a segment "
                                     "of this dimension; segments: " + ", ".join(names))
            for segment, days in machine.min_days.items():
                if days < 0:
                    raise ValueError(f"min_days for '{segment}' must be 0 or more")
        return self


class Tag(Model):
    """An overlapping label: any number of tags can hold for one entity."""

    when: str
    entity: Entity = "account"
    description: str | None = None


def _scale_points(value: Any) -> Any:
    if isinstance(value, dict):
        try:
            return tuple(sorted((float(k), float(v)) for k, v in value.items()))
        except (TypeError, ValueError):
            raise ValueError("a scale maps trait values to scores, e.g. "
                             "{0: 0, 5: 40, 20: 100}") from None
    return value


class HealthComponent(Model):
    """A trait mapped to 0–100 by a piecewise-linear scale, weighted into the score."""

    trait: Name
    weight: float = Field(gt=0)
    scale: Annotated[tuple[tuple[float, float], ...], BeforeValidator(_scale_points)]
    missing: Literal["redistribute"] | float = "redistribute"
    description: str | None = None

    @model_validator(mode="after")
    def _check_scale(self) -> HealthComponent:
        if len(self.scale) < 2:
            raise ValueError("a scale needs at least two points, e.g. {0: 0, 10: 100}")
        for _, score in self.scale:
            if not 0 <= score <= 100:
                raise ValueError(f"scale scores must lie between 0 and 100, got {score:g}")
        if not isinstance(self.missing, str) and not 0 <= self.missing <= 100:
            raise ValueError("missing: give 'redistribute' or a score between 0 and 100")
        return self


class Health(Model):
    """A weighted health score with per-component breakdown and named bands."""

    components: dict[Name, HealthComponent] = Field(min_length=1)
    bands: dict[Name, float] = Field(min_length=1)

    @model_validator(mode="after")
    def _check_bands(self) -> Health:
        if min(self.bands.values()) > 0:
            raise ValueError("the lowest band must start at 0 so every score has a band")
        if len(set(self.bands.values())) != len(self.bands):
            raise ValueError("two bands start at the same score")
        return self

    def ordered_bands(self) -> list[tuple[str, float]]:
        """Bands from the highest threshold down: the first the score reaches is its band."""
        return sorted(self.bands.items(), key=lambda item: -item[1])


# --- project ---------------------------------------------------------------------------------

class Output(Model):
    """Where a run's results go: a DuckDB database plus exported files."""

    database: str = ".retainer/output.duckdb"
    export_dir: str = ".retainer/export"
    formats: tuple[Literal["parquet", "csv"], ...] = ("parquet",)
    include: tuple[str, ...] = ()  # account columns copied into the results (name, owner, …)


class PostgresSettings(Model):
    """Where the PostgreSQL engine runs: sources are tables or views of `source_schema` (or
    files loaded with COPY), and work and result tables go to `schema`."""

    url: str = "postgresql://localhost/postgres"
    schema_: str = Field(default="retainer", alias="schema")
    source_schema: str | None = None


class SparkSettings(Model):
    """How the Spark engine connects: a master URL (`local[*]`, `spark://host:7077`)."""

    master: str = "local[*]"
    app_name: str = "retainer"
    config: dict[str, str] = Field(default_factory=dict)


class ProjectConfig(Model):
    """`retainer.yml`: the project's settings. Rulebook sections may also live here."""

    name: Name
    engine: Literal["duckdb", "postgres", "spark"] = "duckdb"
    postgres: PostgresSettings | None = None
    spark: SparkSettings | None = None
    entity: Literal["account"] = "account"
    database: str | None = None
    state: str = ".retainer/state.duckdb"
    output: Output = Output()
    rulebook: tuple[str, ...] = ("rulebook",)
    tests: tuple[str, ...] = ("tests",)
    act: ActSettings = ActSettings()
    description: str | None = None
