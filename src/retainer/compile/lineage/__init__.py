"""Which source fields each element of the rulebook depends on.

The lineage is a graph from elements (traits, segments, tags, health, playbooks, syncs) to
other elements and to source fields. Walking it gives every field an element depends on,
and the chain that leads there
(`playbook winback → segment lifecycle.at_risk → trait tickets_30d → tickets.body`).

What counts as a dependency is what shapes a value or decides who is in a segment:
* the columns an expression reads, through derived traits, roll-ups and `where` filters;
* for an aggregate, the source's time column (windows and `as_of` filter on it) and the id
  columns that attribute a row to its entity (through the contact, and the identity map);
* for a segment, the rules before it as well: it is reached only when they do not match;
* for playbooks and syncs, the entity's id (it leaves the system with every record), their
  trigger, condition, the fields their templates and columns show, and the people they
  reach (contacts' role, account and email).

The graph and its queries are in `graph`; traits, segments, tags and health are traced in
`expressions`, playbooks and syncs in `activation`.

The purpose check that reads this graph is retainer.privacy.purposes.
"""

from __future__ import annotations

from retainer.compile.catalog import Catalog
from retainer.compile.lineage.activation import ActivationTracer
from retainer.compile.lineage.expressions import ExpressionTracer
from retainer.compile.lineage.graph import Dependency, Element, Field, Lineage
from retainer.rulebook.loader import Rulebook


def trace(rulebook: Rulebook, catalog: Catalog) -> Lineage:
    """The lineage of every element of a rulebook that compiles against `catalog`."""
    elements = ExpressionTracer(rulebook, catalog)
    edges: dict[Element, set[Dependency]] = {**elements.edges(),
                                             **ActivationTracer(elements).edges()}
    # A name the rulebook does not define is the checks' to report, not a dependency.
    return Lineage({element: frozenset(d for d in deps if isinstance(d, Field) or d in edges)
                    for element, deps in edges.items()})


def field_lineage(rulebook: Rulebook, catalog: Catalog) -> dict[Element, frozenset[Field]]:
    """For every element, the set of source fields it depends on."""
    lineage = trace(rulebook, catalog)
    return {element: lineage.fields(element) for element in lineage.edges}
