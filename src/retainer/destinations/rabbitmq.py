"""RabbitMQ destination: one persistent JSON message per record on a durable topic exchange.

The routing key is the stream; `message_id` is a hash of the record (key, op and payload),
so a consumer drops a message it has seen (delivery is at least once: a crash after the
broker confirmed a message but before Retainer recorded it sends that message again), while
an update of a record, or its deletion, is a new message. Publisher confirms make
"delivered" mean "the broker has it": a message the broker refuses (nack), cannot route to
any queue, or a connection lost before the confirm is a retryable failure, and only the
messages not yet confirmed are published again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import time
from collections.abc import Sequence
from typing import Any

from retainer.destinations.base import Destination, Record, require_driver
from retainer.destinations.retry import RetryPolicy
from retainer.errors import Location, first_line
from retainer.rulebook.destination_models import RabbitMQDestination as RabbitMQSettings
from retainer.rulebook.loader import Rulebook

# pika logs every lost connection as an error; this module reports them itself. Once, not
# per destination opened: handlers on a logger add up.
logging.getLogger("pika").addHandler(logging.NullHandler())


class _NoConfirm(Exception):
    """The broker did not confirm a message in time."""


class RabbitMQDestination(Destination):
    kind = "rabbitmq"

    def __init__(self, name: str, url: str, *, exchange: str = "retainer",
                 timeout: float = 10, policy: RetryPolicy | None = None,
                 batch: int = 500) -> None:
        super().__init__(name)
        self.batch_size = batch
        self.url = url
        self.exchange = exchange
        self.timeout = timeout
        self.policy = policy or RetryPolicy(retries=3)
        self.connection: Any = None
        self.channel: Any = None

    @classmethod
    def open(cls, name: str, settings: Any, rulebook: Rulebook,
             location: Location | None = None) -> RabbitMQDestination:
        assert isinstance(settings, RabbitMQSettings)
        require_driver("pika", name, "rabbitmq", location)
        return cls(name, settings.url, exchange=settings.exchange, timeout=settings.timeout,
                   policy=RetryPolicy(settings.retries, settings.backoff),
                   batch=settings.batch)

    def deliver(self, stream: str, records: Sequence[Record]) -> None:
        import pika.exceptions as errors
        from pika.adapters.utils.connection_workflow import (
            AMQPConnectionWorkflowFailed,
            AMQPConnectorException,
        )

        pending = list(records)
        last = ""
        for attempt in range(1, self.policy.attempts + 1):
            try:
                channel = self._channel()
                while pending:
                    self._publish(channel, stream, pending[0])
                    pending.pop(0)  # confirmed: never published again by this call
                return
            except _NoConfirm:
                self._reset()
                last = (f"the broker at {_safe(self.url)} did not confirm within "
                        f"{self.timeout:g}s")
            except (AMQPConnectorException, AMQPConnectionWorkflowFailed):
                self._reset()  # pika's own text here is a wall of socket details
                last = (f"the broker at {_safe(self.url)} did not complete the connection "
                        f"within {self.timeout:g}s")
            except errors.UnroutableError:
                last = (f"no queue is bound to exchange '{self.exchange}' for routing key "
                        f"'{stream}', so the broker would drop the messages")
            except errors.NackError:
                last = "the broker refused the messages (nack)"
            except (errors.AMQPError, OSError) as exc:
                self._reset()
                last = f"cannot reach {_safe(self.url)}: {first_line(exc) or type(exc).__name__}"
            if attempt < self.policy.attempts:
                self.policy.wait(attempt)
        raise self.policy.gave_up(
            self.name, last, "bind a queue to the exchange with a matching routing key, or "
            "check that the broker is up; nothing is lost — the next sync sends the messages "
            "again")

    def close(self) -> None:
        self._reset()

    def _publish(self, channel: Any, stream: str, record: Record) -> None:
        """Publish one message and wait for its confirm, at most `timeout` seconds.

        The blocking adapter has no deadline of its own (a hung broker is noticed only by
        heartbeats, many seconds later), so a timer on the connection's I/O loop ends the
        stream when the confirm is late; the wait then fails like a lost connection."""
        impl = self.connection._impl  # the I/O loop runs its timers while we wait

        def expire() -> None:
            impl._terminate_stream(_NoConfirm())

        timer = impl._adapter_call_later(self.timeout, expire)
        try:
            channel.basic_publish(self.exchange, stream, _body(stream, record),
                                  _properties(record), mandatory=True)
        finally:
            impl._adapter_remove_timeout(timer)

    def _channel(self) -> Any:
        import pika

        if self.connection is None or self.connection.is_closed or self.channel is None \
                or self.channel.is_closed:
            self._reset()
            parameters = pika.URLParameters(self.url)
            parameters.socket_timeout = self.timeout
            parameters.stack_timeout = self.timeout
            parameters.blocked_connection_timeout = self.timeout
            parameters.connection_attempts = 1
            parameters.heartbeat = max(1, math.ceil(self.timeout))
            self.connection = pika.BlockingConnection(parameters)
            self.channel = self.connection.channel()
            self.channel.confirm_delivery()
            self.channel.exchange_declare(self.exchange, exchange_type="topic", durable=True)
        return self.channel

    def _reset(self) -> None:
        connection, self.connection, self.channel = self.connection, None, None
        if connection is not None and connection.is_open:
            with contextlib.suppress(Exception):
                connection.close()


def _body(stream: str, record: Record) -> bytes:
    return json.dumps({"stream": stream, "key": record.key, "entity_id": record.entity_id,
                       "op": record.op, "payload": record.payload},
                      sort_keys=True, default=str).encode()


def _properties(record: Record) -> Any:
    import pika

    return pika.BasicProperties(content_type="application/json", delivery_mode=2,
                                message_id=message_id(record), type=record.op,
                                timestamp=int(time.time()))


def message_id(record: Record) -> str:
    """The same for a resend of the record; another for an update or a deletion of it."""
    text = json.dumps([record.key, record.op, record.payload], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}:{parts.port}" if parts.port else f"{parts.scheme}://{host}"
