"""What differs between engines' SQL, as data the compiler consults (never `if engine == …`).

DuckDB is the reference: every other value of a field says how to spell DuckDB's meaning in an
engine that lacks the construct or gives it another meaning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

TextTime = Literal["try_cast", "iso_pattern"]


@dataclass(frozen=True)
class Capabilities:
    dialect: str
    # How `latest`/`first` pick the value at the latest/earliest time: ARG_MAX over a
    # (time, value) row where the engine has it, else the first of an ordered ARRAY_AGG.
    value_at_time: Literal["arg_max", "array_agg"] = "arg_max"
    transactional_ddl: bool = True    # outputs publish atomically in one transaction
    create_or_replace_table: bool = True  # PostgreSQL has CREATE OR REPLACE only for views
    # How a text time column is parsed: TRY_CAST (unparseable text → NULL), or, where there is
    # no TRY_CAST, a cast guarded by an ISO-8601 pattern that checks the calendar too.
    text_time: TextTime = "try_cast"
    # ROUND(x, n): the engine's own, or DuckDB's rounding of a double spelt out (x·10ⁿ
    # rounded half away from zero, then ÷10ⁿ), where ROUND works on exact decimals instead.
    rounding: Literal["native", "half_away_double"] = "native"
    # AVG returns a double (DuckDB) or, over integers, an exact decimal that is cast to one.
    avg_is_double: bool = True
    # MIN/MAX over booleans and CAST(boolean AS DOUBLE) work, or go through BOOL_AND/BOOL_OR
    # and INT.
    boolean_arithmetic: bool = True
    # contains(text, part): a function of the engine, or STRPOS(text, part) > 0.
    contains_function: bool = True
    # Each CTE layer of an entity pipeline computed once (`AS MATERIALIZED`) where the engine
    # would otherwise inline the layers into one another, copying every expression into each
    # place that reads it (on PostgreSQL the demo's run_account goes from 45 s to 0.3 s).
    materialize_layers: bool = False


DIALECTS = {
    "duckdb": Capabilities("duckdb"),
    "postgres": Capabilities("postgres", create_or_replace_table=False,
                             value_at_time="array_agg", text_time="iso_pattern",
                             rounding="half_away_double", avg_is_double=False,
                             boolean_arithmetic=False, contains_function=False,
                             materialize_layers=True),
    "spark": Capabilities("spark", transactional_ddl=False),
    "databricks": Capabilities("databricks", transactional_ddl=False),
    "snowflake": Capabilities("snowflake", value_at_time="array_agg"),
    "bigquery": Capabilities("bigquery", value_at_time="array_agg"),
}
