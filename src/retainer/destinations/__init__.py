"""Destinations: where syncs and playbook actions deliver records.

One module per destination type, registered here by the `type` a rulebook writes; a module
(and its driver: psycopg, httpx, pika) is imported only when a destination of its type is
opened, so a project that only writes files never needs a database driver.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from retainer.destinations.base import DeliveryError, Destination, Record
from retainer.errors import RetainerError, did_you_mean

if TYPE_CHECKING:
    from retainer.rulebook.loader import Rulebook

# type → (module, class): the one place a new destination is registered.
REGISTRY: dict[str, tuple[str, str]] = {
    "files": ("retainer.destinations.files", "FilesDestination"),
    "webhook": ("retainer.destinations.webhook", "WebhookDestination"),
    "postgres": ("retainer.destinations.postgres", "PostgresDestination"),
    "rabbitmq": ("retainer.destinations.rabbitmq", "RabbitMQDestination"),
}


def destination_class(kind: str) -> type[Destination]:
    """The implementation of destination type `kind` (imports its module)."""
    module_name, class_name = REGISTRY[kind]
    cls: type[Destination] = getattr(importlib.import_module(module_name), class_name)
    return cls


def open_destination(name: str, rulebook: Rulebook) -> Destination:
    """Open the destination `name` declared under `destinations:`; the caller closes it."""
    settings = rulebook.destinations.get(name)
    if settings is None:
        declared = sorted(rulebook.destinations)
        hint = did_you_mean(name, declared) or (
            "declared destinations: " + ", ".join(declared) if declared
            else "declare it under 'destinations:' (see docs/sync.md)")
        raise RetainerError(f"no destination named '{name}'", hint=hint)
    cls = destination_class(settings.type)
    origin = rulebook.origins.get(("destinations", name))
    return cls.open(name, settings, rulebook, origin.location if origin else None)


__all__ = ["REGISTRY", "DeliveryError", "Destination", "Record", "destination_class",
           "open_destination"]
