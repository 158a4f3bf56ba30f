"""What each action does for one entity: its recipients, payload and one-line summary.

Payloads are JSON objects handed to destinations (and kept in the ledger). Everything about
a person sits under `contact` (id, role, email when the contacts source declares it, and
the `contact_fields` asked for), so erasure knows exactly what to scrub.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from retainer.playbooks.conditions import render
from retainer.playbooks.people import Person
from retainer.rulebook.playbook_models import (
    Action,
    MessageAction,
    RouteAction,
    TaskAction,
    WebhookAction,
)

DEFAULT_STREAMS = {"task": "tasks", "route": "routes", "message": "messages",
                   "webhook": "actions"}


@dataclass(frozen=True)
class Draft:
    """One action for one recipient (or for the entity, when it reaches nobody)."""

    contact: Person | None
    destination: str | None
    stream: str | None
    channel: str | None
    summary: str
    payload: dict[str, Any] = field(default_factory=dict)
    due_at: datetime | None = None
    problem: str | None = None       # why it cannot be done (no contact with the role)


@dataclass(frozen=True)
class Subject:
    """Who a playbook acts on: the entity's results row, and its contacts."""

    level: str
    entity_id: str
    account_id: str | None
    row: Mapping[str, Any]
    person: Person | None                 # the contact itself, for a contact playbook
    contacts: Sequence[Person]            # the account's contacts, earliest first


def contact_payload(person: Person) -> dict[str, Any]:
    data: dict[str, Any] = {"id": person.contact_id, "role": person.role}
    if person.email is not None:
        data["email"] = person.email
    data.update({k: _json(v) for k, v in person.fields.items()})
    return data


def drafts(playbook: str, action: Action, subject: Subject, as_of: datetime) -> list[Draft]:
    """The action for each of its recipients (a webhook's event defaults to `playbook`)."""
    body = action.body
    stream = (body.stream or DEFAULT_STREAMS[action.kind]) if body.to else None
    if isinstance(body, TaskAction):
        return [_task(body, subject, stream, as_of)]
    if isinstance(body, RouteAction):
        return [_with_person(Draft(subject.person, body.to, stream, None,
                                   f"route to {body.queue}", {"queue": body.queue}),
                             subject.person)]
    if isinstance(body, MessageAction):
        return _messages(body, subject, stream)
    assert isinstance(body, WebhookAction)
    event = body.event or playbook
    payload = {"event": event, "fields": _fields(body.fields, subject.row)}
    return [_with_person(Draft(subject.person, body.to, stream, None,
                               f"webhook '{event}' to {body.to}", payload),
                         subject.person)]


def _task(body: TaskAction, subject: Subject, stream: str | None, as_of: datetime) -> Draft:
    person = subject.person
    owner: Any = None
    if body.owner_role is not None:
        person = next((p for p in subject.contacts if p.role == body.owner_role), None)
        if person is None:
            return Draft(None, body.to, stream, body.channel, "task",
                         problem=f"no contact with role '{body.owner_role}'")
        owner = person.email or person.contact_id
    elif body.owner is not None:
        owner = _json(subject.row.get(body.owner))
    title = render(body.title, subject.row)
    due = as_of + body.due
    payload: dict[str, Any] = {"title": title, "owner": owner, "due_at": due.isoformat()}
    if body.note is not None:
        payload["note"] = render(body.note, subject.row)
    summary = f"task for {owner}: {title}" if owner else f"unassigned task: {title}"
    return _with_person(Draft(person, body.to, stream, body.channel, summary, payload, due),
                        person)


def _messages(body: MessageAction, subject: Subject, stream: str | None) -> list[Draft]:
    if subject.level == "contact":
        candidates = [subject.person] if subject.person is not None else []
    else:
        candidates = list(subject.contacts)
    chosen = [p for p in candidates if body.roles is None or p.role in body.roles]
    if not chosen:
        roles = ", ".join(body.roles) if body.roles else "any role"
        return [Draft(None, body.to, stream, body.channel, f"{body.channel} {body.template}",
                      problem=f"no contact ({roles}) to send to")]
    fields = _fields(body.fields, subject.row)
    return [_with_person(Draft(person, body.to, stream, body.channel,
                               f"{body.channel} '{body.template}' to {person.contact_id}",
                               {"template": body.template, "channel": body.channel,
                                "fields": fields}), person)
            for person in chosen]


def _with_person(draft: Draft, person: Person | None) -> Draft:
    if person is None:
        return draft
    return Draft(person, draft.destination, draft.stream, draft.channel, draft.summary,
                 {**draft.payload, "contact": contact_payload(person)}, draft.due_at,
                 draft.problem)


def _fields(names: Sequence[str], row: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _json(row.get(name)) for name in names}


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
