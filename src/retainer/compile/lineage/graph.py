"""The lineage graph: edges from the rulebook's elements to the elements and source fields
they depend on, and the questions `retainer lineage` and the purpose check ask of it."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from retainer.errors import RetainerError, did_you_mean

ElementKind = Literal["trait", "dimension", "segment", "tag", "health", "component", "band",
                      "playbook", "sync"]


@dataclass(frozen=True, order=True)
class Field:
    """A column of a source: `tickets.body`."""

    source: str
    column: str

    def __str__(self) -> str:
        return f"{self.source}.{self.column}"


@dataclass(frozen=True, order=True)
class Element:
    """Something the rulebook defines: `trait tickets_30d`, `segment lifecycle.at_risk`."""

    kind: ElementKind
    name: str

    def __str__(self) -> str:
        if self.kind == "component":
            return f"health.{self.name}"
        if self.kind in ("health", "band"):
            return self.name
        return f"{self.kind} {self.name}"


Dependency = Element | Field


@dataclass(frozen=True)
class Lineage:
    """The dependency graph of a rulebook: each element's direct dependencies."""

    edges: Mapping[Element, frozenset[Dependency]]

    def fields(self, element: Element) -> frozenset[Field]:
        """Every source field `element` depends on, directly or through other elements."""
        seen: set[Element] = set()
        found: set[Field] = set()
        pending = [element]
        while pending:
            current = pending.pop()
            if current in seen:
                continue
            seen.add(current)
            for dependency in self.edges.get(current, frozenset()):
                if isinstance(dependency, Field):
                    found.add(dependency)
                else:
                    pending.append(dependency)
        return frozenset(found)

    def chain(self, element: Element, target: Dependency) -> tuple[Dependency, ...]:
        """The shortest path from `element` to `target`, both included (empty if none).
        Ties go to the first path in name order, so the chain shown is always the same."""
        previous: dict[Dependency, Dependency | None] = {element: None}
        queue: deque[Dependency] = deque([element])
        while queue:
            current = queue.popleft()
            if current == target:
                path: list[Dependency] = []
                step: Dependency | None = current
                while step is not None:
                    path.append(step)
                    step = previous[step]
                return tuple(reversed(path))
            if isinstance(current, Element):
                for dependency in sorted(self.edges.get(current, frozenset()), key=_order):
                    if dependency not in previous:
                        previous[dependency] = current
                        queue.append(dependency)
        return ()

    def users(self, field: Field) -> list[Element]:
        """The elements that depend on `field`, in name order."""
        return sorted((e for e in self.edges if field in self.fields(e)), key=_order)

    def find(self, text: str) -> Element:
        """The element a person means: `tickets_30d`, `lifecycle.at_risk`, `health.usage`,
        `playbook winback` or `sync crm` (the kind is needed only when names clash)."""
        words = text.strip().replace(":", " ").split()
        kind, name = (words[0], words[1]) if len(words) == 2 else (None, text.strip())
        matches = [e for e in self.edges
                   if (kind is None or e.kind == kind) and (
                       str(e) == text.strip() or e.name == name
                       or (e.kind == "component" and f"health.{e.name}" == name))]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise RetainerError(f"'{text}' names more than one element: "
                                + ", ".join(str(m) for m in sorted(matches, key=_order)),
                                hint="put the kind first, e.g. 'playbook " + name + "'")
        names = [e.name if e.kind != "component" else f"health.{e.name}" for e in self.edges]
        raise RetainerError(f"no trait, segment, tag, health, playbook or sync named '{text}'",
                            hint=did_you_mean(name, names) or "'retainer lineage' lists "
                            "every playbook and sync")


def _order(item: Dependency) -> tuple[int, str]:
    return (1, str(item)) if isinstance(item, Field) else (0, str(item))
