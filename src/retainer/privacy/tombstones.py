"""Tombstones: what is left of a forgotten person — a salted hash of their id and address.

The salt is a random secret of the store, made at its first erasure and never shown. With it
the store can tell that a contact id or an address coming back in the sources belongs to a
forgotten person; without it a tombstone cannot be matched against a list of known ids or
addresses (a plain hash of an email address can).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from retainer.state import Store

SALT_NAME = "erasure_salt"
SubjectKind = Literal["contact", "email"]


def normal_email(address: str) -> str:
    """Addresses are compared without case and surrounding spaces."""
    return address.strip().lower()


def subject_hash(salt: str, value: str) -> str:
    """sha256(salt ‖ value) in hex — the same as DuckDB's `sha256(salt || value)`."""
    return hashlib.sha256((salt + value).encode("utf-8")).hexdigest()


def store_salt(store: Store, create: bool = False) -> str | None:
    """The store's erasure salt; made (once) when `create` is set."""
    rows = store.backend.fetch("SELECT secret FROM store_secrets WHERE name = ?", [SALT_NAME])
    if rows:
        return str(rows[0][0])
    if not create:
        return None
    salt = secrets.token_hex(32)
    store.backend.execute("INSERT INTO store_secrets (name, secret) VALUES (?, ?)",
                          [SALT_NAME, salt])
    return salt


@dataclass(frozen=True)
class Tombstone:
    subject_hash: str
    kind: SubjectKind
    erased_at: datetime
    propagated: dict[str, Any]

    @property
    def complete(self) -> bool:
        return bool(self.propagated.get("complete"))


def tombstones(store: Store, hashes: list[str] | None = None) -> list[Tombstone]:
    """Every tombstone, or those with the given hashes."""
    rows = store.backend.fetch("SELECT subject_hash, kind, erased_at, propagated FROM erasures "
                               "ORDER BY erased_at, subject_hash")
    wanted = set(hashes) if hashes is not None else None
    return [Tombstone(str(r[0]), r[1], r[2], json.loads(r[3]) if r[3] else {})
            for r in rows if wanted is None or r[0] in wanted]


def forgotten_hashes(store: Store) -> list[str]:
    return [str(r[0]) for r in store.backend.fetch("SELECT subject_hash FROM erasures")]


def write_tombstone(store: Store, digest: str, kind: SubjectKind, erased_at: datetime,
                    propagated: dict[str, Any]) -> None:
    """Insert a tombstone, or update what was propagated for one that exists (a person
    forgotten again keeps the time of the first erasure)."""
    text = json.dumps(propagated, sort_keys=True, default=str)
    if store.backend.fetch("SELECT 1 FROM erasures WHERE subject_hash = ?", [digest]):
        store.backend.execute("UPDATE erasures SET propagated = ? WHERE subject_hash = ?",
                              [text, digest])
    else:
        store.backend.execute("INSERT INTO erasures (subject_hash, kind, erased_at, propagated) "
                              "VALUES (?, ?, ?, ?)", [digest, kind, erased_at, text])


class Forgotten:
    """Tells whether a contact id or an address belongs to a forgotten person — for code
    that reads contacts from the sources directly (who a playbook reaches)."""

    def __init__(self, salt: str | None, hashes: frozenset[str]) -> None:
        self.salt = salt
        self.hashes = hashes

    @classmethod
    def of(cls, store: Store) -> Forgotten:
        hashes = frozenset(forgotten_hashes(store))
        return cls(store_salt(store) if hashes else None, hashes)

    def __bool__(self) -> bool:
        return bool(self.hashes)

    def __call__(self, contact_id: str | None, email: str | None = None) -> bool:
        if self.salt is None:
            return False
        return any(subject_hash(self.salt, value) in self.hashes for value in (
            contact_id, normal_email(email) if email else None) if value)
