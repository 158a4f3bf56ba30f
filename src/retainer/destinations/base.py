"""What every destination is: something that takes records for a stream, idempotently.

A record is keyed: delivering the same record twice leaves the destination as delivering it
once (an upsert by key, a message with a stable id, a file rewritten by key). That is what
lets a sync or a playbook retry after any failure without duplicating anything.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from retainer.errors import Location, RetainerError

if TYPE_CHECKING:
    from retainer.rulebook.loader import Rulebook


@dataclass(frozen=True)
class Record:
    key: str                      # stable id of what the record describes
    entity_id: str                # the account or contact it is about
    payload: dict[str, Any] = field(default_factory=dict)   # JSON-serialisable
    op: Literal["upsert", "delete"] = "upsert"


def require_driver(module: str, destination: str, extra: str,
                   location: Location | None) -> None:
    """Import a destination type's driver now, or say how to install it."""
    try:
        importlib.import_module(module)
    except ImportError:
        raise RetainerError(f"destination '{destination}' needs {module}", location=location,
                            hint=f"pip install 'retainer[{extra}]'") from None


class DeliveryError(RetainerError):
    """A destination refused or could not take records. `retryable` failures (down,
    timeout, 5xx) are retried; the others (4xx, bad configuration) are not."""

    def __init__(self, message: str, *, retryable: bool, hint: str | None = None,
                 attempts: int = 1) -> None:
        super().__init__(message, hint=hint)
        self.retryable = retryable
        self.attempts = attempts  # how many times the destination was tried before giving up


class Destination(ABC):
    """One module per destination type implements this; `open_destination` picks it."""

    kind: str
    supports_delete: bool = True  # can it remove what it holds (mirror mode, erasure)
    # How many records a sync hands to one `deliver` call and commits as one batch: each
    # call rewrites a file, opens a transaction or waits for confirms, so big is cheaper,
    # while small loses less work to a failure.
    batch_size: int = 500

    def __init__(self, name: str) -> None:
        self.name = name

    @classmethod
    def open(cls, name: str, settings: Any, rulebook: Rulebook,
             location: Location | None = None) -> Destination:
        """Build the destination from its rulebook settings (`open_destination` calls this);
        `location` is where it is declared, for errors about its settings."""
        raise NotImplementedError(f"{cls.__name__} cannot be opened from a rulebook")

    @abstractmethod
    def deliver(self, stream: str, records: Sequence[Record]) -> None:
        """Deliver every record to `stream` (a table, file, routing key or path) or raise
        DeliveryError; records already delivered must not be duplicated by a redelivery."""

    def close(self) -> None:  # noqa: B027 - most destinations hold nothing open
        """Release connections."""

    def __enter__(self) -> Destination:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
