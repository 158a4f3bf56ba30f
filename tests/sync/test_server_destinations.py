"""PostgreSQL and RabbitMQ destinations against the real local servers."""

from __future__ import annotations

import threading
from decimal import Decimal

import psycopg
import pytest

from retainer.destinations import DeliveryError, Record
from retainer.destinations.postgres import PostgresDestination
from retainer.destinations.rabbitmq import RabbitMQDestination, message_id
from retainer.destinations.retry import RetryPolicy
from retainer.state.postgres_backend import split_schema
from tests.sync.receiver import free_port
from tests.sync.servers import RABBITMQ, proxy, rabbit_queue

FAST = RetryPolicy(retries=2, backoff=0.05)


def rows(url: str, table: str) -> dict[str, dict[str, object]]:
    dsn, schema = split_schema(url)
    with psycopg.connect(dsn) as connection:
        cursor = connection.execute(f'SELECT * FROM "{schema}"."{table}" ORDER BY key')
        names = [d.name for d in cursor.description or []]
        return {row[0]: dict(zip(names, row, strict=True)) for row in cursor.fetchall()}


# --- PostgreSQL ----------------------------------------------------------------------------

def test_postgres_creates_a_typed_table_upserts_and_deletes(postgres_url: str) -> None:
    destination = PostgresDestination("crm", postgres_url, policy=FAST)
    destination.deliver("segments", [
        Record("a1", "a1", {"tier": "gold", "health": 71.5, "seats": 12, "champion": True}),
        Record("a2", "a2", {"tier": "free", "health": None, "seats": 3, "champion": False}),
    ])
    destination.deliver("segments", [
        Record("a2", "a2", {"tier": "pro", "health": 40, "seats": 3, "champion": False,
                            "notes": ["x"]}),
        Record("a1", "a1", op="delete"),
        Record("a3", "a3", {"tier": "free"}),
    ])
    destination.deliver("segments", [Record("a3", "a3", {"tier": "free"})])  # a resend
    destination.close()
    found = rows(postgres_url, "segments")
    assert sorted(found) == ["a2", "a3"]
    assert found["a2"]["tier"] == "pro" and found["a2"]["health"] == Decimal(40)
    assert found["a2"]["seats"] == Decimal(3) and found["a2"]["champion"] is False
    assert found["a2"]["notes"] == ["x"]
    assert found["a2"]["payload"] == {"tier": "pro", "health": 40, "seats": 3,
                                      "champion": False, "notes": ["x"]}
    assert found["a3"]["seats"] is None and found["a3"]["entity_id"] == "a3"


def test_postgres_schema_qualified_stream(postgres_url: str) -> None:
    destination = PostgresDestination("crm", postgres_url, policy=FAST)
    schema = split_schema(postgres_url)[1]
    destination.deliver(f"{schema}_extra.accounts", [Record("a1", "a1", {"v": 1})])
    destination.close()
    dsn = split_schema(postgres_url)[0]
    with psycopg.connect(dsn, autocommit=True) as connection:
        count = connection.execute(f'SELECT count(*) FROM "{schema}_extra".accounts').fetchone()
        connection.execute(f'DROP SCHEMA "{schema}_extra" CASCADE')
    assert count == (1,)


def test_postgres_refuses_a_hand_changed_table_without_retrying(postgres_url: str) -> None:
    destination = PostgresDestination("crm", postgres_url, policy=FAST)
    destination.deliver("t", [Record("a1", "a1", {"score": 5})])
    with pytest.raises(DeliveryError, match="refused the rows") as raised:
        destination.deliver("t", [Record("a2", "a2", {"score": "high"})])
    destination.close()
    assert not raised.value.retryable
    assert sorted(rows(postgres_url, "t")) == ["a1"]   # the failed batch left nothing behind


def test_postgres_down_is_retryable() -> None:
    destination = PostgresDestination(
        "crm", f"postgresql://postgres@127.0.0.1:{free_port()}/test", timeout=2, policy=FAST)
    with pytest.raises(DeliveryError, match=r"failed after 3 attempt\(s\)") as raised:
        destination.deliver("t", [Record("a1", "a1", {"v": 1})])
    assert raised.value.retryable and raised.value.attempts == 3


def test_postgres_reconnects_after_its_connection_is_killed(postgres_url: str) -> None:
    destination = PostgresDestination("crm", postgres_url, policy=FAST)
    destination.deliver("t", [Record("a1", "a1", {"v": 1})])
    assert destination.connection is not None
    pid = destination.connection.info.backend_pid
    with psycopg.connect(split_schema(postgres_url)[0], autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    destination.deliver("t", [Record("a2", "a2", {"v": 2})])
    destination.close()
    assert sorted(rows(postgres_url, "t")) == ["a1", "a2"]


def test_postgres_lock_timeout_then_success(postgres_url: str) -> None:
    destination = PostgresDestination("crm", postgres_url, timeout=0.3, policy=FAST)
    destination.deliver("t", [Record("a1", "a1", {"v": 1})])
    dsn, schema = split_schema(postgres_url)
    locker = psycopg.connect(dsn)
    try:
        locker.execute(f'LOCK TABLE "{schema}".t IN ACCESS EXCLUSIVE MODE')
        with pytest.raises(DeliveryError, match="lock timeout") as raised:
            destination.deliver("t", [Record("a2", "a2", {"v": 2})])
        assert raised.value.retryable
        threading.Timer(0.2, locker.rollback).start()  # the lock goes during the retries
        destination.policy = RetryPolicy(retries=3, backoff=0.3)
        destination.deliver("t", [Record("a2", "a2", {"v": 2})])
    finally:
        destination.close()
        locker.close()
    assert sorted(rows(postgres_url, "t")) == ["a1", "a2"]


# --- RabbitMQ ------------------------------------------------------------------------------

def test_rabbitmq_publishes_persistent_messages_with_an_id_per_content() -> None:
    """A consumer drops a message_id it has processed: a resend of the same record keeps
    its id, while an update of the record and its deletion get ids of their own."""
    gold, silver = Record("a1", "a1", {"tier": "gold"}), Record("a1", "a1", {"tier": "silver"})
    with rabbit_queue("accounts") as queue:
        destination = RabbitMQDestination("bus", RABBITMQ, exchange=queue.exchange, policy=FAST)
        destination.deliver("accounts", [gold, silver, Record("a1", "a1", op="delete"), gold])
        destination.close()
        found = queue.messages()
    assert [(p.delivery_mode, p.type, body["key"]) for p, body in found] == [
        (2, "upsert", "a1"), (2, "upsert", "a1"), (2, "delete", "a1"), (2, "upsert", "a1")]
    ids = [p.message_id for p, _ in found]
    assert len(set(ids[:3])) == 3 and ids[3] == ids[0]
    assert found[0][1] == {"stream": "accounts", "key": "a1", "entity_id": "a1",
                           "op": "upsert", "payload": {"tier": "gold"}}


def test_rabbitmq_unroutable_is_a_retryable_failure() -> None:
    with rabbit_queue("accounts") as queue:
        destination = RabbitMQDestination("bus", RABBITMQ, exchange=queue.exchange, policy=FAST)
        with pytest.raises(DeliveryError, match="no queue is bound") as raised:
            destination.deliver("contacts", [Record("c1", "c1", {})])
        destination.close()
        assert queue.messages() == []
    assert raised.value.retryable


def test_rabbitmq_down_is_retryable() -> None:
    destination = RabbitMQDestination(
        "bus", f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F", timeout=2, policy=FAST)
    with pytest.raises(DeliveryError, match=r"cannot reach amqp://127\.0\.0\.1") as raised:
        destination.deliver("s", [Record("a1", "a1", {})])
    assert raised.value.retryable
    assert "guest" not in str(raised.value)   # no password in messages


def test_rabbitmq_connection_cut_mid_batch_resends_only_unconfirmed() -> None:
    with rabbit_queue("s") as queue, proxy(("127.0.0.1", 5672)) as cutter:
        url = f"amqp://guest:guest@127.0.0.1:{cutter.port}/%2F"
        destination = RabbitMQDestination("bus", url, exchange=queue.exchange, policy=FAST)
        destination.deliver("s", [Record("warmup", "w", {})])
        cutter.cut_after_bytes = cutter.sent + 3000   # dies a few messages into the batch
        records = [Record(f"k{i}", f"e{i}", {"i": i, "pad": "x" * 200}) for i in range(40)]
        destination.deliver("s", records)
        destination.close()
        found = [p.message_id for p, _ in queue.messages()]
    assert cutter.accepted == 2                       # it did lose the connection once
    assert set(found) == {message_id(r) for r in [Record("warmup", "w", {}), *records]}
    # At most the message in flight when the connection died is there twice.
    assert len(found) - len(set(found)) <= 1
