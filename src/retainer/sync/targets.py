"""Where each writer writes, so two never share one target without anyone noticing.

A sync and a playbook action that deliver to the same table, file or routing key (or two
syncs) would overwrite each other's records — or leave a receiver unable to tell them
apart. "The same target" is decided per destination type, from the settings as written:

* postgres — the same database URL (without `?schema=`), schema and table; a table named
  without a schema is in the destination's schema.
* files — the same directory and file: `<dir>/<table>.<format>` (so `x.csv` and
  `x.parquet` are two files).
* rabbitmq — the same broker URL, exchange and routing key.
* webhook — the same URL and stream: every request names its stream, so writers sharing a
  URL are told apart as long as their streams differ.

Playbook actions never clash with each other: their records are keyed by action keys, so
any number of playbooks share a stream (`tasks`, `messages`, …) by design.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retainer.errors import Location, Problem
from retainer.playbooks.actions import DEFAULT_STREAMS
from retainer.rulebook.destination_models import (
    FilesDestination,
    PostgresDestination,
    RabbitMQDestination,
    WebhookDestination,
)
from retainer.rulebook.loader import Rulebook
from retainer.sync.plan import stream_of

# Per destination type: what two of its destinations with the same target share, and what
# writing the same target does.
_SAME = {"postgres": "the same database", "files": "the same directory",
         "rabbitmq": "the same broker and exchange", "webhook": "the same URL"}
_CLASH = {"postgres": "each would overwrite the other's rows",
          "files": "each would overwrite the other's records",
          "rabbitmq": "a consumer could not tell their messages apart",
          "webhook": "the receiver could not tell their records apart"}


@dataclass(frozen=True)
class Writer:
    """A sync, or a playbook action with a destination."""

    what: str                 # "sync 'crm'", "playbook 'save_call' action 2 (route)"
    destination: str
    stream: str
    location: Location
    sync: bool
    setting: str              # the key that names its stream: 'table' or 'stream'


@dataclass(frozen=True)
class Target:
    kind: str
    identity: tuple[str, ...]  # equal for writers that write the same records
    shown: str                 # as a person reads it: "table crm.accounts"


def _postgres(rulebook: Rulebook, settings: PostgresDestination, stream: str) -> Target:
    from retainer.state.postgres_backend import split_schema
    database, url_schema = split_schema(settings.url)
    schema, _, table = stream.rpartition(".")
    schema = schema or url_schema or settings.schema_
    return Target("postgres", (database, schema, table), f"table {schema}.{table}")


def _files(rulebook: Rulebook, settings: FilesDestination, stream: str) -> Target:
    file = f"{stream}.{settings.format}"
    return Target("files", (str(rulebook.path(settings.dir).resolve()), file), f"file '{file}'")


def _rabbitmq(rulebook: Rulebook, settings: RabbitMQDestination, stream: str) -> Target:
    return Target("rabbitmq", (settings.url, settings.exchange, stream),
                  f"routing key '{stream}' of exchange '{settings.exchange}'")


def _webhook(rulebook: Rulebook, settings: WebhookDestination, stream: str) -> Target:
    return Target("webhook", (settings.url, stream), f"stream '{stream}'")


# destination type → where its records go; a new destination type adds its rule here.
TARGETS: dict[str, Callable[[Rulebook, Any, str], Target]] = {
    "postgres": _postgres, "files": _files, "rabbitmq": _rabbitmq, "webhook": _webhook}


def target(rulebook: Rulebook, destination: str, stream: str) -> Target | None:
    """Where records written under `stream` to `destination` end up (None: no such
    destination, which validation reports by itself)."""
    settings = rulebook.destinations.get(destination)
    if settings is None:
        return None
    return TARGETS[settings.type](rulebook, settings, stream)


def writers(rulebook: Rulebook) -> list[Writer]:
    """Every sync, then every playbook action that delivers, in rulebook order."""
    found = []
    for name, sync in rulebook.syncs.items():
        origin = rulebook.origin("syncs", name)
        found.append(Writer(f"sync '{name}'", sync.to, stream_of(name, sync),
                            origin.at("table") if sync.table else origin.location, True,
                            "table"))
    for name, playbook in rulebook.playbooks.items():
        origin = rulebook.origin("playbooks", name)
        for index, action in enumerate(playbook.actions):
            body = action.body
            if body.to is None:
                continue
            at = ("actions", index, action.kind)
            found.append(Writer(f"playbook '{name}' action {index + 1} ({action.kind})",
                                body.to, body.stream or DEFAULT_STREAMS[action.kind],
                                origin.at(*at, "stream" if body.stream else "to"), False,
                                "stream"))
    return found


def problems(rulebook: Rulebook) -> list[Problem]:
    """One problem for each writer that writes what a sync before it writes, naming both
    and where each is written."""
    first: dict[tuple[str, tuple[str, ...]], tuple[Writer, Target]] = {}
    found = []
    for writer in writers(rulebook):
        where = target(rulebook, writer.destination, writer.stream)
        if where is None:
            continue
        key = (where.kind, where.identity)
        if key not in first:
            first[key] = (writer, where)
            continue
        earlier, _ = first[key]
        if not earlier.sync:  # syncs come first: this target has only actions
            continue
        found.append(_clash(rulebook.root, writer, earlier, where))
    return found


def _clash(root: Path, writer: Writer, earlier: Writer, where: Target) -> Problem:
    if writer.destination == earlier.destination:
        at = f"destination '{writer.destination}'"
    else:
        at = (f"destinations '{earlier.destination}' and '{writer.destination}' "
              f"({_SAME[where.kind]})")
    if writer.sync:
        hint = f"give one of them its own '{writer.setting}'"
    else:
        hint = (f"give {earlier.what} its own '{earlier.setting}', or the action its own "
                f"'{writer.setting}'")
    return Problem(f"{earlier.what} ({_place(root, earlier.location)}) and {writer.what} "
                   f"({_place(root, writer.location)}) both write {where.shown} at {at}: "
                   f"{_CLASH[where.kind]}", writer.location, hint)


def _place(root: Path, location: Location) -> str:
    """file:line, the file relative to the project when it is in it."""
    file = location.file.relative_to(root) if location.file.is_relative_to(root) \
        else location.file
    return f"{file}:{location.line}"
