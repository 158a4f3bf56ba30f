"""What differs between engines' SQL, as data the compiler consults (never `if engine == …`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Capabilities:
    dialect: str
    # How `latest`/`first` pick the value at the latest/earliest time: ARG_MAX over a
    # (time, value) row where the engine has it, else the first of an ordered ARRAY_AGG.
    value_at_time: Literal["arg_max", "array_agg"] = "arg_max"
    transactional_ddl: bool = True    # outputs publish atomically in one transaction


DIALECTS = {
    "duckdb": Capabilities("duckdb"),
    "postgres": Capabilities("postgres", value_at_time="array_agg"),
    "spark": Capabilities("spark", transactional_ddl=False),
    "databricks": Capabilities("databricks", transactional_ddl=False),
    "snowflake": Capabilities("snowflake", value_at_time="array_agg"),
    "bigquery": Capabilities("bigquery", value_at_time="array_agg"),
}
