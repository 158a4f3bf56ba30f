"""Frozen, validated models of a project and its rulebook. Unknown keys are errors.

The YAML shapes are documented in docs/rulebook.md; these classes are their single definition.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    model_validator,
)
from pydantic import Tag as UnionTag

from retainer.rulebook.windows import Window, parse_duration

# Lowercase words joined by single underscores: `__` is reserved for internal columns.
NAME_PATTERN = r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$"
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
Entity = Literal["account", "contact"]
WindowField = Annotated[Window, BeforeValidator(Window.parse)]
DurationField = Annotated[timedelta, BeforeValidator(parse_duration)]


class Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True,
                              arbitrary_types_allowed=True)


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


# --- measures --------------------------------------------------------------------------------

METRICS = ("nps", "csat", "logo_retention", "gross_revenue_retention", "net_revenue_retention",
           "expansion_rate", "mean", "rate")
Metric = Literal["nps", "csat", "logo_retention", "gross_revenue_retention",
                 "net_revenue_retention", "expansion_rate", "mean", "rate"]
SURVEY_METRICS = ("nps", "csat")
REVENUE_METRICS = ("gross_revenue_retention", "net_revenue_retention", "expansion_rate")
BILLING_METRICS = ("logo_retention", *REVENUE_METRICS)
TRAIT_METRICS = ("mean", "rate")
# A trait, `health`, `health_band` or `health.<component>` (a column of the results).
MeasureColumn = Annotated[str, Field(pattern=r"^[a-z][a-z0-9]*(_[a-z0-9]+)*"
                                             r"(\.[a-z][a-z0-9]*(_[a-z0-9]+)*)?$")]


class Buckets(Model):
    """Groups by ranges of a number: `{trait: mrr, buckets: [0, 500, 5000]}` gives
    `< 0`, `0–500`, `500–5000` and `≥ 5000` (each range includes its lower bound)."""

    trait: MeasureColumn
    buckets: tuple[float, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _increasing(self) -> Buckets:
        if any(b <= a for a, b in zip(self.buckets, self.buckets[1:], strict=False)):
            raise ValueError("buckets must be increasing bounds, e.g. [0, 500, 5000]")
        return self


def _by_kind(value: Any) -> str:
    return "buckets" if isinstance(value, (dict, Buckets)) else "name"


# `by:` is a name, or a mapping of buckets; errors come from the shape that was written.
GroupBy = Annotated[Annotated[MeasureColumn, UnionTag("name")]
                    | Annotated[Buckets, UnionTag("buckets")], Discriminator(_by_kind)]


class Measure(Model):
    """A figure computed inside each group of accounts, with its sample size and a confidence
    interval (docs/measures.md): `{metric: nps, by: value_tier}`."""

    metric: Metric
    by: GroupBy | None = None
    trait: MeasureColumn | None = None           # mean, rate
    horizon: DurationField | None = None         # retention metrics: how far ahead
    window: DurationField | None = None          # surveys: answers in (as_of − window, as_of]
    source: Name | None = None                   # the surveys / subscriptions source
    score: str = "score"                         # surveys: the answer's score column
    where: str | None = None                     # surveys: which answers count
    satisfied: float = 4                         # csat: a score at least this is satisfied
    cancelled: str = "cancelled_at"              # subscriptions: when it was cancelled
    revenue: str = "mrr"                         # subscriptions: recurring revenue
    confidence: float = Field(default=0.95, gt=0.5, lt=1)
    min_sample: int = Field(default=30, ge=1)    # smaller groups are flagged
    description: str | None = None

    @model_validator(mode="after")
    def _fits_metric(self) -> Measure:
        metric, given = self.metric, self.model_fields_set
        if metric in TRAIT_METRICS and self.trait is None:
            raise ValueError(f"metric '{metric}' needs 'trait': the trait (or health, "
                             "health.<component>, a tag) it is computed from")
        if metric in BILLING_METRICS and self.horizon is None:
            raise ValueError(f"metric '{metric}' needs 'horizon': how far after as_of "
                             "to look, e.g. horizon: 90d")
        allowed = {"metric", "by", "confidence", "min_sample", "description"}
        allowed |= {"trait"} if metric in TRAIT_METRICS else set()
        allowed |= {"window", "source", "score", "where"} if metric in SURVEY_METRICS else set()
        allowed |= {"satisfied"} if metric == "csat" else set()
        allowed |= {"horizon", "source", "cancelled"} if metric in BILLING_METRICS else set()
        allowed |= {"revenue"} if metric in REVENUE_METRICS else set()
        extra = sorted(given - allowed)
        if extra:
            raise ValueError(f"'{extra[0]}' does not apply to metric '{metric}'; it takes "
                             + ", ".join(sorted(allowed - {"metric"})))
        if self.horizon is not None and not self.horizon:
            raise ValueError("horizon must be a positive duration, e.g. 90d")
        if self.window is not None and not self.window:
            raise ValueError("window must be a positive duration, e.g. 365d")
        return self


# --- playbooks -------------------------------------------------------------------------------

def _share(value: Any) -> Any:
    """`10%` or `0.1` → 0.1 (a holdout is a share of the eligible entities)."""
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            return float(value.strip()[:-1]) / 100
        except ValueError:
            raise ValueError(f"'{value}' is not a share; write 10% or 0.1") from None
    return value


class Trigger(Model):
    """When a playbook fires (docs/playbooks.md). `enter`, `exit` and `in` name a segment as
    `dimension.segment`, or a tag; `in` fires once `days` into a stay (and again `every`)."""

    enter: str | None = None
    exit: str | None = None
    in_: str | None = Field(default=None, alias="in")
    days: int = Field(default=0, ge=0)           # `in`: how long in the segment first
    every: DurationField | None = None           # `in`: fire again while the stay lasts
    within: DurationField = timedelta(days=7)    # enter/exit: how late it may still fire

    @model_validator(mode="after")
    def _one_kind(self) -> Trigger:
        given = [k for k in ("enter", "exit", "in_") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a trigger needs exactly one of 'enter', 'exit' or 'in' (a "
                             "segment as dimension.segment, or a tag)")
        if self.in_ is None and ("days" in self.model_fields_set or self.every is not None):
            raise ValueError("'days' and 'every' go with 'in' (e.g. in: lifecycle.at_risk, "
                             "days: 14)")
        if self.in_ is not None and "within" in self.model_fields_set:
            raise ValueError("'within' goes with 'enter' and 'exit'; 'in' fires once a stay "
                             "is 'days' old, however late the next act comes")
        if self.every is not None and not self.every:
            raise ValueError("'every' must be a positive duration, e.g. 7d")
        if not self.within:
            raise ValueError("'within' must be a positive duration, e.g. 7d")
        return self

    @property
    def kind(self) -> Literal["enter", "exit", "in"]:
        return "enter" if self.enter else "exit" if self.exit else "in"

    @property
    def segment(self) -> str:
        return str(self.enter or self.exit or self.in_)


class TaskAction(Model):
    """A task for a person: the owner is an account column of the results (e.g. owner) or
    the account's first contact with a role (then the task carries that contact's data and
    passes the consent gate for `channel`)."""

    title: str                                   # a template: {name}, {lifecycle}, …
    owner: str | None = None                     # a results column holding the owner
    owner_role: str | None = None                # …or a contact role
    due: DurationField = timedelta(days=3)
    channel: str | None = None                   # how the owner reaches the contact (phone)
    to: Name | None = None                       # a destination; else kept in the ledger
    stream: str | None = None                    # the destination's table / routing key
    note: str | None = None                      # a template, like the title

    @model_validator(mode="after")
    def _one_owner(self) -> TaskAction:
        if self.owner is not None and self.owner_role is not None:
            raise ValueError("give 'owner' (an account column) or 'owner_role', not both")
        return self


class RouteAction(Model):
    """Put the account in a named work queue (e.g. onboarding, renewals)."""

    queue: str
    to: Name | None = None
    stream: str | None = None


class MessageAction(Model):
    """A message to the account's contacts with the given roles, through a destination;
    every one passes the consent gate for the playbook's purpose and this channel."""

    to: Name
    template: str                                # the template's name in the sending tool
    channel: str = "email"
    roles: tuple[str, ...] | None = None         # None: every contact of the account
    fields: tuple[str, ...] = ()                 # results columns sent as merge fields
    contact_fields: tuple[str, ...] = ()         # contacts source columns (e.g. name)
    stream: str | None = None


class WebhookAction(Model):
    """A call to a webhook destination with the action as JSON."""

    to: Name
    event: str | None = None                     # sent as the event name; default playbook
    fields: tuple[str, ...] = ()                 # results columns sent with the event
    stream: str | None = None


ACTION_KINDS = ("task", "route", "message", "webhook")


class Action(Model):
    """One of `task`, `route`, `message`, `webhook`."""

    task: TaskAction | None = None
    route: RouteAction | None = None
    message: MessageAction | None = None
    webhook: WebhookAction | None = None

    @model_validator(mode="after")
    def _one(self) -> Action:
        given = [k for k in ACTION_KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("an action is one of " + ", ".join(ACTION_KINDS) +
                             f"; found {', '.join(given) or 'none'}")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ACTION_KINDS if getattr(self, k) is not None)

    @property
    def body(self) -> TaskAction | RouteAction | MessageAction | WebhookAction:
        body = getattr(self, self.kind)
        assert body is not None
        return body  # type: ignore[no-any-return]


class Cap(Model):
    """At most `max` actions within `per`."""

    max: int = Field(ge=1)
    per: DurationField

    @model_validator(mode="after")
    def _positive(self) -> Cap:
        if not self.per:
            raise ValueError("'per' must be a positive duration, e.g. 7d")
        return self


class Caps(Model):
    """Frequency caps: actions per account, and messages per contact, across playbooks."""

    account: Cap | None = None
    contact: Cap | None = None


class Outcome(Model):
    """What success means for uplift against the holdout: `after` the occurrence, the
    entity is in one of `in` (segments or tags) and in none of `not_in`."""

    in_: tuple[str, ...] = Field(default=(), alias="in")
    not_in: tuple[str, ...] = ()
    after: DurationField = timedelta(days=30)

    @model_validator(mode="after")
    def _something(self) -> Outcome:
        if not self.in_ and not self.not_in:
            raise ValueError("an outcome needs 'in' or 'not_in' (segments as "
                             "dimension.segment, or tags), e.g. not_in: [lifecycle.lapsed]")
        if not self.after:
            raise ValueError("'after' must be a positive duration, e.g. 30d")
        return self


class Playbook(Model):
    """Work the rulebook drives: a trigger, a condition, actions, and their limits."""

    purpose: Name                                # what the data is used for (consent)
    on: Trigger | None = None                    # None: fires while `when` holds
    when: str | None = None                      # a condition over the results
    entity: Entity = "account"
    actions: tuple[Action, ...] = Field(min_length=1)
    cooldown: DurationField | None = None        # no second firing within this time
    caps: Caps | None = None                     # overrides the project's `act.caps`
    holdout: Annotated[float, BeforeValidator(_share)] = Field(default=0, ge=0, lt=1)
    stops: tuple[Name, ...] = ()                 # playbooks that stop for these entities
    outcome: Outcome | None = None               # success, for uplift against the holdout
    description: str | None = None

    @model_validator(mode="after")
    def _fires(self) -> Playbook:
        if self.on is None and self.when is None:
            raise ValueError("a playbook needs 'on' (enter, exit or in a segment) or 'when' "
                             "(a condition)")
        return self


# A playbook with only `when` fires while it holds; without a cooldown it would fire at
# every act, so it gets this one.
CONDITION_COOLDOWN = timedelta(days=30)


class ActSettings(Model):
    """Project-wide settings of `retainer act`."""

    caps: Caps | None = None
    holdout_salt: str | None = None              # default: the project name
    max_attempts: int = Field(default=5, ge=1)   # deliveries tried before giving up


# --- consent ---------------------------------------------------------------------------------

ConsentRule = Literal["opt_in", "opt_out", "none"]


class JurisdictionPolicy(Model):
    """How consent works for contacts in some jurisdictions: per purpose, `opt_in` (a granted
    consent is needed), `opt_out` (allowed unless denied or withdrawn) or `none`."""

    match: tuple[str, ...] = Field(min_length=1)  # codes (DE, US-CA) or prefixes (US*)
    purposes: dict[Name, ConsentRule] = Field(default_factory=dict)
    default: ConsentRule = "opt_in"

    @model_validator(mode="after")
    def _patterns(self) -> JurisdictionPolicy:
        for pattern in self.match:
            if not pattern.strip() or "*" in pattern.rstrip("*") or pattern.strip() == "*":
                raise ValueError(f"'{pattern}' is not a jurisdiction pattern; write a code "
                                 "(DE, US-CA) or a prefix ending in * (US*); contacts "
                                 "matching no policy get 'otherwise'")
        return self


EU_EEA_UK = ("AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU",
             "IE", "IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES",
             "SE", "IS", "LI", "NO", "GB", "UK", "EU", "EEA")


def _default_jurisdictions() -> dict[str, JurisdictionPolicy]:
    return {
        "eu": JurisdictionPolicy(match=EU_EEA_UK, purposes={"marketing": "opt_in"},
                                 default="opt_out"),
        "us": JurisdictionPolicy(match=("US", "US*"), purposes={"marketing": "opt_out"},
                                 default="opt_out"),
    }


class ConsentSettings(Model):
    """The consent gate: where consents are, how to find a contact's jurisdiction, and the
    policy per jurisdiction. Contacts matching no policy get `otherwise` (opt-in: safe).
    Policies given under `jurisdictions` come before the built-in `eu` and `us` (so a
    code both name is the user's) and replace one of the same name; `builtin_policies:
    false` starts from none."""

    source: Name | None = None                   # default: the source of kind consents
    jurisdiction: str | None = None              # a contacts column, e.g. country
    jurisdictions: dict[Name, JurisdictionPolicy] = Field(
        default_factory=_default_jurisdictions)
    builtin_policies: bool = True
    otherwise: ConsentRule = "opt_in"

    @model_validator(mode="after")
    def _with_builtins(self) -> ConsentSettings:
        if self.builtin_policies and "jurisdictions" in self.model_fields_set:
            merged = {**self.jurisdictions, **{k: v for k, v in _default_jurisdictions().items()
                                               if k not in self.jurisdictions}}
            object.__setattr__(self, "jurisdictions", merged)
        elif not self.builtin_policies and "jurisdictions" not in self.model_fields_set:
            object.__setattr__(self, "jurisdictions", {})
        return self


# --- destinations and syncs ------------------------------------------------------------------

class PostgresDestination(Model):
    type: Literal["postgres"]
    url: str                                     # postgresql://user@host:5432/db
    schema_: str = Field(default="public", alias="schema")  # for tables named without one
    timeout: float = Field(default=30, gt=0)     # seconds to connect, wait for a lock, write
    retries: int = Field(default=3, ge=0)        # per batch, reconnecting each time
    backoff: float = Field(default=1, ge=0)      # seconds before the first retry, doubling
    batch: int = Field(default=1000, ge=1)       # rows per transaction


class WebhookDestination(Model):
    type: Literal["webhook"]
    url: str
    secret_env: str | None = None                # environment variable with the HMAC key
    timeout: float = Field(default=10, gt=0)     # seconds per attempt
    retries: int = Field(default=4, ge=0)
    backoff: float = Field(default=1, ge=0)      # seconds before the first retry, doubling
    headers: dict[str, str] = Field(default_factory=dict)
    batch: int = Field(default=100, ge=1)        # records per request


class FilesDestination(Model):
    type: Literal["files"]
    dir: str
    format: Literal["parquet", "csv"] = "parquet"


class RabbitMQDestination(Model):
    type: Literal["rabbitmq"]
    url: str = "amqp://guest:guest@127.0.0.1:5672/%2F"
    exchange: str = "retainer"                   # a durable topic exchange, declared if missing
    timeout: float = Field(default=10, gt=0)     # seconds to connect and for each confirm
    retries: int = Field(default=3, ge=0)        # per batch, reconnecting each time
    backoff: float = Field(default=1, ge=0)      # seconds before the first retry, doubling
    batch: int = Field(default=500, ge=1)        # messages per recorded batch


Destination = Annotated[PostgresDestination | WebhookDestination | FilesDestination
                        | RabbitMQDestination, Field(discriminator="type")]
DESTINATION_TYPES = ("postgres", "webhook", "files", "rabbitmq")


class Sync(Model):
    """Results pushed to a destination: the current rows (`upsert`, or `mirror`, which also
    removes entities that left), or one message per segment change (`changes`)."""

    to: Name
    purpose: Name = "operations"
    entity: Entity = "account"
    mode: Literal["upsert", "mirror", "changes"] = "upsert"
    table: str | None = None                     # table, file name or routing key; default
                                                 # the sync's name
    columns: tuple[str, ...] = ()                # default: segments, tags and health
    where: str | None = None                     # only entities where this holds
    description: str | None = None


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


def is_name(text: str) -> bool:
    return re.match(NAME_PATTERN, text) is not None
