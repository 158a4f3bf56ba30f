"""Dependency order of computed columns: each column is placed in the first layer where
everything it reads already exists, and a cycle is reported with its full path."""

from __future__ import annotations

from collections.abc import Mapping


class CycleError(Exception):
    def __init__(self, path: list[str]) -> None:
        super().__init__(" → ".join(path))
        self.path = path


def layers(dependencies: Mapping[str, set[str]]) -> dict[str, int]:
    """Layer number per node: 1 + the deepest dependency; nodes with none are layer 1.

    Dependencies on names outside the mapping (aggregates, columns) count as layer 0.
    """
    depth: dict[str, int] = {}
    visiting: list[str] = []

    def visit(node: str) -> int:
        if node in depth:
            return depth[node]
        if node in visiting:
            raise CycleError([*visiting[visiting.index(node):], node])
        visiting.append(node)
        deepest = max((visit(dep) for dep in dependencies[node] if dep in dependencies),
                      default=0)
        visiting.pop()
        depth[node] = deepest + 1
        return depth[node]

    for node in dependencies:
        visit(node)
    return depth
