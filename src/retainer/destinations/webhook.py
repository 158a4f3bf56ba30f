"""Webhook destination: records POSTed as signed JSON, in batches, retried with backoff.

Each request carries `{"stream", "sent_at", "records": [{key, entity_id, op, payload}]}`.
`X-Retainer-Signature: sha256=<hex>` is the HMAC-SHA256 of the exact body with the key
from the environment variable `secret_env`; the body holds `sent_at`, so the signature also
vouches for the time (receivers can refuse stale requests). `Idempotency-Key` is a hash of
the batch's records, equal for every attempt and every resend of the same records, so a
receiver can drop a repeat. docs/sync.md shows a receiver verifying both.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from retainer.destinations.base import DeliveryError, Destination, Record
from retainer.destinations.retry import RetryPolicy
from retainer.errors import Location, RetainerError
from retainer.rulebook.destination_models import WebhookDestination as WebhookSettings
from retainer.rulebook.loader import Rulebook

SIGNATURE_HEADER = "X-Retainer-Signature"
TIMESTAMP_HEADER = "X-Retainer-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
RETRY_AFTER_LIMIT = 300.0       # seconds: a server asking for longer is treated as down
RETRYABLE_STATUS = frozenset({408, 425, 429})


class WebhookDestination(Destination):
    kind = "webhook"

    def __init__(self, name: str, url: str, *, secret: bytes | None = None,
                 timeout: float = 10, batch: int = 100, headers: dict[str, str] | None = None,
                 policy: RetryPolicy | None = None) -> None:
        super().__init__(name)
        self.url = url
        self.secret = secret
        self.batch_size = batch
        self.policy = policy or RetryPolicy()
        self.client = httpx.Client(timeout=timeout, headers=headers or {},
                                   follow_redirects=False)

    @classmethod
    def open(cls, name: str, settings: Any, rulebook: Rulebook,
             location: Location | None = None) -> WebhookDestination:
        assert isinstance(settings, WebhookSettings)
        secret = None
        if settings.secret_env is not None:
            value = os.environ.get(settings.secret_env)
            if not value:
                raise RetainerError(
                    f"destination '{name}' signs requests with the key in the environment "
                    f"variable {settings.secret_env}, which is not set",
                    location=location,
                    hint=f"export {settings.secret_env}=… (the secret the receiver verifies "
                         "with) and try again")
            secret = value.encode()
        return cls(name, settings.url, secret=secret, timeout=settings.timeout,
                   batch=settings.batch, headers=dict(settings.headers),
                   policy=RetryPolicy(settings.retries, settings.backoff))

    def deliver(self, stream: str, records: Sequence[Record]) -> None:
        for start in range(0, len(records), self.batch_size):
            self._post(stream, records[start:start + self.batch_size])

    def close(self) -> None:
        self.client.close()

    # --- one request, retried ------------------------------------------------------------

    def _post(self, stream: str, records: Sequence[Record]) -> None:
        key = idempotency_key(stream, records)
        attempts = self.policy.attempts
        last, tried = "", 0
        for attempt in range(1, attempts + 1):
            tried = attempt
            body, headers = self.request(stream, records, key)
            retry_after: float | None = None
            try:
                response = self.client.post(self.url, content=body, headers=headers)
            except httpx.TimeoutException:
                last = f"no answer within {self.client.timeout.read}s"
            except httpx.TransportError as exc:
                last = f"cannot reach {self.url}: {exc or type(exc).__name__}"
            else:
                if response.is_success:
                    return
                last = f"{self.url} answered {response.status_code} {response.reason_phrase}"
                snippet = response.text.strip()[:200]
                if snippet:
                    last += f": {snippet}"
                if not _retryable(response.status_code):
                    raise DeliveryError(
                        f"destination '{self.name}' refused the request: {last}",
                        retryable=False,
                        hint="the receiver rejects these records; fix the receiver or the "
                             "sync's columns — they stay queued until then",
                        attempts=attempt)
                retry_after = _retry_after(response.headers.get("Retry-After"))
                if retry_after is not None and retry_after > RETRY_AFTER_LIMIT:
                    last += f" (asks to wait {retry_after:.0f}s)"
                    break
            if attempt < attempts:
                self.policy.wait(attempt, retry_after)
        raise self.policy.gave_up(self.name, last, "the receiver is down or overloaded; "
                                  "nothing is lost — the next sync sends these records again",
                                  tried)

    def request(self, stream: str, records: Sequence[Record], key: str
                ) -> tuple[bytes, dict[str, str]]:
        """The body and headers of one attempt (fresh time, same idempotency key)."""
        now = datetime.now(UTC)
        body = json.dumps({
            "stream": stream,
            "sent_at": now.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "records": [{"key": r.key, "entity_id": r.entity_id, "op": r.op,
                         "payload": r.payload} for r in records],
        }, separators=(",", ":"), sort_keys=True, default=str).encode()
        headers = {"Content-Type": "application/json", IDEMPOTENCY_HEADER: key,
                   TIMESTAMP_HEADER: str(int(now.timestamp()))}
        if self.secret is not None:
            headers[SIGNATURE_HEADER] = "sha256=" + sign(self.secret, body)
        return body, headers


def sign(secret: bytes, body: bytes) -> str:
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def idempotency_key(stream: str, records: Sequence[Record]) -> str:
    """Stable for the same records: a resend after a crash carries the same key."""
    digest = hashlib.sha256(stream.encode())
    for record in records:
        payload = json.dumps(record.payload, sort_keys=True, default=str).encode()
        digest.update(b"\0" + record.key.encode() + b"\0" + record.op.encode() + b"\0"
                      + hashlib.sha256(payload).digest())
    return digest.hexdigest()[:32]


def _retryable(status: int) -> bool:
    return status >= 500 or status in RETRYABLE_STATUS


def _retry_after(value: str | None) -> float | None:
    """Retry-After is seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())
