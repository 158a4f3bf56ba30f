"""Taking a person's id, address and other details out of stored values and free text.

Structured places are handled where they are written (a ledger payload's `contact` object
becomes the tombstone). What is left is text that may quote the person anywhere: a title,
a destination's error message that echoes the record it refused ("invalid address
ann@…"), a decision's note about a failed delivery. Those are scrubbed token by token, so a
contact id `c1` inside `c12` or inside a timestamp is left alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from sqlglot import exp

from retainer.state import Store

ERASED = "[erased]"

# Free text the store keeps that a destination's error (or a template) may have filled with
# a person's details: (table, its key columns, the text column).
FREE_TEXT: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("ledger", ("action_key",), "error"),
    ("ledger", ("action_key",), "reason"),
    ("decisions", ("decision_id",), "reason"),
    ("acts", ("act_id",), "error"),
    ("sync_log", ("sync_id",), "error"),
    ("dead_letters", ("sync", "record_key"), "error"),
)


def longest_first(values: Iterable[str]) -> list[str]:
    """Distinct non-empty values, longest first: an address goes before the id inside it."""
    return sorted({v for v in values if v}, key=len, reverse=True)


def scrub(value: Any, secrets: Sequence[str]) -> Any:
    """`value` (text, or JSON-like lists and mappings of it) with every whole-token
    occurrence of each secret replaced by `[erased]`, compared without case."""
    if isinstance(value, dict):
        return {k: scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v, secrets) for v in value]
    if isinstance(value, str):
        for secret in secrets:
            value = _token(secret).sub(ERASED, value)
    return value


def _token(secret: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w@.-]){re.escape(secret)}(?![\w@.-])", re.IGNORECASE)


def scrub_free_text(store: Store, secrets: Sequence[str]) -> None:
    """Scrub the secrets out of every free-text column of the store. Runs no transaction
    of its own: call it inside the erasure's."""
    secrets = longest_first(secrets)
    if not secrets:
        return
    for table, keys, column in FREE_TEXT:
        text = exp.Lower(this=exp.column(column))
        mentions = exp.or_(*(exp.StrPosition(this=text.copy(), substr=exp.Placeholder())
                             .neq(exp.Literal.number(0)) for _ in secrets))
        query = exp.select(*keys, column).from_(table).where(mentions)
        for *key, value in store.backend.fetch(query, [s.lower() for s in secrets]):
            cleaned = scrub(value, secrets)
            if cleaned == value:
                continue  # the secret only appeared inside a longer token
            match = exp.and_(*(exp.column(k).eq(exp.Placeholder()) for k in keys))
            store.backend.execute(exp.update(table, {column: exp.Placeholder()}, where=match),
                                  [cleaned, *key])
