"""Retrying a delivery: exponential backoff with jitter, the same for every destination."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from retainer.destinations.base import DeliveryError


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 4                 # attempts after the first
    backoff: float = 1.0             # seconds before the first retry, doubling each time
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    @property
    def attempts(self) -> int:
        return self.retries + 1

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry `attempt` (1-based): exponential with up to 25%
        jitter, so many clients do not come back at the same instant; a server's
        Retry-After wins when it asks for longer."""
        base = self.backoff * 2.0 ** (attempt - 1)
        wait = base + random.uniform(0, base / 4)
        return max(wait, retry_after) if retry_after is not None else wait

    def wait(self, attempt: int, retry_after: float | None = None) -> None:
        self.sleep(self.delay(attempt, retry_after))

    def gave_up(self, destination: str, last: str, hint: str, tried: int | None = None
                ) -> DeliveryError:
        """The error once every attempt failed (`tried`: fewer, when a server asked to
        wait longer than is worth it)."""
        attempts = self.attempts if tried is None else tried
        return DeliveryError(f"destination '{destination}' failed after {attempts} "
                             f"attempt(s): {last}", retryable=True, hint=hint,
                             attempts=attempts)
