"""The `destinations:` and `syncs:` sections: where results and actions go (docs/sync.md)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from retainer.rulebook.fields import Entity, Model, Name

# --- destinations and syncs ------------------------------------------------------------------

class PostgresDestination(Model):
    type: Literal["postgres"]
    url: str                                     # postgresql://user@host:5432/db
    schema_: str = Field(default="public", alias="schema")  # for tables named without one
    timeout: float = Field(default=30, gt=0)     # seconds to connect, wait for a lock, write
    retries: int = Field(default=3, ge=0)        # per batch, reconnecting each time
    backoff: float = Field(default=1, ge=0)      # seconds before the first retry, doubling
    batch: int = Field(default=1000, ge=1)       # rows per transaction


class WebhookDestination(Model):
    type: Literal["webhook"]
    url: str
    secret_env: str | None = None                # environment variable with the HMAC key
    timeout: float = Field(default=10, gt=0)     # seconds per attempt
    retries: int = Field(default=4, ge=0)
    backoff: float = Field(default=1, ge=0)      # seconds before the first retry, doubling
    headers: dict[str, str] = Field(default_factory=dict)
    batch: int = Field(default=100, ge=1)        # records per request


class FilesDestination(Model):
    type: Literal["files"]
    dir: str
    format: Literal["parquet", "csv"] = "parquet"


class RabbitMQDestination(Model):
    type: Literal["rabbitmq"]
    url: str = "amqp://guest:guest@127.0.0.1:5672/%2F"
    exchange: str = "retainer"                   # a durable topic exchange, declared if missing
    timeout: float = Field(default=10, gt=0)     # seconds to connect and for each confirm
    retries: int = Field(default=3, ge=0)        # per batch, reconnecting each time
    backoff: float = Field(default=1, ge=0)      # seconds before the first retry, doubling
    batch: int = Field(default=500, ge=1)        # messages per recorded batch


Destination = Annotated[PostgresDestination | WebhookDestination | FilesDestination
                        | RabbitMQDestination, Field(discriminator="type")]
DESTINATION_TYPES = ("postgres", "webhook", "files", "rabbitmq")


class Sync(Model):
    """Results pushed to a destination: the current rows (`upsert`, or `mirror`, which also
    removes entities that left), or one message per segment change (`changes`)."""

    to: Name
    purpose: Name = "operations"
    entity: Entity = "account"
    mode: Literal["upsert", "mirror", "changes"] = "upsert"
    table: str | None = None                     # table, file name or routing key; default
                                                 # the sync's name
    columns: tuple[str, ...] = ()                # default: segments, tags and health
    where: str | None = None                     # only entities where this holds
    description: str | None = None
