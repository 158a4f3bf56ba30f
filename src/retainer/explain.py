"""Why an entity is where it is — read back from what the run stored, never recomputed.

The run keeps every rule clause's value (`*_reasons` tables) and the rulebook's rule texts
(`run_info.explain`), so an explanation always agrees with the published segments.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlglot import exp

from retainer.engines.duckdb import DuckDBEngine
from retainer.errors import RetainerError, did_you_mean


@dataclass(frozen=True)
class Clause:
    text: str
    value: bool | None
    uses: list[tuple[str, Any]]


@dataclass(frozen=True)
class RuleOutcome:
    segment: str
    when: str | None          # None: the `else` rule
    matched: bool
    mode: str = "all"
    clauses: list[Clause] = field(default_factory=list)

    def failed(self) -> list[Clause]:
        """The clauses that kept this rule from matching (not true: false or unknown)."""
        return [c for c in self.clauses if c.value is not True]


@dataclass(frozen=True)
class Hold:
    """A state machine kept the previous stage instead of the one the rules gave."""

    reason: str               # "min_days" or "transition"
    candidate: str | None     # what the rules gave
    since: datetime | None    # when the held stage was entered
    rule: str                 # the state machine's rule, in words


@dataclass(frozen=True)
class DimensionOutcome:
    name: str
    segment: str | None
    rules: list[RuleOutcome]   # rules tried, in order, up to the one that matched
    held: Hold | None = None


@dataclass(frozen=True)
class TagOutcome:
    name: str
    holds: bool
    when: str
    clauses: list[Clause]


@dataclass(frozen=True)
class ComponentOutcome:
    name: str
    trait: str
    value: Any
    score: float | None
    weight: float
    share: float              # weight actually used after redistribution (0–1)
    missing: str | float


@dataclass(frozen=True)
class HealthOutcome:
    score: float | None
    band: str | None
    components: list[ComponentOutcome]
    bands: list[tuple[str, float]]


@dataclass(frozen=True)
class Explanation:
    level: str
    entity_id: str
    as_of: str
    rulebook_hash: str
    row: dict[str, Any]
    traits: dict[str, tuple[Any, str]]        # name → (value, definition)
    dimensions: list[DimensionOutcome]
    tags: list[TagOutcome]
    health: HealthOutcome | None


def explain(engine: DuckDBEngine, entity_id: str, level: str = "account") -> Explanation:
    info = {str(k): json.loads(v) for k, v in engine.query(
        exp.select("key", "value").from_("run_info"))}
    spec = info["explain"]["levels"].get(level)
    if spec is None:
        raise RetainerError(f"this rulebook computes nothing per {level}")
    results = f"{level}_results"
    key_column = _columns(engine, results)[0]
    row = _row(engine, results, key_column, entity_id)
    if row is None:
        candidates = [str(r[0]) for r in engine.query(
            exp.select(exp.column(key_column, quoted=True)).from_(results))]
        raise RetainerError(f"no {level} with id '{entity_id}' in the last run",
                            hint=did_you_mean(entity_id, candidates)
                            or f"ids look like: {', '.join(candidates[:5])}")
    reasons = _row(engine, f"{level}_reasons", "__key", entity_id) or {}
    values = {**reasons, **row}
    machines = spec.get("state_machines", {})
    dimensions = [_dimension(name, rules, values, machines.get(name)) for name, rules in
                  spec["dimensions"].items()]
    tags = [TagOutcome(name, bool(values.get(name)), tag["when"],
                       _clauses(tag["clauses"], values)) for name, tag in spec["tags"].items()]
    traits = {name: (values.get(name), definition) for name, definition in
              spec["traits"].items()}
    health = _health(spec.get("health"), values)
    return Explanation(level, entity_id, str(info.get("as_of")), str(info.get("rulebook_hash")),
                       row, traits, dimensions, tags, health)


def _dimension(name: str, rules: list[dict[str, Any]], values: dict[str, Any],
               machine: dict[str, Any] | None) -> DimensionOutcome:
    segment = values.get(name)
    hold = values.get(f"__hold__{name}") if machine else None
    held = None
    if hold is not None and machine is not None:
        held = _hold(hold, machine, segment, values.get(f"__cand__{name}"),
                     values.get(f"__since__{name}"))
        segment = held.candidate  # the rules below are the ones that gave the candidate
    tried: list[RuleOutcome] = []
    for rule in rules:
        matched = rule["segment"] == segment
        if rule["when"] is None:
            tried.append(RuleOutcome(rule["segment"], None, matched))
        else:
            tried.append(RuleOutcome(rule["segment"], rule["when"], matched, rule["mode"],
                                     _clauses(rule["clauses"], values)))
        if matched:
            break
    return DimensionOutcome(name, values.get(name), tried, held)


def _hold(reason: str, machine: dict[str, Any], stage: Any, candidate: Any,
          since: Any) -> Hold:
    if reason == "min_days":
        rule = f"'{stage}' lasts at least {machine['min_days'].get(stage)} days"
    else:
        allowed = ", ".join(machine["transitions"].get(stage) or []) or "nothing"
        rule = f"'{stage}' may only move to {allowed}"
    return Hold(reason, candidate, since, rule)


def _clauses(specs: list[dict[str, Any]], values: dict[str, Any]) -> list[Clause]:
    return [Clause(c["text"], values.get(c["flag"]),
                   [(u["label"], values.get(u["column"])) for u in c["uses"]]) for c in specs]


def _health(spec: dict[str, Any] | None, values: dict[str, Any]) -> HealthOutcome | None:
    if spec is None:
        return None
    present = sum(c["weight"] for c in spec["components"]
                  if values.get(f"health__{c['component']}") is not None)
    components = []
    for c in spec["components"]:
        score = values.get(f"health__{c['component']}")
        share = c["weight"] / present if score is not None and present else 0.0
        components.append(ComponentOutcome(c["component"], c["trait"], values.get(c["trait"]),
                                           score, c["weight"], share, c["missing"]))
    return HealthOutcome(values.get("health"), values.get("health_band"), components,
                         [(str(b[0]), float(b[1])) for b in spec["bands"]])


def _columns(engine: DuckDBEngine, table: str) -> list[str]:
    query = exp.select(exp.Star()).from_(table).limit(0)
    cursor = engine.connection.execute(query.sql("duckdb"))
    return [d[0] for d in cursor.description]


def _row(engine: DuckDBEngine, table: str, key: str, value: str) -> dict[str, Any] | None:
    query = exp.select(exp.Star()).from_(table).where(
        exp.cast(exp.column(key, quoted=True), "VARCHAR").eq(exp.Placeholder()))
    cursor = engine.connection.execute(query.sql("duckdb"), [value])
    row = cursor.fetchone()
    if row is None:
        return None
    return dict(zip([d[0] for d in cursor.description], row, strict=True))
