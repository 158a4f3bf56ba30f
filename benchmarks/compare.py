"""Cell-by-cell comparison of two implementations' results (Retainer's are the reference).

Text, booleans, timestamps (segments, tags, bands, included account columns) must be equal;
numbers agree within 1e-9 relative, health within 0.01. Missing values are equal to each
other only. A row or column that one side lacks counts as a disagreement.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

RELATIVE = 1e-9
ABSOLUTE = {"health": 0.01}
IGNORED = {"as_of"}


@dataclass
class Disagreements:
    """Disagreeing cells per column, plus rows only one side has."""

    level: str
    rows: int
    missing_rows: int = 0
    extra_rows: int = 0
    by_column: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.missing_rows + self.extra_rows + sum(self.by_column.values())


def compare_files(reference: Path, other: Path, key: str, level: str) -> Disagreements:
    return compare(pd.read_parquet(reference), pd.read_parquet(other), key, level)


def compare(reference: pd.DataFrame, other: pd.DataFrame, key: str, level: str) -> Disagreements:
    ref = reference.set_index(key).sort_index()
    oth = other.set_index(key).sort_index()
    found = Disagreements(level, len(ref))
    found.missing_rows = int((~ref.index.isin(oth.index)).sum())
    found.extra_rows = int((~oth.index.isin(ref.index)).sum())
    common = ref.index.intersection(oth.index)
    ref, oth = ref.loc[common], oth.loc[common]
    for column in ref.columns:
        if column in IGNORED:
            continue
        if column not in oth.columns:
            found.by_column[column] = len(common)
            found.examples.append(f"{level}: column {column} is missing")
            continue
        equal = _equal(ref[column], oth[column], column)
        bad = int((~equal).sum())
        if bad:
            found.by_column[column] = bad
            first = equal.index[~equal.to_numpy()][0]
            found.examples.append(f"{level} {first}: {column} = {ref.at[first, column]!r} "
                                  f"vs {oth.at[first, column]!r}")
    return found


def _equal(left: pd.Series, right: pd.Series, column: str) -> pd.Series:
    both_missing = left.isna().to_numpy() & right.isna().to_numpy()
    numeric = pd.api.types.is_numeric_dtype(left) and not pd.api.types.is_bool_dtype(left)
    if numeric and pd.api.types.is_numeric_dtype(right):
        a = left.to_numpy(dtype=float, na_value=np.nan)
        b = right.to_numpy(dtype=float, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            if column in ABSOLUTE:
                close = np.abs(a - b) <= ABSOLUTE[column] + 1e-12
            else:
                close = np.abs(a - b) <= RELATIVE * np.maximum(np.abs(a), np.abs(b))
        return pd.Series(close | both_missing, index=left.index)
    if pd.api.types.is_datetime64_any_dtype(left) and pd.api.types.is_datetime64_any_dtype(right):
        a, b = _values(left.astype("datetime64[us]")), _values(right.astype("datetime64[us]"))
    else:
        a, b = _values(left), _values(right)
    same = (a == b) & ~left.isna().to_numpy() & ~right.isna().to_numpy()
    return pd.Series(same | both_missing, index=left.index)


def _values(series: pd.Series) -> np.ndarray:
    """Plain Python objects, missing values as None (pd.NA would refuse to compare)."""
    values: np.ndarray = series.to_numpy(dtype=object)
    values[series.isna().to_numpy()] = None
    return values
